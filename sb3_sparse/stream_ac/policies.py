"""The policy of :class:`sb3_sparse.stream_ac.StreamAC`: the streaming paper's actor and value
networks, with its SparseInit or with this package's static Erdős–Rényi masks, and the
observation statistics, kept inside the policy so that ``predict`` and ``save`` carry them."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import get_action_dim, get_flattened_obs_dim
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch.distributions import Normal

from sb3_sparse.checks import check_bool, check_flat_box_spaces, check_int, check_seed, check_sparsity
from sb3_sparse.sparsity import format_density_report, prune_erdos_renyi_
from sb3_sparse.stream_ac.networks import (
    StreamingCritic,
    StreamingGaussianActor,
    WelfordStatistics,
    sparse_init_network_,
)

#: SparseInit's sparsity in the streaming paper, used when no Erdős–Rényi mask is asked for.
DEFAULT_SPARSE_INIT = 0.9


class StreamACPolicy(BasePolicy):
    """
    Actor and value networks of Stream AC(lambda): ``num_layers`` hidden layers of ``hidden_dim``
    units with parameter-free LayerNorm and LeakyReLU, a Gaussian actor (softplus standard
    deviation, unsquashed) and a state-value critic.

    Two kinds of sparsity, to compare them:

    * SparseInit (``sparse_init``), the streaming paper's: at initialization, a random
      ``sparse_init`` fraction of each row of every weight matrix is set to 0; those weights
      are trainable and grow back.
    * Static Erdős–Rényi masks (``actor_sparsity``, ``critic_sparsity``), this package's: a
      fraction of all parameters is pruned once, with ER layer-wise densities, and stays exactly 0
      under ObGD and its traces.

    :param observation_space: observation space (a flat Box)
    :param action_space: action space (a Box)
    :param lr_schedule: learning-rate schedule (the optimizers are the algorithm's)
    :param hidden_dim: width of the hidden layers
    :param num_layers: hidden layers of each network
    :param actor_sparsity: fraction of the actor's parameters pruned by a static ER mask, in [0, 1)
    :param critic_sparsity: fraction of the critic's parameters pruned by a static ER mask, in [0, 1)
    :param sparse_init: SparseInit fraction, in [0, 1); ``None``: 0.9 (the streaming paper's) when both
        networks are unmasked, else 0 (the masks replace it)
    :param normalize_observations: normalize observations with running (Welford) statistics
    :param mask_seed: seed of the masks and of SparseInit (``None``: drawn from torch's global
        generator, which the model's seed sets)
    :param exact_masks: keep exactly ``round(d * N)`` weights per tensor instead of Bernoulli draws
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        hidden_dim: int = 128,
        num_layers: int = 2,
        actor_sparsity: float = 0.0,
        critic_sparsity: float = 0.0,
        sparse_init: float | None = None,
        normalize_observations: bool = True,
        mask_seed: int | None = None,
        exact_masks: bool = False,
    ) -> None:
        check_flat_box_spaces(observation_space, action_space, type(self).__name__)
        self.hidden_dim = check_int("hidden_dim", hidden_dim)
        self.num_layers = check_int("num_layers", num_layers)
        self.actor_sparsity = check_sparsity("actor_sparsity", actor_sparsity)
        self.critic_sparsity = check_sparsity("critic_sparsity", critic_sparsity)
        if sparse_init is None:
            masked = self.actor_sparsity > 0 or self.critic_sparsity > 0
            sparse_init = 0.0 if masked else DEFAULT_SPARSE_INIT
        self.sparse_init = check_sparsity("sparse_init", sparse_init)
        normalize_observations = check_bool("normalize_observations", normalize_observations)
        exact_masks = check_bool("exact_masks", exact_masks)
        mask_seed = check_seed("mask_seed", mask_seed, optional=True)
        if mask_seed is None:
            mask_seed = int(th.randint(0, 2**62, (1,)).item())
        self.normalize_observations, self.mask_seed, self.exact_masks = normalize_observations, mask_seed, exact_masks
        super().__init__(observation_space, action_space, squash_output=False)
        self._build(lr_schedule)

    def _build(self, lr_schedule: Schedule) -> None:
        observation_dim, action_dim = get_flattened_obs_dim(self.observation_space), get_action_dim(self.action_space)
        generator = th.Generator().manual_seed(self.mask_seed)
        self.observation_statistics = WelfordStatistics(observation_dim) if self.normalize_observations else None
        self.actor = StreamingGaussianActor(observation_dim, action_dim, self.hidden_dim, self.num_layers)
        self.critic = StreamingCritic(observation_dim, self.hidden_dim, self.num_layers)
        for network, sparsity in ((self.actor, self.actor_sparsity), (self.critic, self.critic_sparsity)):
            if self.sparse_init > 0:
                sparse_init_network_(network, self.sparse_init, generator)
            if sparsity > 0:
                prune_erdos_renyi_(network, sparsity, generator, exact=self.exact_masks)

    def normalize(self, observations: th.Tensor) -> th.Tensor:
        """Observations normalized with the current statistics (unchanged when not normalizing)."""
        return self.observation_statistics(observations) if self.observation_statistics is not None else observations

    def update_observation_statistics(self, observation: th.Tensor) -> None:
        """
        Add one observation to the running statistics (the algorithm calls this for every observation it sees).

        :param observation: one observation
        """
        if self.observation_statistics is not None:
            self.observation_statistics.update(observation)

    def distribution(self, normalized_observations: th.Tensor) -> Normal:
        """The action distribution at already normalized observations."""
        mean, std = self.actor(normalized_observations)
        return Normal(mean, std)

    def value(self, normalized_observations: th.Tensor) -> th.Tensor:
        """State values, shape ``(batch, 1)``, at already normalized observations."""
        return self.critic(normalized_observations)

    def forward(self, obs: th.Tensor, deterministic: bool = False) -> th.Tensor:
        return self._predict(obs, deterministic)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        distribution = self.distribution(self.normalize(observation.float()))  # type: ignore[union-attr]
        return distribution.mean if deterministic else distribution.sample()

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            lr_schedule=self._dummy_schedule,
            hidden_dim=self.hidden_dim,
            num_layers=self.num_layers,
            actor_sparsity=self.actor_sparsity,
            critic_sparsity=self.critic_sparsity,
            sparse_init=self.sparse_init,
            normalize_observations=self.normalize_observations,
            mask_seed=self.mask_seed,
            exact_masks=self.exact_masks,
        )
        return data

    def format_density_report(self) -> str:
        """Per-tensor density tables of the actor and the critic (SparseInit zeros are not counted: they can regrow)."""
        tables = (format_density_report(self.actor, "actor"), format_density_report(self.critic, "critic"))
        return "\n\n".join(tables)
