"""``SparseSimBaPolicy`` for sb3-contrib's RecurrentPPO: per network (policy, value) the observation
normalizer, a sparse SimBa encoder, then an LSTM, then SB3's head, so the recurrence reads the
encoder's features (as an IMPALA or R2D2 agent's LSTM reads its torso's):

    observation -> input stage (SB3's, normalizer shared) -> SimBa encoder (sparse) -> LSTM (dense) -> head (sparse)

The masks are those of the feed-forward on-policy policy: ``actor_sparsity`` prunes the policy
encoder with the action head as one Erdős–Rényi budget, ``critic_sparsity`` the value encoder with
the value head; dynamic topologies work as there (:mod:`sb3_sparse.policies.on_policy`).

The LSTMs stay dense: the paper prunes SimBa's feed-forward layers and says nothing of recurrent
ones; a random mask on the hidden-to-hidden weights changes the recurrence's dynamics (its
spectrum, hence how long it remembers) from the first step, a different question from the
capacity one the paper answers; and they are small (``4 h (h + encoder width)`` weights for
``lstm_hidden_size`` ``h``). Each network has its own LSTM (sb3-contrib's default), or with
``enable_critic_lstm=False`` the value function a dense linear layer instead; ``shared_lstm`` is refused
(the value function would read the policy's LSTM and leave its own encoder unused).
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

import torch as th
from gymnasium import spaces
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from stable_baselines3.common.policies import BaseModel
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, MlpExtractor
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from sb3_sparse.checks import check_bool, check_int
from sb3_sparse.networks import SimBaEncoder
from sb3_sparse.policies.on_policy import GSDE_POLICY_KWARGS, SparseSimBaOnPolicyMixin


class EncodedFeatures(BaseFeaturesExtractor):
    """
    The features one LSTM reads: the policy's input stage (:mod:`~sb3_sparse.policies.input_stage`:
    SB3's features extractor behind the shared running statistics), through one network's SimBa encoder.

    :param observation_space: the policy's observation space
    :param input_stage: the network's input stage
    :param encoder: the network's SimBa encoder
    """

    def __init__(self, observation_space: spaces.Space, input_stage: BaseFeaturesExtractor, encoder: SimBaEncoder) -> None:
        super().__init__(observation_space, features_dim=encoder.hidden_dim)
        self.input_stage = input_stage
        self.encoder = encoder

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return cast(th.Tensor, self.encoder(self.input_stage(observations)))


class SparseSimBaRecurrentPolicy(SparseSimBaOnPolicyMixin, RecurrentActorCriticPolicy):
    """
    ``SparseSimBaPolicy`` of RecurrentPPO. The arguments are those of
    :class:`~sb3_sparse.policies.on_policy.SparseSimBaOnPolicyMixin`, plus sb3-contrib's
    ``log_std_init``, ``full_std``, ``use_expln``, ``squash_output`` (Box actions, gSDE),
    ``lstm_hidden_size`` (256), ``n_lstm_layers`` (1), ``lstm_kwargs``, ``enable_critic_lstm`` (True) and
    ``shared_lstm`` (must be False).
    """

    share_features_extractor_default = False
    sb3_policy_kwargs: ClassVar[dict[str, Any]] = {
        **GSDE_POLICY_KWARGS,
        "lstm_hidden_size": 256,
        "n_lstm_layers": 1,
        "lstm_kwargs": None,
        "enable_critic_lstm": True,
        "shared_lstm": False,
    }

    lstm_actor: nn.LSTM
    lstm_critic: nn.LSTM | None
    critic: nn.Linear | None
    pi_features_extractor: EncodedFeatures
    vf_features_extractor: EncodedFeatures

    def __init__(
        self, observation_space: spaces.Space, action_space: spaces.Space, lr_schedule: Schedule, **kwargs: Any
    ) -> None:
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)
        # sb3-contrib built the critic's LSTM (or, with enable_critic_lstm=False, its linear layer) on the actor
        # encoder's width, then a new optimizer: the critic's reads the value encoder, and the masks are kept by
        # hooks on the optimizer that trains.
        arch = self.architecture
        if arch.critic_hidden_dim != arch.actor_hidden_dim:
            if self.lstm_critic is not None:
                lstm = self.lstm_critic
                self.lstm_critic = nn.LSTM(
                    arch.critic_hidden_dim, lstm.hidden_size, num_layers=lstm.num_layers, **self.lstm_kwargs
                ).to(self.device)
            elif self.critic is not None:
                self.critic = nn.Linear(arch.critic_hidden_dim, self.critic.out_features).to(self.device)
        self._make_optimizer(lr_schedule)

    def _check_sb3_policy_kwargs(self, extra_kwargs: dict[str, Any]) -> None:
        super()._check_sb3_policy_kwargs(extra_kwargs)
        for name in ("lstm_hidden_size", "n_lstm_layers"):
            extra_kwargs[name] = check_int(name, extra_kwargs[name])
        extra_kwargs["enable_critic_lstm"] = check_bool("enable_critic_lstm", extra_kwargs["enable_critic_lstm"])
        if check_bool("shared_lstm", extra_kwargs["shared_lstm"]):
            raise ValueError(
                f"{type(self).__name__} gives the value function its own sparse SimBa encoder, which a shared LSTM "
                "(the value read from the policy's LSTM) would leave unused: shared_lstm must be False, got True; "
                "enable_critic_lstm=False gives the value function a linear layer instead of its own LSTM"
            )

    def _read_input_kwargs(self, input_kwargs: dict[str, Any], observation_space: spaces.Space) -> dict[str, Any]:
        if input_kwargs.get("share_features_extractor"):
            raise ValueError(
                f"{type(self).__name__} gives the policy and the value function each its own sparse SimBa encoder "
                "before its own LSTM: share_features_extractor must be False, got True"
            )
        return super()._read_input_kwargs(input_kwargs, observation_space)

    def make_features_extractor(self) -> BaseFeaturesExtractor:
        """SB3 makes the policy's extractor first, then the value function's: their input stages (one shared
        normalizer) and SimBa encoders."""
        role = "critic" if self.__dict__.get("_made_policy_features") else "actor"
        object.__setattr__(self, "_made_policy_features", True)
        input_stage = super().make_features_extractor()
        arch = self.architecture
        encoder = SimBaEncoder(
            int(input_stage.features_dim), getattr(arch, f"{role}_hidden_dim"), getattr(arch, f"{role}_num_blocks")
        )
        return EncodedFeatures(self.observation_space, input_stage, encoder)

    def _input_extractors(self) -> list[nn.Module]:
        return [self.pi_features_extractor.input_stage, self.vf_features_extractor.input_stage]

    def _build_mlp_extractor(self) -> None:
        # The heads read the LSTMs' outputs directly: the SimBa encoders sit before the LSTMs.
        self.mlp_extractor = MlpExtractor(self.lstm_output_dim, net_arch=[], activation_fn=nn.ReLU, device=self.device)

    def _networks(self) -> dict[str, nn.ModuleDict]:
        return {
            "actor": nn.ModuleDict({"encoder": self.pi_features_extractor.encoder, "head": self.action_net}),
            "critic": nn.ModuleDict({"encoder": self.vf_features_extractor.encoder, "head": self.value_net}),
        }

    def _adopt(self, role: str, network: nn.Module) -> None:
        if role == "encoder":  # the image policy's NatureCNNs: masked, never replaced
            return
        extractor, head = (
            ("pi_features_extractor", "action_net") if role == "actor" else ("vf_features_extractor", "value_net")
        )
        getattr(self, extractor).encoder = cast(nn.ModuleDict, network)["encoder"]
        setattr(self, head, cast(nn.ModuleDict, network)["head"])

    def _evaluate_network(self, role: str, observations: th.Tensor, _: th.Tensor | None = None) -> Any:
        """The diagnostics' view of a batch (no sequence): one step of the network from zero LSTM states."""
        extractor = self.pi_features_extractor if role == "actor" else self.vf_features_extractor
        features = BaseModel.extract_features(self, observations, extractor)
        lstm = self.lstm_actor if role == "actor" else self.lstm_critic
        latent = lstm(features.unsqueeze(0))[0][0] if lstm is not None else cast(nn.Linear, self.critic)(features)
        return self._get_action_dist_from_latent(latent) if role == "actor" else self.value_net(latent)

    def _density_networks(self) -> list[tuple[str, nn.Module]]:
        networks = self._networks()
        value_recurrence: tuple[str, nn.Module] = (
            ("value LSTM (dense)", self.lstm_critic)
            if self.lstm_critic is not None
            else ("value linear layer (dense)", cast(nn.Linear, self.critic))
        )
        return [
            ("policy", networks["actor"]),
            ("policy LSTM (dense)", self.lstm_actor),
            ("value", networks["critic"]),
            value_recurrence,
        ]


class SparseSimBaMultiInputRecurrentPolicy(SparseSimBaRecurrentPolicy):
    """``SparseSimBaMultiInputPolicy`` of RecurrentPPO (sb3-contrib's ``MultiInputLstmPolicy``): Dict
    observations through SB3's ``CombinedExtractor``; the arguments are those of :class:`SparseSimBaRecurrentPolicy`."""

    dict_observations = True
