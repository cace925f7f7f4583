"""sb3-sparse: network sparsity (Erdős–Rényi masks on SimBa networks, static or dynamic) for Stable-Baselines3.

``import sb3_sparse`` registers ``"SparseSimBaPolicy"`` with SAC, TD3, DDPG, TQC, CrossQ, PPO, A2C,
TRPO, MaskablePPO, RecurrentPPO, DQN and QR-DQN (``"SparseSimBaCnnPolicy"``, for images, with all of
them but CrossQ, and ``"SparseSimBaMultiInputPolicy"``, for Dict observations, with all of them), makes ``learn()`` update the
policy's observation statistics, and registers the DeepMind Control suite tasks as
``sb3_sparse/dmc-<domain>-<task>-v0`` gymnasium ids (``sb3_sparse/dmc-pixels-<domain>-<task>-v0``
from pixels). ``ReferenceSAC`` and ``ReferenceDDPG`` perform the paper's reference code's own
updates. ``topology="set" | "rigl" | "gmp"`` in the policy_kwargs trains with masks that change
(:mod:`sb3_sparse.topology`). ``StreamAC`` is a streaming actor-critic (Stream AC(lambda)) for the same masks.
"""

from sb3_sparse.buffers import DrQReplayBuffer
from sb3_sparse.callbacks import (
    ObservationNormalizerCallback,
    PlasticityCallback,
    ResetCallback,
    SeededEvalCallback,
    SparsityLogCallback,
    TopologyScheduleCallback,
)
from sb3_sparse.distributions import ExactSquashedDiagGaussianDistribution
from sb3_sparse.envs import (
    dmc_env_id,
    dmc_pixel_env_id,
    make_dmc_env,
    make_dmc_pixel_env,
    register_atari_envs,
    register_dmc_envs,
)
from sb3_sparse.policies import (
    SimBaArchitecture,
    SparseSimBaActorCriticPolicy,
    SparseSimBaCnnPolicy,
    SparseSimBaCnnTD3Policy,
    SparseSimBaCrossQPolicy,
    SparseSimBaDQNPolicy,
    SparseSimBaMaskablePolicy,
    SparseSimBaPolicy,
    SparseSimBaQRDQNPolicy,
    SparseSimBaTD3Policy,
    SparseSimBaTQCPolicy,
)
from sb3_sparse.reference import ReferenceDDPG, ReferenceSAC
from sb3_sparse.registration import (
    install_policy_callbacks_hook,
    install_policy_name_hint,
    install_saved_algorithm_check,
    register_policies,
)
from sb3_sparse.robotics import register_robotics_envs
from sb3_sparse.sparsity import (
    MaskEnforcer,
    apply_masks_,
    density_report,
    erdos_renyi_densities,
    format_density_report,
    named_masks,
    overall_density,
    prune_erdos_renyi_,
    pruned_weights_are_zero,
    sample_mask,
    sparse_init_,
)
from sb3_sparse.stream_ac import StreamAC, StreamACPolicy
from sb3_sparse.topology import DynamicMaskEnforcer, TopologySchedule
from sb3_sparse.training_state import load_training_state, save_training_state

__version__ = "0.2.0"

register_policies()
install_policy_callbacks_hook()
install_policy_name_hint()
install_saved_algorithm_check()
register_dmc_envs()
register_atari_envs()
register_robotics_envs()

__all__ = [
    "DrQReplayBuffer",
    "DynamicMaskEnforcer",
    "ExactSquashedDiagGaussianDistribution",
    "MaskEnforcer",
    "ObservationNormalizerCallback",
    "PlasticityCallback",
    "ReferenceDDPG",
    "ReferenceSAC",
    "ResetCallback",
    "SeededEvalCallback",
    "SimBaArchitecture",
    "SparseSimBaActorCriticPolicy",
    "SparseSimBaCnnPolicy",
    "SparseSimBaCnnTD3Policy",
    "SparseSimBaCrossQPolicy",
    "SparseSimBaDQNPolicy",
    "SparseSimBaMaskablePolicy",
    "SparseSimBaPolicy",
    "SparseSimBaQRDQNPolicy",
    "SparseSimBaTD3Policy",
    "SparseSimBaTQCPolicy",
    "SparsityLogCallback",
    "StreamAC",
    "StreamACPolicy",
    "TopologySchedule",
    "TopologyScheduleCallback",
    "__version__",
    "apply_masks_",
    "density_report",
    "dmc_env_id",
    "dmc_pixel_env_id",
    "erdos_renyi_densities",
    "format_density_report",
    "load_training_state",
    "make_dmc_env",
    "make_dmc_pixel_env",
    "named_masks",
    "overall_density",
    "prune_erdos_renyi_",
    "pruned_weights_are_zero",
    "register_atari_envs",
    "register_dmc_envs",
    "register_robotics_envs",
    "sample_mask",
    "save_training_state",
    "sparse_init_",
]
