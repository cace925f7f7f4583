"""Sparse SimBa policies, one module per algorithm family (off-policy actor-critics: ``sac.py``,
``td3.py``, ``tqc.py``, ``crossq.py``; ``on_policy.py``; ``value_based.py``); what they share in
``common.py``, image observations in ``pixels.py``."""

from sb3_sparse.policies.architecture import SimBaArchitecture
from sb3_sparse.policies.crossq import SparseSimBaCrossQMultiInputPolicy, SparseSimBaCrossQPolicy
from sb3_sparse.policies.on_policy import (
    SparseSimBaActorCriticPolicy,
    SparseSimBaMaskablePolicy,
    SparseSimBaMultiInputActorCriticPolicy,
    SparseSimBaMultiInputMaskablePolicy,
)
from sb3_sparse.policies.pixels import SparseSimBaCnnPolicy, SparseSimBaCnnTD3Policy, SparseSimBaCnnTQCPolicy
from sb3_sparse.policies.sac import SparseSimBaMultiInputPolicy, SparseSimBaPolicy
from sb3_sparse.policies.td3 import SparseSimBaTD3MultiInputPolicy, SparseSimBaTD3Policy
from sb3_sparse.policies.tqc import SparseSimBaTQCMultiInputPolicy, SparseSimBaTQCPolicy
from sb3_sparse.policies.value_based import (
    SparseSimBaDQNPolicy,
    SparseSimBaMultiInputDQNPolicy,
    SparseSimBaMultiInputQRDQNPolicy,
    SparseSimBaQRDQNPolicy,
)

__all__ = [
    "SimBaArchitecture",
    "SparseSimBaActorCriticPolicy",
    "SparseSimBaCnnPolicy",
    "SparseSimBaCnnTD3Policy",
    "SparseSimBaCnnTQCPolicy",
    "SparseSimBaCrossQMultiInputPolicy",
    "SparseSimBaCrossQPolicy",
    "SparseSimBaDQNPolicy",
    "SparseSimBaMaskablePolicy",
    "SparseSimBaMultiInputActorCriticPolicy",
    "SparseSimBaMultiInputDQNPolicy",
    "SparseSimBaMultiInputMaskablePolicy",
    "SparseSimBaMultiInputPolicy",
    "SparseSimBaMultiInputQRDQNPolicy",
    "SparseSimBaPolicy",
    "SparseSimBaQRDQNPolicy",
    "SparseSimBaTD3MultiInputPolicy",
    "SparseSimBaTD3Policy",
    "SparseSimBaTQCMultiInputPolicy",
    "SparseSimBaTQCPolicy",
]
