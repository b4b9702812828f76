"""What the clearing's grid model predicted for the delivered period, next to what the physical layer found.

Every step with AC physics, the linear T&D model the clearings use is evaluated for the delivered
(first) period: around the same linearisation point the step's market instance used, at the
forecast injections plus the delivered activations. Its limit violations are compared element by
element (T branches, D bus voltages, D branches) with those of the AC state, giving confusion
counts (true/false positives, false negatives) and the voltage error at the elements violated in
either. Summed over steps and cells they give the model's precision and recall
(:func:`precision_recall`); with perfect forecasts they measure the grid model alone.
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

    def violated(self, st: BaseState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(T branches, D voltages, D branches) violation flags and the D bus voltages [pu]."""
        c = self.c
        t = np.abs(np.asarray(st.t_flow_mw[0], float)[c.t_limited]) / c.t_rating * 100.0 > 100.0 + c.loading_tol
        w = np.concatenate([x[0] for x in st.d_w_pu2]) if st.d_w_pu2 else np.zeros(0)
        v = np.sqrt(np.maximum(w, 0.0))
        dv = np.maximum(v - c.v_max, 0.0) + np.maximum(c.v_min - v, 0.0) > c.voltage_tol
        p = np.concatenate([x[0] for x in st.d_p_mw]) if st.d_p_mw else np.zeros(0)
        q = np.concatenate([x[0] for x in st.d_q_mvar]) if st.d_q_mvar else np.zeros(0)
        dl = np.hypot(p[c.d_limited], q[c.d_limited]) / c.d_rating * 100.0 > 100.0 + c.loading_tol
        return np.concatenate([t, dv, dl]), v, np.r_[np.zeros(len(t), bool), np.ones(len(dv) + len(dl), bool)]

    def __call__(self, predicted: BaseState, realised: BaseState, forecast: BaseState) -> dict[str, float]:
        """Confusion counts of ``predicted`` against ``realised``, and the D violations of
        ``forecast`` (the delivered period before any activation: the congestion the market faced)."""
        ff, _, is_d_f = self.violated(forecast)
        pf, pv, is_d = self.violated(predicted)
        rf, rv, _ = self.violated(realised)
        c = self.c
        dev = np.maximum(pv - c.v_max, 0.0) + np.maximum(c.v_min - pv, 0.0)
        n_t = len(c.t_limited)
        either_v = pf[n_t:n_t + len(pv)] | rf[n_t:n_t + len(rv)]
        err = float(np.abs(pv - rv)[either_v].max()) if either_v.any() else 0.0
        return {"model_tp": float((pf & rf).sum()), "model_fp": float((pf & ~rf).sum()),
                "model_fn": float((~pf & rf).sum()), "model_d_tp": float((pf & rf & is_d).sum()),
                "model_d_fp": float((pf & ~rf & is_d).sum()), "model_d_fn": float((~pf & rf & is_d).sum()),
                "model_max_voltage_dev_pu": float(dev.max()) if len(dev) else 0.0,
                "model_voltage_error_pu": err, "forecast_d_violations": float((ff & is_d_f).sum())}


def precision_recall(tp: float, fp: float, fn: float) -> tuple[float, float]:
    """Precision and recall of predicted violated elements (NaN where undefined)."""
    precision = tp / (tp + fp) if tp + fp > 0 else float("nan")
    recall = tp / (tp + fn) if tp + fn > 0 else float("nan")
    return precision, recall
