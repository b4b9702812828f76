"""CS_A centralized AS market: the TSO clears all T and D bids with transmission constraints only.

The DSO's role is at most a static prequalification (``market.prequalification``); D congestion
is ignored by the market and shows up in the physical layer.
"""

from smartnet_gym.market.schemes.base import Scheme
from smartnet_gym.market.stages import Prequalify, TsoClearing


def cs_a(lin, cfg, backend: str) -> Scheme:
    stages = [Prequalify(lin, cfg, backend)] if cfg.prequalification else []
    stages.append(TsoClearing(lin, cfg, backend, d_access=True, use_limits=False, need="residual"))
    return Scheme("CS_A", "centralized", stages, lin, cfg)
