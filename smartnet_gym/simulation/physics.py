"""The physical layer: apply realised load/RES and activations to the grid, report the state.

``ac`` solves each step by a warm-started Newton–Raphson on the internal case of the last full
pandapower run (:class:`~smartnet_gym.grid.fast_ac.FastAC`, no pandas); an OLTC tap move patches
that case's admittances (:class:`~smartnet_gym.grid.fast_ac.TapTable`); episode starts (OLTC
settling) run on it too, from the case as it was built, so that resets replay exactly. A full
``runpp`` on the net (values written in place) stays the source of truth when the layer is built,
after a tap move the cached case cannot take, and when the fast path does not converge (counted in
``fast_fallbacks`` during steps).
With ``fast_ac=False`` every step runs pandapower (``recycle`` after the first run; none after a
tap move). A pandapower run that does not converge is
retried from a flat start and, failing that, the step falls back to the linear model and is
counted. ``linear`` evaluates the linear models around the last AC point.
Both return the state in :class:`BaseState` form (one period), so that violations and
unwanted measures use the same limits as the clearing.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numba
import numpy as np

from smartnet_gym.grid.bus_vectors import bus_aggregation, bus_injections, bus_positions
from smartnet_gym.grid.fast_ac import FastAC, TapTable
from smartnet_gym.grid.linear import BaseState
from smartnet_gym.grid.operating_point import LinearizationPoint
from smartnet_gym.grid.point_from_ac import point_from_net
from smartnet_gym.grid.power_flow import run_ac
from smartnet_gym.grid.sensitivity import base_state
from smartnet_gym.grid.system import TDSystem

RECYCLE = dict(bus_pq=True, trafo=False, gen=False)
SETTLING_ROUNDS = 6   # power flows at an episode start while the OLTCs still move
TAP_DECISION_TOL = 1e-5   # mismatch [pu of 1 MVA] a settling round's tap decision is taken at (~1e-7 pu of voltage)
if TYPE_CHECKING:
    from pandapower.auxiliary import pandapowerNet

POINT_CACHE = 1024    # linear physics: points kept per process (28 start days × 24 hourly points fit)


@dataclass(frozen=True)
class PhysicalState:
    """Network state of one step after the physical layer."""

    state: BaseState          # H = 1: T flows, D flows and squared voltages
    converged: bool           # False if AC failed and the linear model stood in
    mode: str                 # "ac" or "linear"


@dataclass(frozen=True)
class Violations:
    """Limit violations of a physical state (counts and worst sizes)."""

    d_voltage: int
    d_loading: int
    t_loading: int
    max_voltage_dev_pu: float      # worst distance outside [v_min, v_max]
    max_loading_pct: float         # worst loading of any limited branch (T or D)
    per_area: np.ndarray           # (n_areas,) D violations (voltage + loading) per area

    @property
    def d_total(self) -> int:
        return self.d_voltage + self.d_loading


class InjectionMap:
    """Bus injection vectors (net.bus order) from ProfileSet-ordered values and unit activations.

    ``load``/``sgen``/``unit`` sum element values onto buses (each element sits at one bus); the
    per-step :meth:`injections` runs the same sums as one numba scatter over their bus positions.
    """

    def __init__(self, system: TDSystem):
        net = system.net
        self.n_bus = len(net.bus)
        self.load = bus_aggregation(net, system.load_bus)
        self.sgen = bus_aggregation(net, system.sgen_bus)
        self.unit = bus_aggregation(net, system.units.bus)
        self._pos = (bus_positions(net, system.load_bus), bus_positions(net, system.sgen_bus),
                     bus_positions(net, system.units.bus))
        # everything else that injects (equivalents, shunts ...) stays as built
        p, q = bus_injections(net)
        lp = net.load.p_mw.to_numpy()[net.load.index.get_indexer(system.load_idx)]
        lq = net.load.q_mvar.to_numpy()[net.load.index.get_indexer(system.load_idx)]
        sg = net.sgen.p_mw.to_numpy()[net.sgen.index.get_indexer(system.sgen_idx)]
        sq = net.sgen.q_mvar.to_numpy()[net.sgen.index.get_indexer(system.sgen_idx)]
        fl = net.sgen.p_mw.to_numpy()[net.sgen.index.get_indexer(system.units.flex_sgen)]
        self.static_p = np.ascontiguousarray(p - self.sgen @ sg + self.load @ lp - self.unit @ fl)
        self.static_q = np.ascontiguousarray(q - self.sgen @ sq + self.load @ lq)

    def injections(self, load_p, load_q, sgen_p, unit_p=None) -> tuple[np.ndarray, np.ndarray]:
        """(…, n_bus) active and reactive injections; arrays may carry a leading H axis."""
        n_load, n_sgen, n_unit = (len(x) for x in self._pos)
        rows = [_rows(load_p, n_load, "load_p"), _rows(load_q, n_load, "load_q"), _rows(sgen_p, n_sgen, "sgen_p")]
        if unit_p is not None:
            rows.append(_rows(unit_p, n_unit, "unit_p"))
        h = max(len(x) for x in rows)
        if any(len(x) != h for x in rows):     # one row against H: numpy broadcasting, as with the sums
            if any(len(x) not in (1, h) for x in rows):
                raise ValueError(f"leading axes {[len(x) for x in rows]} do not broadcast")
            rows = [x if len(x) == h else np.repeat(x, h, axis=0) for x in rows]
        unit = rows[3] if unit_p is not None else rows[2]
        return _scatter_injections(*self._pos, self.static_p, self.static_q, *rows[:3], unit, unit_p is not None)


def _rows(values: np.ndarray, n: int, name: str) -> np.ndarray:
    """``values`` as a C-contiguous float (H, n) array (1-D: one row); raises on another element count."""
    a = np.atleast_2d(np.asarray(values, dtype=np.float64))
    if a.ndim != 2 or a.shape[1] != n:
        raise ValueError(f"{name} must have shape ({n},) or (H, {n}), got {np.shape(values)}")
    return np.ascontiguousarray(a)


@numba.njit(cache=True)
def _scatter_injections(load_pos, sgen_pos, unit_pos, static_p, static_q, load_p, load_q, sgen_p,
                        unit_p, has_unit):
    """p = (Σ sgen − Σ load) + static (+ Σ unit), q = static − Σ load_q per bus: the sparse sums'
    order of additions, so the result is the same to the bit."""
    n_h, n = load_p.shape[0], len(static_p)
    p = np.empty((n_h, n))
    q = np.empty((n_h, n))
    gen = np.empty(n)
    load = np.empty(n)
    for h in range(n_h):
        gen[:] = 0.0
        load[:] = 0.0
        for k in range(len(sgen_pos)):
            gen[sgen_pos[k]] += sgen_p[h, k]
        for k in range(len(load_pos)):
            load[load_pos[k]] += load_p[h, k]
        for b in range(n):
            p[h, b] = (gen[b] - load[b]) + static_p[b]
        if has_unit:
            gen[:] = 0.0
            for k in range(len(unit_pos)):
                gen[unit_pos[k]] += unit_p[h, k]
            for b in range(n):
                p[h, b] += gen[b]
        load[:] = 0.0
        for k in range(len(load_pos)):
            load[load_pos[k]] += load_q[h, k]
        for b in range(n):
            q[h, b] = static_q[b] - load[b]
    return p, q


def point_state(point: LinearizationPoint) -> BaseState:
    """A linearisation point as a one-period BaseState."""
    return BaseState(point.t_flow_mw[None, :], tuple(x[None, :] for x in point.d_p_mw),
                     tuple(x[None, :] for x in point.d_q_mvar), tuple(x[None, :] for x in point.d_w_pu2))


def _first_period(per_feeder: tuple[np.ndarray, ...]) -> np.ndarray:
    """The first period of per-feeder (H, n_d) arrays, feeders side by side (the check's node order)."""
    return np.concatenate([x[0] for x in per_feeder]) if per_feeder else np.zeros(0)


@dataclass(frozen=True)
class Elements:
    """The limited quantities of a one-period state, element by element (ViolationCheck's order)."""

    w: np.ndarray           # (n_d,) squared voltage of every D bus [pu²]
    v_dev: np.ndarray       # (n_d,) distance outside the voltage band [pu]
    d_mva: np.ndarray       # (n_dl,) apparent flow of every limited D branch [MVA]
    t_mw: np.ndarray        # (n_tl,) |active flow| of every limited T branch [MW]


class ViolationCheck:
    """Counts limit violations with the same limits the clearing uses (first period of a state).

    Built once per system: the feeders' limits are concatenated here, so a check is a few array
    operations over all distribution nodes at once. A branch counts as overloaded above 100 % plus
    ``loading_tol_pct`` percentage points, a bus as out of band by more than ``voltage_tol_pu``: a
    clearing that brings a limit exactly to its value in the linear model can leave the AC state a
    hair beyond it, which is not a violation anyone would act on."""

    def __init__(self, system: TDSystem, loading_tol_pct: float = 1e-6, voltage_tol_pu: float = 1e-6):
        lin = system.linear
        self.loading_tol, self.voltage_tol = loading_tol_pct, voltage_tol_pu
        self.t_limited = np.flatnonzero(np.isfinite(lin.dc.rating_mw))
        self.t_rating = lin.dc.rating_mw[self.t_limited].astype(float)
        feeders = lin.feeders
        self.n_areas = len(feeders)
        cat = (lambda xs: np.concatenate(xs).astype(float) if xs else np.zeros(0))
        self.v_min = cat([f.v_min_pu for f in feeders])
        self.v_max = cat([f.v_max_pu for f in feeders])
        rating = cat([f.rating_mva for f in feeders])
        self.d_limited = np.flatnonzero(np.isfinite(rating))
        self.d_rating = rating[self.d_limited]
        self.node_area = np.repeat(np.arange(self.n_areas), [len(f.v_min_pu) for f in feeders]).astype(np.int64)

    def elements(self, st: BaseState) -> Elements:
        """The limited quantities of the first period of ``st`` (the values the counts compare)."""
        w, p, q = _first_period(st.d_w_pu2), _first_period(st.d_p_mw), _first_period(st.d_q_mvar)
        v = np.sqrt(np.maximum(w, 0.0))
        return Elements(w, np.maximum(v - self.v_max, 0.0) + np.maximum(self.v_min - v, 0.0),
                        np.hypot(p[self.d_limited], q[self.d_limited]),
                        np.abs(np.asarray(st.t_flow_mw[0], float)[self.t_limited]))

    def flags(self, st: BaseState) -> tuple[np.ndarray, Elements]:
        """Which elements of the first period of ``st`` are violated — T branches, D bus voltages,
        D branches, in that order — and the quantities compared."""
        e = self.elements(st)
        return np.concatenate([e.t_mw / self.t_rating * 100.0 > 100.0 + self.loading_tol,
                               e.v_dev > self.voltage_tol,
                               e.d_mva / self.d_rating * 100.0 > 100.0 + self.loading_tol]), e

    def __call__(self, st: BaseState) -> Violations:
        d_v, d_l, t_l, max_dev, max_load, per_area = _violations(
            np.ascontiguousarray(st.t_flow_mw[0], dtype=float), self.t_limited, self.t_rating,
            _first_period(st.d_w_pu2), _first_period(st.d_p_mw), _first_period(st.d_q_mvar), self.v_min, self.v_max, self.d_limited,
            self.d_rating, self.node_area, self.n_areas, self.loading_tol, self.voltage_tol)
        return Violations(int(d_v), int(d_l), int(t_l), float(max_dev), float(max_load), per_area)


@numba.njit(cache=True)
def _violations(t_flow, t_limited, t_rating, w, p, q, v_min, v_max, d_limited, d_rating, node_area, n_areas,
                load_tol, v_tol):
    """Counts of D voltage, D loading and T loading violations, the worst voltage deviation [pu]
    and loading [%], and D violations per area: one pass over the nodes (one ``Violations``)."""
    t_count, max_load = 0, 0.0
    for k in range(len(t_limited)):
        load = abs(t_flow[t_limited[k]]) / t_rating[k] * 100.0
        max_load = max(max_load, load)
        if load > 100.0 + load_tol:
            t_count += 1
    per_area = np.zeros(n_areas, np.int64)
    v_count, max_dev = 0, 0.0
    for j in range(len(w)):
        v = np.sqrt(max(w[j], 0.0))
        dev = max(v - v_max[j], 0.0) + max(v_min[j] - v, 0.0)
        max_dev = max(max_dev, dev)
        if dev > v_tol:
            v_count += 1
            per_area[node_area[j]] += 1
    l_count = 0
    for k in range(len(d_limited)):
        j = d_limited[k]
        load = np.hypot(p[j], q[j]) / d_rating[k] * 100.0
        max_load = max(max_load, load)
        if load > 100.0 + load_tol:
            l_count += 1
            per_area[node_area[j]] += 1
    return v_count, l_count, t_count, max_dev, max_load, per_area


class Oltc:
    """On-load tap changers acting once per market step on the last AC result (a delayed controller).

    Interface HV/MV trafos regulate their LV bus to the MV set-point, other tapped trafos (EHV/HV)
    to the EHV set-point; a tap moves when the voltage is more than half a step off (dead band),
    as many steps as needed within the tap range (on ``vm_pu``, per net.bus position). Returns
    whether any tap moved.
    """

    def __init__(self, system: TDSystem, mv_setpoint_pu: float, ehv_setpoint_pu: float):
        net = system.net
        tr = net.trafo
        ok = (tr.in_service.astype(bool) & tr.tap_step_percent.notna() & tr.tap_pos.notna()).to_numpy()
        iface = {t for a in system.areas for t in a.interface_trafos}
        self.rows = np.flatnonzero(ok)
        idx = tr.index[self.rows]
        self.step = tr.tap_step_percent.to_numpy(float)[self.rows] / 100.0
        self.sign = np.where(tr.tap_side.astype(str).to_numpy()[self.rows] == "lv", -1.0, 1.0)
        self.lo = tr.tap_min.to_numpy(float)[self.rows]
        self.hi = tr.tap_max.to_numpy(float)[self.rows]
        self.lv = net.bus.index.get_indexer(tr.lv_bus.to_numpy()[self.rows])
        self.target = np.where(idx.isin(list(iface)), mv_setpoint_pu, ehv_setpoint_pu)
        self.net = net

    def act(self, vm_pu: np.ndarray) -> bool:
        if not len(self.rows):
            return False
        vm = vm_pu[self.lv]
        dv = vm - self.target
        n = np.where(np.abs(dv) > self.step / 2, np.rint(dv / self.step), 0.0)
        col = self.net.trafo.tap_pos.to_numpy(float, copy=True)
        old = col[self.rows]
        new = np.clip(old + self.sign * n, self.lo, self.hi)
        if np.array_equal(new, old):
            return False
        col[self.rows] = new
        self.net.trafo["tap_pos"] = col
        return True


def _converged(net: pandapowerNet, **kwargs) -> bool:
    """``runpp`` on ``net``; False where pandapower does not converge or cannot solve the case."""
    from pandapower.powerflow import LoadflowNotConverged

    try:
        run_ac(net, **kwargs)
        return True
    except (LoadflowNotConverged, ValueError, IndexError, np.linalg.LinAlgError):
        return False


class PhysicalLayer:
    """AC (fast Newton–Raphson, pandapower in place as reference) or linear evaluation of one step."""

    def __init__(self, system: TDSystem, mode: str, oltc: Oltc | None = None, fast_ac: bool = True):
        if mode not in ("ac", "linear"):
            raise ValueError(f"physics must be 'ac' or 'linear' (got {mode!r})")
        self.system, self.mode = system, mode
        self.net = system.net
        self.inj = InjectionMap(system)
        net = self.net
        self.load_rows = net.load.index.get_indexer(system.load_idx)
        self.sgen_rows = net.sgen.index.get_indexer(system.sgen_idx)
        self.flex_rows = net.sgen.index.get_indexer(system.units.flex_sgen)
        self._fresh = False          # True: the next AC step needs a full runpp (failure, untabled tap move)
        self._taps_moved = False     # taps moved since the last runpp: its cached branch data is stale
        self._case_taps = net.trafo["tap_pos"].to_numpy(float, copy=True)   # taps of the last runpp
        self.failures = 0
        self.fast_fallbacks = 0
        self.use_fast = fast_ac      # linear physics too: its episode starts (relinearize) run on it
        self.fast: FastAC | None = None
        self.oltc = oltc
        self.base_taps = net.trafo.tap_pos.to_numpy(copy=True)   # episodes start from the built taps
        self._points: dict[int, LinearizationPoint] = {}
        run_ac(net)
        # tap positions' admittances, built once: the trafo data never changes, only tap_pos
        self.taps = TapTable(net) if self.use_fast and oltc is not None else None
        self._from_runpp()
        # every episode starts from this case: a fast episode start must not depend on the history
        self._start = (self.fast, self.fast.snapshot()) if self.fast is not None else None

    def _from_runpp(self) -> None:
        """Read the point and voltages of the last full runpp and cache its internal case for the fast path."""
        self.point = point_from_net(self.net, self.system.linear, voltage_coupling=False)
        self.vm = self.net.res_bus["vm_pu"].to_numpy()
        self._taps_moved = False
        if self.use_fast:
            try:
                self.fast = FastAC(self.net, self.system.linear, self.load_rows, self.sgen_rows, self.flex_rows,
                                   self.taps, self._case_taps)
            except ValueError as e:   # a net the fast path does not model: plain pandapower from here on
                warnings.warn(f"fast AC path off, every AC step runs pandapower: {e}", stacklevel=2)
                self.use_fast, self.fast = False, None

    def relinearize(self, load_p, load_q, sgen_p, key: int | None = None) -> None:
        """Take a new linearisation point: AC at these values without activations (episode start).

        With linear physics the point of a given ``key`` (the start step) is computed once per
        process and reused. The AC power flow with tap settling runs on the fast path when it is
        up (milliseconds), else with pandapower (0.1–0.3 s on the default preset).
        """
        if self.mode == "linear" and key is not None and key in self._points:
            self.point = self._points[key]
            return
        self._ac_point(load_p, load_q, sgen_p)
        if self.mode == "linear" and key is not None:
            if len(self._points) > POINT_CACHE:
                self._points.clear()
            self._points[key] = self.point

    def _ac_point(self, load_p, load_q, sgen_p) -> None:
        self.net.trafo["tap_pos"] = self.base_taps.copy()
        if self._fast_settle(load_p, load_q, sgen_p):
            return
        self.net.trafo["tap_pos"] = self.base_taps.copy()     # a failed fast settling may have moved them
        self._fresh = True
        self._write(load_p, load_q, sgen_p, np.zeros(len(self.flex_rows)))
        for _ in range(SETTLING_ROUNDS):   # let the OLTCs settle at the episode's first operating point
            if not (self._try() or self._try(init="flat")):
                return
            if self.oltc is None or not self.oltc.act(self.net.res_bus["vm_pu"].to_numpy()):
                break
        self._fresh = False
        self._from_runpp()
        self._carry_taps()        # the settling may stop on a move its last run did not see

    def _fast_settle(self, load_p, load_q, sgen_p) -> bool:
        """The episode start on the fast path: built taps, then the OLTC settling rounds, as with
        ``runpp`` in :meth:`_ac_point` but in milliseconds; False: it failed, settle with ``runpp``."""
        if not self.use_fast or self._fresh or self._start is None:
            return False
        self.fast, state = self._start
        self.fast.restore(state)
        self._carry_taps()
        zeros = np.zeros(len(self.flex_rows))
        for k in range(SETTLING_ROUNDS):
            if self._fresh:
                return False
            vm = self.fast.voltages(load_p, load_q, sgen_p, zeros, tol=TAP_DECISION_TOL)
            if vm is None:
                self._fresh = True
                return False
            moved = self.oltc is not None and self.oltc.act(vm)
            if (not moved or k == SETTLING_ROUNDS - 1) and not self._settled_point(load_p, load_q, sgen_p, zeros):
                return False
            if not moved:
                break
            self._carry_taps()
        return not self._fresh

    def _settled_point(self, load_p, load_q, sgen_p, unit_p) -> bool:
        """The point at the taps the settling leaves: the solution to full tolerance (a step or two
        more); False (and a full ``runpp`` next) if that fails."""
        res = self.fast.solve(load_p, load_q, sgen_p, unit_p)
        if res is None:
            self._fresh = True
            return False
        self.point, self.vm = res
        return True

    def _write(self, load_p, load_q, sgen_p, unit_p, net: pandapowerNet | None = None) -> None:
        """Write set-points into the layer's net (or ``net``, a copy of it)."""
        net = self.net if net is None else net
        lp = net.load["p_mw"].to_numpy(copy=True)
        lq = net.load["q_mvar"].to_numpy(copy=True)
        sp_ = net.sgen["p_mw"].to_numpy(copy=True)
        lp[self.load_rows] = load_p
        lq[self.load_rows] = load_q
        sp_[self.sgen_rows] = sgen_p
        sp_[self.flex_rows] = unit_p
        net.load["p_mw"] = lp
        net.load["q_mvar"] = lq
        net.sgen["p_mw"] = sp_

    def run(self, load_p, load_q, sgen_p, unit_p) -> PhysicalState:
        """Realised values (ProfileSet order) + unit activations (UnitTable order) → state."""
        if self.mode == "linear":
            p, q = self.inj.injections(load_p, load_q, sgen_p, unit_p)
            return PhysicalState(base_state(self.system.linear, self.point, p, q), True, "linear")
        if self.fast is not None and not self._fresh:
            res = self.fast.solve(load_p, load_q, sgen_p, unit_p)
            if res is not None:
                self.point, self.vm = res
                state = point_state(self.point)
                self._move_taps(load_p, load_q, sgen_p, unit_p)
                return PhysicalState(state, True, "ac")
            self.fast_fallbacks += 1
        self._write(load_p, load_q, sgen_p, unit_p)
        stale = self._fresh or self._taps_moved
        ok = self._try(recycle=None if stale else RECYCLE) or self._try(init="flat")
        if not ok:
            self.failures += 1
            self._fresh = True
            p, q = self.inj.injections(load_p, load_q, sgen_p, unit_p)
            return PhysicalState(base_state(self.system.linear, self.point, p, q), False, "linear")
        self._from_runpp()
        self._fresh = False
        state = point_state(self.point)
        self._move_taps(load_p, load_q, sgen_p, unit_p)
        return PhysicalState(state, True, "ac")

    def probe(self, load_p, load_q, sgen_p, unit_p) -> BaseState | None:
        """The AC state of these set-points without taking it: point, voltages, taps and the next
        solve's start stay as they were (a check of a dispatch before it is delivered). On the fast
        path a what-if Newton–Raphson; otherwise ``runpp`` on a copy of the net (the reference
        path, slower). None with linear physics or where the power flow fails."""
        if self.mode != "ac":
            return None
        if self.fast is not None and not self._fresh:
            point = self.fast.probe(load_p, load_q, sgen_p, unit_p)
            return None if point is None else point_state(point)
        net = copy.deepcopy(self.net)
        self._write(load_p, load_q, sgen_p, unit_p, net)
        if not _converged(net):
            return None
        return point_state(point_from_net(net, self.system.linear, voltage_coupling=False))

    def _move_taps(self, load_p, load_q, sgen_p, unit_p) -> None:
        """Let the OLTCs act on this step's voltages (the next step sees the move) and carry a move into the fast case.

        After a move, the point the next clearing linearises around is the grid as the OLTCs left
        it: this step's set-points solved again with the new taps (else the clearing would miss
        the move, a tap step of ~1.5 % of voltage at every bus of the area). A move the cached case
        cannot take (no fast path, untabled trafo or position) makes that solve, and the next AC
        step, a full ``runpp``.
        """
        if self.oltc is None or not self.oltc.act(self.vm):
            return
        self._carry_taps()
        if self.fast is not None and not self._fresh:
            res = self.fast.solve(load_p, load_q, sgen_p, unit_p)
            if res is not None:
                self.point, self.vm = res
                return
        self._write(load_p, load_q, sgen_p, unit_p)
        if self._try() or self._try(init="flat"):
            self._from_runpp()
            self._fresh = False
        else:
            self._fresh = True

    def _carry_taps(self) -> None:
        """Bring tap moves since the last runpp into the fast case; one it cannot take makes the next AC step a full runpp."""
        taps = self.net.trafo["tap_pos"].to_numpy(float)
        self._taps_moved = not np.array_equal(taps, self._case_taps, equal_nan=True)
        carried = self.fast.set_taps(taps) if self.fast is not None else not self._taps_moved
        if not carried:
            self._fresh = True

    def _try(self, **kwargs) -> bool:
        taps = self.net.trafo["tap_pos"].to_numpy(float, copy=True)
        if not _converged(self.net, **{k: v for k, v in kwargs.items() if v is not None}):
            return False
        self._case_taps = taps
        return True
