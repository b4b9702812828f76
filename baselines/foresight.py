"""Perfect foresight: the market instance of the current step built from *actual* values.

The env and the loop only expose the forecast instance (``RollingLoop.instance()``): forecast
availability, forecast imbalance need and the forecast base network state for the H periods of the
horizon. :func:`actual_instance` builds the same instance from what really happens, so a clearing
of it is the decision an operator with perfect foresight would take, and its yardstick cost is a
lower bound on the cost of any decision on that step (on the common yardstick, the CS_D joint LP).

Source of the actual values: ``loop.forecaster.actual(step)`` for the steps inside the episode
window; the last H−1 periods of the final steps lie past the window, where ``actual`` refuses, so
those are read from the same profiles (``ProfileSet``), which is what ``actual`` returns. The
instance itself is ``RollingLoop.instance_for`` of that snapshot: the loop's own construction
(base state, need = day-ahead schedule − actual, per-area needs, truthful book at the current
state of charge) with the actual values in place of the forecast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from smartnet_gym.data.forecasts import Snapshot
from smartnet_gym.market.stages import MarketInstance

if TYPE_CHECKING:
    from smartnet_gym.simulation.loop import RollingLoop


def actual_snapshot(loop: RollingLoop) -> Snapshot:
    """Actual load and RES of the H periods from the current step: arrays (H, n_load) / (H, n_sgen)."""
    fc = loop.forecaster
    pr = fc.profiles
    end = fc.start_step + fc.n_steps
    snaps = []
    for s in range(loop.t, loop.t + loop.horizon):
        if s < end:
            snaps.append(fc.actual(s))
        else:   # past the episode window: the profiles themselves (= what ``actual`` returns)
            snaps.append(Snapshot(pr.load_p(s).astype(np.float64), pr.load_q(s).astype(np.float64),
                                  pr.sgen_p(s).astype(np.float64)))
    return Snapshot(np.stack([x.load_p for x in snaps]), np.stack([x.load_q for x in snaps]),
                    np.stack([x.sgen_p for x in snaps]))


def actual_instance(loop: RollingLoop) -> MarketInstance:
    """The current step's market instance with actual values instead of forecasts (truthful book)."""
    return loop.instance_for(actual_snapshot(loop))


__all__ = ["actual_instance", "actual_snapshot"]
