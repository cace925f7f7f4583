"""What every sparse SimBa policy shares, whatever the algorithm: the architecture settings, the
observation normalizer, the SB3 actor and critic wrappers around :mod:`sb3_sparse.networks`, and
the one construction path (:meth:`SparseSimBaMixin._build`): build each network, prune it through
one call with its role name, then the targets, the optimizers and the mask enforcers.

The per-algorithm modules (``sac.py``, ...) only say what differs: which actor and critic
classes, which networks have targets, and the extra arguments of their SB3 parent.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar, cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution
from stable_baselines3.common.policies import BaseModel, BasePolicy
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from sb3_sparse.checks import (
    check_bool,
    check_choice,
    check_flat_box_spaces,
    check_fraction,
    check_int,
    check_seed,
    check_sparsity,
)
from sb3_sparse.diagnostics import NetworkProbe
from sb3_sparse.distributions import ExactSquashedDiagGaussianDistribution
from sb3_sparse.networks import CriticNetwork, GaussianActorNetwork, RunningObservationNormalizer, SimBaEncoder
from sb3_sparse.sparse_execution import (
    check_sparse_backend,
    convert_optimizer_state_layouts_,
    convert_state_dict_layouts_,
    prune_for_execution_,
    share_index_structures_,
)
from sb3_sparse.sparsity import MaskEnforcer, format_density_report
from sb3_sparse.topology import TOPOLOGIES, DynamicMaskEnforcer, TopologySchedule, prune_gradually_

#: Prunes one network in place and returns its parameter densities (see :class:`NetworkPruner`).
Prune = Callable[[nn.Module], dict[str, float]]


@dataclass(frozen=True)
class SimBaArchitecture:
    """
    The sparse SimBa settings of a policy, validated at construction (the policy_kwargs of the paper's code).

    :param actor_hidden_dim: actor encoder width
    :param actor_num_blocks: actor residual blocks
    :param critic_hidden_dim: critic encoder width
    :param critic_num_blocks: critic residual blocks
    :param actor_sparsity: fraction of actor parameters pruned at initialization, in [0, 1)
    :param critic_sparsity: fraction of each critic's parameters pruned at initialization, in [0, 1)
    :param normalize_observations: normalize observations with running statistics inside the policy
    :param mask_seed: seed of the masks (``None``: drawn from torch's global generator, i.e. from the model's seed)
    :param exact_masks: keep exactly ``round(d * N)`` weights per tensor instead of Bernoulli(d) draws
    :param sparse_backend: how pruned linear layers compute: ``"masked"`` (dense kernels on masked
        weights), ``"csr"`` (every pruned layer stores and trains its nonzero weights only, sparse
        kernels on the CPU) or ``"auto"`` (the default: ``csr`` for large, very sparse layers when
        no GPU is present, else ``masked``; see :mod:`sb3_sparse.sparse_execution`)
    :param exact_log_prob: squashed-Gaussian actors (SAC, TQC, CrossQ) compute the exact tanh
        log-density of the reference code instead of SB3's, which adds ``1e-6`` inside the log
        (:class:`~sb3_sparse.distributions.ExactSquashedDiagGaussianDistribution`)
    :param topology: ``"static"`` (the default: the masks drawn at initialization never change),
        ``"set"``, ``"rigl"`` or ``"gmp"`` (dynamic sparse training, see :mod:`sb3_sparse.topology`;
        GMP runs on masked layers: with it, ``sparse_backend="auto"`` becomes ``"masked"``)
    :param topology_kwargs: arguments of the dynamic rule (:meth:`~sb3_sparse.topology.TopologySchedule.create`),
        e.g. ``dict(update_interval=1000, drop_fraction=0.3)``
    """

    actor_hidden_dim: int = 128
    actor_num_blocks: int = 1
    critic_hidden_dim: int = 512
    critic_num_blocks: int = 2
    actor_sparsity: float = 0.0
    critic_sparsity: float = 0.0
    normalize_observations: bool = True
    mask_seed: int | None = None
    exact_masks: bool = False
    sparse_backend: str = "auto"
    exact_log_prob: bool = False
    topology: str = "static"
    topology_kwargs: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        checked: dict[str, Any] = dict(
            actor_hidden_dim=check_int("actor_hidden_dim", self.actor_hidden_dim),
            critic_hidden_dim=check_int("critic_hidden_dim", self.critic_hidden_dim),
            actor_num_blocks=check_int("actor_num_blocks", self.actor_num_blocks, minimum=0),
            critic_num_blocks=check_int("critic_num_blocks", self.critic_num_blocks, minimum=0),
            actor_sparsity=check_sparsity("actor_sparsity", self.actor_sparsity),
            critic_sparsity=check_sparsity("critic_sparsity", self.critic_sparsity),
            sparse_backend=check_sparse_backend(self.sparse_backend),
            normalize_observations=check_bool("normalize_observations", self.normalize_observations),
            exact_masks=check_bool("exact_masks", self.exact_masks),
            exact_log_prob=check_bool("exact_log_prob", self.exact_log_prob),
            mask_seed=check_seed("mask_seed", self.mask_seed, optional=True),
            topology=check_choice("topology", self.topology, TOPOLOGIES),
            topology_kwargs=dict(self.topology_kwargs) if self.topology_kwargs is not None else None,
        )
        if checked["topology"] == "static" and checked["topology_kwargs"]:
            raise ValueError(
                f"topology_kwargs need a dynamic topology (set, rigl, gmp), got topology='static' and {self.topology_kwargs!r}"
            )
        if checked["topology"] != "static":
            schedule = TopologySchedule.create(checked["topology"], checked["topology_kwargs"])
            if schedule.kind == "gmp" and checked["sparse_backend"] == "csr":
                raise ValueError(
                    "topology='gmp' changes the number of weights, which a SparseLinear layer holds fixed: "
                    "sparse_backend must be 'masked' or 'auto' (which then means 'masked'), got 'csr'"
                )
            if schedule.kind == "gmp":
                checked["sparse_backend"] = "masked"
            sparsities = {name: checked[name] for name in ("actor_sparsity", "critic_sparsity")}
            if schedule.kind == "gmp" and any(0 < value < schedule.initial_sparsity for value in sparsities.values()):
                raise ValueError(
                    f"initial_sparsity must be at most the sparsities it starts from, got initial_sparsity="
                    f"{schedule.initial_sparsity} with {sparsities}"
                )
        if checked["mask_seed"] is None:
            # Drawn from the global generator, which SB3 seeds with the model's seed before
            # building the policy: same model seed, same masks.
            checked["mask_seed"] = int(th.randint(0, 2**62, (1,)).item())
        for name, value in checked.items():  # plain Python values, also from numpy scalars
            object.__setattr__(self, name, value)

    @property
    def topology_schedule(self) -> TopologySchedule | None:
        """The dynamic topology's schedule, or ``None`` for ``topology="static"``."""
        return None if self.topology == "static" else TopologySchedule.create(self.topology, self.topology_kwargs)

    def network_seed(self, role: str) -> int:
        """
        Seed of the masks of the networks of one role, derived from ``mask_seed``. The derivations
        are those of sb3-sparse 0.1.0, so the same ``mask_seed`` still draws the same masks.

        :param role: ``"actor"`` or ``"critic"`` (a network and its target share the role, hence the
            masks), ``"actor_trunk"`` or ``"critic_trunk"`` (pixel policies' trunks), ``"encoder"``
            (the pixel policies' convolutions)
        :return: the seed
        """
        assert self.mask_seed is not None  # set in __post_init__
        if role == "encoder":
            return int(th.randint(0, 2**62, (1,), generator=th.Generator().manual_seed(self.mask_seed + 1)))
        network, _, part = role.partition("_")
        networks = ("actor", "critic")
        if network not in networks or part not in ("", "trunk"):
            raise ValueError(f"unknown mask role {role!r}; valid roles: actor, critic, actor_trunk, critic_trunk, encoder")
        seeds = th.randint(0, 2**62, (len(networks),), generator=th.Generator().manual_seed(self.mask_seed))
        return int(seeds[networks.index(network)]) + (1 if part == "trunk" else 0)


class NetworkPruner:
    """
    Prunes the networks of one role with Erdős–Rényi masks: one generator, seeded from the role,
    continues across the networks it prunes (the critics of a critic ensemble draw different masks,
    a target built with a fresh pruner of the same role draws the same ones). Each chosen layer is
    converted for the sparse backend as soon as it is masked
    (:func:`sb3_sparse.sparse_execution.prune_for_execution_`). Sparsity 0 leaves a network untouched.

    :param sparsity: fraction of each network's parameters pruned, in [0, 1)
    :param seed: seed of the generator
    :param exact_masks: exact-count masks instead of Bernoulli draws
    :param sparse_backend: ``"masked"``, ``"csr"`` or ``"auto"``
    :param initial_sparsity: for gradual magnitude pruning: start at this sparsity instead
        (:func:`sb3_sparse.topology.prune_gradually_`; masked layers only)
    """

    def __init__(
        self, sparsity: float, seed: int, exact_masks: bool, sparse_backend: str, initial_sparsity: float | None = None
    ) -> None:
        self.sparsity, self.exact_masks, self.sparse_backend = sparsity, exact_masks, sparse_backend
        self.initial_sparsity = initial_sparsity
        self.generator = th.Generator().manual_seed(seed)

    def __call__(self, network: nn.Module) -> dict[str, float]:
        if self.sparsity == 0:
            return {name: 1.0 for name, _ in network.named_parameters()}
        if self.initial_sparsity is not None:
            return prune_gradually_(network, self.sparsity, self.initial_sparsity, self.generator, self.exact_masks)
        return prune_for_execution_(network, self.sparsity, self.generator, self.exact_masks, self.sparse_backend)


@dataclass(frozen=True)
class SimBaSpec:
    """
    What an actor or critic wrapper needs to build its SimBa network(s): sizes and the pruner.

    :param input_dim: size of the features extractor's output
    :param hidden_dim: encoder width
    :param num_blocks: encoder residual blocks
    :param prune: prunes each network built (a :class:`NetworkPruner` of the network's role)
    """

    input_dim: int
    hidden_dim: int
    num_blocks: int
    prune: Prune

    def build(self, network_class: Callable[..., nn.Module], *head_args: int) -> tuple[Any, dict[str, float]]:
        """
        Build one network ``network_class(input_dim, *head_args, hidden_dim, num_blocks)`` and prune it.

        :param network_class: e.g. :class:`~sb3_sparse.networks.GaussianActorNetwork`
        :param head_args: the head sizes after the input size (action size, then critic outputs)
        :return: the network and its parameter densities
        """
        action_dim, *outputs = head_args
        network = network_class(self.input_dim, action_dim, self.hidden_dim, self.num_blocks, *outputs)
        return network, self.prune(network)


def prefer_fused_optimizer(
    optimizer_class: type[th.optim.Optimizer], optimizer_kwargs: dict[str, Any] | None
) -> dict[str, Any]:
    """
    Optimizer keyword arguments with ``fused=True`` added for Adam and AdamW unless the caller chose
    an implementation (``fused`` or ``foreach``).

    Why: pruned weights keep exactly-zero second moments, and on x86 CPUs torch's default
    (for-loop) Adam computes ``sqrt`` of exact zeros much more slowly than of normal numbers; the
    fused kernels are indifferent to zeros (figures: benchmarks/README.md, masking overhead).

    :param optimizer_class: the optimizer class
    :param optimizer_kwargs: the user's keyword arguments (not modified)
    :return: the keyword arguments to build the optimizer with
    """
    kwargs = dict(optimizer_kwargs or {})
    if issubclass(optimizer_class, (th.optim.Adam, th.optim.AdamW)) and not {"fused", "foreach"} & kwargs.keys():
        kwargs["fused"] = True
    return kwargs


class ObservationNormalizerExtractor(BaseFeaturesExtractor):
    """
    Features extractor that normalizes flat observations with running statistics
    (:class:`sb3_sparse.networks.RunningObservationNormalizer`). One instance is shared by
    the actor, the critic and the target networks of a policy, so they all see the
    same statistics, as in the reference where the batch is normalized before the networks.

    :param observation_space: a flat Box observation space
    """

    def __init__(self, observation_space: spaces.Box) -> None:
        super().__init__(observation_space, features_dim=int(observation_space.shape[0]))
        self.normalizer = RunningObservationNormalizer(self.features_dim)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.normalizer(observations)


class SimBaActorBase(BasePolicy):
    """
    An SB3 actor around one SimBa actor network (``network_class``), pruned at construction.

    :param observation_space: observation space
    :param action_space: action space
    :param features_extractor: the (shared) observation normalizer, a flatten layer or pixel features
    :param spec: sizes of the SimBa network and its pruner (a target actor's has the same seed: the same masks)
    """

    network_class: ClassVar[type[nn.Module]]

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        features_extractor: BaseFeaturesExtractor,
        spec: SimBaSpec,
    ) -> None:
        super().__init__(observation_space, action_space, features_extractor=features_extractor, squash_output=True)
        self.network, self.densities = spec.build(self.network_class, get_action_dim(action_space))

    def simba_encoders(self) -> list[SimBaEncoder]:
        """The SimBa encoder of the actor network (for diagnostics)."""
        return [self.network.encoder]


class SimBaActor(SimBaActorBase):
    """
    SB3's SAC ``Actor`` (for SAC, TQC and CrossQ) around :class:`sb3_sparse.networks.GaussianActorNetwork`,
    pruned at construction; the arguments are those of :class:`SimBaActorBase`.
    """

    network_class = GaussianActorNetwork
    action_space: spaces.Box

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.action_dist = SquashedDiagGaussianDistribution(get_action_dim(self.action_space))

    def get_action_dist_params(self, obs: PyTorchObs) -> tuple[th.Tensor, th.Tensor, dict[str, th.Tensor]]:
        """
        :param obs: raw observations
        :return: Gaussian mean, log standard deviation (in [-10, 2]) and no extra arguments
        """
        mean_actions, log_std = self.network(self.extract_features(obs, self.features_extractor))
        return mean_actions, log_std, {}

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        mean_actions, log_std, _ = self.get_action_dist_params(obs)
        return self.action_dist.actions_from_params(mean_actions, log_std, deterministic=deterministic)

    def action_log_prob(self, obs: PyTorchObs) -> tuple[th.Tensor, th.Tensor]:
        """
        :param obs: raw observations
        :return: squashed sampled actions and their log-probability (with the tanh correction)
        """
        mean_actions, log_std, _ = self.get_action_dist_params(obs)
        return self.action_dist.log_prob_from_params(mean_actions, log_std)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self(observation, deterministic)


class SimBaContinuousCritic(BaseModel):
    """
    SB3's ``ContinuousCritic`` (SAC, TD3, DDPG, CrossQ) of ``n_critics`` independent
    :class:`sb3_sparse.networks.CriticNetwork` networks, each pruned with its own Erdős–Rényi masks.

    :param observation_space: observation space
    :param action_space: action space
    :param spec: sizes of each SimBa critic network and the pruner, which prunes them in turn
    :param features_extractor: the (shared) observation normalizer, a flatten layer or pixel features
    :param n_critics: number of critics (1 = the paper's DMC setup, 2 = clipped double Q)
    :param num_outputs: outputs of each critic's head (1 Q-value, or several quantiles)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        spec: SimBaSpec,
        features_extractor: BaseFeaturesExtractor,
        n_critics: int = 2,
        num_outputs: int = 1,
    ) -> None:
        super().__init__(observation_space, action_space, features_extractor=features_extractor)
        action_dim = get_action_dim(self.action_space)
        self.n_critics = check_int("n_critics", n_critics)
        # Each critic is pruned (and converted) before the next is built: one dense network at a time.
        self.q_networks, self.densities = nn.ModuleList(), []
        for _ in range(n_critics):
            q_net, densities = spec.build(CriticNetwork, action_dim, num_outputs)
            self.densities.append(densities)
            self.q_networks.append(q_net)

    def forward(self, obs: th.Tensor, actions: th.Tensor) -> tuple[th.Tensor, ...]:
        features = self.extract_features(obs, self.features_extractor)  # type: ignore[arg-type]
        return tuple(q_net(features, actions) for q_net in self.q_networks)

    def q1_forward(self, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """Q-value of the first critic only (TD3's actor loss)."""
        return self.q_networks[0](self.extract_features(obs, self.features_extractor), actions)  # type: ignore[arg-type]

    def simba_encoders(self) -> list[SimBaEncoder]:
        """The SimBa encoders of the critic networks, in order (for diagnostics)."""
        return [cast(SimBaEncoder, q_net.encoder) for q_net in self.q_networks]


def convert_state_dict(module: nn.Module, state_dict: dict[str, th.Tensor], prefix: str, *_: Any) -> None:
    """A policy's load_state_dict pre-hook: saved layer layouts (masked or SparseLinear) converted to the built ones."""
    convert_state_dict_layouts_(module, state_dict, prefix)


def convert_optimizer_state(network: nn.Module, optimizer: th.optim.Optimizer, state_dict: dict[str, Any]) -> None:
    """An optimizer's load_state_dict pre-hook (bound to its network): the state converted as the layers were."""
    convert_optimizer_state_layouts_(network, optimizer, state_dict)


def simba_probe(
    network: nn.Module, encoders: list[SimBaEncoder] | None = None, target: nn.Module | None = None, **probe_kwargs: Any
) -> NetworkProbe:
    """
    The diagnostics probe of SimBa networks: the residual blocks' activations, the encoders' linear
    layers and the (first) encoder's output as features.

    :param network: the module measured (norms, gradients), e.g. a SimBa actor or critic wrapper
    :param encoders: its SimBa encoders (``None``: ``network.simba_encoders()``)
    :param target: the network's Polyak target, if any
    :param probe_kwargs: further :class:`~sb3_sparse.diagnostics.NetworkProbe` fields (``evaluate``, ``optimizer``)
    :return: the probe
    """
    if encoders is None:
        encoders = network.simba_encoders()  # type: ignore[operator]
    return NetworkProbe(
        module=network,
        post_activation=[cast(nn.Module, block.activation) for encoder in encoders for block in encoder.blocks],
        pre_activation=[layer for encoder in encoders for layer in encoder.modules() if isinstance(layer, nn.Linear)],
        features=encoders[0],
        target=target,
        **probe_kwargs,
    )


class SparsePolicyBase:
    """
    What every sparse SimBa policy shares, whatever the algorithm family: the architecture settings
    read from the policy kwargs, the pruners of its network roles, the observation statistics, the
    topology schedule and the density report. Mixed in (through a family mixin) before an SB3 policy.

    A family says what differs in class attributes and a few methods:

    * ``architecture_class``: the settings dataclass (pixel policies add theirs);
    * ``sb3_arguments``: the SB3 policy arguments the family's ``__init__`` takes itself;
    * ``sb3_policy_kwargs``: further arguments of the SB3 parent with their defaults (TQC: ``n_quantiles``);
    * ``unused_architecture_fields``: architecture fields that mean nothing to the family (a Q-network
      has no actor), refused as unknown policy kwargs;
    * ``supports_dynamic_topology``: whether ``topology`` may be other than ``"static"``;
    * :meth:`_observation_extractor`, :meth:`_density_networks`.
    """

    sb3_arguments: ClassVar[tuple[str, ...]] = ("optimizer_class", "optimizer_kwargs")
    sb3_policy_kwargs: ClassVar[dict[str, Any]] = {}
    architecture_class: ClassVar[type[SimBaArchitecture]] = SimBaArchitecture
    unused_architecture_fields: ClassVar[tuple[str, ...]] = ()
    supports_dynamic_topology: ClassVar[bool] = True

    architecture: SimBaArchitecture
    observation_space: spaces.Space
    action_space: spaces.Space
    optimizer_class: type[th.optim.Optimizer]
    optimizer_kwargs: dict[str, Any]
    device: th.device
    _mask_enforcers: dict[str, MaskEnforcer]
    _extra_sb3_kwargs: dict[str, Any]

    def _init_policy(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        optimizer_class: type[th.optim.Optimizer],
        optimizer_kwargs: dict[str, Any] | None,
        policy_kwargs: dict[str, Any],
        use_sde: bool = False,
    ) -> None:
        """
        The construction order of every family: check the spaces and the arguments, read the
        architecture, then initialize the SB3 policy class (next in the MRO), whose ``__init__``
        calls the family's ``_build``, with :meth:`_sb3_parent_kwargs`.

        :param observation_space: observation space
        :param action_space: action space
        :param lr_schedule: learning rate schedule
        :param optimizer_class: the optimizer class
        :param optimizer_kwargs: the user's optimizer arguments
        :param policy_kwargs: the remaining policy kwargs (architecture fields and ``sb3_policy_kwargs``)
        :param use_sde: must be False (gSDE is not supported)
        """
        if use_sde:
            raise ValueError(f"{type(self).__name__} does not support gSDE: use_sde must be False, got {use_sde!r}")
        self._check_spaces(observation_space, action_space)
        self._read_architecture(policy_kwargs)
        super().__init__(  # type: ignore[call-arg]
            observation_space,
            action_space,
            lr_schedule,
            optimizer_class=optimizer_class,
            optimizer_kwargs=self._optimizer_kwargs(optimizer_class, optimizer_kwargs),
            **self._sb3_parent_kwargs(),
            **self._extra_sb3_kwargs,
        )

    def _check_spaces(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        """Raise a ValueError for spaces this policy cannot handle."""
        raise NotImplementedError

    def _sb3_parent_kwargs(self) -> dict[str, Any]:
        """Further arguments of the SB3 parent, known once the architecture is read (``n_critics``, ...)."""
        return {}

    def _read_architecture(self, kwargs: dict[str, Any]) -> None:
        """
        Split the policy kwargs into ``_extra_sb3_kwargs`` and :attr:`architecture` (validated now).

        :param kwargs: the policy kwargs left after the family's named arguments
        """
        policy_name = type(self).__name__
        self._extra_sb3_kwargs = {name: kwargs.pop(name, default) for name, default in self.sb3_policy_kwargs.items()}
        unknown = sorted(set(kwargs) - set(self._architecture_fields()))
        if unknown:
            # net_arch comes from dense configurations, e.g. the zoo's -optimize samplers.
            hint = (
                " (sizes are actor/critic_hidden_dim and _num_blocks; the zoo's -optimize: python -m sb3_sparse.zoo train ...)"
                if "net_arch" in unknown
                else ""
            )
            raise TypeError(
                f"{policy_name} got unknown policy_kwargs {unknown}; valid ones: {', '.join(self.valid_kwargs())}{hint}"
            )
        self.architecture = self.architecture_class(**kwargs)
        self._check_sb3_policy_kwargs(self._extra_sb3_kwargs)
        if not self.supports_dynamic_topology and self.architecture.topology != "static":
            raise ValueError(
                f"{policy_name} keeps its masks static: topology must be 'static', got {self.architecture.topology!r} "
                "(dynamic sparse training is for the off-policy policies: SAC, TD3, DDPG, TQC, CrossQ)"
            )

    def _check_sb3_policy_kwargs(self, extra_kwargs: dict[str, Any]) -> None:
        """Validate the ``sb3_policy_kwargs`` in place before the SB3 parent sees them: quantile counts
        (TQC, QR-DQN) are positive integers."""
        if "n_quantiles" in extra_kwargs:
            extra_kwargs["n_quantiles"] = check_int("n_quantiles", extra_kwargs["n_quantiles"])

    @classmethod
    def _architecture_fields(cls) -> list[str]:
        return [field.name for field in fields(cls.architecture_class) if field.name not in cls.unused_architecture_fields]

    def _architecture_kwargs(self) -> dict[str, Any]:
        """The architecture as policy kwargs (what ``_get_constructor_parameters`` saves)."""
        return {name: getattr(self.architecture, name) for name in self._architecture_fields()}

    @classmethod
    def valid_kwargs(cls) -> list[str]:
        """
        The policy_kwargs this policy accepts: the architecture fields and the SB3 arguments.

        :return: sorted names
        """
        return sorted({*cls._architecture_fields(), *cls.sb3_arguments, *cls.sb3_policy_kwargs})

    def _default_optimizer_kwargs(
        self, optimizer_class: type[th.optim.Optimizer], optimizer_kwargs: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """The optimizer arguments when the user gave none (the SB3 parent's defaults)."""
        return optimizer_kwargs

    def _optimizer_kwargs(
        self, optimizer_class: type[th.optim.Optimizer], optimizer_kwargs: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The optimizer arguments to build with: the parent's defaults, fused Adam (see :func:`prefer_fused_optimizer`)."""
        return prefer_fused_optimizer(optimizer_class, self._default_optimizer_kwargs(optimizer_class, optimizer_kwargs))

    # --- construction -------------------------------------------------------------------------

    def _pruner(self, role: str, sparse_backend: str | None = None) -> NetworkPruner:
        """
        The pruner of the networks of one role: the role's sparsity and seed (see
        :meth:`SimBaArchitecture.network_seed`).

        :param role: ``"actor"``, ``"critic"``, ``"actor_trunk"``, ``"critic_trunk"`` or ``"encoder"``
        :param sparse_backend: override of the architecture's backend (pixel trunks stay masked; ``"encoder"``
            is always masked: convolutions have no sparse kernels here)
        :return: the pruner
        """
        arch = self.architecture
        sparsity = getattr(arch, f"{role.partition('_')[0]}_sparsity")  # a trunk prunes at its network's sparsity
        backend = "masked" if role == "encoder" else (arch.sparse_backend if sparse_backend is None else sparse_backend)
        schedule = arch.topology_schedule
        initial_sparsity = schedule.initial_sparsity if schedule is not None and schedule.kind == "gmp" else None
        return NetworkPruner(sparsity, arch.network_seed(role), arch.exact_masks, backend, initial_sparsity)

    def _flat_features(self, shared: dict[str, nn.Module]) -> tuple[BaseFeaturesExtractor, int]:
        """
        The features extractor of a network on flat observations: the shared observation normalizer
        (see :meth:`_shared_modules`), or a flatten layer when not normalizing.

        :param shared: the modules of :meth:`_shared_modules`
        :return: ``(extractor, features_dim)``
        """
        normalizer = shared.get("normalizer")
        extractor = normalizer if isinstance(normalizer, BaseFeaturesExtractor) else FlattenExtractor(self.observation_space)
        return extractor, int(extractor.features_dim)

    def _shared_modules(self) -> dict[str, nn.Module]:
        """Modules every network uses, made once per build: the observation normalizer, when normalizing."""
        if not self.architecture.normalize_observations:
            return {}
        return {"normalizer": ObservationNormalizerExtractor(cast(spaces.Box, self.observation_space))}

    @property
    def dynamic_topology(self) -> bool:
        """Whether the masks change during training (``topology`` other than ``"static"``)."""
        return self.architecture.topology_schedule is not None

    def set_training_progress(self, progress: float) -> None:
        """
        Tell the topology schedule how far training is. ``learn()`` does it through
        :class:`sb3_sparse.callbacks.TopologyScheduleCallback`; call it yourself only when you train without ``learn()``.

        :param progress: fraction of the training budget done, in [0, 1]
        """
        progress = check_fraction("progress", progress, include_one=True)
        for enforcer in self._mask_enforcers.values():
            if isinstance(enforcer, DynamicMaskEnforcer):
                enforcer.progress = progress

    def topology_statistics(self) -> dict[str, dict[str, float]]:
        """
        Per network (``"actor"``, ``"critic"``) with a dynamic topology, its
        :meth:`~sb3_sparse.topology.DynamicMaskEnforcer.statistics`.

        :return: role -> statistics (empty for static masks)
        """
        return {
            role: enforcer.statistics()
            for role, enforcer in self._mask_enforcers.items()
            if isinstance(enforcer, DynamicMaskEnforcer) and enforcer.num_updated_tensors
        }

    # --- what the policy says about itself ------------------------------------------------------

    def _observation_extractor(self) -> nn.Module:
        """The features extractor of the network that acts (it holds the shared observation normalizer)."""
        raise NotImplementedError

    @property
    def observation_normalizer(self) -> RunningObservationNormalizer | None:
        """The running observation statistics shared by all networks, or ``None`` when not normalizing."""
        if not self.architecture.normalize_observations:
            return None
        return cast(RunningObservationNormalizer, self._observation_extractor().normalizer)

    def update_observation_statistics(self, observations: np.ndarray | th.Tensor) -> None:
        """
        Merge observations the policy acts on into the running statistics.
        :class:`sb3_sparse.callbacks.ObservationNormalizerCallback` calls this once per collected
        transition; call it yourself only when you collect data without ``learn()``.

        :param observations: array of shape ``(n_envs, obs_dim)``
        """
        normalizer = self.observation_normalizer
        if normalizer is None:
            raise RuntimeError("this policy was built with normalize_observations=False: it keeps no observation statistics")
        normalizer.update(th.as_tensor(observations))

    def set_training_mode(self, mode: bool) -> None:
        """Put the networks in training or evaluation mode; refuses to train on never-updated observation statistics."""
        if mode:
            self._check_ready_to_train()
        super().set_training_mode(mode)  # type: ignore[misc]

    def _check_ready_to_train(self) -> None:
        normalizer = self.observation_normalizer
        if normalizer is not None and not normalizer.has_statistics:
            raise RuntimeError(
                f"{type(self).__name__} is about to train but its observation statistics were never updated. "
                "`import sb3_sparse` adds sb3_sparse.callbacks.ObservationNormalizerCallback to every learn() call; "
                "if you train without learn(), call policy.update_observation_statistics(obs) for every observation "
                "the policy acts on, or build the policy with normalize_observations=False"
            )

    def _density_networks(self) -> list[tuple[str, nn.Module]]:
        """The networks of the density report, with their titles."""
        raise NotImplementedError

    def _family_arguments(self) -> dict[str, Any]:
        """The family's own constructor arguments that ``_get_constructor_parameters`` saves (``n_critics``, ...)."""
        return {}

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return dict(
            observation_space=self.observation_space,
            action_space=self.action_space,
            lr_schedule=self._dummy_schedule,  # type: ignore[attr-defined]  # not needed to load the policy alone
            optimizer_class=self.optimizer_class,
            optimizer_kwargs=self.optimizer_kwargs,
            **self._family_arguments(),
            **self._extra_sb3_kwargs,
            **self._architecture_kwargs(),
        )

    def format_density_report(self) -> str:
        """Per-tensor density tables of every network of the policy (targets, which are copies, aside)."""
        return "\n\n".join(format_density_report(network, title) for title, network in self._density_networks())


class SparseSimBaMixin(SparsePolicyBase):
    """
    The sparse SimBa policy behaviour, mixed in before an SB3 actor-critic policy class (SACPolicy,
    TD3Policy, TQCPolicy, CrossQPolicy). A subclass says what differs in class attributes (and
    those of :class:`SparsePolicyBase`):

    * ``actor_class`` and ``critic_class``: the SB3 wrappers of its networks;
    * ``target_networks``: which of ``"actor"`` and ``"critic"`` have Polyak targets.

    Construction is SB3's: the parent's ``__init__`` calls :meth:`_build`, the one place where
    networks are made (:meth:`_make_network`), pruned, copied into targets and given optimizers
    whose hooks keep the masks static.

    :param observation_space: observation space
    :param action_space: action space
    :param lr_schedule: learning rate schedule
    :param n_critics: number of critics
    :param optimizer_class: optimizer of actor and critic
    :param optimizer_kwargs: keyword arguments of the optimizer, without the learning rate (Adam
        and AdamW get ``fused=True`` unless ``fused`` or ``foreach`` is given, see ``prefer_fused_optimizer``)
    :param use_sde: must be False (gSDE is not supported)
    :param kwargs: the fields of ``architecture_class`` and the ``sb3_policy_kwargs``
    """

    actor_class: ClassVar[type[BasePolicy]]
    critic_class: ClassVar[type[BaseModel]]
    target_networks: ClassVar[tuple[str, ...]] = ("critic",)
    sb3_arguments = ("n_critics", "optimizer_class", "optimizer_kwargs", "use_sde")

    actor: Any
    critic: Any

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        n_critics: int = 2,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        use_sde: bool = False,
        **kwargs: Any,
    ) -> None:
        self._n_critics = check_int("n_critics", n_critics)
        self._init_policy(observation_space, action_space, lr_schedule, optimizer_class, optimizer_kwargs, kwargs, use_sde)

    def _sb3_parent_kwargs(self) -> dict[str, Any]:
        return {"n_critics": self._n_critics}

    def _check_spaces(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        """Raise a ValueError for spaces this policy cannot handle (here: anything but flat Boxes)."""
        check_flat_box_spaces(observation_space, action_space, type(self).__name__)

    # --- construction -------------------------------------------------------------------------

    def _features(self, role: str, target: bool, shared: dict[str, nn.Module]) -> tuple[BaseFeaturesExtractor, int]:
        """
        The features extractor of one network and its output size.

        :param role: ``"actor"`` or ``"critic"``
        :param target: whether the network is a target
        :param shared: the modules of :meth:`_shared_modules`
        :return: ``(extractor, features_dim)``
        """
        return self._flat_features(shared)

    def _make_network(self, role: str, target: bool, shared: dict[str, nn.Module]) -> Any:
        """
        Build and prune one network (a target gets the same masks as its online network: same role, same seed).

        :param role: ``"actor"`` or ``"critic"``
        :param target: whether it is a target network
        :param shared: the modules of :meth:`_shared_modules`
        :return: the network, on the policy's device
        """
        features_extractor, features_dim = self._features(role, target, shared)
        network_class: type[nn.Module] = self.actor_class if role == "actor" else self.critic_class
        extra = {} if role == "actor" else dict(n_critics=self.critic_kwargs["n_critics"], **self._critic_kwargs())  # type: ignore[attr-defined]
        return network_class(
            observation_space=self.observation_space,
            action_space=self.action_space,
            features_extractor=features_extractor,
            spec=SimBaSpec(
                features_dim,
                getattr(self.architecture, f"{role}_hidden_dim"),
                getattr(self.architecture, f"{role}_num_blocks"),
                self._pruner(role),
            ),
            **extra,
        ).to(self.device)

    def _critic_kwargs(self) -> dict[str, Any]:
        """Further arguments of ``critic_class`` (TQC: the number of quantiles)."""
        return {}

    def _build(self, lr_schedule: Schedule) -> None:
        shared = self._shared_modules()
        # SB3's order (actor, its target, critic, its target), so the global generator draws the
        # same initial weights as SB3's own _build would.
        for role in ("actor", "critic"):
            network = self._make_network(role, target=False, shared=shared)
            setattr(self, role, network)
            if role in self.target_networks:
                target = self._make_network(role, target=True, shared=shared)
                target.load_state_dict(network.state_dict())
                target.set_training_mode(False)
                share_index_structures_(target, network)  # same masks: one copy of the sparse indices
                setattr(self, f"{role}_target", target)
            network.optimizer = self.optimizer_class(network.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)  # type: ignore[call-arg]
            network.optimizer.register_load_state_dict_pre_hook(functools.partial(convert_optimizer_state, network))
        if self.architecture.exact_log_prob:
            self._use_exact_log_prob()
        # A model saved where sparse_backend="auto" chose SparseLinear layers loads where it chooses
        # masked ones (a GPU), and the reverse: the state dicts are converted on load.
        self.register_load_state_dict_pre_hook(convert_state_dict)  # type: ignore[attr-defined]
        # SB3 re-runs _build on load, so the hooks are attached again there. Each hook touches
        # only its own optimizer's network; targets stay masked as Polyak averages of masked weights.
        self._mask_enforcers = {role: self._mask_enforcer(role) for role in ("actor", "critic")}
        dynamic = [enforcer for enforcer in self._mask_enforcers.values() if isinstance(enforcer, DynamicMaskEnforcer)]
        if self.dynamic_topology and not any(enforcer.num_updated_tensors for enforcer in dynamic):
            raise ValueError(
                f"topology={self.architecture.topology!r} needs a sparse network: actor_sparsity or critic_sparsity "
                "(or encoder_sparsity) must be above 0"
            )

    def _mask_enforcer(self, role: str) -> MaskEnforcer:
        """The hooks that keep one role's masks (static, or changing on the topology schedule, targets following)."""
        network = getattr(self, role)
        schedule = self.architecture.topology_schedule
        if schedule is None:
            return MaskEnforcer(network.optimizer, network)
        target = getattr(self, f"{role}_target", None)
        seed = self.architecture.network_seed(role)
        return DynamicMaskEnforcer(network.optimizer, network, schedule, seed, targets=[target] if target is not None else [])

    def _use_exact_log_prob(self) -> None:
        action_dist = getattr(self.actor, "action_dist", None)
        if not isinstance(action_dist, SquashedDiagGaussianDistribution):
            raise ValueError(
                f"exact_log_prob=True needs a squashed Gaussian actor (SAC, TQC, CrossQ); {type(self).__name__} "
                "has a deterministic one: exact_log_prob must be False"
            )
        self.actor.action_dist = ExactSquashedDiagGaussianDistribution(action_dist.action_dim)

    # --- what the policy says about itself ------------------------------------------------------

    def diagnostic_probes(self) -> dict[str, NetworkProbe]:
        """
        Where the plasticity diagnostics read this policy's networks. The dormant ratio pools the
        layers of all critics; srank and the feature norm read the first critic.

        :return: ``{"actor": ..., "critic": ...}``
        """
        return {
            role: simba_probe(getattr(self, role), target=getattr(self, f"{role}_target", None))
            for role in ("actor", "critic")
        }

    def _observation_extractor(self) -> nn.Module:
        return cast(nn.Module, self.actor.features_extractor)

    def _family_arguments(self) -> dict[str, Any]:
        return {"n_critics": self.critic_kwargs["n_critics"]}  # type: ignore[attr-defined]

    def _density_networks(self) -> list[tuple[str, nn.Module]]:
        """The networks of the density report, with their titles."""
        return [("actor", self.actor.network)] + [(f"critic {i}", q) for i, q in enumerate(self.critic.q_networks)]
