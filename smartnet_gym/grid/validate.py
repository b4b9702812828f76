"""Check the linear T&D model against pandapower's AC power flow (targets ≤ 0.01 pu and ≤ 5 % of rating).

For each sampled profile step the net is put at that step (loads and sgens from the ProfileSet,
flex sgens at 0) and solved with ``runpp``: that AC solution is the linearisation point. Random
flexibility activations are then written to the flex sgens and the net is solved again. The
linear prediction, point + increments (:func:`~smartnet_gym.grid.sensitivity.base_state`), is compared
with the second AC solution:

* voltage error ``|√w_lin − vm_ac|`` [pu] at every distribution bus, with the feeder roots moving
  with the T injections as the model says (``LinearTD.root_coupling``, what the clearing's
  prediction, the forced measures and :func:`base_state` use) and, as ``stiff_root``, with Δw = 0
  at the roots (a bare FeederModel: the market programs' view);
* flow error ``|P_lin − P_ac| / rating · 100`` [% of rating] on every transmission branch (DC
  model, P at the from/HV end) and every feeder branch (LinDistFlow, P at the parent end).

Activations follow each unit's kind (:class:`~smartnet_gym.grid.system.UnitKind`): PV and wind
curtail between 0 and their current output, loads, storage and T generators move uniformly within
±p_rated. Taps stay as set in the net and no controllers run (the OLTCs do not react to the
activation, which is what the linear model assumes too).

Samples: uniform over all profile steps plus a share of summer noons (1 May–31 Aug, 12:00–13:30),
where D voltages are closest to their limits. The net is reused (no copies) and restored at the
end, with a final ``runpp`` so its results match the restored values.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from smartnet_gym.data.profiles import STEPS_PER_DAY
from smartnet_gym.grid.bus_vectors import bus_injections
from smartnet_gym.grid.point_from_ac import point_from_net
from smartnet_gym.grid.power_flow import run_ac
from smartnet_gym.grid.sensitivity import base_state
from smartnet_gym.grid.system import UnitKind

if TYPE_CHECKING:
    from pandapower.auxiliary import pandapowerNet

    from smartnet_gym.grid.system import TDSystem

__all__ = ["FLOW_TARGET_PCT", "VOLTAGE_TARGET_PU", "sample_steps", "validate_grid"]

VOLTAGE_TARGET_PU = 0.01     # max voltage error in normal operation
FLOW_TARGET_PCT = 5.0        # max flow error in normal operation, % of rating
SUMMER_DAYS = (121, 243)     # 1 May .. 31 Aug 2016 (leap year), day-of-year from 0
NOON_QUARTERS = (48, 54)     # 12:00 .. 13:30


def sample_steps(n_steps: int, samples: int, rng: np.random.Generator,
                 noon_share: float = 0.25) -> np.ndarray:
    """``samples`` profile steps: uniform over 0..n_steps−1 plus ``noon_share`` summer noons."""
    n_noon = round(samples * noon_share) if n_steps >= SUMMER_DAYS[1] * STEPS_PER_DAY else 0
    uni = rng.integers(0, n_steps, samples - n_noon)
    day = rng.integers(SUMMER_DAYS[0], SUMMER_DAYS[1] + 1, n_noon)
    quarter = rng.integers(NOON_QUARTERS[0], NOON_QUARTERS[1], n_noon)
    return np.r_[uni, day * STEPS_PER_DAY + quarter].astype(np.int64)


def _element_rows(system: TDSystem) -> tuple[np.ndarray, np.ndarray]:
    """pandapower indices of the profiled loads and sgens (ProfileSet order)."""
    net = system.net
    load_idx = getattr(system, "load_idx", None)
    sgen_idx = getattr(system, "sgen_idx", None)
    if load_idx is None or sgen_idx is None:  # older systems: match by bus, flex sgens excluded
        flex = set(np.asarray(system.units.flex_sgen).tolist())
        load_idx = net.load.index[net.load.in_service.astype(bool)].to_numpy()
        sg = net.sgen.index[net.sgen.in_service.astype(bool)]
        sgen_idx = np.array([i for i in sg if i not in flex], dtype=np.int64)
    load_idx = np.asarray(load_idx, dtype=np.int64)
    sgen_idx = np.asarray(sgen_idx, dtype=np.int64)
    if not np.array_equal(net.load.bus.loc[load_idx].to_numpy(), system.load_bus) or \
            not np.array_equal(net.sgen.bus.loc[sgen_idx].to_numpy(), system.sgen_bus):
        raise ValueError("the profiled loads/sgens of the net do not match system.load_bus/sgen_bus")
    return load_idx, sgen_idx


def _activation(system: TDSystem, sgen_now: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random activation [MW, injection positive] of every flex unit, within its physical range."""
    u = system.units
    n = len(u)
    x = rng.uniform(-1.0, 1.0, n) * np.asarray(u.p_rated_mw, dtype=float)
    kind = np.asarray(u.kind)
    curt = (kind == UnitKind.PV) | (kind == UnitKind.WIND)
    if curt.any():
        el = np.asarray(u.element_idx)
        avail = np.where((el >= 0) & np.array([e == "sgen" for e in u.element]),
                         sgen_now[np.maximum(el, 0)], np.asarray(u.p_rated_mw, dtype=float))
        avail = np.minimum(avail, np.asarray(u.p_rated_mw, dtype=float))
        x[curt] = -rng.uniform(0.0, 1.0, int(curt.sum())) * np.maximum(avail[curt], 0.0)
    return x


def _errors(system: TDSystem, net: pandapowerNet, pred: Any,
            pred_stiff: Any) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Errors of a linear prediction against the AC results in ``net``.

    Returns T flow errors [% of rating], D voltage errors [pu] with and without the T voltage
    coupling of the feeder roots, and D flow errors [% of rating].
    """
    lin = system.linear
    ac = point_from_net(net, lin, voltage_coupling=False)
    t_err = np.abs(pred.t_flow_mw[0] - ac.t_flow_mw) / lin.dc.rating_mw * 100.0
    v_err, v_stiff, d_err = [], [], []
    for a, f in enumerate(lin.feeders):
        v_ac = np.sqrt(ac.d_w_pu2[a])
        v_err.append(np.abs(np.sqrt(np.maximum(pred.d_w_pu2[a][0], 0.0)) - v_ac))
        v_stiff.append(np.abs(np.sqrt(np.maximum(pred_stiff.d_w_pu2[a][0], 0.0)) - v_ac))
        d_err.append(np.abs(pred.d_p_mw[a][0] - ac.d_p_mw[a]) / f.rating_mva * 100.0)
    return t_err, v_err, v_stiff, d_err


def _overloaded(net: pandapowerNet) -> bool:
    """True if any in-service line or trafo is above its max_loading_percent (default 100)."""
    for kind in ("line", "trafo"):
        res = net[f"res_{kind}"]
        if not len(res):
            continue
        lim = net[kind].get("max_loading_percent", 100.0)
        lim = np.nan_to_num(np.asarray(lim, dtype=float) * np.ones(len(res)), nan=100.0)
        load = res["loading_percent"].to_numpy(dtype=float)
        on = net[kind]["in_service"].to_numpy(dtype=bool)
        if np.any(on & (load > lim + 1e-9)):
            return True
    return False


class _Stats:
    """Running max / mean of the errors over samples, per branch and per bus."""

    def __init__(self, system: TDSystem) -> None:
        lin = system.linear
        self.system = system
        self.n = 0
        self.t_max = np.zeros(lin.dc.n_branch)
        self.t_sum = np.zeros(lin.dc.n_branch)
        self.v_max = [np.zeros(f.n_bus) for f in lin.feeders]
        self.v_sum = [np.zeros(f.n_bus) for f in lin.feeders]
        self.s_max = [np.zeros(f.n_bus) for f in lin.feeders]
        self.s_sum = [np.zeros(f.n_bus) for f in lin.feeders]
        self.d_max = [np.zeros(f.n_bus) for f in lin.feeders]
        self.d_sum = [np.zeros(f.n_bus) for f in lin.feeders]
        self.worst_v = (-1.0, -1, -1)               # error, bus, step
        self.worst_f = (-1.0, ("", -1), -1)         # error, element, step

    def add(self, step: int, t_err: np.ndarray, v_err: list[np.ndarray], v_stiff: list[np.ndarray],
            d_err: list[np.ndarray]) -> None:
        lin = self.system.linear
        self.n += 1
        np.maximum(self.t_max, t_err, out=self.t_max)
        self.t_sum += t_err
        if len(t_err) and t_err.max() > self.worst_f[0]:
            k = int(np.argmax(t_err))
            self.worst_f = (float(t_err[k]), lin.dc.branch_element[k], step)
        for a, f in enumerate(lin.feeders):
            for mx, sm, e in ((self.v_max, self.v_sum, v_err), (self.s_max, self.s_sum, v_stiff),
                              (self.d_max, self.d_sum, d_err)):
                np.maximum(mx[a], e[a], out=mx[a])
                sm[a] += e[a]
            if f.n_bus and v_err[a].max() > self.worst_v[0]:
                k = int(np.argmax(v_err[a]))
                self.worst_v = (float(v_err[a][k]), int(f.bus[k]), step)
            if f.n_bus and d_err[a].max() > self.worst_f[0]:
                k = int(np.argmax(d_err[a]))
                self.worst_f = (float(d_err[a][k]), f.branch_element[k], step)

    def _mm(self, mx: list[np.ndarray] | np.ndarray, sm: list[np.ndarray] | np.ndarray) -> tuple[float, float]:
        mx = np.concatenate(mx) if isinstance(mx, list) else mx
        sm = np.concatenate(sm) if isinstance(sm, list) else sm
        fin = np.isfinite(mx)
        if self.n == 0 or not fin.any():
            return float("nan"), float("nan")
        return float(mx[fin].max()), float(sm[fin].sum() / (self.n * fin.sum()))

    def report(self) -> dict[str, Any]:
        vm, vmean = self._mm(self.v_max, self.v_sum)
        fm, fmean = self._mm([self.t_max, *self.d_max], [self.t_sum, *self.d_sum])
        tm, tmean = self._mm(self.t_max, self.t_sum)
        sm_, smean = self._mm(self.s_max, self.s_sum)
        per_area = {}
        for a, area in enumerate(self.system.areas):
            avm, avmean = self._mm(self.v_max[a], self.v_sum[a])
            afm, afmean = self._mm(self.d_max[a], self.d_sum[a])
            per_area[area.name] = {"max_voltage_error_pu": avm, "mean_voltage_error_pu": avmean,
                                   "max_flow_error_pct_of_rating": afm,
                                   "mean_flow_error_pct_of_rating": afmean}
        return {
            "samples": self.n,
            "max_voltage_error_pu": vm,
            "mean_voltage_error_pu": vmean,
            "max_flow_error_pct_of_rating": fm,
            "mean_flow_error_pct_of_rating": fmean,
            "transmission": {"max_flow_error_pct_of_rating": tm, "mean_flow_error_pct_of_rating": tmean},
            "per_area": per_area,
            "stiff_root": {"max_voltage_error_pu": sm_, "mean_voltage_error_pu": smean},
            "worst_voltage": {"error_pu": self.worst_v[0], "bus": self.worst_v[1], "step": self.worst_v[2]},
            "worst_flow": {"error_pct_of_rating": self.worst_f[0], "element": list(self.worst_f[1]),
                           "step": self.worst_f[2]},
            "meets_targets": bool(self.n > 0 and vm <= VOLTAGE_TARGET_PU and fm <= FLOW_TARGET_PCT),
        }


def validate_grid(system: TDSystem, samples: int = 200, seed: int = 0, *,
                  noon_share: float = 0.25, **runpp_kwargs: Any) -> dict[str, Any]:
    """Compare the linear T&D model with AC power flows on ``samples`` random operating points.

    "Normal operation" = no line or trafo above its thermal limit at the
    linearisation point. The headline figures are over those samples; ``all_samples`` repeats
    them over every converged sample, overloaded points included (there the DC model's neglect of
    the change in losses on the overloaded branch dominates the flow error).

    :param system: the T&D system (``system.linear`` must be built).
    :param samples: number of operating points (profile steps).
    :param seed: seed of the step sampling and the activations.
    :param noon_share: share of the samples drawn from summer noons.
    :param runpp_kwargs: passed to ``pandapower.runpp`` (the sample runs add
        ``recycle=dict(bus_pq=True, trafo=False, gen=False)`` unless ``recycle`` is given).
    :returns: ``max_voltage_error_pu``, ``mean_voltage_error_pu`` (D buses, the model's root
        coupling included), ``max_flow_error_pct_of_rating``, ``mean_flow_error_pct_of_rating`` (T and D
        branches), ``transmission`` and ``per_area`` (by area name) breakdowns, ``stiff_root``
        (voltage errors of the bare FeederModel, Δw = 0 at the roots), ``worst_voltage`` and
        ``worst_flow`` (where, at which step), ``meets_targets``; ``samples`` (normal operation),
        ``all_samples`` (the same over every sample, with its own ``samples``), ``failed`` (AC not
        converged), ``buses``, ``areas``, ``targets``, ``seconds``.
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1 (got {samples})")
    if system.linear is None:
        raise ValueError("system.linear is None: the linear model was not built")
    from pandapower.powerflow import LoadflowNotConverged

    t0 = time.perf_counter()
    net = system.net
    lin = system.linear
    held = replace(lin, root_coupling=None)          # the same model with the feeder roots held
    prof = system.profiles
    rng = np.random.default_rng(seed)
    load_idx, sgen_idx = _element_rows(system)
    flex = np.asarray(system.units.flex_sgen, dtype=np.int64)
    saved = {
        "load_p": net.load.loc[load_idx, "p_mw"].to_numpy(copy=True),
        "load_q": net.load.loc[load_idx, "q_mvar"].to_numpy(copy=True),
        "sgen_p": net.sgen.loc[sgen_idx, "p_mw"].to_numpy(copy=True),
        "flex_p": net.sgen.loc[flex, "p_mw"].to_numpy(copy=True),
    }
    steps = sample_steps(prof.n_steps, samples, rng, noon_share)
    normal, every = _Stats(system), _Stats(system)
    failed = 0
    # only loads and sgens change between runs: after one plain runpp, pandapower may recycle its
    # internal case (same results to 1e-10, 2-3x faster)
    fast = {"recycle": {"bus_pq": True, "trafo": False, "gen": False}, **runpp_kwargs}
    try:
        run_ac(net, **runpp_kwargs)
        for step in steps:
            net.load.loc[load_idx, "p_mw"] = prof.load_p(int(step))
            net.load.loc[load_idx, "q_mvar"] = prof.load_q(int(step))
            sgen_now = prof.sgen_p(int(step)).astype(np.float64)
            net.sgen.loc[sgen_idx, "p_mw"] = sgen_now
            net.sgen.loc[flex, "p_mw"] = 0.0
            act = _activation(system, sgen_now, rng)
            try:
                run_ac(net, **fast)
                is_normal = not _overloaded(net)
                point = point_from_net(net, lin, voltage_coupling=False)
                net.sgen.loc[flex, "p_mw"] = act
                inj_p, inj_q = bus_injections(net)
                pred = base_state(lin, point, inj_p[None], inj_q[None])
                pred_stiff = base_state(held, point, inj_p[None], inj_q[None])
                run_ac(net, **fast)
            except LoadflowNotConverged:
                failed += 1
                continue
            errs = _errors(system, net, pred, pred_stiff)
            every.add(int(step), *errs)
            if is_normal:
                normal.add(int(step), *errs)
    finally:
        net.load.loc[load_idx, "p_mw"] = saved["load_p"]
        net.load.loc[load_idx, "q_mvar"] = saved["load_q"]
        net.sgen.loc[sgen_idx, "p_mw"] = saved["sgen_p"]
        net.sgen.loc[flex, "p_mw"] = saved["flex_p"]
        try:
            run_ac(net, **runpp_kwargs)
        except LoadflowNotConverged:
            pass
    if every.n == 0:
        raise RuntimeError(f"no AC power flow converged in {samples} samples")
    return {
        "system": system.name,
        **normal.report(),
        "all_samples": every.report(),
        "failed": failed,
        "buses": len(net.bus),
        "areas": [a.name for a in system.areas],
        "targets": {"voltage_pu": VOLTAGE_TARGET_PU, "flow_pct_of_rating": FLOW_TARGET_PCT},
        "seconds": time.perf_counter() - t0,
    }
