"""CS_B local AS market: each DSO clears its own congestion first, then forwards what is left.

Unused D bids go to the TSO market at their interface, within aggregate limits the DSO
computes on its grid; the TSO then covers the system imbalance, including the imbalance the
local activations created (they cannot net against it — SmartNet's sequential-clearing loss).
"""

from smartnet_gym.market.schemes.base import Scheme
from smartnet_gym.market.stages import ForwardLimits, LocalClearing, TsoClearing, dso_blocks


def cs_b(lin, cfg, backend: str) -> Scheme:
    blocks = dso_blocks(lin, backend)
    stages = [LocalClearing(lin, cfg, backend, b, balance=False) for b in blocks]
    stages += [ForwardLimits(lin, cfg, backend, b) for b in blocks]
    stages.append(TsoClearing(lin, cfg, backend, d_access=True, use_limits=True, need="residual"))
    return Scheme("CS_B", "centralized", stages, lin, cfg)
