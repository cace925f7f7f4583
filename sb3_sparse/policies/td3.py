"""``SparseSimBaTD3Policy`` for SB3's TD3 and DDPG: a deterministic SimBa actor (tanh head) and
SimBa critics with static Erdős–Rényi masks; target actor and target critics keep the masks."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.td3.policies import TD3Policy

from sb3_sparse.networks import SimBaDeterministicActor
from sb3_sparse.policies.common import SimBaContinuousCritic, SparseSimBaMixin, prefer_fused_optimizer
from sb3_sparse.sparse_execution import prune_for_execution_


class SimBaDeterministicActorPolicy(BasePolicy):
    """
    SB3 actor (TD3, DDPG) around :class:`sb3_sparse.networks.SimBaDeterministicActor`, pruned at construction.

    :param observation_space: observation space
    :param action_space: action space
    :param features_extractor: the (shared) observation normalizer or a flatten layer
    :param features_dim: observation size after the extractor
    :param hidden_dim: encoder width
    :param num_blocks: encoder residual blocks
    :param sparsity: fraction of parameters pruned (Erdős–Rényi)
    :param mask_seed: seed of the masks (the target actor, built with the same seed, gets the same masks)
    :param exact_masks: exact-count masks instead of Bernoulli draws
    :param sparse_backend: ``"masked"``, ``"csr"`` or ``"auto"`` (:func:`sb3_sparse.sparse_execution.prune_for_execution_`)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        hidden_dim: int,
        num_blocks: int,
        sparsity: float,
        mask_seed: int,
        exact_masks: bool = False,
        sparse_backend: str = "masked",
    ) -> None:
        super().__init__(observation_space, action_space, features_extractor=features_extractor, squash_output=True)
        self.network = SimBaDeterministicActor(features_dim, get_action_dim(action_space), hidden_dim, num_blocks)
        generator = th.Generator().manual_seed(mask_seed)
        self.densities = prune_for_execution_(self.network, sparsity, generator, exact_masks, sparse_backend)

    def forward(self, obs: th.Tensor) -> th.Tensor:
        return self.network(self.extract_features(obs, self.features_extractor))

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        # Deterministic either way: exploration noise is added by the algorithm.
        return self(observation)


class SparseSimBaTD3Policy(SparseSimBaMixin, TD3Policy):
    """
    TD3/DDPG policy with a deterministic SimBa actor and SimBa critics, pruned once with
    Erdős–Rényi densities and kept static; registered as ``"SparseSimBaPolicy"`` for TD3 and DDPG.
    The paper's DDPG variant: ``DDPG("SparseSimBaPolicy", env, action_noise=NormalActionNoise(0, 0.1))``
    (DDPG passes ``n_critics=1``).

    :param observation_space: observation space (a flat Box)
    :param action_space: action space (a Box)
    :param lr_schedule: learning rate schedule
    :param n_critics: number of critics (TD3: 2, DDPG: 1)
    :param optimizer_class: optimizer of actor and critic
    :param optimizer_kwargs: keyword arguments of the optimizer (Adam/AdamW get ``fused=True`` unless set)
    :param architecture_kwargs: the SimBa and sparsity settings of
        :class:`~sb3_sparse.policies.common.SimBaArchitecture`
    """

    actor: SimBaDeterministicActorPolicy  # type: ignore[assignment]
    actor_target: SimBaDeterministicActorPolicy  # type: ignore[assignment]
    critic: SimBaContinuousCritic  # type: ignore[assignment]
    critic_target: SimBaContinuousCritic  # type: ignore[assignment]

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        n_critics: int = 2,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        **architecture_kwargs: Any,
    ) -> None:
        self._init_simba(observation_space, action_space, n_critics, False, architecture_kwargs)
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

    def make_critic(self, features_extractor: Any = None) -> SimBaContinuousCritic:
        return SimBaContinuousCritic(**self._network_kwargs("critic"), n_critics=self.critic_kwargs["n_critics"]).to(
            self.device
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return dict(self._simba_constructor_parameters(), n_critics=self.critic_kwargs["n_critics"])
