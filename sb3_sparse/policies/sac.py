"""``SparseSimBaPolicy`` for SB3's SAC: SimBa actor and critics with static Erdős–Rényi masks."""

from __future__ import annotations

from typing import Any, ClassVar

from stable_baselines3.sac.policies import SACPolicy

from sb3_sparse.policies.architecture import SQUASHED_GAUSSIAN_KWARGS
from sb3_sparse.policies.common import SparseSimBaMixin
from sb3_sparse.policies.simba_modules import SimBaActor, SimBaContinuousCritic


class SparseSimBaPolicy(SparseSimBaMixin, SACPolicy):
    """
    SAC policy with SimBa actor and critic networks pruned once at initialization with
    Erdős–Rényi layer-wise densities; the masks never change (Ma et al., ICML 2025).

    Observations go through SB3's input stage (``preprocess_obs``, ``features_extractor_class``),
    their continuous parts normalized inside the policy with running statistics shared by the
    actor, the critics and the target critics (:mod:`~sb3_sparse.policies.input_stage`);
    ``import sb3_sparse`` makes ``learn()`` update them once per collected transition (see
    :class:`sb3_sparse.callbacks.ObservationNormalizerCallback`).
    Pruned weights are exactly 0 after every optimizer step: optimizer hooks mask the gradients
    before each step of the actor and of the critic, and the weights after it unless the optimizer
    (Adam, AdamW, SGD, ...) provably leaves them 0 (:class:`sb3_sparse.sparsity.MaskEnforcer`).

    :param observation_space: observation space (any SB3 takes: see :mod:`~sb3_sparse.policies.input_stage`)
    :param action_space: action space (a Box)
    :param lr_schedule: learning rate schedule
    :param n_critics: number of critics (the paper's DMC runs use 1; SB3's default is 2)
    :param optimizer_class: optimizer of actor and critic (e.g. ``th.optim.AdamW``)
    :param optimizer_kwargs: keyword arguments of the optimizer, without the learning rate; Adam and
        AdamW get ``fused=True`` unless ``fused`` or ``foreach`` is given (see ``prefer_fused_optimizer``)
    :param use_sde: gSDE (SB3's state-dependent exploration; ``log_std_init=-3``, ``use_expln=False`` and
        ``clip_mean=2.0`` as in SB3): see :class:`~sb3_sparse.policies.simba_modules.SimBaActor`
    :param kwargs: the SimBa and sparsity settings, see
        :class:`~sb3_sparse.policies.architecture.SimBaArchitecture`: ``actor_hidden_dim=128``,
        ``actor_num_blocks=1``, ``critic_hidden_dim=512``, ``critic_num_blocks=2``,
        ``actor_sparsity=0.8``, ``critic_sparsity=0.8`` (0: dense), ``normalize_observations=True``,
        ``mask_seed=None``, ``exact_masks=False``, ``sparse_backend="auto"``
    """

    actor_class = SimBaActor
    critic_class = SimBaContinuousCritic
    supports_sde = True
    sb3_policy_kwargs: ClassVar[dict[str, Any]] = SQUASHED_GAUSSIAN_KWARGS
    actor: SimBaActor  # type: ignore[assignment]
    critic: SimBaContinuousCritic  # type: ignore[assignment]
    critic_target: SimBaContinuousCritic  # type: ignore[assignment]


class SparseSimBaMultiInputPolicy(SparseSimBaPolicy):
    """
    ``SparseSimBaMultiInputPolicy`` of SAC (SB3's ``MultiInputPolicy``): Dict observations, e.g.
    goal-conditioned tasks with ``HerReplayBuffer``, through SB3's ``CombinedExtractor`` (each key
    flattened, images through a NatureCNN, concatenated in the space's key order) with the
    continuous keys normalized with running statistics (:mod:`~sb3_sparse.policies.input_stage`).
    The arguments are those of :class:`SparseSimBaPolicy`.
    """

    dict_observations = True
