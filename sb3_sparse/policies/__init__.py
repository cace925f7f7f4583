"""Sparse SimBa policies, one module per algorithm family; the shared construction path in
``common.py``, image observations in ``pixels.py``."""

from sb3_sparse.policies.common import SimBaArchitecture
from sb3_sparse.policies.crossq import SparseSimBaCrossQPolicy
from sb3_sparse.policies.pixels import SparseSimBaCnnPolicy, SparseSimBaCnnTD3Policy
from sb3_sparse.policies.sac import SparseSimBaPolicy
from sb3_sparse.policies.td3 import SparseSimBaTD3Policy
from sb3_sparse.policies.tqc import SparseSimBaTQCPolicy

__all__ = [
    "SimBaArchitecture",
    "SparseSimBaCnnPolicy",
    "SparseSimBaCnnTD3Policy",
    "SparseSimBaCrossQPolicy",
    "SparseSimBaPolicy",
    "SparseSimBaTD3Policy",
    "SparseSimBaTQCPolicy",
]
