"""Sparse SimBa policies, one module per algorithm family."""

from sb3_sparse.policies.common import SimBaArchitecture
from sb3_sparse.policies.sac import SparseSimBaPolicy

__all__ = ["SimBaArchitecture", "SparseSimBaPolicy"]
