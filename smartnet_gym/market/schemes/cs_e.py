"""CS_E integrated flexibility market: an independent operator maximises welfare.

BRPs submit buy bids for their own portfolio imbalances (with a willingness to pay); TSO and
DSO needs for congestion enter as their willingness to pay (the network penalties). Opposite
BRP positions both buy, so more flexibility is activated than the net system need.
"""

from smartnet_gym.market.schemes.base import Scheme
from smartnet_gym.market.stages import JointClearing


def cs_e(lin, cfg, backend: str) -> Scheme:
    return Scheme("CS_E", "centralized", [JointClearing(lin, cfg, backend, with_buyers=True)], lin, cfg)
