"""CS_C shared balancing responsibility: fixed T–D exchange; each DSO balances its own area.

Each DSO covers the imbalance arising in its area with local resources only (its grid's
limits apply); the TSO covers the transmission-level imbalance with T resources only.
"""

from smartnet_gym.market.schemes.base import Scheme
from smartnet_gym.market.stages import LocalClearing, TsoClearing, dso_blocks


def cs_c(lin, cfg, backend: str) -> Scheme:
    stages = [LocalClearing(lin, cfg, backend, b, balance=True) for b in dso_blocks(lin, backend)]
    stages.append(TsoClearing(lin, cfg, backend, d_access=False, use_limits=False, need="transmission"))
    return Scheme("CS_C", "centralized", stages, lin, cfg)
