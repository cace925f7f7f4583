"""Stream AC(lambda): streaming actor-critic with eligibility traces and ObGD, as an SB3 algorithm
(``StreamAC("SparseSimBaPolicy", env)``), with the streaming paper's SparseInit or static
Erdős–Rényi masks."""

from sb3_sparse.stream_ac.obgd import ObGD
from sb3_sparse.stream_ac.policies import StreamACPolicy
from sb3_sparse.stream_ac.stream_ac import StreamAC

__all__ = ["ObGD", "StreamAC", "StreamACPolicy"]
