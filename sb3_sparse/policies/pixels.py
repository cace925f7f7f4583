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

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.sac.policies import SACPolicy
from stable_baselines3.td3.policies import TD3Policy
from torch import nn

from sb3_sparse.networks import DrQConvEncoder, PixelTrunk, RunningObservationNormalizer, check_positive_int
from sb3_sparse.policies.common import (
    SimBaContinuousCritic,
    SimBaSquashedGaussianActor,
    SparseSimBaMixin,
    prefer_fused_optimizer,
)
from sb3_sparse.policies.td3 import SimBaDeterministicActorPolicy
from sb3_sparse.sparsity import check_sparsity, format_density_report, prune_erdos_renyi_

DEFAULT_FEATURE_DIM = 50


def check_pixel_spaces(observation_space: spaces.Space, action_space: spaces.Space, policy_name: str) -> None:
    """
    Raise a ValueError unless the observations are channel-first uint8 images and the actions a Box.

    :param observation_space: the environment's observation space
    :param action_space: the environment's action space
    :param policy_name: the policy named in the message
    """
    image = isinstance(observation_space, spaces.Box) and is_image_space(observation_space, check_channels=False)
    if not image or observation_space.shape[0] > min(observation_space.shape[1:]):
        raise ValueError(
            f"{policy_name} needs channel-first uint8 images in [0, 255] (e.g. (9, 84, 84) from "
            f"sb3_sparse/dmc-pixels-* ids), got {observation_space}; for flat observations use SparseSimBaPolicy"
        )
    if not isinstance(action_space, spaces.Box) or len(action_space.shape) != 1:
        raise ValueError(f"{policy_name} needs a 1-D Box (continuous) action space, got {action_space}")


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
    What the pixel policies add to :class:`~sb3_sparse.policies.common.SparseSimBaMixin`: image
    spaces, the shared encoder and per-network trunks. Mixed in before the SB3 policy class.
    """

    feature_dim: int
    encoder_sparsity: float
    _critics_built: int

    def _init_pixels(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        n_critics: int,
        use_sde: bool,
        feature_dim: int,
        encoder_sparsity: float,
        architecture_kwargs: dict[str, Any],
    ) -> None:
        check_pixel_spaces(observation_space, action_space, type(self).__name__)
        if architecture_kwargs.get("normalize_observations", False):
            raise ValueError(
                f"{type(self).__name__} does not normalize observations: pixels are scaled to [-0.5, 0.5]; "
                "normalize_observations must be False"
            )
        architecture_kwargs = dict(architecture_kwargs, normalize_observations=False)
        self._init_simba(observation_space, action_space, n_critics, use_sde, architecture_kwargs, check_spaces=False)
        self.feature_dim = check_positive_int("feature_dim", feature_dim)
        self.encoder_sparsity = check_sparsity("encoder_sparsity", encoder_sparsity)
        self._critics_built = 0

    @classmethod
    def valid_kwargs(cls) -> list[str]:
        return sorted({*super().valid_kwargs(), "feature_dim", "encoder_sparsity"} - {"normalize_observations"})

    def _new_encoder(self) -> DrQConvEncoder:
        shape = self.observation_space.shape
        encoder = DrQConvEncoder(shape[0], image_size=shape[1])
        if self.encoder_sparsity > 0:
            seed = th.randint(0, 2**62, (1,), generator=th.Generator().manual_seed(self.architecture.mask_seed + 1))
            generator = th.Generator().manual_seed(int(seed))
            prune_erdos_renyi_(encoder, self.encoder_sparsity, generator, self.architecture.exact_masks)
        return encoder

    @property
    def conv_encoder(self) -> DrQConvEncoder:
        """The online convolutional encoder (the critic's, shared with the actor)."""
        if "encoder" not in self._shared_extractor:
            self._shared_extractor["encoder"] = self._new_encoder()  # type: ignore[assignment]
        return self._shared_extractor["encoder"]  # type: ignore[return-value]

    def _network_kwargs(self, role: str) -> dict[str, Any]:
        if role == "critic":
            # SB3 builds the critic, then the target critic: the first owns the online encoder, the
            # target gets its own copy (loaded from the critic's state right after).
            self._critics_built += 1
            encoder = self.conv_encoder if self._critics_built == 1 else self._new_encoder()
        else:
            encoder = self.conv_encoder
        features = PixelFeatures(self.observation_space, encoder, own_encoder=role == "critic", feature_dim=self.feature_dim)
        arch = self.architecture
        sparsity = getattr(arch, f"{role}_sparsity")
        if sparsity > 0:
            generator = th.Generator().manual_seed(arch.network_seed(role) + 1)  # not the head's masks
            prune_erdos_renyi_(features.trunk, sparsity, generator, arch.exact_masks)
        return dict(
            observation_space=self.observation_space,
            action_space=self.action_space,
            features_extractor=features,
            features_dim=self.feature_dim,
            hidden_dim=getattr(arch, f"{role}_hidden_dim"),
            num_blocks=getattr(arch, f"{role}_num_blocks"),
            sparsity=sparsity,
            mask_seed=arch.network_seed(role),
            exact_masks=arch.exact_masks,
            sparse_backend=arch.sparse_backend,
        )

    @property
    def observation_normalizer(self) -> RunningObservationNormalizer | None:
        """Pixel policies keep no observation statistics."""
        return None

    def make_critic(self, features_extractor: Any = None) -> SimBaContinuousCritic:
        n_critics = self.critic_kwargs["n_critics"]  # type: ignore[attr-defined]
        return SimBaContinuousCritic(**self._network_kwargs("critic"), n_critics=n_critics).to(self.device)  # type: ignore[attr-defined]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return dict(
            self._simba_constructor_parameters(),
            feature_dim=self.feature_dim,
            encoder_sparsity=self.encoder_sparsity,
            n_critics=self.critic_kwargs["n_critics"],  # type: ignore[attr-defined]
        )

    def format_density_report(self) -> str:
        """Per-tensor density tables of the encoder, the actor (trunk and head) and every critic (trunk and heads)."""
        actor, critic = self.actor, self.critic  # type: ignore[attr-defined]
        tables = [
            format_density_report(self.conv_encoder, "encoder (convolutions, trained by the critic)"),
            format_density_report(nn.ModuleDict(dict(trunk=actor.features_extractor.trunk, head=actor.network)), "actor"),
            format_density_report(critic.features_extractor.trunk, "critic trunk"),
        ]
        for index, q_net in enumerate(critic.q_networks):
            tables.append(format_density_report(q_net, f"critic {index}"))
        return "\n\n".join(tables)


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
    :param feature_dim: trunk output size, the SimBa heads' input (DrQ-v2: 50)
    :param encoder_sparsity: fraction of the convolutions' parameters pruned (default 0: dense, as DrQ-v2)
    :param optimizer_class: optimizer of actor and critic
    :param optimizer_kwargs: keyword arguments of the optimizer (Adam/AdamW get ``fused=True`` unless set)
    :param use_sde: must be False
    :param architecture_kwargs: the SimBa and sparsity settings of
        :class:`~sb3_sparse.policies.common.SimBaArchitecture` (``normalize_observations`` must stay False)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        n_critics: int = 2,
        feature_dim: int = DEFAULT_FEATURE_DIM,
        encoder_sparsity: float = 0.0,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        use_sde: bool = False,
        **architecture_kwargs: Any,
    ) -> None:
        self._init_pixels(
            observation_space, action_space, n_critics, use_sde, feature_dim, encoder_sparsity, architecture_kwargs
        )
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            optimizer_class=optimizer_class,
            optimizer_kwargs=prefer_fused_optimizer(optimizer_class, optimizer_kwargs),
            n_critics=n_critics,
        )

    def make_actor(self, features_extractor: Any = None) -> SimBaSquashedGaussianActor:
        return SimBaSquashedGaussianActor(**self._network_kwargs("actor")).to(self.device)


class SparseSimBaCnnTD3Policy(SparseSimBaPixelMixin, TD3Policy):
    """
    TD3/DDPG policy for image observations: as :class:`SparseSimBaCnnPolicy` with a deterministic
    SimBa actor; the target actor shares the online encoder (detached) and has its own trunk.
    Registered as ``"SparseSimBaCnnPolicy"`` for TD3 and DDPG.

    :param observation_space: channel-first uint8 images, e.g. (9, 84, 84)
    :param action_space: action space (a Box)
    :param lr_schedule: learning rate schedule
    :param n_critics: number of critics (TD3: 2, DDPG: 1)
    :param feature_dim: trunk output size (DrQ-v2: 50)
    :param encoder_sparsity: fraction of the convolutions' parameters pruned (default 0)
    :param optimizer_class: optimizer of actor and critic
    :param optimizer_kwargs: keyword arguments of the optimizer
    :param architecture_kwargs: the SimBa and sparsity settings of
        :class:`~sb3_sparse.policies.common.SimBaArchitecture`
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        n_critics: int = 2,
        feature_dim: int = DEFAULT_FEATURE_DIM,
        encoder_sparsity: float = 0.0,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        **architecture_kwargs: Any,
    ) -> None:
        self._init_pixels(
            observation_space, action_space, n_critics, False, feature_dim, encoder_sparsity, architecture_kwargs
        )
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            optimizer_class=optimizer_class,
            optimizer_kwargs=prefer_fused_optimizer(optimizer_class, optimizer_kwargs),
            n_critics=n_critics,
        )

    def make_actor(self, features_extractor: Any = None) -> SimBaDeterministicActorPolicy:
        return SimBaDeterministicActorPolicy(**self._network_kwargs("actor")).to(self.device)
