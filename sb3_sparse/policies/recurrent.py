"""``SparseSimBaPolicy`` for sb3-contrib's RecurrentPPO: per network (policy, value) the observation
normalizer, a sparse SimBa encoder, then an LSTM, then SB3's head, so the recurrence reads the
encoder's features (as an IMPALA or R2D2 agent's LSTM reads its torso's):

    observation -> normalizer (shared) -> SimBa encoder (sparse) -> LSTM (dense) -> head (sparse)

The masks are those of the feed-forward on-policy policy: ``actor_sparsity`` prunes the policy
encoder with the action head as one Erdős–Rényi budget, ``critic_sparsity`` the value encoder with
the value head; dynamic topologies work as there (:mod:`sb3_sparse.policies.on_policy`).

The LSTMs stay dense: the paper prunes SimBa's feed-forward layers and says nothing of recurrent
ones; a random mask on the hidden-to-hidden weights changes the recurrence's dynamics (its
spectrum, hence how long it remembers) from the first step, a different question from the
capacity one the paper answers; and they are small (``4 h (h + encoder width)`` weights for
``lstm_hidden_size`` ``h``). Each network has its own LSTM (sb3-contrib's default; ``shared_lstm``
and a critic without LSTM do not fit separate encoders).
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

import torch as th
from gymnasium import spaces
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, MlpExtractor
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from sb3_sparse.checks import check_int
from sb3_sparse.networks import RunningObservationNormalizer, SimBaEncoder
from sb3_sparse.policies.on_policy import SparseSimBaOnPolicyMixin


class EncodedFeatures(BaseFeaturesExtractor):
    """
    The features one LSTM reads: flat observations, normalized with the policy's shared running
    statistics (when normalizing), through one network's SimBa encoder.

    :param observation_space: a flat Box
    :param encoder: the network's SimBa encoder
    :param normalizer: the shared normalizer, or ``None``
    """

    def __init__(
        self, observation_space: spaces.Box, encoder: SimBaEncoder, normalizer: RunningObservationNormalizer | None
    ) -> None:
        super().__init__(observation_space, features_dim=encoder.hidden_dim)
        self.normalizer = normalizer
        self.encoder = encoder

    def forward(self, observations: th.Tensor) -> th.Tensor:
        features = observations.flatten(start_dim=1)
        if self.normalizer is not None:
            features = self.normalizer(features)
        return cast(th.Tensor, self.encoder(features))


class SparseSimBaRecurrentPolicy(SparseSimBaOnPolicyMixin, RecurrentActorCriticPolicy):
    """
    ``SparseSimBaPolicy`` of RecurrentPPO. The arguments are those of
    :class:`~sb3_sparse.policies.on_policy.SparseSimBaOnPolicyMixin`, plus sb3-contrib's
    ``log_std_init`` (Box actions), ``lstm_hidden_size`` (256), ``n_lstm_layers`` (1) and
    ``lstm_kwargs``.
    """

    sb3_policy_kwargs: ClassVar[dict[str, Any]] = {
        "log_std_init": 0.0,
        "lstm_hidden_size": 256,
        "n_lstm_layers": 1,
        "lstm_kwargs": None,
    }

    lstm_actor: nn.LSTM
    lstm_critic: nn.LSTM
    pi_features_extractor: EncodedFeatures
    vf_features_extractor: EncodedFeatures

    def __init__(
        self, observation_space: spaces.Space, action_space: spaces.Space, lr_schedule: Schedule, **kwargs: Any
    ) -> None:
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)
        # sb3-contrib built both LSTMs on the actor encoder's width, then a new optimizer: the critic's
        # LSTM reads the value encoder, and the masks are kept by hooks on the optimizer that trains.
        arch = self.architecture
        if arch.critic_hidden_dim != arch.actor_hidden_dim:
            lstm = self.lstm_critic
            self.lstm_critic = nn.LSTM(
                arch.critic_hidden_dim, lstm.hidden_size, num_layers=lstm.num_layers, **self.lstm_kwargs
            ).to(self.device)
        self._make_optimizer(lr_schedule)

    def _check_sb3_policy_kwargs(self, extra_kwargs: dict[str, Any]) -> None:
        super()._check_sb3_policy_kwargs(extra_kwargs)
        for name in ("lstm_hidden_size", "n_lstm_layers"):
            extra_kwargs[name] = check_int(name, extra_kwargs[name])

    def _sb3_parent_kwargs(self) -> dict[str, Any]:
        # Separate features extractors: each network's own encoder before its own LSTM.
        return dict(super()._sb3_parent_kwargs(), share_features_extractor=False, shared_lstm=False, enable_critic_lstm=True)

    def make_features_extractor(self) -> BaseFeaturesExtractor:
        """SB3 makes the policy's extractor first, then the value function's: their encoders, one normalizer."""
        arch, space = self.architecture, cast(spaces.Box, self.observation_space)
        size = int(space.shape[0])
        role = "critic" if "_shared_normalizer" in self.__dict__ else "actor"
        if role == "actor":  # a plain attribute: the extractors register it, under their own names only
            object.__setattr__(
                self, "_shared_normalizer", RunningObservationNormalizer(size) if arch.normalize_observations else None
            )
        encoder = SimBaEncoder(size, getattr(arch, f"{role}_hidden_dim"), getattr(arch, f"{role}_num_blocks"))
        return EncodedFeatures(space, encoder, self.__dict__["_shared_normalizer"])

    def _build_mlp_extractor(self) -> None:
        # The heads read the LSTMs' outputs directly: the SimBa encoders sit before the LSTMs.
        self.mlp_extractor = MlpExtractor(self.lstm_output_dim, net_arch=[], activation_fn=nn.ReLU, device=self.device)

    def _networks(self) -> dict[str, nn.ModuleDict]:
        return {
            "actor": nn.ModuleDict({"encoder": self.pi_features_extractor.encoder, "head": self.action_net}),
            "critic": nn.ModuleDict({"encoder": self.vf_features_extractor.encoder, "head": self.value_net}),
        }

    def _adopt(self, role: str, network: nn.Module) -> None:
        extractor, head = (
            ("pi_features_extractor", "action_net") if role == "actor" else ("vf_features_extractor", "value_net")
        )
        getattr(self, extractor).encoder = cast(nn.ModuleDict, network)["encoder"]
        setattr(self, head, cast(nn.ModuleDict, network)["head"])

    def _observation_extractor(self) -> nn.Module:
        return self.pi_features_extractor

    def _evaluate_network(self, role: str, observations: th.Tensor, _: th.Tensor | None = None) -> Any:
        """The diagnostics' view of a batch (no sequence): one step of the network from zero LSTM states."""
        extractor, lstm = (
            (self.pi_features_extractor, self.lstm_actor)
            if role == "actor"
            else (self.vf_features_extractor, self.lstm_critic)
        )
        latent = lstm(extractor(observations.float()).unsqueeze(0))[0][0]
        return self._get_action_dist_from_latent(latent) if role == "actor" else self.value_net(latent)

    def _density_networks(self) -> list[tuple[str, nn.Module]]:
        networks = self._networks()
        return [
            ("policy", networks["actor"]),
            ("policy LSTM (dense)", self.lstm_actor),
            ("value", networks["critic"]),
            ("value LSTM (dense)", self.lstm_critic),
        ]
