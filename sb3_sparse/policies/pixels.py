"""``SparseSimBaCnnPolicy`` for SAC, TD3 and DDPG: DrQ-v2's convolutional encoder, shared by actor
and critic and trained by the critic loss alone, under SimBa actor and critic heads with static
Erdős–Rényi masks.

Where each piece lives and who trains it:

* the convolutional encoder (:class:`sb3_sparse.networks.DrQConvEncoder`) is a submodule of the
  critic, so the critic's optimizer trains it; the actor (and TD3's target actor) hold a reference
  to it that is not a submodule, and detach its output, as DrQ-v2 does. The target critic has its
  own copy of the encoder, Polyak-averaged with the critic (SB3's target update covers every
  critic parameter); DrQ-v2 evaluates its target critic on the online encoder instead.
* each network has its own trunk (:class:`sb3_sparse.networks.PixelTrunk`: Linear to
  ``feature_dim``, LayerNorm, Tanh), trained with that network;
* the SimBa heads take the ``feature_dim`` trunk features as their input.

Sparsity: ``actor_sparsity`` and ``critic_sparsity`` prune each network's trunk (its own ER
budget) and its SimBa head(s) (as the state policies do); ``encoder_sparsity`` prunes the
convolutions (default 0: dense, as in DrQ-v2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, cast

import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.sac.policies import SACPolicy
from stable_baselines3.td3.policies import TD3Policy
from torch import nn

from sb3_sparse.checks import check_box_actions, check_int, check_sparsity
from sb3_sparse.diagnostics import NetworkProbe
from sb3_sparse.networks import DrQConvEncoder, PixelTrunk
from sb3_sparse.policies.architecture import SQUASHED_GAUSSIAN_KWARGS, TOPOLOGY_ROLES, SimBaArchitecture
from sb3_sparse.policies.common import SparseSimBaMixin
from sb3_sparse.policies.simba_modules import SimBaActor, SimBaContinuousCritic
from sb3_sparse.policies.td3 import SimBaTD3Actor
from sb3_sparse.policies.tqc import SparseSimBaTQCPolicy

DEFAULT_FEATURE_DIM = 50


def check_image_observations(observation_space: spaces.Space, policy_name: str, normalize_images: bool = True) -> None:
    """
    Raise a ValueError unless the observations are images as SB3's ``is_image_space`` sees them
    (channel-first after SB3's ``VecTransposeImage``; uint8 in [0, 255], or any Box of rank 3 with
    ``normalize_images=False``).

    :param observation_space: the observation space the policy gets
    :param policy_name: the policy named in the message
    :param normalize_images: whether SB3 scales the images (then they must be uint8 in [0, 255])
    """
    if not (
        isinstance(observation_space, spaces.Box)
        and is_image_space(observation_space, check_channels=False, normalized_image=not normalize_images)
    ):
        kind = "uint8 images in [0, 255]" if normalize_images else "image-like Boxes of rank 3"
        raise ValueError(
            f"{policy_name} needs {kind} (e.g. (9, 84, 84) from sb3_sparse/dmc-pixels-* ids), got {observation_space}; "
            "for other observations use SparseSimBaPolicy (with a features_extractor_class of your own if you like)"
        )


@dataclass(frozen=True)
class PixelSimBaArchitecture(SimBaArchitecture):
    """
    :class:`~sb3_sparse.policies.architecture.SimBaArchitecture` for image observations, which are scaled
    to [-0.5, 0.5] instead of normalized (``normalize_observations`` must stay False), and:

    :param feature_dim: trunk output size, the SimBa heads' input (DrQ-v2: 50)
    :param encoder_sparsity: fraction of the convolutions' parameters pruned (default 0: dense, as DrQ-v2)
    :param encoder_topology: the convolutional encoder's own topology rule (``None``: the critic's, whose
        optimizer trains it); e.g. Module-Specific Training's sparse-to-sparse encoder (``"set"``)
        beside a dense-to-sparse critic (``"gmp"``). A dynamic rule needs ``encoder_sparsity`` above 0
    :param encoder_topology_kwargs: arguments of ``encoder_topology``
    """

    topology_roles: ClassVar[tuple[str, ...]] = (*TOPOLOGY_ROLES, "encoder")

    normalize_observations: bool = False
    feature_dim: int = DEFAULT_FEATURE_DIM
    encoder_sparsity: float = 0.0
    encoder_topology: str | None = None
    encoder_topology_kwargs: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.normalize_observations is not False:
            raise ValueError(
                "pixel policies do not normalize observations: pixels are scaled to [-0.5, 0.5]; "
                f"normalize_observations must be False, got {self.normalize_observations!r}"
            )
        # Checked first: the topology checks read it.
        object.__setattr__(self, "encoder_sparsity", check_sparsity("encoder_sparsity", self.encoder_sparsity))
        super().__post_init__()
        object.__setattr__(self, "feature_dim", check_int("feature_dim", self.feature_dim))
        if self.encoder_topology not in (None, "static") and self.encoder_sparsity == 0:
            raise ValueError(
                f"encoder_topology={self.encoder_topology!r} changes the masks of a sparse encoder: "
                f"encoder_sparsity must be in (0, 1), got {self.encoder_sparsity}"
            )


class PixelFeatures(BaseFeaturesExtractor):
    """
    Features of one network: the convolutional encoder, then this network's trunk.

    :param observation_space: the image observation space
    :param encoder: the convolutional encoder
    :param own_encoder: register the encoder as a submodule (trained and saved with this network);
        otherwise only a reference is kept and its output is detached (the actor's view)
    :param feature_dim: trunk output size
    """

    def __init__(self, observation_space: spaces.Box, encoder: DrQConvEncoder, own_encoder: bool, feature_dim: int) -> None:
        super().__init__(observation_space, features_dim=feature_dim)
        if own_encoder:
            self.encoder = encoder
        self._encoder_reference = (encoder,)  # a tuple: not registered as a submodule
        self.own_encoder = own_encoder
        self.trunk = PixelTrunk(encoder.output_dim, feature_dim)

    @property
    def conv_encoder(self) -> DrQConvEncoder:
        """The convolutional encoder these features use."""
        return self._encoder_reference[0]

    def forward(self, observations: th.Tensor) -> th.Tensor:
        encoded = self.conv_encoder(observations)
        return self.trunk(encoded if self.own_encoder else encoded.detach())


class SparseSimBaPixelMixin(SparseSimBaMixin):
    """
    What the pixel policies change in :class:`~sb3_sparse.policies.common.SparseSimBaMixin`: image
    spaces, a convolutional encoder owned by the critic (the target critic owns a copy) and a
    trunk per network. Mixed in before the SB3 policy class.
    """

    architecture_class = PixelSimBaArchitecture
    architecture: PixelSimBaArchitecture
    critic_encoder_path = "features_extractor.encoder"

    def _check_spaces(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        check_image_observations(observation_space, type(self).__name__, self._input_kwargs["normalize_images"])
        check_box_actions(action_space, type(self).__name__)

    def _read_input_kwargs(self, input_kwargs: dict[str, Any], observation_space: spaces.Space) -> dict[str, Any]:
        """SB3's input arguments, but for the two that DrQ-v2's layout fixes, refused with the reason."""
        name = type(self).__name__
        if input_kwargs.get("features_extractor_class") is not None:
            raise ValueError(
                f"{name} builds DrQ-v2's encoder and a trunk per network: features_extractor_class must be None, got "
                f"{input_kwargs['features_extractor_class']!r}; for an extractor of your own use SparseSimBaPolicy"
            )
        if input_kwargs.get("share_features_extractor"):
            raise ValueError(
                f"{name} shares DrQ-v2's convolutional encoder, trained by the critic alone, and gives each network "
                "its own trunk: share_features_extractor=True (SB3's sharing, trained by the actor) must be False"
            )
        extra = {
            key: value for key, value in (input_kwargs.get("features_extractor_kwargs") or {}).items() if key != "features_dim"
        }
        if extra:
            raise ValueError(f"{name}: features_extractor_kwargs may only give features_dim (the trunk's size), got {extra}")
        return super()._read_input_kwargs({**input_kwargs, "features_extractor_kwargs": None}, observation_space)

    def _new_encoder(self) -> DrQConvEncoder:
        shape = cast(tuple[int, ...], self.observation_space.shape)
        encoder = DrQConvEncoder(shape[0], image_size=shape[1])
        self._pruner("encoder", sparse_backend="masked")(encoder)
        return encoder

    def _shared_modules(self) -> dict[str, nn.Module]:
        return {"encoder": self._new_encoder()}

    def _features(self, role: str, target: bool, shared: dict[str, nn.Module]) -> tuple[BaseFeaturesExtractor, int]:
        # The target critic owns a copy of the encoder (loaded from the critic's right after);
        # every other network uses the online one, which only the critic owns and trains.
        encoder = self._new_encoder() if role == "critic" and target else shared["encoder"]
        own = role == "critic"
        features = PixelFeatures(self.observation_space, encoder, own_encoder=own, feature_dim=self.architecture.feature_dim)  # type: ignore[arg-type]
        self._pruner(f"{role}_trunk", sparse_backend="masked")(features.trunk)
        return features, self.architecture.feature_dim

    @property
    def conv_encoder(self) -> DrQConvEncoder:
        """The online convolutional encoder (the critic's, shared with the actor)."""
        return self.critic.features_extractor.encoder

    def diagnostic_probes(self) -> dict[str, NetworkProbe]:
        probes = super().diagnostic_probes()
        probes["critic"].encoder = self.conv_encoder  # runs inside the critic's pass
        return probes

    def pruned_networks(self) -> dict[str, nn.Module]:
        actor, critic = self.actor, self.critic
        return {
            "encoder": self.conv_encoder,
            "actor": nn.ModuleDict(dict(trunk=actor.features_extractor.trunk, head=actor.network)),
            "critic": nn.ModuleDict(dict(trunk=critic.features_extractor.trunk, heads=nn.ModuleList(critic.q_networks))),
        }

    def _density_networks(self) -> list[tuple[str, nn.Module]]:
        actor, critic = self.actor, self.critic
        return [
            ("encoder (convolutions, trained by the critic)", self.conv_encoder),
            ("actor", nn.ModuleDict(dict(trunk=actor.features_extractor.trunk, head=actor.network))),
            ("critic trunk", critic.features_extractor.trunk),
            *[(f"critic {index}", q_net) for index, q_net in enumerate(critic.q_networks)],
        ]


class SparseSimBaCnnPolicy(SparseSimBaPixelMixin, SACPolicy):
    """
    SAC policy for image observations: DrQ-v2's convolutional encoder (shared, trained by the critic
    loss), a trunk per network, and SimBa actor and critic heads with static Erdős–Rényi masks.
    Registered as ``"SparseSimBaCnnPolicy"``; pair it with
    :class:`sb3_sparse.buffers.DrQReplayBuffer` for the random-shift augmentation.

    :param observation_space: channel-first uint8 images, e.g. (9, 84, 84)
    :param action_space: action space (a Box)
    :param lr_schedule: learning rate schedule
    :param n_critics: number of critics (DrQ-v2: 2)
    :param optimizer_class: optimizer of actor and critic
    :param optimizer_kwargs: keyword arguments of the optimizer (Adam/AdamW get ``fused=True`` unless set)
    :param use_sde: gSDE, as :class:`~sb3_sparse.policies.sac.SparseSimBaPolicy`
    :param kwargs: the settings of :class:`PixelSimBaArchitecture` (``feature_dim=50``,
        ``encoder_sparsity=0.0`` and the SimBa and sparsity settings)
    """

    actor_class = SimBaActor
    critic_class = SimBaContinuousCritic
    supports_sde = True
    sb3_policy_kwargs: ClassVar[dict[str, Any]] = SQUASHED_GAUSSIAN_KWARGS


class SparseSimBaCnnTD3Policy(SparseSimBaPixelMixin, TD3Policy):
    """
    TD3/DDPG policy for image observations: as :class:`SparseSimBaCnnPolicy` with a deterministic
    SimBa actor; the target actor shares the online encoder (detached) and has its own trunk.
    Registered as ``"SparseSimBaCnnPolicy"`` for TD3 and DDPG.

    :param observation_space: channel-first uint8 images, e.g. (9, 84, 84)
    :param action_space: action space (a Box)
    :param lr_schedule: learning rate schedule
    :param n_critics: number of critics (TD3: 2, DDPG: 1)
    :param optimizer_class: optimizer of actor and critic
    :param optimizer_kwargs: keyword arguments of the optimizer
    :param kwargs: the settings of :class:`PixelSimBaArchitecture`
    """

    actor_class = SimBaTD3Actor
    critic_class = SimBaContinuousCritic
    target_networks = ("actor", "critic")


class SparseSimBaCnnTQCPolicy(SparseSimBaPixelMixin, SparseSimBaTQCPolicy):
    """
    TQC policy for image observations: as :class:`SparseSimBaCnnPolicy` (DrQ-v2's encoder, owned and
    trained by the critics, a trunk per network) with SimBa quantile critics. Registered as
    ``"SparseSimBaCnnPolicy"`` for TQC; the arguments are those of :class:`SparseSimBaCnnPolicy` and
    ``n_quantiles`` (default 25).
    """
