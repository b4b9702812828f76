"""The numba kernels of the linear evaluation against dense computations from the definitions.

``base_state``/``activation_response`` (grid.sensitivity) and ``InjectionMap.injections``
(simulation.physics) run as numba kernels; here they are checked against dense numpy written from
the model's definitions: T injections at their node (D buses at the T root of their tree), a dense
``B_free`` solve for the angles, ancestor matrices built from the feeder parent arrays for the
LinDistFlow flows and voltages, and the point's root coupling.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest

from smartnet_gym.grid.linear import BaseState, DCModel, FeederModel, LinearTD
from smartnet_gym.grid.operating_point import LinearizationPoint
from smartnet_gym.grid.point_from_ac import point_from_net
from smartnet_gym.grid.power_flow import run_ac
from smartnet_gym.grid.sensitivity import activation_response, base_state
from smartnet_gym.grid.system import TDSystem
from smartnet_gym.simulation.physics import InjectionMap

RTOL = 1e-9
SYSTEMS = ["toy_system", pytest.param("default_system", marks=pytest.mark.slow)]


@pytest.fixture(scope="module", params=SYSTEMS)
def case(request) -> tuple[TDSystem, LinearizationPoint]:
    """A system and an AC point with voltage coupling (on a copy of its net)."""
    system = request.getfixturevalue(request.param)
    net = copy.deepcopy(system.net)
    run_ac(net)
    point = point_from_net(net, system.linear)
    assert point.has_voltage_coupling
    return system, point


# ----------------------------------------------------------------------------- dense reference


def _ancestors(parent: np.ndarray) -> np.ndarray:
    """(n, n) with [j, u] = 1 when u is j or one of its ancestors (any order of the parent array)."""
    n = len(parent)
    anc = np.zeros((n, n))
    for j in range(n):
        u = j
        while u >= 0:
            anc[j, u] = 1.0
            u = int(parent[u])
    return anc


def _model_coupling(lin: LinearTD) -> LinearizationPoint | None:
    """A point carrying only the model's own root coupling (``lin.root_coupling``), None without one."""
    rc = lin.root_coupling
    if rc is None:
        return None
    zero = np.zeros(0)
    return LinearizationPoint(zero, (), (), (), zero, zero, root_t=rc.roots, root_dw_dp=rc.dw_dp,
                              root_dw_dq=rc.dw_dq, d_root_scale=rc.top_scale)


def _dense_increments(lin: LinearTD, dp: np.ndarray, dq: np.ndarray,
                      point: LinearizationPoint | None) -> tuple[np.ndarray, list, list, list]:
    """T flows (H, n_br) and per-area ΔP, ΔQ, Δw (H, n_d) for injection changes (H, n_bus); the
    roots move with the point's coupling, else with the model's, else not at all."""
    if point is None or not point.has_voltage_coupling:
        point = _model_coupling(lin)
    dc = lin.dc
    n_bus = len(lin.net_bus)
    col = {int(b): i for i, b in enumerate(lin.net_bus)}
    tree_root = [f.root_of_bus() for f in lin.feeders]
    a_t = np.zeros((dc.n_bus, n_bus))                       # bus → T node (D: its tree's root)
    a_d = [np.zeros((f.n_bus, n_bus)) for f in lin.feeders]
    for b, area in lin.bus_area.items():
        k = lin.bus_pos[b]
        if area < 0:
            a_t[k, col[b]] = 1.0
        else:
            a_t[tree_root[area][k], col[b]] = 1.0
            a_d[area][k, col[b]] = 1.0
    tx_p, tx_q = a_t @ dp.T, a_t @ dq.T                     # (n_t, H)
    b_full = np.zeros((dc.n_bus, dc.n_bus))
    bf = np.zeros((dc.n_branch, dc.n_bus))
    for i, (f, t, b) in enumerate(zip(dc.branch_from, dc.branch_to, dc.branch_b_mw, strict=True)):
        inc = np.zeros(dc.n_bus)
        inc[f], inc[t] = 1.0, -1.0
        b_full += b * np.outer(inc, inc)
        bf[i] = b * inc
    free = ~dc.fixed
    theta = np.zeros((dc.n_bus, dp.shape[0]))
    theta[free] = np.linalg.solve(b_full[np.ix_(free, free)], tx_p[free])
    t_flow = (bf @ theta).T
    coupled = point is not None and point.has_voltage_coupling
    if coupled:
        w_root = point.root_dw_dp @ tx_p + point.root_dw_dq @ tx_q   # (n_r, H)
    d_p, d_q, d_w = [], [], []
    for a, f in enumerate(lin.feeders):
        anc = _ancestors(f.parent)
        big_p = -(anc.T @ a_d[a] @ dp.T)                    # −(subtree sums)
        big_q = -(anc.T @ a_d[a] @ dq.T)
        w = -2.0 * anc @ (f.r_pu[:, None] * big_p + f.x_pu[:, None] * big_q)
        if coupled:
            r_idx = np.searchsorted(point.root_t, tree_root[a])
            assert np.array_equal(point.root_t[r_idx], tree_root[a])
            w = w + point.d_root_scale[a][:, None] * w_root[r_idx]
        d_p.append(big_p.T)
        d_q.append(big_q.T)
        d_w.append(w.T)
    return t_flow, d_p, d_q, d_w


def _close(actual: np.ndarray, expected: np.ndarray) -> None:
    """Equal to RTOL of the array's magnitude (entries near zero measured against the largest)."""
    scale = max(float(np.abs(expected).max(initial=0.0)), 1e-12)
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * scale)


def _check_state(bs: BaseState, point: LinearizationPoint, ref: tuple) -> None:
    t_flow, d_p, d_q, d_w = ref
    _close(bs.t_flow_mw, point.t_flow_mw + t_flow)
    for a in range(len(d_p)):
        _close(bs.d_p_mw[a], point.d_p_mw[a] + d_p[a])
        _close(bs.d_q_mvar[a], point.d_q_mvar[a] + d_q[a])
        _close(bs.d_w_pu2[a], point.d_w_pu2[a] + d_w[a])


def _injections(point: LinearizationPoint, h: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random injections around the point's (every bus, those outside the model included)."""
    rng = np.random.default_rng(seed)
    n = len(point.inj_p_mw)
    return point.inj_p_mw + rng.normal(0, 2.0, (h, n)), point.inj_q_mvar + rng.normal(0, 0.5, (h, n))


# ----------------------------------------------------------------------------- base_state


@pytest.mark.parametrize("h", [1, 4])
@pytest.mark.parametrize("coupling", [True, False])
def test_base_state_matches_dense(case, h: int, coupling: bool) -> None:
    system, point = case
    lin = system.linear
    pt = point if coupling else point.without_voltage_coupling()
    p, q = _injections(pt, h, seed=h)
    bs = base_state(lin, pt, p, q)
    assert bs.horizon == h
    assert [x.shape for x in bs.d_w_pu2] == [(h, f.n_bus) for f in lin.feeders]
    _check_state(bs, pt, _dense_increments(lin, p - pt.inj_p_mw, q - pt.inj_q_mvar, pt))
    # no reactive injections given: those of the point
    bs_p = base_state(lin, pt, p)
    _check_state(bs_p, pt, _dense_increments(lin, p - pt.inj_p_mw, np.zeros_like(p), pt))
    # a second call with the same point (its arrays are kept) and other values
    p2, q2 = _injections(pt, h, seed=10 + h)
    _check_state(base_state(lin, pt, p2, q2), pt,
                 _dense_increments(lin, p2 - pt.inj_p_mw, q2 - pt.inj_q_mvar, pt))


def test_coupling_moves_the_feeders(case) -> None:
    """The coupled and the stiff states differ (in D voltages only), so both paths are exercised."""
    system, point = case
    p, q = _injections(point, 2, seed=5)
    coupled = base_state(system.linear, point, p, q)
    stiff = base_state(replace(system.linear, root_coupling=None), point.without_voltage_coupling(), p, q)
    np.testing.assert_array_equal(coupled.t_flow_mw, stiff.t_flow_mw)
    for a in range(len(system.linear.feeders)):
        np.testing.assert_array_equal(coupled.d_p_mw[a], stiff.d_p_mw[a])
    diff = max(np.abs(c - s).max() for c, s in zip(coupled.d_w_pu2, stiff.d_w_pu2, strict=True))
    assert diff > 1e-6


# ----------------------------------------------------------------------------- activation_response


@pytest.mark.parametrize("coupling", [True, False])
def test_activation_response_matches_dense(case, coupling: bool) -> None:
    """With a point: its root coupling; without: the model's (the clearing programs')."""
    system, point = case
    lin = system.linear
    pt = point if coupling else None
    rng = np.random.default_rng(7)
    n = len(lin.net_bus)
    dp, dq = rng.normal(0, 1.0, (4, n)), rng.normal(0, 0.3, (4, n))
    inc = activation_response(lin, dp, dq, pt)
    t_flow, d_p, d_q, d_w = _dense_increments(lin, dp, dq, pt)
    _close(inc.t_flow_mw, t_flow)
    for a in range(len(lin.feeders)):
        _close(inc.d_p_mw[a], d_p[a])
        _close(inc.d_q_mvar[a], d_q[a])
        _close(inc.d_w_pu2[a], d_w[a])
    # one vector in, vectors out; dq None = 0
    one = activation_response(lin, dp[0], point=pt)
    t_flow, d_p, _, d_w = _dense_increments(lin, dp[:1], np.zeros((1, n)), pt)
    assert one.t_flow_mw.shape == (lin.dc.n_branch,)
    _close(one.t_flow_mw, t_flow[0])
    for a in range(len(lin.feeders)):
        assert one.d_p_mw[a].shape == (lin.feeders[a].n_bus,)
        _close(one.d_p_mw[a], d_p[a][0])
        _close(one.d_w_pu2[a], d_w[a][0])
        np.testing.assert_array_equal(one.d_q_mvar[a], 0.0)


def test_point_of_another_model_raises(case) -> None:
    system, point = case
    lin = system.linear
    n = len(lin.net_bus)
    with pytest.raises(ValueError, match="another model"):
        base_state(lin, replace(point, root_t=point.root_t + 1), np.tile(point.inj_p_mw, (2, 1)))
    with pytest.raises(ValueError, match="another model"):
        activation_response(lin, np.zeros(n), point=replace(point, root_dw_dp=point.root_dw_dp[:, :-1]))
    with pytest.raises(ValueError, match="another model"):
        base_state(lin, replace(point, t_flow_mw=point.t_flow_mw[:-1]), np.tile(point.inj_p_mw, (2, 1)))
    with pytest.raises(ValueError, match="NaN"):
        base_state(lin, point, np.full((2, n), np.inf))


# ----------------------------------------------------------------------------- a hand-made forest


def _handmade() -> tuple[LinearTD, LinearizationPoint]:
    """3 T buses (bus 0 fixed), one area of two trees whose parent array is not in BFS order."""
    dc = DCModel(bus=np.array([0, 1, 2]), fixed=np.array([True, False, False]),
                 branch_from=np.array([0, 1, 0]), branch_to=np.array([1, 2, 2]),
                 branch_b_mw=np.array([50.0, 80.0, 30.0]), rating_mw=np.full(3, 100.0))
    # D positions 0..4: tree 3 → 1 → {0, 4} fed from T bus 2; tree 2 fed from T bus 1
    parent = np.array([1, 3, -1, -1, 1])
    root_t = np.array([-1, -1, 1, 2, -1])
    n_d = len(parent)
    fd = FeederModel(area=0, bus=np.array([10, 11, 12, 13, 14]), parent=parent, root_t=root_t,
                     r_pu=np.array([0.01, 0.02, 0.015, 0.005, 0.03]),
                     x_pu=np.array([0.02, 0.01, 0.02, 0.01, 0.01]), rating_mva=np.full(n_d, 10.0),
                     v_min_pu=np.full(n_d, 0.9), v_max_pu=np.full(n_d, 1.1))
    # net buses: T 0, 1, 2, then D 10..14, a bus fused into D position 4, one outside the model
    net_bus = np.array([0, 1, 2, 10, 11, 12, 13, 14, 15, 99])
    bus_area = {0: -1, 1: -1, 2: -1, 10: 0, 11: 0, 12: 0, 13: 0, 14: 0, 15: 0}
    bus_pos = {0: 0, 1: 1, 2: 2, 10: 0, 11: 1, 12: 2, 13: 3, 14: 4, 15: 4}
    lin = LinearTD(dc=dc, feeders=(fd,), bus_area=bus_area, bus_pos=bus_pos, net_bus=net_bus)
    rng = np.random.default_rng(3)
    point = LinearizationPoint(
        t_flow_mw=rng.normal(0, 10, 3), d_p_mw=(rng.normal(0, 1, n_d),), d_q_mvar=(rng.normal(0, 1, n_d),),
        d_w_pu2=(1.0 + rng.normal(0, 0.01, n_d),), inj_p_mw=rng.normal(0, 1, len(net_bus)),
        inj_q_mvar=rng.normal(0, 1, len(net_bus)), root_t=np.array([1, 2]),
        root_dw_dp=np.array([[0.0, 1e-3, 2e-4], [0.0, 3e-4, 1.5e-3]]),
        root_dw_dq=np.array([[0.0, 4e-3, 1e-3], [0.0, 1e-3, 5e-3]]),
        d_root_scale=(np.array([0.99, 0.99, 1.01, 0.99, 0.99]),))
    return lin, point


@pytest.mark.parametrize("coupling", [True, False])
def test_handmade_forest_matches_dense(coupling: bool) -> None:
    lin, point = _handmade()
    pt = point if coupling else point.without_voltage_coupling()
    p, q = _injections(pt, 3, seed=1)
    _check_state(base_state(lin, pt, p, q), pt, _dense_increments(lin, p - pt.inj_p_mw, q - pt.inj_q_mvar, pt))
    # a change at the fused bus 15 is one at D position 4: −1 on its path 4 → 1 → 3, 0 elsewhere
    dp = np.zeros(len(lin.net_bus))
    dp[8] = 1.0
    inc = activation_response(lin, dp)
    np.testing.assert_allclose(inc.d_p_mw[0], [0.0, -1.0, 0.0, -1.0, -1.0], atol=1e-15)
    # and the bus outside the model changes nothing
    dp[:] = 0.0
    dp[9] = 5.0
    inc = activation_response(lin, dp, point=point)
    assert not np.any(inc.t_flow_mw) and not np.any(inc.d_p_mw[0]) and not np.any(inc.d_w_pu2[0])


# ----------------------------------------------------------------------------- InjectionMap


def _sparse_injections(m: InjectionMap, load_p, load_q, sgen_p, unit_p=None) -> tuple[np.ndarray, np.ndarray]:
    """The sums as sparse products (the definition of the map)."""
    p = (m.sgen @ np.atleast_2d(sgen_p).T - m.load @ np.atleast_2d(load_p).T).T + m.static_p
    q = (-(m.load @ np.atleast_2d(load_q).T)).T + m.static_q
    if unit_p is not None:
        p = p + (m.unit @ np.atleast_2d(unit_p).T).T
    return p, q


def test_injection_map_is_the_sparse_sums(case) -> None:
    system, _ = case
    m = InjectionMap(system)
    rng = np.random.default_rng(11)
    n_l, n_s, n_u = m.load.shape[1], m.sgen.shape[1], m.unit.shape[1]
    lp, lq, sg, up = (rng.normal(0, 1, (4, n)) for n in (n_l, n_l, n_s, n_u))
    for args in ((lp, lq, sg), (lp, lq, sg, up), (lp[0], lq[0], sg[0], up[0]), (lp, lq, sg[:1], up[2])):
        p, q = m.injections(*args)
        p_ref, q_ref = _sparse_injections(m, *args)
        assert p.shape == p_ref.shape == q.shape
        np.testing.assert_array_equal(p, p_ref)      # same additions in the same order
        np.testing.assert_array_equal(q, q_ref)
    assert m.injections(lp[0], lq[0], sg[0])[0].shape == (1, m.n_bus)
    with pytest.raises(ValueError, match="sgen_p"):
        m.injections(lp, lq, sg[:, :-1])
    with pytest.raises(ValueError, match="broadcast"):
        m.injections(lp, lq, sg[:3])
