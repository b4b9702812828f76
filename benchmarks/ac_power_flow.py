"""The fast AC path against lightsim2grid's grid model and plain pandapower, on the default system.

Usage (lightsim2grid is not a dependency of the project: install it next to it first)::

    pip install lightsim2grid
    python benchmarks/ac_power_flow.py [--points 30] [--seed 0]

For each of ``--points`` operating points (loads and sgens drawn at random around the built case,
some flexible units activated) it solves, alternately and each warm-started from its own previous
solution:

* ``FastAC.newton``: the project's Newton-Raphson alone (the step's Sbus from the set-points);
* ``PhysicalLayer(system, "ac").run``: the whole AC step of the env (Newton-Raphson, branch flows,
  the state the clearing and the violations read);
* lightsim2grid: set-point updates (``update_loads_p``/``_q``, ``update_sgens_p``) and
  ``LSGrid.ac_pf(V, max_iter, tol)`` on ``init_from_pandapower`` of the same net;

and plain ``pandapower.runpp`` on a copy with the set-points written: the truth every path is
compared with (max |V| difference over all buses and points). ``--walk`` draws each point as a
small random step from the previous one (as consecutive 15-minute steps are) instead of
independently.

lightsim2grid needs a net without switches (it ignores them) and with numeric element limits:
the script hands it an equivalent copy (closed bus-bus switches fused, an open line or trafo
switch moves that end to a bus of its own, as pandapower models it; pandapower gives the same
voltages on it, checked). lightsim2grid turns several external grids into one distributed slack
(pandapower's ``distributed_slack=True``), which is not the model of a plain ``runpp`` with three
fixed-angle external grids; the script therefore also reports its distance to
``runpp(distributed_slack=True)``.
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings

import numpy as np
import pandapower as pp

from smartnet_gym.config import ScenarioConfig
from smartnet_gym.grid.build import build_system
from smartnet_gym.simulation.physics import PhysicalLayer


def switch_free(net: pp.pandapowerNet) -> tuple[pp.pandapowerNet, dict[int, int]]:
    """An equivalent copy without switches, and the bus of the copy each original bus became."""
    n = copy.deepcopy(net)
    for t in ("sgen", "load", "storage", "gen"):
        for c in ("min_p_mw", "max_p_mw", "min_q_mvar", "max_q_mvar"):
            if c in n[t]:
                n[t][c] = n[t][c].astype(float)
    sw = n.switch
    for _, r in sw[~sw.closed & sw.et.isin(["l", "t"])].iterrows():   # open: that end on a bus of its own
        b, table = int(r.bus), "line" if r.et == "l" else "trafo"
        nb = pp.create_bus(n, vn_kv=n.bus.at[b, "vn_kv"])
        for side in (("from_bus", "to_bus") if table == "line" else ("hv_bus", "lv_bus")):
            if n[table].at[r.element, side] == b:
                n[table].at[r.element, side] = nb
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for _, r in sw[sw.closed & (sw.et == "b")].iterrows():
        a, b = find(int(r.bus)), find(int(r.element))
        if a != b:
            parent[max(a, b)] = min(a, b)
    rep = {int(b): find(int(b)) for b in net.bus.index}
    groups: dict[int, list[int]] = {}
    for b, keep in rep.items():
        groups.setdefault(keep, []).append(b)
    for keep, members in groups.items():
        others = [m for m in members if m != keep]
        if others:
            pp.toolbox.fuse_buses(n, keep, others)
    n.switch = n.switch.iloc[0:0]
    return n, rep


def draw(base: dict[str, np.ndarray], prev: dict[str, np.ndarray] | None, rng: np.random.Generator,
         walk: bool) -> dict[str, np.ndarray]:
    """Set-points of one point: independent (loads ×U(0.6, 1.4), sgens ×U(0, 1.6)) or a ±5 % step from ``prev``."""
    if walk and prev is not None:
        out = {k: v * rng.uniform(0.95, 1.05, len(v)) for k, v in prev.items() if k != "up"}
        out["up"] = prev["up"] + rng.normal(0.0, 0.1, len(prev["up"])) * (rng.random(len(prev["up"])) < 0.3)
        return out
    n_u = len(base["up"])
    return {"lp": base["lp"] * rng.uniform(0.6, 1.4, len(base["lp"])),
            "lq": base["lq"] * rng.uniform(0.6, 1.4, len(base["lq"])),
            "sg": base["sg"] * rng.uniform(0.0, 1.6, len(base["sg"])),
            "up": rng.normal(0.0, 1.0, n_u) * (rng.random(n_u) < 0.3)}


def written(net: pp.pandapowerNet, phys: PhysicalLayer, x: dict[str, np.ndarray]) -> pp.pandapowerNet:
    """A copy of ``net`` with the point's set-points written (same table rows as the layer's)."""
    ref = copy.deepcopy(net)
    ref.load.loc[ref.load.index[phys.load_rows], "p_mw"] = x["lp"]
    ref.load.loc[ref.load.index[phys.load_rows], "q_mvar"] = x["lq"]
    ref.sgen.loc[ref.sgen.index[phys.sgen_rows], "p_mw"] = x["sg"]
    ref.sgen.loc[ref.sgen.index[phys.flex_rows], "p_mw"] = x["up"]
    return ref


def main(argv: list[str] | None = None) -> int:
    """Print ms per solve and max |V| difference to ``runpp`` of each path."""
    from lightsim2grid.network import init_from_pandapower

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--walk", action="store_true", help="each point a ±5 %% step from the previous one")
    args = p.parse_args(argv)
    system = build_system(ScenarioConfig())
    net0 = copy.deepcopy(system.net)
    pp.runpp(net0, numba=False)
    nr_layer = PhysicalLayer(copy.deepcopy(system), "ac")       # FastAC.newton alone
    step_layer = PhysicalLayer(copy.deepcopy(system), "ac")     # the whole AC step
    fast = nr_layer.fast
    t0 = time.perf_counter()
    flat, rep = switch_free(net0)
    prep_s = time.perf_counter() - t0
    pp.runpp(flat, numba=False)
    same = np.abs(flat.res_bus.vm_pu.loc[[rep[b] for b in net0.bus.index]].to_numpy() - net0.res_bus.vm_pu.to_numpy())
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ls = init_from_pandapower(flat, pp_orig_file="pandapower_v2")
    init_s = time.perf_counter() - t0
    ls_order = np.sort(flat.bus.index.to_numpy())
    ls_pos = np.searchsorted(ls_order, [rep[b] for b in net0.bus.index])
    res = flat.res_bus.loc[ls_order]
    v_ls = (res.vm_pu.to_numpy() * np.exp(1j * np.deg2rad(res.va_degree.to_numpy()))).astype(complex)
    tol, max_it = float(net0._options["tolerance_mva"]), int(net0._options["max_iteration"])
    n_load, n_sgen = len(flat.load), len(flat.sgen)
    l_scale, s_scale = flat.load.scaling.to_numpy(float), flat.sgen.scaling.to_numpy(float)
    all_loads, all_sgens = np.ones(n_load, bool), np.ones(n_sgen, bool)
    base = {"lp": net0.load.p_mw.to_numpy()[nr_layer.load_rows], "lq": net0.load.q_mvar.to_numpy()[nr_layer.load_rows],
            "sg": net0.sgen.p_mw.to_numpy()[nr_layer.sgen_rows], "up": np.zeros(len(nr_layer.flex_rows))}
    rng = np.random.default_rng(args.seed)
    ms: dict[str, list[float]] = {"newton": [], "step": [], "ls": [], "runpp": []}
    err: dict[str, float] = {"newton": 0.0, "step": 0.0, "ls": 0.0, "ls_vs_distributed": 0.0}
    x = None
    for _ in range(args.points):
        x = draw(base, x, rng, args.walk)
        ref = written(net0, nr_layer, x)
        t0 = time.perf_counter()
        pp.runpp(ref, numba=False)
        ms["runpp"].append(1e3 * (time.perf_counter() - t0))
        truth = ref.res_bus.vm_pu.to_numpy()
        dist = copy.deepcopy(ref)
        pp.runpp(dist, numba=False, distributed_slack=True)
        # FastAC.newton alone (Sbus as FastAC.solve builds it)
        dx = np.concatenate([x["lp"], x["sg"], x["up"]]) - fast.x0
        sbus = fast.sbus0 + fast.a_p @ dx + 1j * (fast.a_q @ (x["lq"] - fast.q0))
        t0 = time.perf_counter()
        out = fast.newton(sbus, fast.tol)
        ms["newton"].append(1e3 * (time.perf_counter() - t0))
        fast.v, fast.lu = out
        vm = np.append(np.abs(fast.v), np.nan)[fast.net_int]
        err["newton"] = max(err["newton"], float(np.nanmax(np.abs(vm - truth))))
        # lightsim2grid: set-point updates and ac_pf from its previous solution
        lp, lq, sg = flat.load.p_mw.to_numpy(copy=True), flat.load.q_mvar.to_numpy(copy=True), flat.sgen.p_mw.to_numpy(copy=True)
        lp[nr_layer.load_rows], lq[nr_layer.load_rows] = x["lp"], x["lq"]
        sg[nr_layer.sgen_rows], sg[nr_layer.flex_rows] = x["sg"], x["up"]
        t0 = time.perf_counter()
        ls.update_loads_p(all_loads, (lp * l_scale).astype(np.float32))
        ls.update_loads_q(all_loads, (lq * l_scale).astype(np.float32))
        ls.update_sgens_p(all_sgens, (sg * s_scale).astype(np.float32))
        v_new = ls.ac_pf(v_ls.copy(), max_it, tol)
        ms["ls"].append(1e3 * (time.perf_counter() - t0))
        if v_new.size == 0:
            err["ls"] = float("nan")
        else:
            v_ls = v_new
            vm_ls = np.abs(v_ls)[ls_pos]
            err["ls"] = max(err["ls"], float(np.max(np.abs(vm_ls - truth))))
            err["ls_vs_distributed"] = max(err["ls_vs_distributed"],
                                           float(np.max(np.abs(vm_ls - dist.res_bus.vm_pu.to_numpy()))))
        # the whole AC step of the env
        t0 = time.perf_counter()
        st = step_layer.run(x["lp"], x["lq"], x["sg"], x["up"])
        ms["step"].append(1e3 * (time.perf_counter() - t0))
        assert st.converged and st.mode == "ac"
        err["step"] = max(err["step"], float(np.nanmax(np.abs(step_layer.vm - truth))))
    assert step_layer.fast_fallbacks == 0 and step_layer.failures == 0
    med = {k: float(np.median(v)) for k, v in ms.items()}
    kind = "±5 % random walk" if args.walk else "independent points (loads ×U(0.6, 1.4), sgens ×U(0, 1.6))"
    print(f"default system: {len(net0.bus)} buses, {len(net0.ext_grid)} external grids, {args.points} points, {kind}")
    print(f"lightsim2grid's copy: {len(flat.bus)} buses after the switches, built in {1e3 * prep_s:.0f} ms "
          f"+ init_from_pandapower {1e3 * init_s:.0f} ms; runpp on it equals the original to {same.max():.1e} pu")
    print(f"{'path':58s} {'ms/solve (median)':>18s} {'max |dV| vs runpp [pu]':>24s}")
    rows = (("FastAC.newton (project, Newton-Raphson only)", "newton", err["newton"]),
            ("PhysicalLayer.run (project, whole AC step)", "step", err["step"]),
            ("lightsim2grid update_* + LSGrid.ac_pf (KLU)", "ls", err["ls"]),
            ("pandapower runpp (the truth)", "runpp", 0.0))
    for name, key, e in rows:
        print(f"{name:58s} {med[key]:18.2f} {e:24.1e}")
    print(f"lightsim2grid against runpp(distributed_slack=True): max |dV| {err['ls_vs_distributed']:.1e} pu")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
