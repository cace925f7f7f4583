"""``SparseSimBaPolicy`` for the on-policy algorithms: SB3's PPO and A2C, sb3-contrib's TRPO and
MaskablePPO. Separate SimBa encoders for the policy and the value function (SB3's ``mlp_extractor``
contract), SB3's action heads for every action space its ``ActorCriticPolicy`` supports (Box,
Discrete, MultiDiscrete, MultiBinary), Erdős–Rényi masks, static or on a dynamic topology.

Sparsity: ``actor_sparsity`` prunes the policy encoder with its action head as one network (one ER
budget), ``critic_sparsity`` the value encoder with its value head. The Gaussian ``log_std``
stays dense. One optimizer trains both, as in SB3; the masks are applied to each gradient as
autograd computes it, so ``max_grad_norm`` clips the masked gradient, and to the weights after each
step (TRPO's line search moves the policy outside the optimizer, before its value-function steps).

Dynamic topologies (``topology``, ``actor_topology``, ``critic_topology``) count the one optimizer's
steps (one per minibatch) and change the masks only inside a step, never while a rollout is
collected: the rollout buffer's values and log-probabilities always come from the network that
acted. RigL reads the dense gradient of the backward pass before its step. TRPO's policy moves
outside the optimizer, so its actor takes SET, GMP or densify, not RigL (refused when learning starts).

Observations are normalized inside the policy with running statistics updated from every
collected observation (:class:`~sb3_sparse.callbacks.ObservationNormalizerCallback`). Unlike
``VecNormalize``, the rollout buffer keeps raw observations, normalized again at each training
epoch with the statistics of that moment, and nothing is clipped. With ``VecNormalize``, use
``norm_obs=False`` (it may still normalize rewards) or build the policy with
``normalize_observations=False``.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar, cast

import torch as th
from gymnasium import spaces
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from sb3_sparse.checks import check_bool
from sb3_sparse.diagnostics import NetworkProbe
from sb3_sparse.networks import OrthogonalLinear, SimBaActorCriticEncoders, SimBaEncoder
from sb3_sparse.policies.common import SparsePolicyBase
from sb3_sparse.policies.simba_modules import (
    convert_optimizer_state,
    convert_state_dict,
    simba_probe,
)

#: The arguments of SB3's ActorCriticPolicy for Gaussian and gSDE actions, with SB3's defaults.
GSDE_POLICY_KWARGS: dict[str, Any] = {"log_std_init": 0.0, "full_std": True, "use_expln": False, "squash_output": False}

#: Orthogonal gains of SB3's ``ortho_init`` for the heads (the SimBa encoders keep their own initialization).
HEAD_GAINS = {"action_net": 0.01, "value_net": 1.0}


class SparseSimBaOnPolicyMixin(SparsePolicyBase):
    """
    The sparse SimBa behaviour of on-policy actor-critic policies, mixed in before SB3's
    ``ActorCriticPolicy`` (or sb3-contrib's ``MaskableActorCriticPolicy``).

    :param observation_space: observation space (any SB3 takes: see :mod:`~sb3_sparse.policies.input_stage`)
    :param action_space: action space (Box, Discrete, MultiDiscrete or MultiBinary; Discrete for MaskablePPO)
    :param lr_schedule: learning rate schedule
    :param ortho_init: orthogonal initialization of the action head (gain 0.01), the value head
        (gain 1) and the features extractor (gain sqrt(2)), as SB3's ``ortho_init``; the SimBa encoders
        keep their own initialization
    :param use_sde: gSDE (SB3's ``StateDependentNoiseDistribution`` on the policy encoder's features),
        for Box actions; not with MaskablePPO, whose policy has none
    :param optimizer_class: the optimizer of all the policy's parameters
    :param optimizer_kwargs: keyword arguments of the optimizer, without the learning rate (default
        for Adam: SB3's ``eps=1e-5``; Adam and AdamW get ``fused=True`` unless ``fused`` or
        ``foreach`` is given)
    :param kwargs: the fields of :class:`~sb3_sparse.policies.architecture.SimBaArchitecture` (``actor_*``:
        the policy encoder, ``critic_*``: the value encoder), SB3's input arguments
        (``features_extractor_class``, ``features_extractor_kwargs``, ``normalize_images``,
        ``share_features_extractor``) and the ``sb3_policy_kwargs`` (``log_std_init`` for Box actions,
        ``full_std``, ``use_expln`` and ``squash_output`` for gSDE)
    """

    sb3_arguments = ("ortho_init", "use_sde", "optimizer_class", "optimizer_kwargs")
    share_features_extractor_default = True
    supports_sde = True

    features_extractor: Any
    mlp_extractor: Any  # a SimBaActorCriticEncoders
    action_net: Any
    value_net: Any
    optimizer: th.optim.Optimizer

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        ortho_init: bool = True,
        use_sde: bool = False,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.heads_ortho_init = check_bool("ortho_init", ortho_init)
        self._init_policy(observation_space, action_space, lr_schedule, optimizer_class, optimizer_kwargs, kwargs, use_sde)

    def _sb3_parent_kwargs(self) -> dict[str, Any]:
        # SB3's ortho_init would overwrite the SimBa encoders' initialization: see _initialize_weights.
        return dict(ortho_init=False, **self._sde_arguments())

    def _check_spaces(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        """Every space SB3's ActorCriticPolicy takes (it checks the action space itself)."""

    def _default_optimizer_kwargs(
        self, optimizer_class: type[th.optim.Optimizer], optimizer_kwargs: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        if optimizer_kwargs is None and optimizer_class is th.optim.Adam:
            return {"eps": 1e-5}  # SB3's ActorCriticPolicy default
        return optimizer_kwargs

    def _build_mlp_extractor(self) -> None:
        arch = self.architecture
        features_dim = cast(int, self.features_dim)  # type: ignore[attr-defined]
        self.mlp_extractor = SimBaActorCriticEncoders(
            features_dim, arch.actor_hidden_dim, arch.actor_num_blocks, arch.critic_hidden_dim, arch.critic_num_blocks
        )

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)  # type: ignore[misc]  # encoders (above), SB3's heads, an optimizer made again below
        if self.heads_ortho_init:
            self._initialize_weights()
        self.densities: dict[str, dict[str, float]] = {}
        for role, network in self.pruned_networks().items():
            self.densities[role] = self._pruner(role)(network)
            self._adopt(role, network)  # csr layers replace the ones they prune
        self.register_load_state_dict_pre_hook(convert_state_dict)  # type: ignore[attr-defined]
        self._make_optimizer(lr_schedule)

    def _make_optimizer(self, lr_schedule: Schedule) -> None:
        """The one optimizer of every parameter, with its load hook and the mask enforcers on it (again,
        when a subclass adds parameters after SB3's build: the hooks of the earlier ones are removed)."""
        for enforcer in getattr(self, "_mask_enforcers", {}).values():
            enforcer.remove()
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)  # type: ignore[attr-defined, call-arg]
        self.optimizer.register_load_state_dict_pre_hook(functools.partial(convert_optimizer_state, cast(nn.Module, self)))
        # TRPO moves the policy's weights by a line search outside the optimizer (its conjugate-gradient
        # solver starts from a random, unmasked point); its value-function steps follow: re-mask after each.
        # One enforcer per network, each with its role's topology, counting the one optimizer's steps apart.
        self._mask_enforcers = {
            role: self._role_mask_enforcer(
                role,
                network,
                self.optimizer,
                counter=f"_{role}",
                mask_gradients_in_backward=True,
                mask_weights_after_step=True,
            )
            for role, network in self.pruned_networks().items()
        }
        self._check_dynamic_topology()

    def _initialize_weights(self) -> None:
        """SB3's ``ortho_init`` for what SB3 builds: the heads (the SimBa encoders keep their initialization).
        Each head becomes an :class:`~sb3_sparse.networks.OrthogonalLinear` with its gain, so a
        :class:`~sb3_sparse.callbacks.ResetCallback` re-initializes it the same way."""
        for head, gain in HEAD_GAINS.items():
            layer = getattr(self, head)
            setattr(self, head, OrthogonalLinear(layer.in_features, layer.out_features, gain=gain))
        for extractor in self._input_extractors():
            extractor.apply(lambda module: self.init_weights(module, gain=2**0.5))  # type: ignore[attr-defined]

    def _input_extractors(self) -> list[nn.Module]:
        """SB3's features extractors (one shared, or the policy's and the value function's), as ``ortho_init`` sees them."""
        extractors = [self.pi_features_extractor, self.vf_features_extractor]  # type: ignore[attr-defined]
        return extractors[:1] if extractors[0] is extractors[1] else extractors

    def pruned_networks(self) -> dict[str, nn.Module]:
        """Role -> network pruned with that role's sparsity and seed."""
        return dict(self._networks())

    def _networks(self) -> dict[str, nn.ModuleDict]:
        """The policy network (encoder and action head) and the value network, as views (not registered)."""
        return {
            "actor": nn.ModuleDict({"encoder": self.mlp_extractor.policy_net, "head": self.action_net}),
            "critic": nn.ModuleDict({"encoder": self.mlp_extractor.value_net, "head": self.value_net}),
        }

    def _adopt(self, role: str, network: nn.Module) -> None:
        if role == "encoder":  # the features extractors of image policies: masked, never replaced
            return
        encoder, head = ("policy_net", "action_net") if role == "actor" else ("value_net", "value_net")
        setattr(self.mlp_extractor, encoder, cast(nn.ModuleDict, network)["encoder"])
        setattr(self, head, cast(nn.ModuleDict, network)["head"])

    # --- what the policy says about itself ------------------------------------------------------

    def diagnostic_probes(self) -> dict[str, NetworkProbe]:
        """
        Where the plasticity diagnostics read the policy and value networks (gradient norms: after
        the algorithm's gradient clipping, in the one optimizer's step).

        :return: ``{"actor": ..., "critic": ...}``
        """
        return {
            role: simba_probe(
                network,
                [cast(SimBaEncoder, network["encoder"])],
                evaluate=functools.partial(self._evaluate_network, role),
                optimizer=self.optimizer,
            )
            for role, network in self._networks().items()
        }

    def _evaluate_network(self, role: str, observations: th.Tensor, _: th.Tensor | None = None) -> Any:
        """What the diagnostics read of one network on a batch: the action distribution, or the values."""
        policy = cast(ActorCriticPolicy, self)
        return policy.get_distribution(observations) if role == "actor" else policy.predict_values(observations)

    def _density_networks(self) -> list[tuple[str, nn.Module]]:
        networks = self._networks()
        return [("policy", networks["actor"]), ("value", networks["critic"])]

    def _family_arguments(self) -> dict[str, Any]:
        return {"ortho_init": self.heads_ortho_init, **self._sde_arguments()}


class SparseSimBaActorCriticPolicy(SparseSimBaOnPolicyMixin, ActorCriticPolicy):
    """
    ``SparseSimBaPolicy`` of PPO, A2C and TRPO: SimBa policy and value encoders under SB3's action and
    value heads, pruned once at initialization with Erdős–Rényi densities; the masks never change.
    The arguments are those of :class:`SparseSimBaOnPolicyMixin`, plus ``log_std_init`` (Box actions).
    """

    sb3_policy_kwargs: ClassVar[dict[str, Any]] = GSDE_POLICY_KWARGS


class SparseSimBaMaskablePolicy(SparseSimBaOnPolicyMixin, MaskableActorCriticPolicy):
    """
    ``SparseSimBaPolicy`` of sb3-contrib's MaskablePPO (invalid-action masking, Discrete and
    MultiDiscrete actions). The arguments are those of :class:`SparseSimBaOnPolicyMixin`, without gSDE.
    """

    supports_sde = False


class SparseSimBaMultiInputActorCriticPolicy(SparseSimBaActorCriticPolicy):
    """``SparseSimBaMultiInputPolicy`` of PPO, A2C and TRPO (SB3's ``MultiInputActorCriticPolicy``): Dict
    observations through SB3's ``CombinedExtractor``; the arguments are those of :class:`SparseSimBaActorCriticPolicy`."""

    dict_observations = True


class SparseSimBaMultiInputMaskablePolicy(SparseSimBaMaskablePolicy):
    """``SparseSimBaMultiInputPolicy`` of MaskablePPO: Dict observations; the arguments are those of
    :class:`SparseSimBaMaskablePolicy`."""

    dict_observations = True
