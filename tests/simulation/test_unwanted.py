"""Forced measures and unresolved violations: one valuation (VoLL through the grid's sensitivities),
independent of the market's penalties; checked against hand computations on the toy system."""

from __future__ import annotations

import numpy as np
import pytest

from smartnet_gym.config import load_scenario
from smartnet_gym.grid.build import build_system
from smartnet_gym.grid.linear import BaseState
from smartnet_gym.market.penalties import (
    balance_penalty,
    flow_penalty,
    root_gains,
    voltage_penalty,
    voltage_self_sensitivity,
)
from smartnet_gym.market.program import DT_H
from smartnet_gym.simulation.compare import run_scheme
from smartnet_gym.simulation.unwanted import UnwantedMeasures


def _path_r(f, k: int) -> float:
    """Σ r from the root to D bus k, walking the parents (independent of the pointer jumping)."""
    total = 0.0
    while k >= 0:
        total += f.r_pu[k]
        k = f.parent[k]
    return total


def _root_gain(lin, a: int, k: int) -> float:
    """Rise of D bus k's squared voltage per MW injected there through its tree root's own rise:
    the root's d(V²)/dP at itself times the factor at k (``LinearTD.root_coupling``)."""
    f, rc = lin.feeders[a], lin.root_coupling
    top = k
    while f.parent[top] >= 0:
        top = f.parent[top]
    root = int(f.root_t[top])
    return max(rc.top_scale[a][k] * rc.dw_dp[list(rc.roots).index(root), root], 0.0)


def _self_sensitivity(lin, a: int, k: int) -> float:
    return 2 * _path_r(lin.feeders[a], k) + _root_gain(lin, a, k)


def _flat_state(system, w: float) -> BaseState:
    """No flows, every D bus at squared voltage ``w``."""
    lin = system.linear
    return BaseState(np.zeros((1, len(lin.dc.rating_mw))), *(tuple(np.full((1, f.n_bus), x) for f in lin.feeders)
                                                             for x in (0.0, 0.0, w)))


def test_self_sensitivity_is_twice_the_path_resistance_plus_the_roots_rise(toy_system, default_system):
    for system in (toy_system, default_system):
        lin = system.linear
        gains = root_gains(lin)
        for a, f in enumerate(lin.feeders):
            expect = [2 * _path_r(f, k) for k in range(f.n_bus)]
            np.testing.assert_allclose(voltage_self_sensitivity(f), expect, rtol=1e-12)
            expect = [_self_sensitivity(lin, a, k) for k in range(f.n_bus)]
            np.testing.assert_allclose(voltage_self_sensitivity(f, gains[f.area]), expect, rtol=1e-12)
            assert (gains[f.area] > 0).any()        # the model's roots do move


def test_market_penalties_never_exceed_what_forced_measures_pay(toy_config, toy_system):
    f = toy_system.linear.feeders[0]
    removal = toy_config.simulation.voll_eur_per_mwh / voltage_self_sensitivity(f)
    for scale in (0.1, 1.0, 10.0, 100.0):
        for flat in (None, 1e3, 1e9):
            m = toy_config.market.model_copy(update={"penalty_scale": scale, "voltage_penalty_eur_per_pu2h": flat})
            assert flow_penalty(m) <= toy_config.simulation.voll_eur_per_mwh
            assert balance_penalty(m) <= toy_config.market.balance_penalty_eur_per_mwh
            assert (voltage_penalty(f, m) <= removal * (1 + 1e-12)).all()
    assert toy_config.market.network_penalty_eur_per_mwh == toy_config.simulation.voll_eur_per_mwh


def test_an_unresolved_transmission_overload_is_priced_through_its_ptdf(default_system, default_config):
    """Every limited T branch 10 MW over its rating, nothing to curtail or shed: unresolved at
    VoLL / max_k |PTDF_lk| per MW·h, the PTDFs from a dense solve of the full (not reduced) B."""
    lin = default_system.linear
    dc = lin.dc
    voll = default_config.simulation.voll_eur_per_mwh
    um = UnwantedMeasures(default_system, default_config.market, voll)
    lim = np.flatnonzero(np.isfinite(dc.rating_mw))
    flow = np.zeros((1, dc.n_branch))
    flow[0, lim] = dc.rating_mw[lim] + 10.0
    st = BaseState(flow, *(tuple(np.zeros((1, f.n_bus)) for f in lin.feeders) for _ in range(2)),
                   tuple(np.ones((1, f.n_bus)) for f in lin.feeders))
    bf = dc.flow_matrix().toarray()
    b = dc.susceptance_matrix().toarray()
    free = np.flatnonzero(~dc.fixed)
    ptdf = np.zeros((dc.n_branch, dc.n_bus))
    for k in free:                       # 1 MW at bus k, withdrawn at the fixed buses (θ = 0 there)
        theta = np.zeros(dc.n_bus)
        theta[free] = np.linalg.lstsq(b[np.ix_(free, free)], (free == k).astype(float), rcond=None)[0]
        ptdf[:, k] = bf @ theta
    best = np.abs(ptdf[lim]).max(axis=1)
    out = um.unresolved(st)
    assert out.cost_eur[-1] == pytest.approx(DT_H * voll * (10.0 / best).sum(), rel=1e-9)
    assert out.cost_eur[-1] > DT_H * voll * 10.0 * len(lim)     # meshed lines are worth more than VoLL


def test_an_irremovable_over_voltage_is_unresolved_and_priced(toy_system, toy_config):
    """Over-voltage everywhere with no generation to curtail: nothing is removed; it is reported
    in pu·h and priced at VoLL / S_k per pu²·h of excess at every bus."""
    um = UnwantedMeasures(toy_system, toy_config.market, toy_config.simulation.voll_eur_per_mwh)
    n_bus = len(toy_system.net.bus)
    out = um.run(_flat_state(toy_system, 1.07 ** 2), np.zeros(n_bus), np.zeros(n_bus))
    assert out.cost_eur == 0.0
    f = toy_system.linear.feeders[0]
    v_max = f.v_max_pu
    dev = 1.07 - v_max
    assert out.unresolved.voltage_pu_h == pytest.approx([DT_H * dev.sum()])
    price = [toy_config.simulation.voll_eur_per_mwh / _self_sensitivity(toy_system.linear, 0, k) for k in range(f.n_bus)]
    expect = DT_H * np.dot(price, 1.07 ** 2 - v_max ** 2)
    assert out.unresolved.cost_eur[0] == pytest.approx(expect, rel=1e-9)
    assert out.unresolved.cost_eur[-1] == 0.0


def test_a_removable_over_voltage_is_removed_at_voll(toy_system, toy_config):
    um = UnwantedMeasures(toy_system, toy_config.market, toy_config.simulation.voll_eur_per_mwh)
    f = toy_system.linear.feeders[0]
    n_bus = len(toy_system.net.bus)
    gen = np.zeros(n_bus)
    gen[toy_system.net.bus.index.get_indexer(f.bus)] = 50.0       # plenty to curtail at every D bus
    w = np.ones((1, f.n_bus))
    end = int(np.argmax(voltage_self_sensitivity(f)))
    w[0, end] = 1.055 ** 2                                         # one over-voltage at the feeder end
    lin = toy_system.linear
    st = BaseState(np.zeros((1, len(lin.dc.rating_mw))), (np.zeros((1, f.n_bus)),), (np.zeros((1, f.n_bus)),), (w,))
    out = um.run(st, np.zeros(n_bus), gen)
    assert out.unresolved.cost_eur.sum() < 1e-6 * out.cost_eur
    assert out.cost_eur == pytest.approx(DT_H * toy_config.simulation.voll_eur_per_mwh * out.unit_mw.sum())
    # the cheapest removal: curtail at the violated bus (its sensitivity S_k is the largest there)
    need_mw = (1.055 ** 2 - f.v_max_pu[end] ** 2) / _self_sensitivity(toy_system.linear, 0, end)
    assert out.unit_mw.sum() == pytest.approx(need_mw, rel=1e-6)


def test_forced_measures_do_not_depend_on_the_market_penalties():
    """A T-only market (CS_A) with every market penalty scaled: the same day, cost for cost."""
    totals = []
    for scale in (0.1, 1.0, 10.0):
        cfg = load_scenario("toy", {"market": {"penalty_scale": scale}, "grid": {"v_max_pu": 1.02, "v_min_pu": 0.98}})
        steps = run_scheme(build_system(cfg), cfg, "CS_A", 96, 0, "linear")
        totals.append(steps[["unwanted_cost_eur", "unresolved_cost_eur"]].sum().to_numpy())
    assert totals[0][0] > 0
    np.testing.assert_allclose(totals[0], totals[1], rtol=1e-9)
    np.testing.assert_allclose(totals[2], totals[1], rtol=1e-9)


def test_forced_measures_remove_overloads_of_the_full_rating(toy_system, toy_config):
    """The market's flow reliability margin is the market's: forced measures act at the ratings."""
    m = toy_config.market.model_copy(update={"flow_reliability_margin_pct": 10.0})
    um = UnwantedMeasures(toy_system, m, toy_config.simulation.voll_eur_per_mwh)
    dc = toy_system.linear.dc
    np.testing.assert_array_equal(um.prog.m.t_lim_mw, dc.rating_mw[um.prog.m.t_lim_branch])
