"""The fast AC path (FastAC in PhysicalLayer) against plain pandapower runpp on copies of the net."""

from __future__ import annotations

import copy

import numpy as np
import pandapower as pp
import pytest
import scipy.sparse as sp

from smartnet_gym.config import load_scenario
from smartnet_gym.grid.build import build_system
from smartnet_gym.grid.point_from_ac import point_from_net
from smartnet_gym.grid.system import TDSystem
from smartnet_gym.simulation import physics
from smartnet_gym.simulation.physics import PhysicalLayer

V_TOL = 1e-6      # pu
FLOW_TOL = 1e-4   # MW / Mvar


@pytest.fixture(scope="module")
def spain_system() -> TDSystem:
    """The spain-like preset system (from the disk cache after the first build)."""
    return build_system(load_scenario("spain-like"))


SPAIN = pytest.param("spain-like", marks=pytest.mark.slow)


def _shared(request: pytest.FixtureRequest, preset: str) -> TDSystem:
    """The session's system of ``preset``, so only the spain-like cases build the full system."""
    return request.getfixturevalue("spain_system" if preset == "spain-like" else "toy_system")


def _draw(phys: PhysicalLayer, rng: np.random.Generator, scale: float = 1.0) -> tuple[np.ndarray, ...]:
    """A perturbed operating point: loads and sgens scaled at random, some units activated."""
    net = phys.net
    lp = net.load["p_mw"].to_numpy()[phys.load_rows] * rng.uniform(0.6, 1.4, len(phys.load_rows)) * scale
    lq = net.load["q_mvar"].to_numpy()[phys.load_rows] * rng.uniform(0.6, 1.4, len(phys.load_rows)) * scale
    sg = net.sgen["p_mw"].to_numpy()[phys.sgen_rows] * rng.uniform(0.0, 1.6, len(phys.sgen_rows))
    n_u = len(phys.flex_rows)
    up = rng.normal(0.0, 1.0, n_u) * (rng.random(n_u) < 0.3)
    return lp, lq, sg, up


def _reference(phys: PhysicalLayer, values: tuple[np.ndarray, ...], taps: np.ndarray | None = None):
    """Plain runpp (no recycle) on a copy of the net with the values (and tap positions) written."""
    ref = copy.deepcopy(phys.net)
    if taps is not None:
        ref.trafo["tap_pos"] = taps
    lp, lq, sg, up = values
    ref.load.loc[ref.load.index[phys.load_rows], "p_mw"] = lp
    ref.load.loc[ref.load.index[phys.load_rows], "q_mvar"] = lq
    ref.sgen.loc[ref.sgen.index[phys.sgen_rows], "p_mw"] = sg
    ref.sgen.loc[ref.sgen.index[phys.flex_rows], "p_mw"] = up
    pp.runpp(ref, numba=False)
    return ref, point_from_net(ref, phys.system.linear, voltage_coupling=False)


def _assert_agrees(phys: PhysicalLayer, values: tuple[np.ndarray, ...], taps: np.ndarray | None = None):
    """The layer's last AC state equals plain runpp: voltages, flows, injections; returns the reference net."""
    ref, pr = _reference(phys, values, taps)
    pt = phys.point
    np.testing.assert_allclose(phys.vm, ref.res_bus["vm_pu"].to_numpy(), rtol=0, atol=V_TOL, equal_nan=True)
    np.testing.assert_allclose(pt.t_flow_mw, pr.t_flow_mw, rtol=0, atol=FLOW_TOL)
    for a, b in zip(pt.d_p_mw + pt.d_q_mvar, pr.d_p_mw + pr.d_q_mvar, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=FLOW_TOL)
    for a, b in zip(pt.d_w_pu2, pr.d_w_pu2, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=2 * V_TOL)
    np.testing.assert_allclose(pt.inj_p_mw, pr.inj_p_mw, rtol=0, atol=1e-9)
    np.testing.assert_allclose(pt.inj_q_mvar, pr.inj_q_mvar, rtol=0, atol=1e-9)
    assert not pt.has_voltage_coupling and not pr.has_voltage_coupling   # the model's root coupling applies
    return ref


class _ForcedTaps:
    """Stands in for the OLTCs: each act() writes the next scheduled tap column (net.trafo order) and reports a move."""

    def __init__(self, net, schedule: list[np.ndarray]):
        self.net, self.schedule = net, list(schedule)

    def act(self, vm_pu: np.ndarray) -> bool:
        if not self.schedule:
            return False
        self.net.trafo["tap_pos"] = self.schedule.pop(0)
        return True


def _schedule(net, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``n`` tap columns, each moving alternate trafos up and the others down by 1–3 steps within their range."""
    tr = net.trafo
    taps = tr["tap_pos"].to_numpy(float)
    lo, hi = tr["tap_min"].to_numpy(float), tr["tap_max"].to_numpy(float)
    out = []
    for i in range(n):
        up = np.arange(len(taps)) % 2 == i % 2
        taps = np.clip(taps + rng.integers(1, 4, len(taps)) * np.where(up, 1, -1), lo, hi)
        out.append(taps)
    return out


def _count_runpp(monkeypatch) -> list[dict]:
    """Keyword arguments of every pandapower run of the physical layer from here on."""
    calls: list[dict] = []
    real = physics.run_ac

    def counted(net, **kwargs):
        calls.append(kwargs)
        real(net, **kwargs)

    monkeypatch.setattr(physics, "run_ac", counted)
    return calls


@pytest.mark.parametrize("preset", ["toy", SPAIN])
def test_fast_path_equals_runpp_on_random_points(preset, request):
    system = copy.deepcopy(_shared(request, preset))
    phys = PhysicalLayer(system, "ac")
    cached = phys.fast
    rng = np.random.default_rng(7)
    for _ in range(4 if preset == "toy" else 3):
        values = _draw(phys, rng)
        st = phys.run(*values)
        assert st.mode == "ac" and st.converged
        _assert_agrees(phys, values)
    assert phys.fast is cached, "every step should have run on the cached case (no pandapower run)"
    assert phys.fast_fallbacks == 0 and phys.failures == 0


def test_plain_pandapower_flag_gives_the_same_states(toy_system):
    fast = PhysicalLayer(copy.deepcopy(toy_system), "ac")
    plain = PhysicalLayer(copy.deepcopy(toy_system), "ac", fast_ac=False)
    assert plain.fast is None
    assert plain.fast is None
    rng = np.random.default_rng(3)
    for _ in range(3):
        values = _draw(fast, rng)
        a, b = fast.run(*values).state, plain.run(*values).state
        np.testing.assert_allclose(a.t_flow_mw, b.t_flow_mw, rtol=0, atol=FLOW_TOL)
        for x, y in zip(a.d_w_pu2, b.d_w_pu2, strict=True):
            np.testing.assert_allclose(x, y, rtol=0, atol=2 * V_TOL)


@pytest.mark.parametrize("case", ["toy", "toy-lv-tap", SPAIN])
def test_tap_moves_stay_on_the_fast_path_and_equal_runpp(case, request, monkeypatch):
    system = copy.deepcopy(_shared(request, case))
    net = system.net
    if case == "toy-lv-tap":          # pandapower adapts the lv side's impedance base too
        net.trafo["tap_side"] = np.array(["hv", "lv"] * len(net.trafo))[: len(net.trafo)]
    rng = np.random.default_rng(13)
    schedule = _schedule(net, 3, rng)
    phys = PhysicalLayer(system, "ac", _ForcedTaps(net, schedule))
    cached = phys.fast
    calls = _count_runpp(monkeypatch)
    phys.run(*_draw(phys, rng))                       # then the first tap move
    for k, taps in enumerate(schedule):               # each step runs on the last move's taps
        y_step = phys.fast.ybus.copy()                # the step's admittances (the next move patches them)
        values = _draw(phys, rng)
        st = phys.run(*values)
        assert st.mode == "ac" and st.converged
        ref, pr = _reference(phys, values, taps)
        np.testing.assert_allclose(st.state.t_flow_mw[0], pr.t_flow_mw, rtol=0, atol=FLOW_TOL)
        for a, b in zip(st.state.d_w_pu2, pr.d_w_pu2, strict=True):
            np.testing.assert_allclose(a[0], b, rtol=0, atol=2 * V_TOL)
        # the point the next clearing linearises around: these set-points on the moved taps
        _assert_agrees(phys, values, schedule[k + 1] if k + 1 < len(schedule) else taps)
        y_ref = sp.csr_matrix(ref._ppc["internal"]["Ybus"])
        assert abs(y_step - y_ref).max() < 1e-9 * abs(y_ref).max()
    assert calls == [], "a tap move ran a full pandapower power flow"
    assert phys.fast is cached and phys.fast_fallbacks == 0 and phys.failures == 0


def test_episode_start_carries_the_last_settling_move_into_the_fast_case(toy_system, monkeypatch):
    system = copy.deepcopy(toy_system)
    rng = np.random.default_rng(19)
    schedule = _schedule(system.net, 6, rng)          # the OLTCs hunt through all 6 settling rounds
    phys = PhysicalLayer(system, "ac", _ForcedTaps(system.net, schedule))
    lp, lq, sg, _ = _draw(phys, rng)
    phys.relinearize(lp, lq, sg)                      # the last round's move is not in its runpp
    calls = _count_runpp(monkeypatch)
    values = _draw(phys, rng)
    phys.run(*values)
    assert calls == [] and phys.fast_fallbacks == 0
    _assert_agrees(phys, values, schedule[-1])


def test_untabled_tap_move_runs_a_full_runpp(toy_system, monkeypatch):
    system = copy.deepcopy(toy_system)
    taps = system.net.trafo["tap_pos"].to_numpy(float) + 0.5          # between tap positions
    phys = PhysicalLayer(system, "ac", _ForcedTaps(system.net, [taps]))
    stale = phys.fast
    calls = _count_runpp(monkeypatch)
    rng = np.random.default_rng(11)
    phys.run(*_draw(phys, rng))
    values = _draw(phys, rng)
    phys.run(*values)
    assert calls == [{}] and phys.fast is not stale    # one runpp, no recycle, cache rebuilt
    _assert_agrees(phys, values, taps)


def test_fallback_after_a_fast_tap_move_does_not_recycle_stale_taps(toy_system):
    system = copy.deepcopy(toy_system)
    rng = np.random.default_rng(17)
    taps = _schedule(system.net, 1, rng)[0]
    phys = PhysicalLayer(system, "ac", _ForcedTaps(system.net, [taps]))
    phys.run(*_draw(phys, rng))                       # fast step, taps move in the cached case only
    phys.fast.max_it = 0                              # the next fast solve fails: pandapower runs
    values = _draw(phys, rng)
    assert phys.run(*values).converged and phys.fast_fallbacks == 1
    _assert_agrees(phys, values, taps)


def test_non_convergence_falls_back_to_runpp_and_is_counted(toy_system):
    phys = PhysicalLayer(copy.deepcopy(toy_system), "ac")
    rng = np.random.default_rng(5)
    phys.fast.max_it = 0      # no Newton step allowed: a changed point cannot converge
    values = _draw(phys, rng)
    st = phys.run(*values)
    assert phys.fast_fallbacks == 1 and phys.failures == 0
    assert st.mode == "ac" and st.converged
    _assert_agrees(phys, values)   # the pandapower fallback's result, and the rebuilt cache
    assert phys.fast.max_it > 0


def test_unsolvable_point_falls_back_to_linear_and_is_counted(toy_system):
    phys = PhysicalLayer(copy.deepcopy(toy_system), "ac")
    values = _draw(phys, np.random.default_rng(2), scale=60.0)   # far beyond the grid's transfer limit
    st = phys.run(*values)
    assert phys.fast_fallbacks == 1 and phys.failures == 1
    assert st.mode == "linear" and not st.converged


def test_unsupported_net_runs_plain_pandapower_with_a_warning(toy_system):
    system = copy.deepcopy(toy_system)
    system.net.load["const_z_p_percent"] = 50.0     # voltage-dependent loads: not in the fast path
    with pytest.warns(UserWarning, match="const_z_p_percent"):
        phys = PhysicalLayer(system, "ac")
    assert phys.fast is None
    values = _draw(phys, np.random.default_rng(4))
    assert phys.run(*values).mode == "ac"
    _assert_agrees(phys, values)


@pytest.mark.parametrize("preset", ["toy", SPAIN])
def test_episode_start_on_the_fast_path_equals_runpp(preset, request, monkeypatch):
    """relinearize (built taps, OLTC settling) on the fast path: no runpp, same taps and point as plain pandapower."""
    base = _shared(request, preset)
    g = load_scenario(preset).grid
    systems = [copy.deepcopy(base), copy.deepcopy(base)]
    fast, plain = (PhysicalLayer(s, "ac", physics.Oltc(s, g.mv_oltc_setpoint_pu, g.ehv_oltc_setpoint_pu), fast_ac=f)
                   for s, f in zip(systems, (True, False), strict=True))
    rng = np.random.default_rng(23)
    moved = 0
    for scale in (0.3, 1.8, 0.5):                     # light and heavy load: the OLTCs have to act
        fast.run(*_draw(fast, rng))                   # leave the start: warm start and taps differ
        lp, lq, sg, _ = _draw(fast, rng, scale=scale)
        calls = _count_runpp(monkeypatch)
        fast.relinearize(lp, lq, sg)
        assert calls == [], "the episode start ran pandapower"
        monkeypatch.undo()
        plain.relinearize(lp, lq, sg)
        taps = [s.net.trafo["tap_pos"].to_numpy(float) for s in systems]
        np.testing.assert_array_equal(taps[0], taps[1])
        moved += int(not np.array_equal(taps[0], fast.base_taps))
        np.testing.assert_allclose(fast.vm, plain.vm, rtol=0, atol=V_TOL, equal_nan=True)
        np.testing.assert_allclose(fast.point.t_flow_mw, plain.point.t_flow_mw, rtol=0, atol=FLOW_TOL)
        for a, b in zip(fast.point.d_w_pu2, plain.point.d_w_pu2, strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=2 * V_TOL)
    assert fast.fast_fallbacks == 0 and fast.failures == 0
    if preset == "spain-like":
        assert moved > 0, "the OLTCs never settled away from the built taps: the test would not see settling"


def test_scenario_option_fast_ac_false_gives_the_same_episode(toy_config, toy_system):
    """``simulation.fast_ac: false`` reaches the layer through the loop; the episode's states equal the fast path's."""
    from smartnet_gym.simulation.compare import episode_start
    from smartnet_gym.simulation.loop import RollingLoop

    plain_cfg = load_scenario(toy_config, {"simulation": {"fast_ac": False}})
    steps = {}
    for fast, cfg in ((True, toy_config), (False, plain_cfg)):
        loop = RollingLoop(copy.deepcopy(toy_system), cfg, scheme="CS_D", physics="ac")
        assert loop.physics.use_fast is fast and (loop.physics.fast is not None) is fast
        loop.reset(episode_start(cfg) + 44, 8, np.random.default_rng(0))
        steps[fast] = [loop.step() for _ in range(8)]
    for a, b in zip(steps[True], steps[False], strict=True):
        assert a.physical.converged and b.physical.converged
        for x, y in zip(a.physical.state.d_w_pu2, b.physical.state.d_w_pu2, strict=True):
            np.testing.assert_allclose(np.sqrt(x), np.sqrt(y), rtol=0, atol=V_TOL)
        np.testing.assert_allclose(a.physical.state.t_flow_mw, b.physical.state.t_flow_mw, rtol=0, atol=FLOW_TOL)
        np.testing.assert_allclose(a.clearing.activated_mw, b.clearing.activated_mw, rtol=0, atol=1e-6)


def test_probe_is_runpp_and_leaves_no_trace(toy_system):
    """A what-if power flow (the AC check of a dispatch) is plain runpp's state at its set-points, and
    the steps after it come out bit for bit as they do without it."""
    rng = np.random.default_rng(11)
    probed, plain = (PhysicalLayer(copy.deepcopy(toy_system), "ac") for _ in range(2))
    for _ in range(3):
        what_if, values = _draw(probed, rng, 1.2), _draw(probed, rng)
        seen = probed.probe(*what_if)
        _, ref = _reference(probed, what_if)
        np.testing.assert_allclose(seen.t_flow_mw[0], ref.t_flow_mw, rtol=0, atol=FLOW_TOL)
        for a, b in zip(seen.d_p_mw + seen.d_q_mvar, ref.d_p_mw + ref.d_q_mvar, strict=True):
            np.testing.assert_allclose(a[0], b, rtol=0, atol=FLOW_TOL)
        for a, b in zip(seen.d_w_pu2, ref.d_w_pu2, strict=True):
            np.testing.assert_allclose(a[0], b, rtol=0, atol=2 * V_TOL)
        after, alone = probed.run(*values).state, plain.run(*values).state
        np.testing.assert_array_equal(probed.vm, plain.vm)
        for a, b in zip((after.t_flow_mw, *after.d_w_pu2), (alone.t_flow_mw, *alone.d_w_pu2), strict=True):
            np.testing.assert_array_equal(a, b)
    assert probed.fast_fallbacks == 0 and probed.failures == 0


def test_probe_without_the_fast_path_runs_pandapower_on_a_copy(toy_system):
    """``simulation.fast_ac: false``: the same what-if state, and the layer's net keeps its set-points."""
    rng = np.random.default_rng(12)
    fast = PhysicalLayer(copy.deepcopy(toy_system), "ac")
    plain = PhysicalLayer(copy.deepcopy(toy_system), "ac", fast_ac=False)
    assert plain.fast is None
    what_if = _draw(fast, rng, 1.2)
    loads = plain.net.load["p_mw"].to_numpy(copy=True)
    a, b = fast.probe(*what_if), plain.probe(*what_if)
    np.testing.assert_array_equal(plain.net.load["p_mw"].to_numpy(), loads)
    np.testing.assert_allclose(a.t_flow_mw, b.t_flow_mw, rtol=0, atol=FLOW_TOL)
    for x, y in zip(a.d_w_pu2, b.d_w_pu2, strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=2 * V_TOL)
