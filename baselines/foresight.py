"""Perfect foresight: the market instance of the current step built from *actual* values.

The env and the loop only expose the forecast instance (``RollingLoop.instance()``): forecast
availability, forecast imbalance need and the forecast base network state for the H periods of the
horizon. :func:`actual_instance` builds the same instance from what really happens, so a clearing
of it is the decision an operator with perfect foresight would take, and its yardstick cost is a
lower bound on the cost of any decision on that step (SPEC §7.4).

Source of the actual values: ``loop.forecaster.actual(step)`` for the steps inside the episode
window; the last H−1 periods of the final steps lie past the window, where ``actual`` refuses, so
those are read from the same profiles (``ProfileSet``), which is what ``actual`` returns. The rest
repeats ``RollingLoop.instance()`` with the actual snapshot in place of the forecast: injections
at the loop's linearisation point, base state, need = day-ahead schedule − actual, per-area needs,
and the truthful book with the actual availability and the current state of charge. (A
``RollingLoop.instance_for(snapshot)`` would remove this repetition.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from smartnet_gym.data.forecasts import Snapshot
from smartnet_gym.grid.linearize import base_state
from smartnet_gym.market.bidders import truthful_book
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
    act = actual_snapshot(loop)
    sch = loop.forecaster.schedule(loop.t)
    p, q = loop.physics.inj.injections(act.load_p, act.load_q, act.sgen_p)
    base = base_state(loop.system.linear, loop.physics.point, p, q)
    area = np.r_[loop.load_area, loop.sgen_area]
    inj_act = np.concatenate([-act.load_p, act.sgen_p], axis=-1)
    inj_sch = np.concatenate([-sch.load_p, sch.sgen_p], axis=-1)
    dev = inj_sch - inj_act                              # (H, n_el): + = shortage vs schedule
    area_need = np.stack([dev[:, area == a].sum(axis=1) for a in range(loop.n_areas)]) if loop.n_areas \
        else np.zeros((0, loop.horizon))
    book = truthful_book(loop.system.units, loop.layout, act.load_p, act.sgen_p, loop.cfg.flex.load_flex_share,
                         loop.soc_mwh)
    return MarketInstance(book, base, dev.sum(axis=1), area_need)


__all__ = ["actual_instance", "actual_snapshot"]
