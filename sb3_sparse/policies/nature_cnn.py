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
from sb3_sparse.policies.on_policy import GSDE_POLICY_KWARGS, SparseSimBaOnPolicyMixin
from sb3_sparse.policies.pixels import PixelSimBaArchitecture
from sb3_sparse.policies.recurrent import SparseSimBaRecurrentPolicy
from sb3_sparse.policies.value_based import SparseSimBaValueMixin

#: NatureCNN's output size in SB3 (its ``features_dim`` default).
NATURE_CNN_FEATURES = 512


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

    def _default_features_extractor(
        self, observation_space: spaces.Space
    ) -> tuple[type[BaseFeaturesExtractor], dict[str, Any]]:
        return NatureCNN, {"features_dim": self.architecture.feature_dim}

    def _encoder(self) -> nn.Module:
        """The features extractor(s): one shared by both networks, or the policy's and the value function's."""
        extractors = self._input_extractors()
        return extractors[0] if len(extractors) == 1 else nn.ModuleDict(dict(policy=extractors[0], value=extractors[1]))

    def pruned_networks(self) -> dict[str, nn.Module]:
        return {"encoder": self._encoder(), **super().pruned_networks()}

    def diagnostic_probes(self) -> dict[str, NetworkProbe]:
        probes = super().diagnostic_probes()
        value_extractor = self._input_extractors()[-1]
        probes["critic"].encoder = getattr(value_extractor, "cnn", value_extractor)  # runs inside the value pass
        return probes

    def _density_networks(self) -> list[tuple[str, nn.Module]]:
        extractors = self._input_extractors()
        name = type(extractors[0]).__name__
        title = f"encoder ({name}, trained by both losses)" if len(extractors) == 1 else f"encoders ({name}, one per network)"
        return [(title, self._encoder()), *super()._density_networks()]


class SparseSimBaCnnActorCriticPolicy(SparseSimBaCnnOnPolicyMixin, ActorCriticPolicy):
    """
    ``SparseSimBaCnnPolicy`` of PPO, A2C and TRPO: NatureCNN, then sparse SimBa policy and value heads.
    The arguments are those of :class:`~sb3_sparse.policies.on_policy.SparseSimBaOnPolicyMixin` with the
    settings of :class:`NatureCnnArchitecture` (``feature_dim=512``, ``encoder_sparsity=0.0``).
    """

    sb3_policy_kwargs: ClassVar[dict[str, Any]] = GSDE_POLICY_KWARGS


class SparseSimBaCnnMaskablePolicy(SparseSimBaCnnOnPolicyMixin, MaskableActorCriticPolicy):
    """``SparseSimBaCnnPolicy`` of MaskablePPO; the arguments are those of :class:`SparseSimBaCnnActorCriticPolicy`,
    without gSDE."""

    supports_sde = False


class SparseSimBaCnnValueMixin(SparseSimBaValueMixin):
    """What the image policies of DQN and QR-DQN change: each network (Q-network, target) has its own
    NatureCNN, pruned with ``encoder_sparsity`` (the target's with the same masks)."""

    architecture_class = NatureCnnArchitecture
    architecture: NatureCnnArchitecture
    critic_encoder_path = "features_extractor"

    def _default_features_extractor(
        self, observation_space: spaces.Space
    ) -> tuple[type[BaseFeaturesExtractor], dict[str, Any]]:
        return NatureCNN, {"features_dim": self.architecture.feature_dim}

    def _features(self, shared: dict[str, nn.Module]) -> tuple[BaseFeaturesExtractor, int]:
        extractor, features_dim = super()._features(shared)
        self._pruner("encoder")(extractor)
        return extractor, features_dim

    def diagnostic_probes(self) -> dict[str, NetworkProbe]:
        probes = super().diagnostic_probes()
        extractor = self.value_network.features_extractor
        probes["critic"].encoder = getattr(extractor, "cnn", extractor)
        return probes

    def pruned_networks(self) -> dict[str, nn.Module]:
        return {"encoder": cast(nn.Module, self.value_network.features_extractor), **super().pruned_networks()}

    def _density_networks(self) -> list[tuple[str, nn.Module]]:
        network = self.value_network
        return [("encoder (NatureCNN)", cast(nn.Module, network.features_extractor)), ("Q-network head", network.network)]


class SparseSimBaCnnDQNPolicy(SparseSimBaCnnValueMixin, DQNPolicy):
    """``SparseSimBaCnnPolicy`` of DQN: NatureCNN, then a sparse SimBa Q-network head."""


class SparseSimBaCnnQRDQNPolicy(SparseSimBaCnnValueMixin, QRDQNPolicy):
    """``SparseSimBaCnnPolicy`` of QR-DQN: NatureCNN, then a sparse SimBa quantile head (``n_quantiles``, default 200)."""

    network_attribute = "quantile_net"
    sb3_policy_kwargs: ClassVar[dict[str, Any]] = {"n_quantiles": 200}


class SparseSimBaCnnRecurrentPolicy(SparseSimBaCnnOnPolicyMixin, SparseSimBaRecurrentPolicy):
    """
    ``SparseSimBaCnnPolicy`` of RecurrentPPO (sb3-contrib's ``CnnLstmPolicy``): per network a NatureCNN
    (pruned with ``encoder_sparsity``), a sparse SimBa encoder, a dense LSTM and the head. The
    arguments are those of :class:`~sb3_sparse.policies.recurrent.SparseSimBaRecurrentPolicy` with the
    settings of :class:`NatureCnnArchitecture`.
    """
