"""``SparseSimBaCnnPolicy`` for the on-policy (PPO, A2C, TRPO, MaskablePPO) and value-based (DQN,
QR-DQN) algorithms on Atari-style uint8 frames: SB3's NatureCNN (Mnih et al., 2015) as the features
extractor, under the sparse SimBa heads of the flat policies (``on_policy.py``, ``value_based.py``).

Sparsity: ``encoder_sparsity`` prunes the NatureCNN (its three convolutions and its linear layer, one
Erdős–Rényi budget; for a ``(n_out, n_in, k_h, k_w)`` kernel the ER ratio is
:math:`(n_{in} + n_{out} + k_h + k_w) / (n_{in} n_{out} k_h k_w)`: the kernel-aware ERK of Evci et al.,
2020), on masked layers; ``actor_sparsity`` and ``critic_sparsity`` prune the SimBa heads as in the
flat policies. Frames are scaled to [0, 1] by SB3 (``normalize_images``); the policies keep no
observation statistics (``normalize_observations`` must stay False).

Where the encoder lives: PPO and A2C share one NatureCNN between the policy and the value function
(SB3's ``share_features_extractor=True``), trained by both losses; DQN's Q-network and its target
each have one (the target's is Polyak-averaged with the Q-network, same masks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, cast

from gymnasium import spaces
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from sb3_contrib.qrdqn.policies import QRDQNPolicy
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, NatureCNN
from stable_baselines3.dqn.policies import DQNPolicy
from torch import nn

from sb3_sparse.diagnostics import NetworkProbe
from sb3_sparse.policies.on_policy import SparseSimBaOnPolicyMixin
from sb3_sparse.policies.pixels import PixelSimBaArchitecture, check_image_observations
from sb3_sparse.policies.value_based import SparseSimBaValueMixin, check_discrete_actions

#: NatureCNN's output size in SB3 (its ``features_dim`` default).
NATURE_CNN_FEATURES = 512
_EXAMPLE = "(4, 84, 84) stacked Atari frames"


@dataclass(frozen=True)
class NatureCnnArchitecture(PixelSimBaArchitecture):
    """
    :class:`~sb3_sparse.policies.pixels.PixelSimBaArchitecture` for the NatureCNN encoder:

    :param feature_dim: NatureCNN's output size, the SimBa heads' input (SB3: 512)
    :param encoder_sparsity: fraction of the NatureCNN's parameters pruned (default 0: dense)
    :param encoder_topology: the NatureCNN's own topology rule (``None``: the critic's, i.e. the value
        network's or the Q-network's); see :class:`~sb3_sparse.policies.pixels.PixelSimBaArchitecture`
    """

    feature_dim: int = NATURE_CNN_FEATURES


class SparseSimBaCnnOnPolicyMixin(SparseSimBaOnPolicyMixin):
    """What the image policies of PPO, A2C, TRPO and MaskablePPO change: a NatureCNN features extractor,
    shared by the policy and value heads, pruned with ``encoder_sparsity``; SB3's ``ortho_init`` gain
    sqrt(2) for it."""

    architecture_class = NatureCnnArchitecture
    architecture: NatureCnnArchitecture

    def _check_spaces(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        check_image_observations(observation_space, type(self).__name__, _EXAMPLE)

    def _features_extractor_setup(self) -> tuple[type[BaseFeaturesExtractor], dict[str, int]]:
        return NatureCNN, {"features_dim": self.architecture.feature_dim}

    def _initialize_weights(self) -> None:
        super()._initialize_weights()
        self.features_extractor.apply(lambda module: self.init_weights(module, gain=2**0.5))  # type: ignore[attr-defined]

    def _pruned_networks(self) -> dict[str, nn.Module]:
        return {"encoder": self.features_extractor, **super()._pruned_networks()}

    def diagnostic_probes(self) -> dict[str, NetworkProbe]:
        probes = super().diagnostic_probes()
        probes["critic"].encoder = cast(NatureCNN, self.features_extractor).cnn  # runs inside the value pass
        return probes

    def _density_networks(self) -> list[tuple[str, nn.Module]]:
        return [("encoder (NatureCNN, trained by both losses)", self.features_extractor), *super()._density_networks()]


class SparseSimBaCnnActorCriticPolicy(SparseSimBaCnnOnPolicyMixin, ActorCriticPolicy):
    """
    ``SparseSimBaCnnPolicy`` of PPO, A2C and TRPO: NatureCNN, then sparse SimBa policy and value heads.
    The arguments are those of :class:`~sb3_sparse.policies.on_policy.SparseSimBaOnPolicyMixin` with the
    settings of :class:`NatureCnnArchitecture` (``feature_dim=512``, ``encoder_sparsity=0.0``).
    """

    sb3_policy_kwargs: ClassVar[dict[str, Any]] = {"log_std_init": 0.0}


class SparseSimBaCnnMaskablePolicy(SparseSimBaCnnOnPolicyMixin, MaskableActorCriticPolicy):
    """``SparseSimBaCnnPolicy`` of MaskablePPO; the arguments are those of :class:`SparseSimBaCnnActorCriticPolicy`."""


class SparseSimBaCnnValueMixin(SparseSimBaValueMixin):
    """What the image policies of DQN and QR-DQN change: each network (Q-network, target) has its own
    NatureCNN, pruned with ``encoder_sparsity`` (the target's with the same masks)."""

    architecture_class = NatureCnnArchitecture
    architecture: NatureCnnArchitecture
    critic_encoder_path = "features_extractor"

    def _check_spaces(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        check_image_observations(observation_space, type(self).__name__, _EXAMPLE)
        check_discrete_actions(action_space, type(self).__name__)

    def _features(self, shared: dict[str, nn.Module]) -> tuple[BaseFeaturesExtractor, int]:
        extractor = NatureCNN(cast(spaces.Box, self.observation_space), features_dim=self.architecture.feature_dim)
        self._pruner("encoder")(extractor)
        return extractor, self.architecture.feature_dim

    def diagnostic_probes(self) -> dict[str, NetworkProbe]:
        probes = super().diagnostic_probes()
        probes["critic"].encoder = cast(NatureCNN, self.value_network.features_extractor).cnn
        return probes

    def _density_networks(self) -> list[tuple[str, nn.Module]]:
        network = self.value_network
        return [("encoder (NatureCNN)", cast(nn.Module, network.features_extractor)), ("Q-network head", network.network)]


class SparseSimBaCnnDQNPolicy(SparseSimBaCnnValueMixin, DQNPolicy):
    """``SparseSimBaCnnPolicy`` of DQN: NatureCNN, then a sparse SimBa Q-network head."""


class SparseSimBaCnnQRDQNPolicy(SparseSimBaCnnValueMixin, QRDQNPolicy):
    """``SparseSimBaCnnPolicy`` of QR-DQN: NatureCNN, then a sparse SimBa quantile head (``n_quantiles``, default 200)."""

    network_attribute = "quantile_net"
    sb3_policy_kwargs: ClassVar[dict[str, Any]] = {"n_quantiles": 200}
