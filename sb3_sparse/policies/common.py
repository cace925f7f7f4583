"""What every sparse SimBa policy shares, whatever the algorithm: the architecture settings
(:mod:`~sb3_sparse.policies.architecture`), the SB3 actor and critic wrappers
(:mod:`~sb3_sparse.policies.simba_modules`), and the one construction path
(:meth:`SparseSimBaMixin._build`): build each network, prune it through one call with its role
name, then the targets, the optimizers and the mask enforcers.

The per-algorithm modules (``sac.py``, ...) only say what differs: which actor and critic
classes, which networks have targets, and the extra arguments of their SB3 parent.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from dataclasses import fields
from typing import Any, ClassVar, cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution
from stable_baselines3.common.policies import BaseModel, BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from sb3_sparse.checks import (
    check_bool,
    check_box_actions,
    check_fraction,
    check_int,
    unknown_names_message,
)
from sb3_sparse.diagnostics import NetworkProbe
from sb3_sparse.distributions import ExactSquashedDiagGaussianDistribution
from sb3_sparse.networks import RunningObservationNormalizer
from sb3_sparse.policies.architecture import (
    NetworkPruner,
    SimBaArchitecture,
    SimBaSpec,
    prefer_fused_optimizer,
    sizes_from_net_arch,
)
from sb3_sparse.policies.input_stage import continuous_rows, default_extractor_class, make_input_stage, make_normalizer
from sb3_sparse.policies.simba_modules import (
    convert_optimizer_state,
    convert_state_dict,
    simba_probe,
)
from sb3_sparse.sparse_execution import (
    share_index_structures_,
)
from sb3_sparse.sparsity import MaskEnforcer, format_density_report, without_submodule
from sb3_sparse.topology import DynamicMaskEnforcer


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
    * :meth:`pruned_networks` and :meth:`_density_networks`.
    """

    sb3_arguments: ClassVar[tuple[str, ...]] = ("optimizer_class", "optimizer_kwargs")
    sb3_policy_kwargs: ClassVar[dict[str, Any]] = {}
    architecture_class: ClassVar[type[SimBaArchitecture]] = SimBaArchitecture
    unused_architecture_fields: ClassVar[tuple[str, ...]] = ()
    #: SB3/SBX policy kwargs read as SimBa sizes (:meth:`_read_net_arch`), not architecture fields.
    size_aliases: ClassVar[tuple[str, ...]] = ("net_arch", "activation_fn")
    #: SB3's input-stage arguments, which every family honours (:mod:`~sb3_sparse.policies.input_stage`).
    input_arguments: ClassVar[tuple[str, ...]] = ("features_extractor_class", "features_extractor_kwargs", "normalize_images")
    #: The SB3 parent's default ``share_features_extractor``; ``None`` where the parent has no such argument (DQN).
    share_features_extractor_default: ClassVar[bool | None] = None
    #: Whether the SB3 parent has gSDE (``use_sde``): SAC's, TQC's and CrossQ's squashed-Gaussian actors, the
    #: on-policy ActorCriticPolicy; not TD3's deterministic actor, DQN or MaskablePPO.
    supports_sde: ClassVar[bool] = False
    #: Arguments of the SB3 parent that mean nothing to a SimBa network, with the reason they are refused.
    refused_sb3_arguments: ClassVar[dict[str, str]] = {}
    #: Whether the policy takes Dict observations: the ``SparseSimBaMultiInputPolicy`` classes do; the others
    #: refuse them with SB3's own hint, as SB3 refuses ``MlpPolicy`` and ``CnnPolicy`` there.
    dict_observations: ClassVar[bool] = False

    architecture: SimBaArchitecture
    observation_space: spaces.Space
    action_space: spaces.Space
    optimizer_class: type[th.optim.Optimizer]
    optimizer_kwargs: dict[str, Any]
    device: th.device
    _mask_enforcers: dict[str, MaskEnforcer]
    #: Dotted path, inside the critic (Q-network), of the convolutional encoder its optimizer trains:
    #: with ``encoder_topology`` the encoder gets enforcers of its own (image policies set it).
    critic_encoder_path: str | None = None
    _extra_sb3_kwargs: dict[str, Any]
    _input_kwargs: dict[str, Any]
    _given_input_kwargs: dict[str, Any]
    _use_sde: bool

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
        :param use_sde: gSDE, where the family has it (:meth:`_check_use_sde`)
        """
        self._check_use_sde(use_sde)
        if isinstance(observation_space, spaces.Dict) and not self.dict_observations:
            raise ValueError(
                f"{type(self).__name__} got a Dict observation space (keys {list(observation_space.spaces)}): "
                "use SparseSimBaMultiInputPolicy, as SB3's MultiInputPolicy"
            )
        self._read_architecture(policy_kwargs, observation_space)
        self._check_spaces(observation_space, action_space)
        super().__init__(  # type: ignore[call-arg]
            observation_space,
            action_space,
            lr_schedule,
            optimizer_class=optimizer_class,
            optimizer_kwargs=self._optimizer_kwargs(optimizer_class, optimizer_kwargs),
            **self._sb3_parent_kwargs(),
            **self._input_kwargs,
            **self._extra_sb3_kwargs,
        )

    def _check_use_sde(self, use_sde: bool) -> None:
        """Keep ``use_sde``; raise a ValueError for gSDE where the SB3 parent has none (``supports_sde``)."""
        self._use_sde = check_bool("use_sde", use_sde)
        if self._use_sde and not self.supports_sde:
            raise ValueError(f"{type(self).__name__} does not support gSDE: use_sde must be False, got {use_sde!r}")

    def _sde_arguments(self) -> dict[str, bool]:
        """``use_sde`` as the SB3 parent takes it (and ``_get_constructor_parameters`` saves it), where it has one."""
        return {"use_sde": self._use_sde} if self.supports_sde else {}

    def _check_spaces(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        """Raise a ValueError for spaces this policy cannot handle (called once the arguments are read)."""
        raise NotImplementedError

    def _sb3_parent_kwargs(self) -> dict[str, Any]:
        """Further arguments of the SB3 parent, known once the architecture is read (``n_critics``, ...)."""
        return {}

    def _read_architecture(self, kwargs: dict[str, Any], observation_space: spaces.Space) -> None:
        """
        Split the policy kwargs into ``_extra_sb3_kwargs``, ``_input_kwargs`` and :attr:`architecture` (validated now).

        :param kwargs: the policy kwargs left after the family's named arguments
        :param observation_space: the observation space (it decides the default features extractor)
        """
        policy_name = type(self).__name__
        self._extra_sb3_kwargs = {name: kwargs.pop(name, default) for name, default in self.sb3_policy_kwargs.items()}
        input_kwargs = {name: kwargs.pop(name) for name in self._input_argument_names() if name in kwargs}
        self._read_net_arch(kwargs)
        refused = [name for name in kwargs if name in self.refused_sb3_arguments]
        if refused:
            raise ValueError(f"{policy_name} does not take {refused[0]}: {self.refused_sb3_arguments[refused[0]]}")
        unknown = sorted(set(kwargs) - set(self._architecture_fields()))
        if unknown:
            raise TypeError(unknown_names_message(f"{policy_name} got unknown policy_kwargs", unknown, self.valid_kwargs()))
        self._adopt_extractor_size(kwargs, input_kwargs)
        self.architecture = self.architecture_class(**kwargs)
        self._check_sb3_policy_kwargs(self._extra_sb3_kwargs)
        self._given_input_kwargs = dict(input_kwargs)  # saved as given: the family resolves its defaults again on load
        self._input_kwargs = self._read_input_kwargs(input_kwargs, observation_space)

    @classmethod
    def _input_argument_names(cls) -> tuple[str, ...]:
        share = ("share_features_extractor",) if cls.share_features_extractor_default is not None else ()
        return (*cls.input_arguments, *share)

    def _adopt_extractor_size(self, kwargs: dict[str, Any], input_kwargs: dict[str, Any]) -> None:
        """Where the architecture sizes the features extractor itself (``feature_dim`` of the image policies),
        take SB3's ``features_extractor_kwargs=dict(features_dim=...)`` as that size."""
        extractor_kwargs = input_kwargs.get("features_extractor_kwargs") or {}
        if "feature_dim" not in self._architecture_fields() or "features_dim" not in extractor_kwargs:
            return
        if kwargs.setdefault("feature_dim", extractor_kwargs["features_dim"]) != extractor_kwargs["features_dim"]:
            raise ValueError(
                f"{type(self).__name__}: feature_dim={kwargs['feature_dim']!r} and features_extractor_kwargs "
                f"features_dim={extractor_kwargs['features_dim']!r} both size the features; give one of them"
            )

    def _read_input_kwargs(self, input_kwargs: dict[str, Any], observation_space: spaces.Space) -> dict[str, Any]:
        """
        SB3's input-stage arguments, validated, with the family's defaults.

        :param input_kwargs: the user's ``features_extractor_class``, ``features_extractor_kwargs``,
            ``normalize_images`` and ``share_features_extractor``
        :param observation_space: the observation space
        :return: all of them, as the SB3 parent takes them
        """
        policy_name = type(self).__name__
        extractor_class = input_kwargs.get("features_extractor_class")
        extractor_kwargs = input_kwargs.get("features_extractor_kwargs")
        if extractor_class is None:
            extractor_class, default_kwargs = self._default_features_extractor(observation_space)
            extractor_kwargs = {**default_kwargs, **(extractor_kwargs or {})}
        elif not (isinstance(extractor_class, type) and issubclass(extractor_class, BaseFeaturesExtractor)):
            raise TypeError(
                f"{policy_name}: features_extractor_class must be a subclass of SB3's BaseFeaturesExtractor, "
                f"got {extractor_class!r}"
            )
        if extractor_kwargs is not None and not isinstance(extractor_kwargs, dict):
            raise TypeError(f"{policy_name}: features_extractor_kwargs must be a dict, got {extractor_kwargs!r}")
        result = dict(
            features_extractor_class=extractor_class,
            features_extractor_kwargs=dict(extractor_kwargs or {}),
            normalize_images=check_bool("normalize_images", input_kwargs.get("normalize_images", True)),
        )
        if self.share_features_extractor_default is not None:
            share = input_kwargs.get("share_features_extractor", self.share_features_extractor_default)
            result["share_features_extractor"] = check_bool("share_features_extractor", share)
        return result

    def _default_features_extractor(
        self, observation_space: spaces.Space
    ) -> tuple[type[BaseFeaturesExtractor], dict[str, Any]]:
        """The features extractor when the user gives none: SB3's default for the observation space."""
        return default_extractor_class(observation_space), {}

    def make_features_extractor(self) -> BaseFeaturesExtractor:
        """
        One network's input stage: SB3's features extractor (``features_extractor_class``) behind the
        running normalization that all networks of the policy share (:mod:`~sb3_sparse.policies.input_stage`).

        :return: the features extractor
        """
        extractor = super().make_features_extractor()  # type: ignore[misc]
        return make_input_stage(self.observation_space, extractor, self._shared_normalizer())

    def _shared_normalizer(self) -> RunningObservationNormalizer | None:
        """The running statistics every network's input stage shares, made at the first call; ``None`` when not
        normalizing or when the observations have no continuous part."""
        if "_normalizer" not in self.__dict__:
            normalize = self.architecture.normalize_observations
            # A plain attribute: the input stages register it, under their own names only.
            object.__setattr__(self, "_normalizer", make_normalizer(self.observation_space) if normalize else None)
        return cast(RunningObservationNormalizer | None, self.__dict__["_normalizer"])

    def _read_net_arch(self, kwargs: dict[str, Any]) -> None:
        """
        Replace an SBX/SB3-style ``net_arch`` in the policy kwargs by SimBa sizes
        (:func:`~sb3_sparse.policies.architecture.sizes_from_net_arch`), so that SBX configurations
        and the zoo's ``-optimize`` samplers work unchanged. ``activation_fn`` is accepted with a
        warning unless it is ReLU: SimBa's residual blocks use ReLU.

        :param kwargs: the policy kwargs, changed in place
        """
        activation_fn = kwargs.pop("activation_fn", None)
        if activation_fn is not None and activation_fn is not nn.ReLU:
            warnings.warn(
                f"{type(self).__name__} ignores activation_fn={getattr(activation_fn, '__name__', activation_fn)}: "
                "SimBa's residual blocks use ReLU",
                stacklevel=5,
            )
        if "net_arch" not in kwargs:
            return
        roles = [role for role in ("actor", "critic") if f"{role}_hidden_dim" in self._architecture_fields()]
        sizes = sizes_from_net_arch(kwargs.pop("net_arch"), roles)
        both = sorted(set(sizes) & set(kwargs))
        if both:
            raise ValueError(f"{type(self).__name__}: net_arch and {both} both set the sizes; give one of them")
        kwargs.update(sizes)

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
        return sorted(
            {
                *cls._architecture_fields(),
                *cls.sb3_arguments,
                *cls.sb3_policy_kwargs,
                *cls.size_aliases,
                *cls._input_argument_names(),
            }
        )

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
        schedule = arch.schedule_of(role)
        if schedule is not None and schedule.kind == "densify":  # from the role's sparsity back to dense
            return NetworkPruner(0.0, arch.network_seed(role), arch.exact_masks, backend, initial_sparsity=sparsity)
        initial_sparsity = schedule.initial_sparsity if schedule is not None and schedule.kind == "gmp" else None
        return NetworkPruner(sparsity, arch.network_seed(role), arch.exact_masks, backend, initial_sparsity)

    def _shared_modules(self) -> dict[str, nn.Module]:
        """Modules several networks use, made once per build (the image policies' encoder)."""
        return {}

    @property
    def dynamic_topology(self) -> bool:
        """Whether the masks change during training (``topology`` other than ``"static"``)."""
        return self.architecture.dynamic_topology

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

    def topology_update_count(self) -> int:
        """Topology updates so far, all networks together (cheap: a change of the masks changes it)."""
        return sum(
            int(enforcer.optimizer.param_groups[0].get(enforcer.updates_key, 0))
            for enforcer in self._mask_enforcers.values()
            if isinstance(enforcer, DynamicMaskEnforcer)
        )

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

    def _role_mask_enforcer(
        self,
        role: str,
        network: nn.Module,
        optimizer: th.optim.Optimizer,
        targets: Sequence[nn.Module | None] | None = None,
        counter: str = "",
        **masking: Any,
    ) -> MaskEnforcer:
        """
        The hooks that keep the masks of one role's network: static, or changing on the role's
        topology schedule (:meth:`SimBaArchitecture.schedule_of`) with its targets following.

        :param role: ``"actor"``, ``"critic"`` or ``"encoder"``
        :param network: the network (or a view of the modules of the role)
        :param optimizer: the optimizer that trains it
        :param targets: target networks of the same structure (``None`` entries are skipped)
        :param counter: suffix of the topology step counter, for several roles on one optimizer
        :param masking: ``mask_gradients_in_backward`` and ``mask_weights_after_step`` of the enforcer
        :return: the enforcer
        """
        schedule = self.architecture.schedule_of(role)
        if schedule is None:
            return MaskEnforcer(optimizer, network, **masking)
        followers = [target for target in targets or [] if target is not None]
        seed = self.architecture.network_seed(role)
        return DynamicMaskEnforcer(optimizer, network, schedule, seed, targets=followers, counter=counter, **masking)

    def _network_mask_enforcers(
        self,
        role: str,
        network: nn.Module,
        optimizer: th.optim.Optimizer,
        targets: Sequence[nn.Module | None] | None = None,
        encoder: str | None = None,
        **masking: Any,
    ) -> dict[str, MaskEnforcer]:
        """
        The enforcers of one network: one for all of it, or, where it contains a convolutional encoder
        with its own rule (``encoder_topology``), one for the rest of it and one for the encoder, each
        with its own topology step counter on the network's optimizer.

        :param role: the network's role
        :param network: the network
        :param optimizer: the optimizer that trains it (encoder included)
        :param targets: target networks of the same structure (``None`` entries are skipped)
        :param encoder: dotted path of the encoder inside ``network`` and its targets (``None``: none)
        :param masking: ``mask_gradients_in_backward`` and ``mask_weights_after_step`` of the enforcers
        :return: role (``"encoder"`` for the encoder's) -> enforcer
        """
        if encoder is None or getattr(self.architecture, "encoder_topology", None) is None:
            return {role: self._role_mask_enforcer(role, network, optimizer, targets, **masking)}
        followers = [target for target in targets or [] if target is not None]
        return {
            role: self._role_mask_enforcer(role, without_submodule(network, encoder), optimizer, followers, **masking),
            "encoder": self._role_mask_enforcer(
                "encoder",
                network.get_submodule(encoder),
                optimizer,
                [target.get_submodule(encoder) for target in followers],
                counter="_encoder",
                **masking,
            ),
        }

    def _check_dynamic_topology(self) -> None:
        """Refuse a dynamic topology that has nothing to change (every network it governs is dense)."""
        dynamic = [enforcer for enforcer in self._mask_enforcers.values() if isinstance(enforcer, DynamicMaskEnforcer)]
        if dynamic and not any(enforcer.num_updated_tensors for enforcer in dynamic):
            rules = {role: enforcer.schedule.kind for role, enforcer in self._mask_enforcers.items() if enforcer in dynamic}
            raise ValueError(
                f"a dynamic topology ({rules}) needs a sparse network: the sparsity of a network with a dynamic rule "
                "(actor_sparsity, critic_sparsity or encoder_sparsity) must be above 0"
            )

    # --- what the policy says about itself ------------------------------------------------------

    @property
    def observation_normalizer(self) -> RunningObservationNormalizer | None:
        """The running observation statistics shared by all networks, or ``None`` when not normalizing
        (``normalize_observations=False``, or observations with no continuous part)."""
        return cast(RunningObservationNormalizer | None, self.__dict__.get("_normalizer"))

    def update_observation_statistics(self, observations: np.ndarray | th.Tensor | dict[str, Any]) -> None:
        """
        Merge observations the policy acts on into the running statistics.
        :class:`sb3_sparse.callbacks.ObservationNormalizerCallback` calls this once per collected
        transition; call it yourself only when you collect data without ``learn()``.

        :param observations: raw observations of shape ``(n_envs, *shape)`` (Dict spaces: key -> such arrays)
        """
        normalizer = self.observation_normalizer
        if normalizer is None:
            raise RuntimeError(
                "this policy keeps no observation statistics (normalize_observations=False, or an observation "
                "space with no continuous part)"
            )
        normalizer.update(continuous_rows(self.observation_space, observations))

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

    def pruned_networks(self) -> dict[str, nn.Module]:
        """
        Role -> the tensors that role's sparsity prunes (``actor_sparsity``, ``critic_sparsity``,
        ``encoder_sparsity``): what ``sparsity/<role>/density`` counts. All critics are one role; an
        image encoder is its own; dense parts that no sparsity prunes (LSTMs) are in none.

        :return: views of the networks (not registered)
        """
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
            **self._given_input_kwargs,
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
    * ``target_networks``: which of ``"actor"`` and ``"critic"`` have Polyak targets;
    * ``critic_optimizes_shared_extractor``: with ``share_features_extractor=True``, whether the critic's
      optimizer holds the extractor it shares with the actor (TD3's does, SAC's does not; in both, only the
      actor's loss reaches it, as in SB3).

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
    :param use_sde: gSDE for the squashed-Gaussian actors (``supports_sde``: SAC, TQC, CrossQ), else must be False
    :param kwargs: the fields of ``architecture_class``, SB3's input arguments (``features_extractor_class``,
        ``features_extractor_kwargs``, ``normalize_images``, ``share_features_extractor``) and the ``sb3_policy_kwargs``
    """

    actor_class: ClassVar[type[BasePolicy]]
    critic_class: ClassVar[type[BaseModel]]
    target_networks: ClassVar[tuple[str, ...]] = ("critic",)
    critic_optimizes_shared_extractor: ClassVar[bool] = False
    share_features_extractor_default = False
    share_features_extractor: bool
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
        return {"n_critics": self._n_critics, **self._sde_arguments()}

    def _actor_kwargs(self) -> dict[str, Any]:
        """Further arguments of ``actor_class``: SB3's gSDE settings where the family has them (the
        squashed-Gaussian actors, whose ``sb3_policy_kwargs`` hold ``log_std_init``, ``use_expln``, ``clip_mean``)."""
        if not self.supports_sde:
            return {}
        names = ("log_std_init", "use_expln", "clip_mean")
        return dict(use_sde=self._use_sde, **{name: self._extra_sb3_kwargs[name] for name in names})

    def _check_spaces(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        """Raise a ValueError for spaces this policy cannot handle: the observations go through SB3's input
        stage, whatever their space; the actions must be a Box."""
        check_box_actions(action_space, type(self).__name__)

    # --- construction -------------------------------------------------------------------------

    def _features(self, role: str, target: bool, shared: dict[str, nn.Module]) -> tuple[BaseFeaturesExtractor, int]:
        """
        The features extractor of one network and its output size: its own input stage, or with
        ``share_features_extractor`` SB3's sharing (the critic reads the actor's, a target critic the
        target actor's where there is one, else its own).

        :param role: ``"actor"`` or ``"critic"``
        :param target: whether the network is a target
        :param shared: the modules of :meth:`_shared_modules`; the actors' extractors are added to it
        :return: ``(extractor, features_dim)``
        """
        name = f"actor{'_target' if target else ''}_features"
        extractor = shared.get(name) if role == "critic" and self.share_features_extractor else None
        if extractor is None:
            extractor = self.make_features_extractor()
        if role == "actor":
            shared[name] = extractor
        return cast(BaseFeaturesExtractor, extractor), int(cast(BaseFeaturesExtractor, extractor).features_dim)

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
        extra: dict[str, Any] = self._actor_kwargs() if role == "actor" else {}
        if role == "critic":
            extra = dict(
                n_critics=self.critic_kwargs["n_critics"],  # type: ignore[attr-defined]
                share_features_extractor=self.share_features_extractor,
                **self._critic_kwargs(),
            )
        return network_class(
            observation_space=self.observation_space,
            action_space=self.action_space,
            features_extractor=features_extractor,
            normalize_images=self.normalize_images,  # type: ignore[attr-defined]
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

    def _trained_parameters(self, role: str, network: nn.Module) -> list[nn.Parameter]:
        """The parameters of one network's optimizer: all of them, but for a critic's extractor shared with the
        actor where the family's critic does not optimize it (``critic_optimizes_shared_extractor``)."""
        if role == "critic" and self.share_features_extractor and not self.critic_optimizes_shared_extractor:
            return [param for name, param in network.named_parameters() if "features_extractor" not in name]
        return list(network.parameters())

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
            network.optimizer = self.optimizer_class(
                self._trained_parameters(role, network), lr=lr_schedule(1), **self.optimizer_kwargs
            )  # type: ignore[call-arg]
            network.optimizer.register_load_state_dict_pre_hook(functools.partial(convert_optimizer_state, network))
        if self.architecture.exact_log_prob:
            self._use_exact_log_prob()
        # A model saved where sparse_backend="auto" chose SparseLinear layers loads where it chooses
        # masked ones (a GPU), and the reverse: the state dicts are converted on load.
        self.register_load_state_dict_pre_hook(convert_state_dict)  # type: ignore[attr-defined]
        # SB3 re-runs _build on load, so the hooks are attached again there. Each hook touches
        # only its own optimizer's network; targets stay masked as Polyak averages of masked weights.
        self._mask_enforcers = {}
        for role in ("actor", "critic"):
            network = getattr(self, role)
            self._mask_enforcers.update(
                self._network_mask_enforcers(
                    role,
                    network,
                    network.optimizer,
                    targets=[getattr(self, f"{role}_target", None)],
                    encoder=self.critic_encoder_path if role == "critic" else None,
                )
            )
        self._check_dynamic_topology()

    def _use_exact_log_prob(self) -> None:
        if self._use_sde:
            raise ValueError(
                "exact_log_prob=True replaces the squashed Gaussian's log-density, which gSDE computes its own way: "
                "with use_sde=True, exact_log_prob must be False"
            )
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

    def _family_arguments(self) -> dict[str, Any]:
        return {"n_critics": self.critic_kwargs["n_critics"], **self._sde_arguments()}  # type: ignore[attr-defined]

    def pruned_networks(self) -> dict[str, nn.Module]:
        return {"actor": self.actor.network, "critic": nn.ModuleList(self.critic.q_networks)}

    def _density_networks(self) -> list[tuple[str, nn.Module]]:
        """The networks of the density report, with their titles."""
        return [("actor", self.actor.network)] + [(f"critic {i}", q) for i, q in enumerate(self.critic.q_networks)]
