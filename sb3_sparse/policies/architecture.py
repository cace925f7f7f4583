"""The settings of a sparse SimBa policy and how its networks are pruned: :class:`SimBaArchitecture`
(the policy kwargs, validated), :class:`NetworkPruner` (Erdős–Rényi masks seeded by a network's
role), :class:`SimBaSpec` (what a wrapper needs to build one pruned network) and the optimizer
default every policy shares."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch as th
from torch import nn

from sb3_sparse.checks import check_bool, check_choice, check_int, check_seed, check_sparsity
from sb3_sparse.sparse_execution import check_sparse_backend, prune_for_execution_
from sb3_sparse.topology import TOPOLOGIES, TopologySchedule, prune_gradually_

#: Sparsity of every sparse SimBa policy when none is given: the paper's recommended 0.8 for actor
#: and critic (Ma et al., ICML 2025), that of every entry of the package's hyperparameter files.
DEFAULT_SPARSITY = 0.8

#: SB3's arguments of squashed-Gaussian actor policies (SACPolicy, TQCPolicy, CrossQPolicy) for gSDE, with SB3's defaults.
SQUASHED_GAUSSIAN_KWARGS: dict[str, Any] = {"log_std_init": -3.0, "use_expln": False, "clip_mean": 2.0}

#: The networks with their own topology rule (``<role>_topology``) in every policy; image policies add
#: their convolutional encoder's (``encoder_topology``).
TOPOLOGY_ROLES = ("actor", "critic")

#: Prunes one network in place and returns its parameter densities (see :class:`NetworkPruner`).
Prune = Callable[[nn.Module], dict[str, float]]


#: The ``net_arch`` keys of SB3 and SBX and the networks they size: the actor (``pi``) and the critic
#: or value network (``qf`` off-policy, ``vf`` on-policy).
NET_ARCH_ROLES = {"pi": "actor", "qf": "critic", "vf": "critic"}


def sizes_from_net_arch(net_arch: Any, roles: Sequence[str] = ("actor", "critic")) -> dict[str, int]:
    """
    SimBa sizes from an SBX-style ``net_arch`` (``SAC("SimbaPolicy", policy_kwargs=dict(net_arch=...))``):
    each entry is one residual block, and the first entry is the encoder's width (SBX's residual
    blocks keep their input width; a later entry only sets that block's inner layer, which SimBa
    fixes at 4x the width). So ``dict(pi=[128], qf=[512, 512])`` is the paper's default (actor 128
    x 1 block, critic 512 x 2 blocks); a list sizes every network alike; an uneven list such as
    ``[400, 300]`` (the zoo's "big") becomes width 400 with 2 blocks, with a warning. As in SB3,
    ``None`` keeps the defaults, an empty list means no hidden blocks (the encoder's input layer and
    LayerNorm at the default width), a network missing from a dict keeps its default, and SB3's old
    format ``[dict(pi=..., vf=...)]`` is read as its dict, with SB3's warning.

    :param net_arch: ``None``, a list of widths, or a dict of lists under ``pi`` and ``qf`` (or ``vf``)
    :param roles: the networks the policy has (``("critic",)`` for a Q-network policy)
    :return: ``{"<role>_hidden_dim": width, "<role>_num_blocks": blocks}`` for the roles sized
    :raises ValueError: a key other than pi/qf/vf, or a list that is not of positive integers
    """
    if net_arch is None:
        return {}
    if isinstance(net_arch, list) and net_arch and isinstance(net_arch[0], dict):
        warnings.warn(
            "As shared layers in the mlp_extractor are removed since SB3 v1.8.0, you should now pass directly a "
            "dictionary and not a list (net_arch=dict(pi=..., vf=...) instead of net_arch=[dict(pi=..., vf=...)])",
            stacklevel=4,
        )
        net_arch = net_arch[0]
    if isinstance(net_arch, dict):
        unknown = [key for key in net_arch if key not in NET_ARCH_ROLES]
        if unknown:
            raise ValueError(f"net_arch keys must be among {tuple(NET_ARCH_ROLES)}, got {unknown}")
        lists = {NET_ARCH_ROLES[key]: widths for key, widths in net_arch.items() if NET_ARCH_ROLES[key] in roles}
    else:
        lists = dict.fromkeys(roles, net_arch)
    sizes: dict[str, int] = {}
    uneven = []
    for role, widths in lists.items():
        if not isinstance(widths, (list, tuple)):
            raise ValueError(f"net_arch for the {role} must be a list of widths, got {widths!r}")
        if not widths:
            sizes[f"{role}_num_blocks"] = 0
            continue
        checked = [check_int(f"net_arch width of the {role}", width) for width in widths]
        if len(set(checked)) > 1:
            uneven.append(f"{checked} for the {role} is width {checked[0]} with {len(checked)} residual blocks")
        sizes[f"{role}_hidden_dim"], sizes[f"{role}_num_blocks"] = checked[0], len(checked)
    if uneven:
        warnings.warn(
            f"net_arch {'; '.join(uneven)}: a SimBa encoder has one width (each block's inner layer is 4x it)",
            stacklevel=4,
        )
    return sizes


@dataclass(frozen=True)
class SimBaArchitecture:
    """
    The sparse SimBa settings of a policy, validated at construction (the policy_kwargs of the paper's code).

    :param actor_hidden_dim: actor encoder width
    :param actor_num_blocks: actor residual blocks
    :param critic_hidden_dim: critic encoder width
    :param critic_num_blocks: critic residual blocks
    :param actor_sparsity: fraction of actor parameters pruned at initialization, in [0, 1)
        (default :data:`DEFAULT_SPARSITY`, the paper's; 0 builds a dense network)
    :param critic_sparsity: fraction of each critic's parameters pruned at initialization, in [0, 1)
        (default :data:`DEFAULT_SPARSITY`)
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
        ``"set"``, ``"rigl"``, ``"gmp"`` or ``"densify"`` (dynamic sparse training, see
        :mod:`sb3_sparse.topology`), the rule of every network whose own rule is not given. GMP and
        densify change the number of weights, so they run on masked layers: with either,
        ``sparse_backend="auto"`` becomes ``"masked"``
    :param topology_kwargs: arguments of the dynamic rule (:meth:`~sb3_sparse.topology.TopologySchedule.create`),
        e.g. ``dict(update_interval=1000, drop_fraction=0.3)``
    :param actor_topology: the actor's own rule (``None``: ``topology``); e.g. a static actor beside a
        RigL critic, Module-Specific Training's regimes (Ma et al., arXiv 2510.12096)
    :param actor_topology_kwargs: arguments of ``actor_topology`` (``None``: ``topology_kwargs`` when
        the actor follows ``topology``)
    :param critic_topology: the critic's (Q-network's, value network's) own rule (``None``: ``topology``);
        a convolutional encoder follows the critic, whose optimizer trains it, unless it has its own
        (``encoder_topology`` of the image policies)
    :param critic_topology_kwargs: arguments of ``critic_topology``
    """

    #: The networks with their own rule, ``<role>_topology`` and ``<role>_topology_kwargs``.
    topology_roles: ClassVar[tuple[str, ...]] = TOPOLOGY_ROLES

    actor_hidden_dim: int = 128
    actor_num_blocks: int = 1
    critic_hidden_dim: int = 512
    critic_num_blocks: int = 2
    actor_sparsity: float = DEFAULT_SPARSITY
    critic_sparsity: float = DEFAULT_SPARSITY
    normalize_observations: bool = True
    mask_seed: int | None = None
    exact_masks: bool = False
    sparse_backend: str = "auto"
    exact_log_prob: bool = False
    topology: str = "static"
    topology_kwargs: dict[str, Any] | None = None
    actor_topology: str | None = None
    actor_topology_kwargs: dict[str, Any] | None = None
    critic_topology: str | None = None
    critic_topology_kwargs: dict[str, Any] | None = None

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
        for role in self.topology_roles:
            rule, kwargs = getattr(self, f"{role}_topology"), getattr(self, f"{role}_topology_kwargs")
            checked[f"{role}_topology"] = None if rule is None else check_choice(f"{role}_topology", rule, TOPOLOGIES)
            checked[f"{role}_topology_kwargs"] = dict(kwargs) if kwargs is not None else None
        rules = {role: self._rule(role, checked) for role in self.topology_roles}
        if (
            checked["topology"] == "static"
            and checked["topology_kwargs"]
            # TOPOLOGY_ROLES, not topology_roles: an encoder without its own rule follows the critic's.
            and all(checked[f"{role}_topology"] is not None for role in TOPOLOGY_ROLES)
        ):
            raise ValueError(f"topology_kwargs={self.topology_kwargs!r} apply to no network: every network has its own rule")
        for role, (rule, kwargs) in rules.items():
            name = "topology" if checked[f"{role}_topology"] is None else f"{role}_topology"
            if rule == "static" and kwargs:
                raise ValueError(
                    f"{name}_kwargs need a dynamic {name} (set, rigl, gmp, densify), got {name}='static' and {kwargs!r}"
                )
            if rule == "static":
                continue
            schedule = TopologySchedule.create(rule, kwargs)
            sparsity = checked[f"{role}_sparsity"] if f"{role}_sparsity" in checked else getattr(self, f"{role}_sparsity")
            if schedule.gradual and checked["sparse_backend"] == "csr":
                raise ValueError(
                    f"{name}={rule!r} changes the number of weights, which a SparseLinear layer holds fixed: "
                    "sparse_backend must be 'masked' or 'auto' (which then means 'masked'), got 'csr'"
                )
            if schedule.gradual:
                checked["sparse_backend"] = "masked"
            if schedule.kind == "gmp" and 0 < sparsity < schedule.initial_sparsity:
                raise ValueError(
                    f"initial_sparsity must be at most the sparsity it starts from, got initial_sparsity="
                    f"{schedule.initial_sparsity} with {role}_sparsity={sparsity}"
                )
        if checked["mask_seed"] is None:
            # Drawn from the global generator, which SB3 seeds with the model's seed before
            # building the policy: same model seed, same masks.
            checked["mask_seed"] = int(th.randint(0, 2**62, (1,)).item())
        for name, value in checked.items():  # plain Python values, also from numpy scalars
            object.__setattr__(self, name, value)

    def _rule(self, role: str, values: dict[str, Any] | None = None) -> tuple[str, dict[str, Any] | None]:
        """The rule of one network and its arguments: its own, or else the critic's for the encoder
        (which the critic's optimizer trains) and ``topology``'s for the others."""
        values = values if values is not None else vars(self)
        own = values.get(f"{role}_topology")
        if own is None:
            return self._rule("critic", values) if role == "encoder" else (values["topology"], values["topology_kwargs"])
        return own, values[f"{role}_topology_kwargs"]

    def schedule_of(self, role: str) -> TopologySchedule | None:
        """
        The topology schedule of the networks of one role.

        :param role: ``"actor"``, ``"critic"``, ``"actor_trunk"``, ``"critic_trunk"`` or ``"encoder"``
            (a trunk follows its network; the convolutional encoder has its own rule or the critic's)
        :return: the schedule, or ``None`` for static masks
        """
        rule, kwargs = self._rule(role.partition("_")[0])
        return None if rule == "static" else TopologySchedule.create(rule, kwargs)

    @property
    def dynamic_topology(self) -> bool:
        """Whether any network's masks change during training."""
        return any(self.schedule_of(role) is not None for role in self.topology_roles)

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
    :param initial_sparsity: for a gradual rule (GMP, densify): start at this sparsity and reach
        ``sparsity`` on the rule's schedule (:func:`sb3_sparse.topology.prune_gradually_`; masked layers only)
    """

    def __init__(
        self, sparsity: float, seed: int, exact_masks: bool, sparse_backend: str, initial_sparsity: float | None = None
    ) -> None:
        self.sparsity, self.exact_masks, self.sparse_backend = sparsity, exact_masks, sparse_backend
        self.initial_sparsity = initial_sparsity
        self.generator = th.Generator().manual_seed(seed)

    def __call__(self, network: nn.Module) -> dict[str, float]:
        if self.sparsity == 0 and not self.initial_sparsity:
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
