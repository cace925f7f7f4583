"""``SparseSimBaPolicy`` for SB3's SAC: SimBa actor and critics with static Erdős–Rényi masks."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.sac.policies import SACPolicy

from sb3_sparse.networks import check_positive_int
from sb3_sparse.policies.common import (
    SimBaArchitecture,
    SimBaContinuousCritic,
    SimBaSquashedGaussianActor,
    SparseSimBaMixin,
    check_simba_spaces,
    prefer_fused_optimizer,
)


class SparseSimBaPolicy(SparseSimBaMixin, SACPolicy):
    """
    SAC policy with SimBa actor and critic networks pruned once at initialization with
    Erdős–Rényi layer-wise densities; the masks never change (Ma et al., ICML 2025).

    Observations are normalized inside the policy with running statistics shared by the
    actor, the critics and the target critics; ``import sb3_sparse`` makes ``learn()`` update
    them once per collected transition (see :class:`sb3_sparse.callbacks.ObservationNormalizerCallback`).
    Pruned weights are exactly 0 after every optimizer step: optimizer hooks mask the gradients
    before and the weights after each step of the actor and of the critic.

    :param observation_space: observation space (a flat Box)
    :param action_space: action space (a Box)
    :param lr_schedule: learning rate schedule
    :param actor_hidden_dim: actor encoder width
    :param actor_num_blocks: actor residual blocks
    :param critic_hidden_dim: critic encoder width
    :param critic_num_blocks: critic residual blocks
    :param actor_sparsity: fraction of actor parameters pruned, in [0, 1)
    :param critic_sparsity: fraction of each critic's parameters pruned, in [0, 1)
    :param n_critics: number of critics (the paper's DMC runs use 1; SB3's default is 2)
    :param normalize_observations: normalize observations with running statistics
    :param mask_seed: seed of the masks; ``None`` draws it from the model's seed
    :param exact_masks: keep exactly ``round(d * N)`` weights per tensor instead of Bernoulli(d) draws
    :param optimizer_class: optimizer of actor and critic (e.g. ``th.optim.AdamW``)
    :param optimizer_kwargs: keyword arguments of the optimizer, without the learning rate; Adam and
        AdamW get ``fused=True`` unless ``fused`` or ``foreach`` is given (see ``prefer_fused_optimizer``)
    :param use_sde: must be False (gSDE is not supported)
    """

    actor: SimBaSquashedGaussianActor  # type: ignore[assignment]
    critic: SimBaContinuousCritic  # type: ignore[assignment]
    critic_target: SimBaContinuousCritic  # type: ignore[assignment]

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        actor_hidden_dim: int = 128,
        actor_num_blocks: int = 1,
        critic_hidden_dim: int = 512,
        critic_num_blocks: int = 2,
        actor_sparsity: float = 0.0,
        critic_sparsity: float = 0.0,
        n_critics: int = 2,
        normalize_observations: bool = True,
        mask_seed: int | None = None,
        exact_masks: bool = False,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        use_sde: bool = False,
    ) -> None:
        if use_sde:
            raise ValueError("SparseSimBaPolicy does not support gSDE: use_sde must be False, got True")
        check_simba_spaces(observation_space, action_space, type(self).__name__)
        check_positive_int("n_critics", n_critics)
        # Set before the SB3 constructor, which calls _build().
        self.architecture = SimBaArchitecture(
            actor_hidden_dim=actor_hidden_dim,
            actor_num_blocks=actor_num_blocks,
            critic_hidden_dim=critic_hidden_dim,
            critic_num_blocks=critic_num_blocks,
            actor_sparsity=actor_sparsity,
            critic_sparsity=critic_sparsity,
            normalize_observations=normalize_observations,
            mask_seed=mask_seed,
            exact_masks=exact_masks,
        )
        self._shared_extractor = {}
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            optimizer_class=optimizer_class,
            optimizer_kwargs=prefer_fused_optimizer(optimizer_class, optimizer_kwargs),
            n_critics=n_critics,
        )

    def make_actor(self, features_extractor: Any = None) -> SimBaSquashedGaussianActor:
        arch = self.architecture
        return SimBaSquashedGaussianActor(
            self.observation_space,
            self.action_space,
            features_extractor=self.make_features_extractor(),
            features_dim=self.observation_space.shape[0],
            hidden_dim=arch.actor_hidden_dim,
            num_blocks=arch.actor_num_blocks,
            sparsity=arch.actor_sparsity,
            mask_seed=arch.network_seed("actor"),
            exact_masks=arch.exact_masks,
        ).to(self.device)

    def make_critic(self, features_extractor: Any = None) -> SimBaContinuousCritic:
        arch = self.architecture
        return SimBaContinuousCritic(
            self.observation_space,
            self.action_space,
            features_extractor=self.make_features_extractor(),
            features_dim=self.observation_space.shape[0],
            hidden_dim=arch.critic_hidden_dim,
            num_blocks=arch.critic_num_blocks,
            sparsity=arch.critic_sparsity,
            mask_seed=arch.network_seed("critic"),
            n_critics=self.critic_kwargs["n_critics"],
            exact_masks=arch.exact_masks,
        ).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return dict(self._simba_constructor_parameters(), n_critics=self.critic_kwargs["n_critics"])
