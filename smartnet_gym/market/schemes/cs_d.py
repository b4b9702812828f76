"""CS_D common TSO–DSO AS market: one joint program (centralized) or its exact decomposition.

The decentralized variant lets each DSO turn its D bids into interface supply curves (Benders
cuts of its local cost as a function of the interface exchange, which respect its grid), the
TSO clears against those curves, and the DSOs disaggregate; it reproduces the centralized
optimum (tested).
"""

from smartnet_gym.market.decomposition import DecentralizedJoint
from smartnet_gym.market.schemes.base import Scheme
from smartnet_gym.market.stages import JointClearing


def cs_d(lin, cfg, backend: str) -> Scheme:
    if cfg.variant == "decentralized":
        return Scheme("CS_D", "decentralized", [DecentralizedJoint(lin, cfg, backend)], lin, cfg)
    return Scheme("CS_D", "centralized", [JointClearing(lin, cfg, backend)], lin, cfg)
