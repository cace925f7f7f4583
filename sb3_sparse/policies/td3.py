"""``SparseSimBaTD3Policy`` for SB3's TD3 and DDPG: a deterministic SimBa actor (tanh head) and
SimBa critics with static Erdős–Rényi masks; target actor and target critics keep the masks."""

from __future__ import annotations

import torch as th
from stable_baselines3.common.type_aliases import PyTorchObs
from stable_baselines3.td3.policies import TD3Policy

from sb3_sparse.networks import DeterministicActorNetwork
from sb3_sparse.policies.common import SparseSimBaMixin
from sb3_sparse.policies.simba_modules import SimBaActorBase, SimBaContinuousCritic


class SimBaTD3Actor(SimBaActorBase):
    """
    SB3's TD3 ``Actor`` (TD3, DDPG) around :class:`sb3_sparse.networks.DeterministicActorNetwork`,
    pruned at construction; the arguments are those of :class:`~sb3_sparse.policies.simba_modules.SimBaActorBase`.
    """

    network_class = DeterministicActorNetwork

    def forward(self, obs: th.Tensor) -> th.Tensor:
        return self.network(self.extract_features(obs, self.features_extractor))

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        # Deterministic either way: exploration noise is added by the algorithm.
        return self(observation)


class SparseSimBaTD3Policy(SparseSimBaMixin, TD3Policy):
    """
    TD3/DDPG policy with a deterministic SimBa actor and SimBa critics, pruned once with
    Erdős–Rényi densities and kept static; registered as ``"SparseSimBaPolicy"`` for TD3 and DDPG
    (DDPG passes ``n_critics=1``). The arguments are those of
    :class:`~sb3_sparse.policies.sac.SparseSimBaPolicy` (without gSDE).

    :param observation_space: observation space (any SB3 takes)
    :param action_space: action space (a Box)
    :param lr_schedule: learning rate schedule
    :param n_critics: number of critics (TD3: 2, DDPG: 1)
    :param optimizer_class: optimizer of actor and critic
    :param optimizer_kwargs: keyword arguments of the optimizer (Adam/AdamW get ``fused=True`` unless set)
    :param kwargs: the SimBa and sparsity settings of :class:`~sb3_sparse.policies.architecture.SimBaArchitecture`
    """

    actor_class = SimBaTD3Actor
    critic_class = SimBaContinuousCritic
    target_networks = ("actor", "critic")
    critic_optimizes_shared_extractor = True
    actor: SimBaTD3Actor  # type: ignore[assignment]
    actor_target: SimBaTD3Actor  # type: ignore[assignment]
    critic: SimBaContinuousCritic  # type: ignore[assignment]
    critic_target: SimBaContinuousCritic  # type: ignore[assignment]


class SparseSimBaTD3MultiInputPolicy(SparseSimBaTD3Policy):
    """``SparseSimBaMultiInputPolicy`` of TD3 and DDPG: Dict observations (HER's goal-conditioned
    tasks), as :class:`~sb3_sparse.policies.sac.SparseSimBaMultiInputPolicy`; the arguments are those of
    :class:`SparseSimBaTD3Policy`."""

    dict_observations = True
