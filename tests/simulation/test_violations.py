"""ViolationCheck (all feeders at once) against a per-branch count written out in full."""

from __future__ import annotations

import numpy as np
import pytest

from smartnet_gym.grid.linear import BaseState
from smartnet_gym.simulation.physics import ViolationCheck


def per_branch(lin, st: BaseState, tol: float = 1e-6):
    """The counts and worst sizes, one feeder branch at a time."""
    t_viol, max_load = 0, 0.0
    for k, rating in enumerate(lin.dc.rating_mw):
        if np.isfinite(rating):
            load = abs(st.t_flow_mw[0][k]) / rating * 100
            t_viol += load > 100 + tol
            max_load = max(max_load, load)
    dv = dl = 0
    max_dev = 0.0
    per_area = []
    for a, f in enumerate(lin.feeders):
        n_a = 0
        for i in range(len(f.v_min_pu)):
            v = np.sqrt(max(st.d_w_pu2[a][0][i], 0.0))
            dev = max(v - f.v_max_pu[i], 0.0) + max(f.v_min_pu[i] - v, 0.0)
            max_dev = max(max_dev, dev)
            dv += dev > tol
            n_a += dev > tol
            if np.isfinite(f.rating_mva[i]):
                load = np.hypot(st.d_p_mw[a][0][i], st.d_q_mvar[a][0][i]) / f.rating_mva[i] * 100
                dl += load > 100 + tol
                n_a += load > 100 + tol
                max_load = max(max_load, load)
        per_area.append(n_a)
    return dv, dl, t_viol, max_dev, max_load, per_area


@pytest.mark.slow
def test_counts_and_worst_sizes_match_a_per_branch_count(default_system):
    lin = default_system.linear
    check = ViolationCheck(default_system)
    rng = np.random.default_rng(0)
    for scale in (0.5, 1.0, 1.3):            # from no violations to many
        st = BaseState(
            rng.normal(size=(1, lin.dc.n_branch)) * scale * np.nan_to_num(lin.dc.rating_mw, posinf=100.0),
            tuple(rng.normal(size=(1, len(f.v_min_pu))) * scale * np.nan_to_num(f.rating_mva, posinf=10.0)
                  for f in lin.feeders),
            tuple(rng.normal(size=(1, len(f.v_min_pu))) * 0.3 * scale * np.nan_to_num(f.rating_mva, posinf=10.0)
                  for f in lin.feeders),
            tuple((1.0 + rng.normal(size=(1, len(f.v_min_pu))) * 0.04 * scale) ** 2 for f in lin.feeders))
        got = check(st)
        dv, dl, tv, dev, load, per_area = per_branch(lin, st)
        assert (got.d_voltage, got.d_loading, got.t_loading) == (dv, dl, tv)
        assert got.max_voltage_dev_pu == dev and got.max_loading_pct == load
        np.testing.assert_array_equal(got.per_area, per_area)
    assert got.d_total > 0 and got.t_loading > 0
