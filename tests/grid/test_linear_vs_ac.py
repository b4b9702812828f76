"""The linear T&D model (grid.linear_build, grid.sensitivity) against pandapower's AC power flow, and its bookkeeping."""

from __future__ import annotations

import copy

import numpy as np
import pandapower as pp
import pytest
import scipy.sparse.linalg

from smartnet_gym.grid.bus_vectors import bus_injections, bus_vector
from smartnet_gym.grid.linear_build import build_linear_td
from smartnet_gym.grid.point_from_ac import point_from_net
from smartnet_gym.grid.power_flow import run_ac
from smartnet_gym.grid.sensitivity import activation_response, base_state
from smartnet_gym.grid.system import Area, TDSystem
from smartnet_gym.grid.validate import FLOW_TARGET_PCT, VOLTAGE_TARGET_PU, validate_grid

# ----------------------------------------------------------------------------- vs AC (the truth)


def _check_targets(rep: dict, samples: int) -> None:
    assert rep["all_samples"]["samples"] == samples and rep["failed"] == 0
    assert rep["samples"] >= samples // 2          # normal operation (no overload at the point)
    assert rep["max_voltage_error_pu"] <= VOLTAGE_TARGET_PU, rep["worst_voltage"]
    assert rep["max_flow_error_pct_of_rating"] <= FLOW_TARGET_PCT, rep["worst_flow"]
    assert rep["mean_voltage_error_pu"] <= rep["max_voltage_error_pu"]
    assert rep["meets_targets"]


def test_toy_linear_vs_ac(toy_system: TDSystem) -> None:
    system = copy.deepcopy(toy_system)
    net = system.net
    before = (net.load.p_mw.to_numpy().copy(), net.sgen.p_mw.to_numpy().copy())
    rep = validate_grid(system, samples=30, seed=1)
    _check_targets(rep, 30)
    assert rep["areas"] == [a.name for a in system.areas]
    assert rep["buses"] == len(net.bus)
    assert set(rep["per_area"]) == set(rep["areas"])
    # the net is restored
    np.testing.assert_array_equal(net.load.p_mw.to_numpy(), before[0])
    np.testing.assert_array_equal(net.sgen.p_mw.to_numpy(), before[1])


@pytest.mark.slow
def test_default_linear_vs_ac(default_system: TDSystem) -> None:
    system = copy.deepcopy(default_system)
    rep = validate_grid(system, samples=24, seed=3)
    _check_targets(rep, 24)
    assert rep["areas"] == ["MV1.101", "MV2.101", "MV3.101", "MV4.101"]
    # the stiff-root model (what FeederModel alone predicts) is worse but still bounded
    assert rep["stiff_root"]["max_voltage_error_pu"] >= rep["max_voltage_error_pu"] - 1e-12


def test_single_activation_matches_ac(toy_system: TDSystem) -> None:
    """One D unit moves: the linear increments agree with two AC power flows."""
    system = copy.deepcopy(toy_system)
    net, lin = system.net, system.linear
    run_ac(net)
    point = point_from_net(net, lin)
    d_units = np.flatnonzero(system.units.area >= 0)
    sg = int(system.units.flex_sgen[d_units[0]])
    net.sgen.at[sg, "p_mw"] = 1.0
    p, q = bus_injections(net)
    pred = base_state(lin, point, p[None], q[None])
    run_ac(net)
    ac = point_from_net(net, lin, voltage_coupling=False)
    f = lin.feeders[0]
    assert np.max(np.abs(np.sqrt(pred.d_w_pu2[0][0]) - np.sqrt(ac.d_w_pu2[0]))) < 2e-3
    assert np.max(np.abs(pred.d_p_mw[0][0] - ac.d_p_mw[0]) / f.rating_mva) < 0.01
    assert np.max(np.abs(pred.t_flow_mw[0] - ac.t_flow_mw) / lin.dc.rating_mw) < 0.01


def test_transmission_injection_moves_the_feeders_as_the_model_says(toy_system: TDSystem) -> None:
    """10 MW more at the T bus that moves the feeder roots most: AC raises or lowers every D
    voltage through the roots; the model's root coupling (what the clearing programs see)
    predicts that change, held roots predict none."""
    system = copy.deepcopy(toy_system)
    net, lin = system.net, system.linear
    rc = lin.root_coupling
    run_ac(net)
    before = point_from_net(net, lin, voltage_coupling=False)
    t = int(np.argmax(np.abs(rc.dw_dp).sum(axis=0)))
    pp.create_sgen(net, int(lin.dc.bus[t]), p_mw=10.0)
    run_ac(net)
    after = point_from_net(net, lin, voltage_coupling=False)
    inc = activation_response(lin, bus_vector(net, [int(lin.dc.bus[t])], [10.0]))
    for a in range(len(lin.feeders)):
        ac = after.d_w_pu2[a] - before.d_w_pu2[a]
        assert np.abs(ac).max() > 1e-4                       # the roots do move in AC
        assert np.abs(inc.d_w_pu2[a] - ac).max() < 0.1 * np.abs(ac).max()


# ----------------------------------------------------------------------------- bookkeeping


@pytest.mark.slow
def test_feeder_forest_default(default_system: TDSystem) -> None:
    lin = default_system.linear
    trees = {a.name: int((lin.feeders[a.index].parent < 0).sum()) for a in default_system.areas}
    assert trees == {"MV1.101": 1, "MV2.101": 1, "MV3.101": 2, "MV4.101": 1}
    for a, f in zip(default_system.areas, lin.feeders, strict=True):
        assert f.area == a.index
        roots = f.parent < 0
        assert np.all(f.parent[~roots] < np.flatnonzero(~roots))      # parents come first (BFS)
        assert np.all((f.root_t[roots] >= 0) & (f.root_t[roots] < lin.dc.n_bus))
        assert np.all(f.root_t[~roots] == -1)
        assert np.all(np.isfinite(f.r_pu) & (f.r_pu > 0) & (f.x_pu > 0))
        assert np.all(f.v_min_pu < f.v_max_pu)
        assert len(f.branch_element) == len(f.branch_members) == f.n_bus
        # every area bus is in the model (fused ones share a position)
        area, pos = lin.locate(a.buses)
        assert np.all(area == a.index)
        assert set(pos) == set(range(f.n_bus))
    # every net bus is T or D; T buses map to DC positions
    assert len(lin.bus_area) == len(default_system.net.bus)
    np.testing.assert_array_equal(lin.net_bus, default_system.net.bus.index.to_numpy())
    assert lin.dc.fixed.sum() == len(default_system.net.ext_grid)


@pytest.mark.slow
def test_fused_buses_share_a_position(default_system: TDSystem) -> None:
    net, lin = default_system.net, default_system.linear
    sw = net.switch[(net.switch.et == "b") & net.switch.closed.astype(bool)]
    assert len(sw) > 0
    for b1, b2 in zip(sw.bus, sw.element, strict=True):
        assert lin.bus_area[int(b1)] == lin.bus_area[int(b2)]
        assert lin.bus_pos[int(b1)] == lin.bus_pos[int(b2)]


@pytest.mark.slow
def test_parallel_trafo_equivalent(default_system: TDSystem) -> None:
    net, lin = default_system.net, default_system.linear
    for a in default_system.areas:
        f = lin.feeders[a.index]
        for k in np.flatnonzero(f.parent < 0):
            kind, _ = f.branch_element[k]
            members = [i for _, i in f.branch_members[k]]
            tr = net.trafo.loc[members]
            one = tr.iloc[0]
            # single trafo on a 1 MVA base, referred to the LV side: z = vk/100 / sn (pandapower's
            # T-to-π conversion of the magnetising branch moves the series z by ~5e-4 relative)
            z1 = one.vk_percent / 100.0 / one.sn_mva
            r1 = one.vkr_percent / 100.0 / one.sn_mva
            x1 = np.sqrt(z1**2 - r1**2)
            rating1 = one.sn_mva * one.max_loading_percent / 100.0
            if a.name == "MV3.101":                    # split busbar: one trafo per tree
                assert kind == "trafo" and len(members) == 1
                np.testing.assert_allclose([f.r_pu[k], f.x_pu[k]], [r1, x1], rtol=1e-3)
                np.testing.assert_allclose(f.rating_mva[k], rating1)
            else:                                      # identical parallel pair: half, twice
                assert kind == "trafo_eq" and len(members) == 2
                np.testing.assert_allclose([f.r_pu[k], f.x_pu[k]], [r1 / 2, x1 / 2], rtol=1e-3)
                np.testing.assert_allclose(f.rating_mva[k], 2 * rating1)


@pytest.mark.slow
def test_dc_flows_balance(default_system: TDSystem) -> None:
    """Δf = Bf Δθ satisfies nodal balance: at free buses Σ out − Σ in = injection change."""
    lin = default_system.linear
    dc = lin.dc
    rng = np.random.default_rng(0)
    t_buses = dc.bus[~dc.fixed]
    dp = bus_vector(default_system.net, t_buses, rng.normal(0, 10, len(t_buses)))
    inc = activation_response(lin, dp)
    node = np.zeros(dc.n_bus)
    np.add.at(node, dc.branch_from, inc.t_flow_mw)
    np.add.at(node, dc.branch_to, -inc.t_flow_mw)
    dp_t = np.zeros(dc.n_bus)
    np.add.at(dp_t, [lin.bus_pos[int(b)] for b in t_buses], dp[default_system.net.bus.index.get_indexer(t_buses)])
    np.testing.assert_allclose(node[~dc.fixed], dp_t[~dc.fixed], atol=1e-8)
    # the slacks absorb the total
    np.testing.assert_allclose(node[dc.fixed].sum(), -dp_t.sum(), atol=1e-8)
    # and D injections reach T at their root, losslessly
    f = lin.feeders[0]
    leaf = int(np.flatnonzero(np.bincount(f.parent[f.parent >= 0], minlength=f.n_bus) == 0)[-1])
    dp2 = bus_vector(default_system.net, [int(f.bus[leaf])], [1.0])
    inc2 = activation_response(lin, dp2)
    node2 = np.zeros(dc.n_bus)
    np.add.at(node2, dc.branch_from, inc2.t_flow_mw)
    np.add.at(node2, dc.branch_to, -inc2.t_flow_mw)
    root = f.root_t[f.parent < 0][0]
    assert node2[root] == pytest.approx(1.0, abs=1e-9)


@pytest.mark.slow
def test_lindistflow_path(default_system: TDSystem) -> None:
    """+1 MW at a D bus: −1 MW on every branch of its path, 0 elsewhere; voltages rise along it
    from its root's own rise."""
    lin = default_system.linear
    f = lin.feeders[0]
    k = int(np.argmax([_depth(f.parent, j) for j in range(f.n_bus)]))
    inc = activation_response(lin, bus_vector(default_system.net, [int(f.bus[k])], [1.0]))
    path = []
    j = k
    while j >= 0:
        path.append(j)
        j = int(f.parent[j])
    expected = np.zeros(f.n_bus)
    expected[path] = -1.0
    np.testing.assert_allclose(inc.d_p_mw[0], expected, atol=1e-12)
    np.testing.assert_allclose(inc.d_q_mvar[0], 0.0, atol=1e-12)
    w_path = inc.d_w_pu2[0][path[::-1]]
    assert np.all(np.diff(w_path) > 0) and w_path[0] > 0
    # the tree's root moves too (the model's root coupling), then LinDistFlow down the path
    rc = lin.root_coupling
    root = int(f.root_t[path[-1]])
    w_root = rc.top_scale[0][path[-1]] * rc.dw_dp[int(np.searchsorted(rc.roots, root)), root]
    np.testing.assert_allclose(w_path[-1], w_root + 2 * f.r_pu[path].sum(), rtol=1e-12)
    for other in inc.d_p_mw[1:]:
        np.testing.assert_allclose(other, 0.0, atol=1e-12)


def _depth(parent: np.ndarray, j: int) -> int:
    d = 0
    while parent[j] >= 0:
        j = parent[j]
        d += 1
    return d


@pytest.mark.slow
def test_base_state_at_point_is_point(default_system: TDSystem) -> None:
    system = copy.deepcopy(default_system)
    run_ac(system.net)
    point = point_from_net(system.net, system.linear)
    h = 4
    bs = base_state(system.linear, point, np.tile(point.inj_p_mw, (h, 1)), np.tile(point.inj_q_mvar, (h, 1)))
    assert bs.horizon == h
    np.testing.assert_allclose(bs.t_flow_mw, np.tile(point.t_flow_mw, (h, 1)), atol=1e-9)
    for a in range(len(system.areas)):
        np.testing.assert_allclose(bs.d_w_pu2[a], np.tile(point.d_w_pu2[a], (h, 1)), atol=1e-12)
        np.testing.assert_allclose(bs.d_p_mw[a], np.tile(point.d_p_mw[a], (h, 1)), atol=1e-9)
    # root flows of the point agree with pandapower's transformer results
    f = system.linear.feeders[0]
    k = int(np.flatnonzero(f.parent < 0)[0])
    members = [i for _, i in f.branch_members[k]]
    assert point.d_p_mw[0][k] == pytest.approx(system.net.res_trafo.p_hv_mw.loc[members].sum())


@pytest.mark.slow
def test_base_state_reuses_the_factorisation(default_system: TDSystem, monkeypatch) -> None:
    """After the first call, base_state factorises nothing again (that is what makes it fast)."""
    system = default_system
    lin = system.linear
    n = len(lin.net_bus)
    rng = np.random.default_rng(0)
    point = point_from_net(copy.deepcopy(system.net), lin, voltage_coupling=False)
    p = point.inj_p_mw + rng.normal(0, 1, (4, n))
    q = point.inj_q_mvar + rng.normal(0, 0.3, (4, n))
    first = base_state(lin, point, p, q)  # factorisation, cached

    def refactorised(*args, **kwargs):
        raise AssertionError("base_state factorised the susceptance matrix again")
    monkeypatch.setattr(scipy.sparse.linalg, "splu", refactorised)
    for _ in range(3):
        again = base_state(lin, point, p, q)
        np.testing.assert_array_equal(again.t_flow_mw, first.t_flow_mw)
        for x, y in zip(again.d_w_pu2, first.d_w_pu2, strict=True):
            np.testing.assert_array_equal(x, y)


# ----------------------------------------------------------------------------- bad inputs


def test_bad_shapes(toy_system: TDSystem) -> None:
    lin = toy_system.linear
    n = len(lin.net_bus)
    with pytest.raises(ValueError, match="n_bus"):
        activation_response(lin, np.zeros(n + 1))
    with pytest.raises(ValueError, match="NaN"):
        activation_response(lin, np.full(n, np.nan))
    point = point_from_net(copy.deepcopy(toy_system.net), lin, voltage_coupling=False)
    with pytest.raises(ValueError, match="inj_q_mvar"):
        base_state(lin, point, np.zeros((2, n)), np.zeros((3, n)))


def _tiny_td(loop: bool = False, two_roots: bool = False) -> tuple[pp.pandapowerNet, tuple[Area, ...]]:
    net = pp.create_empty_network()
    hv = [pp.create_bus(net, 110.0, subnet="HV1") for _ in range(3)]
    pp.create_ext_grid(net, hv[0])
    for i, j in ((0, 1), (1, 2), (2, 0)):
        pp.create_line(net, hv[i], hv[j], 10.0, "149-AL1/24-ST1A 110.0")
    mv = [pp.create_bus(net, 20.0, subnet="MV1.101") for _ in range(4)]
    pp.create_transformer(net, hv[1], mv[0], "25 MVA 110/20 kV")
    for i, j in ((0, 1), (1, 2), (2, 3)):
        pp.create_line(net, mv[i], mv[j], 2.0, "NA2XS2Y 1x185 RM/25 12/20 kV")
    if loop:
        pp.create_line(net, mv[3], mv[1], 2.0, "NA2XS2Y 1x185 RM/25 12/20 kV")
    if two_roots:
        pp.create_transformer(net, hv[2], mv[3], "25 MVA 110/20 kV")
    for b in mv[1:]:
        pp.create_load(net, b, 1.0, 0.3)
    area = Area(0, "MV1.101", "DSO1", (hv[1],), (0,), np.array(mv))
    return net, (area,)


def test_not_radial_raises() -> None:
    net, areas = _tiny_td(loop=True)
    with pytest.raises(ValueError, match=r"area 'MV1.101' is not radial: loop .* line"):
        build_linear_td(net, areas)
    net, areas = _tiny_td(two_roots=True)
    with pytest.raises(ValueError, match=r"'MV1.101' is not radial.*several transmission nodes.*trafo"):
        build_linear_td(net, areas)
    # an open switch on the loop line makes it radial again
    net, areas = _tiny_td(loop=True)
    pp.create_switch(net, int(net.line.from_bus.iloc[-1]), int(net.line.index[-1]), et="l", closed=False)
    lin = build_linear_td(net, areas)
    assert lin.feeders[0].n_bus == 4 and (lin.feeders[0].parent < 0).sum() == 1


def test_bad_areas_and_limits() -> None:
    net, areas = _tiny_td()
    with pytest.raises(ValueError, match="v_min_pu"):
        build_linear_td(net, areas, v_min_pu=1.05, v_max_pu=0.95)
    a = areas[0]
    with pytest.raises(ValueError, match="index order"):
        build_linear_td(net, (Area(1, a.name, a.dso, a.interface_buses, a.interface_trafos, a.buses),))
    lin = build_linear_td(net, areas, v_min_pu=0.9, v_max_pu=1.1)
    assert np.all(lin.feeders[0].v_min_pu == 0.9) and np.all(lin.feeders[0].v_max_pu == 1.1)


def test_voltage_limits_from_bus_columns() -> None:
    net, areas = _tiny_td()
    mv = list(areas[0].buses)
    net.bus.loc[mv, "min_vm_pu"] = 0.96
    net.bus.loc[mv, "max_vm_pu"] = 1.04
    net.bus.at[mv[2], "max_vm_pu"] = 1.03
    f = build_linear_td(net, areas).feeders[0]
    pos = {int(b): k for k, b in enumerate(f.bus)}
    assert np.all(f.v_min_pu == 0.96)
    assert f.v_max_pu[pos[mv[2]]] == 1.03 and f.v_max_pu[pos[mv[1]]] == 1.04
    f2 = build_linear_td(net, areas, v_min_pu=0.9).feeders[0]   # an argument overrides the net
    assert np.all(f2.v_min_pu == 0.9) and f2.v_max_pu[pos[mv[2]]] == 1.03
