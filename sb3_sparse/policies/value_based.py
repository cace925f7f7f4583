"""``SparseSimBaPolicy`` for the value-based algorithms: SB3's DQN and sb3-contrib's QR-DQN. A SimBa
Q-network (one value per action, or per action and quantile) pruned once at initialization with
Erdős–Rényi densities, a target network with the same masks (Polyak averages of masked weights
stay masked) and one optimizer whose gradients are masked as backward accumulates them, so
DQN's ``max_grad_norm`` clips the masked gradient.

The Q-network is the policy's critic: ``critic_hidden_dim``, ``critic_num_blocks`` and
``critic_sparsity`` size and prune it (the ``actor_*`` settings do not exist here).
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar, cast

import torch as th
from gymnasium import spaces
from sb3_contrib.qrdqn.policies import QRDQNPolicy
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.dqn.policies import DQNPolicy
from torch import nn

from sb3_sparse.diagnostics import NetworkProbe
from sb3_sparse.networks import DiscreteQNetwork, SimBaEncoder
from sb3_sparse.policies.architecture import SimBaSpec
from sb3_sparse.policies.common import SparsePolicyBase
from sb3_sparse.policies.simba_modules import (
    convert_optimizer_state,
    convert_state_dict,
    part_constructor_parameters,
    simba_probe,
)
from sb3_sparse.sparse_execution import share_index_structures_


def check_discrete_actions(action_space: spaces.Space, owner: str) -> int:
    """
    Raise a ValueError unless the actions are Discrete.

    :param action_space: the environment's action space
    :param owner: the class named in the message
    :return: the number of actions
    """
    if not isinstance(action_space, spaces.Discrete):
        raise ValueError(f"{owner} needs a Discrete action space, got {action_space}")
    return int(action_space.n)


class SimBaQNetwork(BasePolicy):
    """
    SB3's ``QNetwork`` (DQN) or ``QuantileNetwork`` (QR-DQN) around a
    :class:`sb3_sparse.networks.DiscreteQNetwork`, pruned at construction.

    :param observation_space: observation space
    :param action_space: a Discrete action space
    :param features_extractor: the network's input stage (:mod:`~sb3_sparse.policies.input_stage`)
    :param spec: sizes of the SimBa network and its pruner (the target's has the same seed: the same masks)
    :param n_quantiles: quantiles per action (QR-DQN), ``None`` for one Q-value per action
    :param normalize_images: whether SB3's preprocessing scales images to [0, 1]
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        features_extractor: BaseFeaturesExtractor,
        spec: SimBaSpec,
        n_quantiles: int | None = None,
        normalize_images: bool = True,
    ) -> None:
        super().__init__(
            observation_space, action_space, features_extractor=features_extractor, normalize_images=normalize_images
        )
        self.spec = spec
        self.n_actions = int(action_space.n)
        self.n_quantiles = n_quantiles
        self.network, self.densities = spec.build(DiscreteQNetwork, self.n_actions * (n_quantiles or 1))

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return part_constructor_parameters(self, n_quantiles=self.n_quantiles)

    def forward(self, obs: PyTorchObs) -> th.Tensor:
        """
        :param obs: observations
        :return: Q-values ``(batch, n_actions)``, or quantiles ``(batch, n_quantiles, n_actions)``
        """
        values = self.network(self.extract_features(obs, self.features_extractor))
        return values if self.n_quantiles is None else values.view(-1, self.n_quantiles, self.n_actions)

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        values = self(observation)
        if self.n_quantiles is not None:
            values = values.mean(dim=1)
        return values.argmax(dim=1).reshape(-1)

    def simba_encoders(self) -> list[SimBaEncoder]:
        """The SimBa encoder of the network (for diagnostics)."""
        return [cast(SimBaEncoder, self.network.encoder)]


class SparseSimBaValueMixin(SparsePolicyBase):
    """
    The sparse SimBa behaviour of value-based policies, mixed in before SB3's ``DQNPolicy`` or
    sb3-contrib's ``QRDQNPolicy``; ``network_attribute`` names the online network as the algorithm
    reads it (``q_net``, ``quantile_net``), its target is ``<network_attribute>_target``.

    :param observation_space: observation space (any SB3 takes: see :mod:`~sb3_sparse.policies.input_stage`)
    :param action_space: action space (Discrete)
    :param lr_schedule: learning rate schedule
    :param optimizer_class: the Q-network's optimizer
    :param optimizer_kwargs: keyword arguments of the optimizer, without the learning rate (Adam and
        AdamW get ``fused=True`` unless ``fused`` or ``foreach`` is given)
    :param kwargs: the ``critic_*`` fields of :class:`~sb3_sparse.policies.architecture.SimBaArchitecture`
        and the others that apply (``normalize_observations``, ``mask_seed``, ``exact_masks``,
        ``sparse_backend``), and the ``sb3_policy_kwargs`` (QR-DQN: ``n_quantiles``)
    """

    network_attribute: ClassVar[str] = "q_net"
    unused_architecture_fields = (
        "actor_hidden_dim",
        "actor_num_blocks",
        "actor_sparsity",
        "exact_log_prob",
        "actor_topology",
        "actor_topology_kwargs",
    )

    optimizer: th.optim.Optimizer

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._init_policy(observation_space, action_space, lr_schedule, optimizer_class, optimizer_kwargs, kwargs)

    def _check_spaces(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        """Raise a ValueError unless the actions are Discrete (the observations go through SB3's input stage)."""
        check_discrete_actions(action_space, type(self).__name__)

    def _features(self, shared: dict[str, nn.Module]) -> tuple[BaseFeaturesExtractor, int]:
        """The input stage of one network (each has its own, as SB3's) and its output size."""
        extractor = self.make_features_extractor()
        return extractor, int(extractor.features_dim)

    def _make_network(self, shared: dict[str, nn.Module]) -> SimBaQNetwork:
        features_extractor, features_dim = self._features(shared)
        arch = self.architecture
        return SimBaQNetwork(
            self.observation_space,
            cast(spaces.Discrete, self.action_space),
            features_extractor,
            SimBaSpec(features_dim, arch.critic_hidden_dim, arch.critic_num_blocks, self._pruner("critic")),
            n_quantiles=self._extra_sb3_kwargs.get("n_quantiles"),
            normalize_images=self.normalize_images,  # type: ignore[attr-defined]
        ).to(self.device)

    def _build(self, lr_schedule: Schedule) -> None:
        shared = self._shared_modules()
        network, target = self._make_network(shared), self._make_network(shared)  # same role: the same masks
        target.load_state_dict(network.state_dict())
        target.set_training_mode(False)
        share_index_structures_(target, network)
        setattr(self, self.network_attribute, network)
        setattr(self, f"{self.network_attribute}_target", target)
        self.optimizer = self.optimizer_class(network.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)  # type: ignore[call-arg]
        self.optimizer.register_load_state_dict_pre_hook(functools.partial(convert_optimizer_state, network))
        self.register_load_state_dict_pre_hook(convert_state_dict)  # type: ignore[attr-defined]
        # Gradients masked as autograd computes them: DQN clips the gradient norm before its step.
        self._mask_enforcers = self._network_mask_enforcers(
            "critic", network, self.optimizer, [target], encoder=self.critic_encoder_path, mask_gradients_in_backward=True
        )
        self._check_dynamic_topology()

    @property
    def value_network(self) -> SimBaQNetwork:
        """The online Q-network (``q_net`` or ``quantile_net``)."""
        return cast(SimBaQNetwork, getattr(self, self.network_attribute))

    # --- what the policy says about itself ------------------------------------------------------

    def diagnostic_probes(self) -> dict[str, NetworkProbe]:
        """
        Where the plasticity diagnostics read the Q-network, as the critic (gradient norms: after
        the algorithm's gradient clipping).

        :return: ``{"critic": ...}``
        """
        network = self.value_network
        return {
            "critic": simba_probe(
                network,
                target=getattr(self, f"{self.network_attribute}_target"),
                evaluate=lambda observations, _: network(observations),
                optimizer=self.optimizer,
            )
        }

    def pruned_networks(self) -> dict[str, nn.Module]:
        return {"critic": self.value_network.network}

    def _density_networks(self) -> list[tuple[str, nn.Module]]:
        return [("Q-network", self.value_network.network)]


class SparseSimBaDQNPolicy(SparseSimBaValueMixin, DQNPolicy):
    """``SparseSimBaPolicy`` of DQN; the arguments are those of :class:`SparseSimBaValueMixin`."""


class SparseSimBaQRDQNPolicy(SparseSimBaValueMixin, QRDQNPolicy):
    """``SparseSimBaPolicy`` of QR-DQN: ``n_quantiles`` (default 200, sb3-contrib's) quantiles per action;
    the other arguments are those of :class:`SparseSimBaValueMixin`."""

    network_attribute = "quantile_net"
    sb3_policy_kwargs: ClassVar[dict[str, Any]] = {"n_quantiles": 200}


class SparseSimBaMultiInputDQNPolicy(SparseSimBaDQNPolicy):
    """``SparseSimBaMultiInputPolicy`` of DQN (SB3's ``MultiInputPolicy``): Dict observations through SB3's
    ``CombinedExtractor``; the arguments are those of :class:`SparseSimBaValueMixin`."""

    dict_observations = True


class SparseSimBaMultiInputQRDQNPolicy(SparseSimBaQRDQNPolicy):
    """``SparseSimBaMultiInputPolicy`` of QR-DQN: Dict observations; the arguments are those of
    :class:`SparseSimBaQRDQNPolicy`."""

    dict_observations = True
