"""The reference code's own SAC and DDPG updates (Ma et al., ICML 2025, built on the SimBa code
base), as SB3 algorithms: :class:`ReferenceSAC` and :class:`ReferenceDDPG`. They take the same
policies as SB3's SAC and DDPG; docs/reproducing.rst lists every difference from SB3's."""

from sb3_sparse.reference.ddpg import ReferenceDDPG
from sb3_sparse.reference.sac import ReferenceSAC

__all__ = ["ReferenceDDPG", "ReferenceSAC"]
