"""The grid-model check: element-wise confusion counts on hand-made states, and the clearing's
model against AC physics over whole episodes with perfect forecasts."""

from __future__ import annotations

import numpy as np
import pytest

from smartnet_gym.config import load_scenario
from smartnet_gym.grid.build import build_system
from smartnet_gym.grid.linear import BaseState
from smartnet_gym.simulation.compare import run_scheme
from smartnet_gym.simulation.model_check import ModelCheck, precision_recall
from smartnet_gym.simulation.physics import ViolationCheck
from smartnet_gym.study.model_validation import PERFECT_FORECASTS


def _state(system, w_by_area, t_scale=0.0):
    """A one-period state: T flows at ``t_scale`` × rating, zero D flows, given squared voltages."""
    lin = system.linear
    rating = np.where(np.isfinite(lin.dc.rating_mw), lin.dc.rating_mw, 0.0)
    n = [len(f.v_min_pu) for f in lin.feeders]
    return BaseState((t_scale * rating)[None], tuple(np.zeros((1, k)) for k in n),
                     tuple(np.zeros((1, k)) for k in n), tuple(np.asarray(w)[None] for w in w_by_area))


def test_confusion_counts_of_hand_made_states(toy_system):
    check = ModelCheck(ViolationCheck(toy_system))
    n = [len(f.v_min_pu) for f in toy_system.linear.feeders]
    assert len(n) == 1 and n[0] >= 4
    ok = np.full(n[0], 1.0)
    pred, real = ok.copy(), ok.copy()
    pred[[0, 1]] = 1.06 ** 2            # predicted over-voltage at buses 0, 1
    real[[1, 2]] = 0.94 ** 2            # realised under-voltage at 1 (a hit, other side) and 2 (missed)
    forecast = ok.copy()
    forecast[[0, 1, 2]] = 1.07 ** 2     # before activations: three buses over
    out = check(_state(toy_system, [pred], 1.2), _state(toy_system, [real], 0.5), _state(toy_system, [forecast]))
    n_t = len(ViolationCheck(toy_system).t_limited)
    assert (out["model_tp"], out["model_fp"], out["model_fn"]) == (1, 1 + n_t, 1)
    assert (out["model_d_tp"], out["model_d_fp"], out["model_d_fn"]) == (1, 1, 1)
    assert out["model_max_voltage_dev_pu"] == pytest.approx(0.01)
    assert out["model_voltage_error_pu"] == pytest.approx(0.12)     # bus 1: 1.06 vs 0.94
    assert out["forecast_d_violations"] == 3
    assert precision_recall(1, 1, 1) == (0.5, 0.5)
    assert np.isnan(precision_recall(0, 0, 3)[0]) and precision_recall(0, 0, 3)[1] == 0


@pytest.mark.slow
@pytest.mark.parametrize("day", [10, 182])
def test_clearing_model_sees_what_ac_finds_with_perfect_forecasts(day):
    """italy-like, AC physics, perfect forecasts: the model's violated D elements of each delivered
    period are the realised ones (OLTC moves are in the next step's linearisation point)."""
    cfg = load_scenario("italy-like", {**PERFECT_FORECASTS, "data": {**PERFECT_FORECASTS["data"], "start_day": day}})
    steps = run_scheme(build_system(cfg), cfg, "CS_A", 96, 0, "ac")
    tp, fp, fn = (steps[f"model_d_{k}"].sum() for k in ("tp", "fp", "fn"))
    precision, recall = precision_recall(tp, fp, fn)
    assert tp > 10 and precision >= 0.9 and recall >= 0.9
    assert steps["model_voltage_error_pu"].max() < 2e-3


def test_moving_the_first_period_shifts_it_alone_and_copies():
    """The AC check's correction: period 0 of every field becomes base + (seen − modelled), the later
    periods and the base itself stay as they were."""
    rng = np.random.default_rng(3)
    sizes = (4, 7)

    def state(h):
        return BaseState(rng.normal(size=(h, 5)), *(tuple(rng.normal(size=(h, n)) for n in sizes) for _ in range(3)))

    base, seen, modelled = state(3), state(1), state(1)
    before = [x.copy() for x in (base.t_flow_mw, *base.d_p_mw, *base.d_q_mvar, *base.d_w_pu2)]
    moved = base.first_period_moved(seen, modelled)
    fields = lambda st: (st.t_flow_mw, *st.d_p_mw, *st.d_q_mvar, *st.d_w_pu2)
    for m, b, s_, d in zip(fields(moved), before, fields(seen), fields(modelled), strict=True):
        np.testing.assert_allclose(m[0], b[0] + s_[0] - d[0], rtol=0, atol=1e-12)
        np.testing.assert_array_equal(m[1:], b[1:])
    for b, now in zip(before, fields(base), strict=True):
        np.testing.assert_array_equal(b, now)


def test_linear_physics_records_no_model_check(toy_system, toy_config):
    steps = run_scheme(toy_system, toy_config, "CS_D", 3, 0, "linear")
    assert steps["model_tp"].isna().all()


@pytest.mark.slow
def test_linear_physics_follows_ac_over_the_day():
    """italy-like, a January day, perfect forecasts, CS_A (no D activations): with a new
    linearisation point every hour the linear layer finds the AC layer's violations; with the
    episode start's point only it drifts (the OLTCs regulate in AC all day)."""
    over = {**PERFECT_FORECASTS, "data": {**PERFECT_FORECASTS["data"], "start_day": 10}}
    cfg = load_scenario("italy-like", over)
    system = build_system(cfg)
    ac = run_scheme(system, cfg, "CS_A", 96, 0, "ac")["d_violations"].sum()
    hourly = run_scheme(system, cfg, "CS_A", 96, 0, "linear")["d_violations"].sum()
    stale_cfg = load_scenario("italy-like", {**over, "simulation": {"relinearize_every_steps": 0}})
    stale = run_scheme(system, stale_cfg, "CS_A", 96, 0, "linear")["d_violations"].sum()
    assert ac > 50
    assert abs(hourly - ac) <= 0.15 * ac
    assert abs(stale - ac) > 2 * abs(hourly - ac)


@pytest.mark.slow
def test_ac_check_of_the_dispatch_removes_the_transmission_overloads():
    """spain-like, a December day, perfect forecasts, AC physics, CS_A: relieving T branches by 30–45 %
    of their rating to 100 % in the DC model leaves them a few % over in AC, overloads the model
    misses; checking each dispatch with a power flow and clearing again with the base moved
    (``simulation.ac_check_rounds``) leaves the AC layer none."""
    over = {**PERFECT_FORECASTS, "data": {**PERFECT_FORECASTS["data"], "start_day": 346}}
    system = build_system(load_scenario("spain-like", over))
    runs = {r: run_scheme(system, load_scenario("spain-like", {**over, "simulation": {"ac_check_rounds": r}}),
                          "CS_A", 96, 0, "ac") for r in (0, 2)}
    unchecked, checked = runs[0], runs[2]
    t_missed = (unchecked["model_fn"] - unchecked["model_d_fn"]).sum()
    assert unchecked["t_violations"].sum() >= 10 and t_missed == unchecked["t_violations"].sum()
    assert unchecked["ac_reclears"].sum() == 0
    assert checked["t_violations"].sum() == 0 and checked["ac_reclears"].sum() > 0
    assert checked["unwanted_cost_eur"].sum() < unchecked["unwanted_cost_eur"].sum()
