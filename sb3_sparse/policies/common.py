"""What every sparse SimBa policy shares, whatever the algorithm: argument validation, the
shared observation normalizer, the SB3 actor and critic wrappers around :mod:`sb3_sparse.networks`,
masks drawn from a seed, and the optimizer hooks that keep them static.

The per-algorithm modules (``sac.py``, ...) only say what differs.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution
from stable_baselines3.common.policies import BaseModel, BasePolicy
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from sb3_sparse.networks import RunningObservationNormalizer, SimBaCritic, SimBaGaussianActor, check_positive_int
from sb3_sparse.sparse_execution import check_sparse_backend, prune_for_execution_, share_index_structures_
from sb3_sparse.sparsity import MaskEnforcer, check_sparsity, format_density_report, keep_masks_static


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

    def __post_init__(self) -> None:
        check_positive_int("actor_hidden_dim", self.actor_hidden_dim)
        check_positive_int("critic_hidden_dim", self.critic_hidden_dim)
        check_positive_int("actor_num_blocks", self.actor_num_blocks, minimum=0)
        check_positive_int("critic_num_blocks", self.critic_num_blocks, minimum=0)
        object.__setattr__(self, "actor_sparsity", check_sparsity("actor_sparsity", self.actor_sparsity))
        object.__setattr__(self, "critic_sparsity", check_sparsity("critic_sparsity", self.critic_sparsity))
        check_sparse_backend(self.sparse_backend)
        for name in ("normalize_observations", "exact_masks"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.mask_seed is None:
            # Drawn from the global generator, which SB3 seeds with the model's seed before
            # building the policy: same model seed, same masks.
            object.__setattr__(self, "mask_seed", int(th.randint(0, 2**62, (1,)).item()))
        elif isinstance(self.mask_seed, bool) or not isinstance(self.mask_seed, int) or self.mask_seed < 0:
            raise ValueError(f"mask_seed must be None or an integer >= 0, got {self.mask_seed!r}")

    def network_seed(self, role: str) -> int:
        """
        Seed of the masks of one network, derived from ``mask_seed``.

        :param role: ``"actor"`` or ``"critic"`` (a critic and its target get the same masks)
        :return: the seed
        """
        roles = ("actor", "critic")
        seeds = th.randint(0, 2**62, (len(roles),), generator=th.Generator().manual_seed(self.mask_seed))
        return int(seeds[roles.index(role)])

    def as_kwargs(self) -> dict[str, Any]:
        """The settings as policy_kwargs."""
        return asdict(self)


def prefer_fused_optimizer(
    optimizer_class: type[th.optim.Optimizer], optimizer_kwargs: dict[str, Any] | None
) -> dict[str, Any]:
    """
    Optimizer keyword arguments with ``fused=True`` added for Adam and AdamW unless the caller chose
    an implementation (``fused`` or ``foreach``).

    Why: pruned weights keep exactly-zero second moments, and on x86 CPUs torch's default
    (for-loop) Adam computes ``sqrt`` of exact zeros about 7x slower than of normal numbers,
    which alone made a default-size sparse SAC step ~8% slower than a dense one. The fused
    kernels are indifferent to zeros and faster in general (benchmarks/masking_overhead.py).

    :param optimizer_class: the optimizer class
    :param optimizer_kwargs: the user's keyword arguments (not modified)
    :return: the keyword arguments to build the optimizer with
    """
    kwargs = dict(optimizer_kwargs or {})
    if issubclass(optimizer_class, (th.optim.Adam, th.optim.AdamW)) and not {"fused", "foreach"} & kwargs.keys():
        kwargs["fused"] = True
    return kwargs


def check_simba_spaces(observation_space: spaces.Space, action_space: spaces.Space, policy_name: str) -> None:
    """
    Raise a ValueError unless the observations are a flat Box and the actions a Box.

    :param observation_space: the environment's observation space
    :param action_space: the environment's action space
    :param policy_name: the policy named in the message
    """
    if isinstance(observation_space, spaces.Dict):
        raise ValueError(
            f"{policy_name} needs a flat Box observation space, got a Dict space with keys {list(observation_space.spaces)}; "
            "flatten it with gymnasium.wrappers.FlattenObservation"
        )
    if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
        shape = getattr(observation_space, "shape", None)
        raise ValueError(
            f"{policy_name} needs a flat (1-D) Box observation space, got {type(observation_space).__name__} "
            f"of shape {shape}; flatten it with gymnasium.wrappers.FlattenObservation (image observations are not supported)"
        )
    if not isinstance(action_space, spaces.Box) or len(action_space.shape) != 1:
        raise ValueError(
            f"{policy_name} needs a 1-D Box (continuous) action space, got {type(action_space).__name__} "
            f"of shape {getattr(action_space, 'shape', None)}"
        )


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


class SimBaSquashedGaussianActor(BasePolicy):
    """
    SB3 actor (SAC, TQC, CrossQ) around :class:`sb3_sparse.networks.SimBaGaussianActor`, pruned at construction.

    :param observation_space: observation space
    :param action_space: action space
    :param features_extractor: the (shared) observation normalizer or a flatten layer
    :param features_dim: observation size after the extractor
    :param hidden_dim: encoder width
    :param num_blocks: encoder residual blocks
    :param sparsity: fraction of parameters pruned (Erdős–Rényi)
    :param mask_seed: seed of the masks
    :param exact_masks: exact-count masks instead of Bernoulli draws
    :param sparse_backend: ``"masked"``, ``"csr"`` or ``"auto"`` (:func:`sb3_sparse.sparse_execution.prune_for_execution_`)
    """

    action_space: spaces.Box

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        hidden_dim: int,
        num_blocks: int,
        sparsity: float,
        mask_seed: int,
        exact_masks: bool = False,
        sparse_backend: str = "masked",
    ) -> None:
        super().__init__(observation_space, action_space, features_extractor=features_extractor, squash_output=True)
        action_dim = get_action_dim(self.action_space)
        self.network = SimBaGaussianActor(features_dim, action_dim, hidden_dim, num_blocks)
        generator = th.Generator().manual_seed(mask_seed)
        self.densities = prune_for_execution_(self.network, sparsity, generator, exact_masks, sparse_backend)
        self.action_dist = SquashedDiagGaussianDistribution(action_dim)

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
    SB3 critic (SAC, TD3, DDPG) of ``n_critics`` independent :class:`sb3_sparse.networks.SimBaCritic`
    networks, each pruned with its own Erdős–Rényi masks. Same interface as SB3's ``ContinuousCritic``.

    :param observation_space: observation space
    :param action_space: action space
    :param features_extractor: the (shared) observation normalizer or a flatten layer
    :param features_dim: observation size after the extractor
    :param hidden_dim: encoder width
    :param num_blocks: encoder residual blocks
    :param sparsity: fraction of each critic's parameters pruned (Erdős–Rényi)
    :param mask_seed: seed of the masks (the target critic, built with the same seed, gets the same masks)
    :param n_critics: number of critics (1 = the paper's DMC setup, 2 = clipped double Q)
    :param exact_masks: exact-count masks instead of Bernoulli draws
    :param num_outputs: outputs of each critic's head (1 Q-value, or several quantiles)
    :param sparse_backend: ``"masked"``, ``"csr"`` or ``"auto"`` (:func:`sb3_sparse.sparse_execution.prune_for_execution_`)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        hidden_dim: int,
        num_blocks: int,
        sparsity: float,
        mask_seed: int,
        n_critics: int = 2,
        exact_masks: bool = False,
        num_outputs: int = 1,
        sparse_backend: str = "masked",
    ) -> None:
        super().__init__(observation_space, action_space, features_extractor=features_extractor)
        action_dim = get_action_dim(self.action_space)
        self.n_critics = check_positive_int("n_critics", n_critics)
        generator = th.Generator().manual_seed(mask_seed)
        # Each critic is pruned (and converted) before the next is built: one dense network at a time.
        self.q_networks, self.densities = nn.ModuleList(), []
        for _ in range(n_critics):
            q_net = SimBaCritic(features_dim, action_dim, hidden_dim, num_blocks, num_outputs)
            self.densities.append(prune_for_execution_(q_net, sparsity, generator, exact_masks, sparse_backend))
            self.q_networks.append(q_net)

    def forward(self, obs: th.Tensor, actions: th.Tensor) -> tuple[th.Tensor, ...]:
        features = self.extract_features(obs, self.features_extractor)
        return tuple(q_net(features, actions) for q_net in self.q_networks)

    def q1_forward(self, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """Q-value of the first critic only (TD3's actor loss)."""
        return self.q_networks[0](self.extract_features(obs, self.features_extractor), actions)


class SparseSimBaMixin:
    """
    Behaviour shared by the sparse SimBa policies, mixed in before the SB3 policy class.

    Subclasses call :meth:`_init_simba` before the SB3 constructor (which calls ``_build``), and build
    their networks with :meth:`make_features_extractor` and ``self.architecture``. The networks
    ``self.actor`` (with ``.network``) and ``self.critic`` (with ``.q_networks``) each have an ``optimizer``.
    """

    architecture: SimBaArchitecture
    observation_space: spaces.Box
    action_space: spaces.Box
    _mask_enforcers: list[MaskEnforcer]
    _shared_extractor: dict[str, BaseFeaturesExtractor]

    def _init_simba(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        n_critics: int,
        use_sde: bool,
        architecture_kwargs: dict[str, Any],
        check_spaces: bool = True,
    ) -> None:
        """
        Validate the spaces and arguments and store the architecture; runs before the SB3 constructor,
        so only plain (non-Module) attributes are set here.

        :param observation_space: observation space (must be a flat Box)
        :param action_space: action space (must be a Box)
        :param n_critics: number of critics (>= 1)
        :param use_sde: must be False
        :param architecture_kwargs: the fields of :class:`SimBaArchitecture`
        :param check_spaces: check for a flat Box observation space (the pixel policies check theirs)
        """
        policy_name = type(self).__name__
        if use_sde:
            raise ValueError(f"{policy_name} does not support gSDE: use_sde must be False, got {use_sde!r}")
        if check_spaces:
            check_simba_spaces(observation_space, action_space, policy_name)
        check_positive_int("n_critics", n_critics)
        unknown = sorted(set(architecture_kwargs) - {field.name for field in fields(SimBaArchitecture)})
        if unknown:
            raise TypeError(f"{policy_name} got unknown policy_kwargs {unknown}; valid ones: {', '.join(self.valid_kwargs())}")
        self.architecture = SimBaArchitecture(**architecture_kwargs)
        self._shared_extractor = {}

    @classmethod
    def valid_kwargs(cls) -> list[str]:
        """
        The policy_kwargs this policy accepts: the :class:`SimBaArchitecture` fields and the
        SB3 arguments of its constructor.

        :return: sorted names
        """
        positional = ("self", "observation_space", "action_space", "lr_schedule")
        parameters = inspect.signature(cls.__init__).parameters.values()
        sb3_arguments = [p.name for p in parameters if p.name not in positional and p.kind is not p.VAR_KEYWORD]
        return sorted({field.name for field in fields(SimBaArchitecture)} | set(sb3_arguments))

    def _network_kwargs(self, role: str) -> dict[str, Any]:
        """
        Constructor arguments shared by the actor and critic wrappers.

        :param role: ``"actor"`` or ``"critic"``
        :return: keyword arguments for :class:`SimBaSquashedGaussianActor`, :class:`SimBaContinuousCritic` and kin
        """
        arch = self.architecture
        return dict(
            observation_space=self.observation_space,
            action_space=self.action_space,
            features_extractor=self.make_features_extractor(),
            features_dim=self.observation_space.shape[0],
            hidden_dim=getattr(arch, f"{role}_hidden_dim"),
            num_blocks=getattr(arch, f"{role}_num_blocks"),
            sparsity=getattr(arch, f"{role}_sparsity"),
            mask_seed=arch.network_seed(role),
            exact_masks=arch.exact_masks,
            sparse_backend=arch.sparse_backend,
        )

    def make_features_extractor(self) -> BaseFeaturesExtractor:
        """The shared observation normalizer (one per policy), or a flatten layer when not normalizing."""
        if not self.architecture.normalize_observations:
            return FlattenExtractor(self.observation_space)
        # Kept in a plain dict, not as a registered submodule: the networks that use it
        # register it, and a fourth copy in the state dict would add nothing.
        if "extractor" not in self._shared_extractor:
            self._shared_extractor["extractor"] = ObservationNormalizerExtractor(self.observation_space)
        return self._shared_extractor["extractor"]

    @property
    def observation_normalizer(self) -> RunningObservationNormalizer | None:
        """The running observation statistics shared by all networks, or ``None`` when not normalizing."""
        if not self.architecture.normalize_observations:
            return None
        return self._shared_extractor["extractor"].normalizer  # type: ignore[return-value]

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

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)  # type: ignore[misc]
        for target, online in (("critic_target", "critic"), ("actor_target", "actor")):
            if hasattr(self, target):  # a target has its online network's masks: one copy of the indices
                share_index_structures_(getattr(self, target), getattr(self, online))
        # SB3 re-runs _build on load, so the hooks are attached again there. Each hook touches
        # only its own optimizer's network; targets stay masked as Polyak averages of masked weights.
        self._mask_enforcers = [
            keep_masks_static(network.optimizer, network)  # type: ignore[attr-defined]
            for network in (self.actor, self.critic)  # type: ignore[attr-defined]
        ]

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

    def _simba_constructor_parameters(self) -> dict[str, Any]:
        return dict(
            observation_space=self.observation_space,
            action_space=self.action_space,
            lr_schedule=self._dummy_schedule,  # type: ignore[attr-defined]  # not needed to load the policy alone
            optimizer_class=self.optimizer_class,  # type: ignore[attr-defined]
            optimizer_kwargs=self.optimizer_kwargs,  # type: ignore[attr-defined]
            **self.architecture.as_kwargs(),
        )

    def format_density_report(self) -> str:
        """Per-tensor density tables of the actor and of every critic network."""
        tables = [format_density_report(self.actor.network, "actor")]  # type: ignore[attr-defined]
        for index, q_net in enumerate(self.critic.q_networks):  # type: ignore[attr-defined]
            tables.append(format_density_report(q_net, f"critic {index}"))
        return "\n\n".join(tables)
