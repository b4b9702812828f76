"""What the clearing's grid model predicted for the delivered period, next to what the physical layer found.

Every step with AC physics, the linear T&D model the clearings use is evaluated for the delivered
(first) period: around the same linearisation point the step's market instance used, at the
forecast injections plus the delivered activations. Its limit violations are compared element by
element (T branches, D bus voltages, D branches) with those of the AC state, giving confusion
counts (true/false positives, false negatives) and the voltage error at the elements violated in
either. Summed over steps and cells they give the model's precision and recall
(:func:`precision_recall`); with perfect forecasts they measure the grid model alone. The
prediction is the linear model's own, before the AC check of the dispatch
(``simulation.ac_check_rounds``) moved the base: with perfect forecasts that check sees exactly
what the physical layer will find, so a prediction it corrected would measure nothing.
"""

from __future__ import annotations

import numpy as np

from smartnet_gym.grid.linear import BaseState
from smartnet_gym.simulation.physics import ViolationCheck

#: per-step columns of the CBA row (AC physics; NaN with linear physics, where model = physics)
MODEL_COLUMNS = ("model_tp", "model_fp", "model_fn", "model_d_tp", "model_d_fp", "model_d_fn",
                 "model_max_voltage_dev_pu", "model_voltage_error_pu", "forecast_d_violations")


class ModelCheck:
    """Element-wise comparison of two one-period states under the limits of a :class:`ViolationCheck`."""

    def __init__(self, check: ViolationCheck):
        self.c = check
        n_t, n_d = len(check.t_limited), len(check.v_min) + len(check.d_limited)
        self.is_d = np.r_[np.zeros(n_t, bool), np.ones(n_d, bool)]      # flags' distribution elements
        self.voltages = slice(n_t, n_t + len(check.v_min))                # flags' D bus voltages

    def __call__(self, predicted: BaseState, realised: BaseState, forecast: BaseState) -> dict[str, float]:
        """Confusion counts of ``predicted`` against ``realised``, and the D violations of
        ``forecast`` (the delivered period before any activation: the congestion the market faced)."""
        ff, _ = self.c.flags(forecast)
        pf, pe = self.c.flags(predicted)
        rf, re = self.c.flags(realised)
        is_d = self.is_d
        either_v = pf[self.voltages] | rf[self.voltages]
        pv, rv = np.sqrt(np.maximum(pe.w, 0.0)), np.sqrt(np.maximum(re.w, 0.0))
        err = float(np.abs(pv - rv)[either_v].max()) if either_v.any() else 0.0
        return {"model_tp": float((pf & rf).sum()), "model_fp": float((pf & ~rf).sum()),
                "model_fn": float((~pf & rf).sum()), "model_d_tp": float((pf & rf & is_d).sum()),
                "model_d_fp": float((pf & ~rf & is_d).sum()), "model_d_fn": float((~pf & rf & is_d).sum()),
                "model_max_voltage_dev_pu": float(pe.v_dev.max()) if len(pe.v_dev) else 0.0,
                "model_voltage_error_pu": err, "forecast_d_violations": float((ff & is_d).sum())}


def precision_recall(tp: float, fp: float, fn: float) -> tuple[float, float]:
    """Precision and recall of predicted violated elements (NaN where undefined)."""
    precision = tp / (tp + fp) if tp + fp > 0 else float("nan")
    recall = tp / (tp + fn) if tp + fn > 0 else float("nan")
    return precision, recall
