"""Performance benchmarks of the market clearing: per scheme, per bid count, per solver path.

What is measured (all times are wall-clock medians over ``repeats`` after ``warmup`` clearings):

* **one clearing** = ``Scheme.clear(instance, evaluate=False)`` of one scheme on one
  :class:`~smartnet_gym.market.stages.MarketInstance` (all H periods of the horizon, every
  stage of the scheme, prices and settlement included);
* three **paths**, in the same run:

  - ``fast``: backend ``"highs"`` (the bid-space LP of ``market/screening.py`` on the numba dual
    simplex, HiGHS on the explicit program as its fallback); the programs are built at the
    warm-up and then only re-solved (new costs and bounds, hot start from the last basis);
  - ``cvxpy``: backend ``"cvxpy"`` (CVXPY DPP Parameters, compiled once, OSQP with Clarabel as
    fallback); the programs are built at the warm-up and then only re-solved;
  - ``naive``: backend ``"cvxpy"`` with a fresh scheme per clearing, so every clearing builds the
    matrices, constructs the CVXPY problem and compiles it before solving (the baseline a
    straightforward CVXPY implementation would have);

* between repeats only **values** change (bid prices and quantities, the needs, CS_E buy
  quantities): the bid layout is fixed, so ``fast`` and ``cvxpy`` re-solve and never rebuild
  (checked: the number of cached programs must not grow, else a note is added). The naive
  path has no warm-up clearing (each of its clearings is a first one); CVXPY and both solvers
  are imported and run once on a tiny problem before it.

Bid books of a given size (:func:`scale_book`): the truthful book of the scenario at noon
(one bid per unit, offered direction and period) is reordered as unit-directions taken
round-robin over transmission and the distribution areas, largest first. For ``n`` bids below
the book's size the first ``n`` (unit, direction, period) rows are kept; above it every row is
split into price steps: ``k`` bids per (unit, direction, period), each with 1/k of the quantity
and prices rising by ``STEP_EUR_PER_MWH`` per step (the first ``n mod rows`` rows get one more
step), so the count is exactly ``n``.

The CVXPY paths run each (scheme, size) cell in a forked worker that is killed when one
clearing takes longer than ``cvxpy_limit_s`` (OSQP's C loop cannot be interrupted otherwise):
the cell is reported in ``timeouts_s`` and its ratios become lower bounds; larger sizes of that
scheme and path are then skipped, as is everything once ``cvxpy_budget_s`` is spent. Every
skip is listed in ``skipped``. Decentralized CS_D (``CS_D_dec``) always runs on HiGHS (its
Benders cuts are added to the HiGHS model), so it has the fast path only.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

SCHEME_KEYS: dict[str, tuple[str, str]] = {
    "CS_A": ("CS_A", "centralized"),
    "CS_B": ("CS_B", "centralized"),
    "CS_C": ("CS_C", "centralized"),
    "CS_D": ("CS_D", "centralized"),
    "CS_D_dec": ("CS_D", "decentralized"),
    "CS_E": ("CS_E", "centralized"),
}
PATHS = ("fast", "explicit", "cvxpy", "naive")
IN_PROCESS = ("fast", "explicit")   # HiGHS paths: timed in this process, no time limit
BACKENDS = {"fast": "highs", "explicit": "highs-full"}   # every other path: "cvxpy"
FULL_SIZES = (50, 200, 1000, 5000)
QUICK_SIZES = (50, 200, 1000)
FULL_AREA_COUNTS = (1, 2, 4, 8, 15)
QUICK_AREA_COUNTS = (1, 4)
# nested area sets of 1-HVMV-mixed-all-2-sw: the first 4 are the default preset's
AREA_ORDER = ("MV1.101", "MV2.101", "MV3.101", "MV4.101", "MV1.102", "MV2.102", "MV3.102", "MV1.103",
              "MV1.104", "MV1.105", "MV1.106", "MV1.107", "MV1.108", "MV2.103", "MV3.103")
STEP_EUR_PER_MWH = 5.0
TARGET_FAST_MS = 3.0          # fast path, one clearing at 1,000 bids
TARGET_NAIVE_OVER_FAST = 20.0
RATIO_BIDS = 1000
TARGET_EXPONENT = 1.2         # "roughly linear": log-log slope at most this
TARGET_ENV_STEPS_PER_S = {"linear": 1000.0, "ac": 150.0}   # one env step, one process
TARGET_ENV_STEP_MS = 2.0      # issue #6: one linear env step on the default preset


# ---------------------------------------------------------------------------------------------
# instances
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Setup:
    """A built system and the clearing instance the benchmark starts from."""

    scenario: str
    cfg: Any            # ScenarioConfig
    system: Any         # TDSystem
    instance: Any       # MarketInstance (truthful book, CS_E buy book included)
    build_s: float


def prepare(scenario: str = "spain-like", overrides: dict | None = None, step: int = 48) -> Setup:
    """Build (or load from the cache) the system and the instance at ``step`` of the episode window."""
    from smartnet_gym.config import load_scenario
    from smartnet_gym.grid.build import build_system
    from smartnet_gym.simulation.compare import check_window, episode_start
    from smartnet_gym.simulation.loop import RollingLoop

    t0 = time.perf_counter()
    cfg = load_scenario(scenario, overrides)
    system = build_system(cfg)
    build_s = time.perf_counter() - t0
    check_window(system, cfg, step + 1)
    # CS_E's loop also makes the BRP buy book; the other schemes ignore it
    loop = RollingLoop(system, cfg, scheme="CS_E", physics="linear")
    loop.reset(episode_start(cfg) + step, 1, np.random.default_rng(cfg.seed))
    return Setup(cfg.name, cfg, system, loop.instance(), build_s)


@dataclass(frozen=True)
class ScaledLayout:
    """A bid layout of a given size derived from a source book (see :func:`scale_book`)."""

    source: Any          # BidBook the bids derive from
    src: np.ndarray      # (n,) source row of each bid
    step: np.ndarray     # (n,) price step of each bid, 0..k-1
    n_steps: np.ndarray  # (n,) number of steps of its source row
    price_cap: float

    def __len__(self) -> int:
        return len(self.src)

    def book(self, rng: np.random.Generator | None = None):
        """The book; with ``rng`` new prices and quantities (same layout) are drawn."""
        src = self.source
        n_src = len(src)
        fq = np.ones(n_src) if rng is None else rng.uniform(0.8, 1.2, n_src)
        fp = np.ones(n_src) if rng is None else rng.uniform(0.85, 1.15, n_src)
        qty = (src.qty_mw * fq)[self.src] / self.n_steps
        add = STEP_EUR_PER_MWH * self.step
        price = np.minimum((src.price_eur_per_mwh * fp)[self.src] + add, self.price_cap)
        true_cost = np.minimum(src.true_cost_eur_per_mwh[self.src] + add, self.price_cap)
        return replace(src, unit=src.unit[self.src], bus=src.bus[self.src],
                       direction=src.direction[self.src], period=src.period[self.src], qty_mw=qty,
                       price_eur_per_mwh=price, true_cost_eur_per_mwh=true_cost, storage=src.storage[self.src])


def unit_direction_order(book, lin) -> np.ndarray:
    """Rows of ``book`` ordered by unit-direction, round-robin over T and the areas, largest first."""
    area = lin.locate(book.bus)[0]
    groups: dict[tuple[int, int, int], list[int]] = {}
    for i, key in enumerate(zip(book.unit.tolist(), book.bus.tolist(), book.direction.tolist())):
        groups.setdefault(key, []).append(i)
    per_area: dict[int, list[list[int]]] = {}
    for rows in groups.values():
        per_area.setdefault(int(area[rows[0]]), []).append(rows)
    queues = []
    for a in sorted(per_area):
        g = per_area[a]
        size = [-float(book.qty_mw[r].sum()) for r in g]
        queues.append([g[j] for j in np.argsort(size, kind="stable")])
    order: list[int] = []
    k = 0
    while any(k < len(q) for q in queues):
        for q in queues:
            if k < len(q):
                order += sorted(q[k], key=lambda r: int(book.period[r]))
        k += 1
    return np.asarray(order, int)


def scale_book(book, lin, n_bids: int, price_cap: float = 1000.0) -> ScaledLayout:
    """A layout of exactly ``n_bids`` bids from ``book`` (subset of rows, or price steps per row)."""
    if n_bids < 1:
        raise ValueError(f"n_bids must be >= 1 (got {n_bids})")
    order = unit_direction_order(book, lin)
    rows = order[:min(n_bids, len(order))]
    k, extra = divmod(n_bids, len(rows))
    steps = np.full(len(rows), k)
    steps[:extra] += 1
    src = np.repeat(rows, steps)
    step = np.concatenate([np.arange(s) for s in steps])
    return ScaledLayout(book, src, step, np.repeat(steps, steps).astype(float), price_cap)


def new_instance(inst, layout: ScaledLayout, rng: np.random.Generator | None):
    """The instance with the layout's book; with ``rng`` new prices, quantities, needs, buy volumes."""
    from smartnet_gym.market.stages import MarketInstance

    book = layout.book(rng)
    if rng is None:
        return MarketInstance(book, inst.base, inst.need_mw, inst.area_need_mw, inst.buy)
    h = inst.horizon
    f = rng.uniform(0.6, 1.4, h)
    need = inst.need_mw * f + rng.normal(0.0, 2.0, h)
    area_need = inst.area_need_mw * rng.uniform(0.6, 1.4, inst.area_need_mw.shape)
    buy = inst.buy
    if len(buy):
        buy = replace(buy, qty_mw=buy.qty_mw * rng.uniform(0.8, 1.2, len(buy)))
    return MarketInstance(book, inst.base, need, area_need, buy)


# ---------------------------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------------------------
def _scheme(setup: Setup, key: str, backend: str):
    from smartnet_gym.market.schemes import make_scheme

    name, variant = SCHEME_KEYS[key]
    mcfg = setup.cfg.market.model_copy(update={"variant": variant})
    return make_scheme(name, setup.system.linear, mcfg, backend)


def _n_programs(scheme) -> int:
    return sum(len(getattr(s, "_programs", {})) for s in scheme.stages)


@dataclass
class Timing:
    ms: float                  # median wall ms per clearing
    solve_ms: float            # median of the solver part (Σ stage solve_ms)
    samples: list[float]
    not_optimal: int           # clearings whose status was not "optimal"
    rebuilt: bool              # programs were rebuilt between repeats (should never happen)
    rounds: list[int] = field(default_factory=list)   # Benders rounds per clearing (CS_D_dec)
    cpu_ms: float = float("nan")   # median CPU ms of this process per clearing (not inflated by a busy machine)


def time_clearing(setup: Setup, key: str, path: str, layout: ScaledLayout, repeats: int, warmup: int = 1,
                  seed: int = 0, on_clearing: Callable[[str, float, float, bool], None] | None = None) -> Timing:
    """Median ms of one clearing of scheme ``key`` on ``path`` ('fast', 'explicit', 'cvxpy' or 'naive'; a
    '_clarabel' suffix only names the solver the caller configured, see :func:`time_limited`).

    ``on_clearing(kind, wall_ms, solve_ms, optimal)`` is called after every clearing (kind
    'warmup' or 'repeat').
    """
    base = path.removesuffix("_clarabel")
    if base not in PATHS:
        raise ValueError(f"unknown path {path!r}; allowed: {', '.join(PATHS)} (+ '_clarabel')")
    rng = np.random.default_rng(seed)
    backend = BACKENDS.get(base, "cvxpy")
    scheme = _scheme(setup, key, backend)
    for _ in range(warmup):      # builds the programs (fast, cvxpy) or warms CVXPY's caches (naive)
        t0 = time.perf_counter()
        out = scheme.clear(new_instance(setup.instance, layout, rng), evaluate=False)
        if on_clearing:
            on_clearing("warmup", (time.perf_counter() - t0) * 1e3, out.solve_ms, out.status == "optimal")
    n_prog = _n_programs(scheme)
    walls, cpus, solves, bad, rounds = [], [], [], 0, []
    for _ in range(repeats):
        inst = new_instance(setup.instance, layout, rng)
        if base == "naive":
            scheme = _scheme(setup, key, backend)   # fresh: every program is built and compiled again
        t0, c0 = time.perf_counter(), time.process_time()
        out = scheme.clear(inst, evaluate=False)
        walls.append((time.perf_counter() - t0) * 1e3)
        cpus.append((time.process_time() - c0) * 1e3)
        solves.append(out.solve_ms)
        bad += out.status != "optimal"
        rounds += [int(st.rounds) for st in scheme.stages if isinstance(getattr(st, "rounds", None), int)]
        if on_clearing:
            on_clearing("repeat", walls[-1], out.solve_ms, out.status == "optimal")
    rebuilt = base != "naive" and _n_programs(scheme) != n_prog
    return Timing(float(np.median(walls)), float(np.median(solves)), walls, bad, rebuilt, rounds,
                  float(np.median(cpus)))


def _child(conn, setup: Setup, key: str, path: str, layout: ScaledLayout, repeats: int, warmup: int,
           seed: int) -> None:
    """Forked worker of :func:`time_limited`: streams every clearing's time to the parent."""
    try:
        if path.endswith("_clarabel"):
            # this process only: CvxpyBackend's default solver becomes Clarabel (diagnostic paths)
            from smartnet_gym.market.solvers import CvxpyBackend

            CvxpyBackend.__init__.__defaults__ = ("CLARABEL",)
        t = time_clearing(setup, key, path, layout, repeats, warmup, seed,
                          on_clearing=lambda *a: conn.send(("clearing", *a)))
        conn.send(("done", t.rebuilt))
    except BaseException as e:  # noqa: BLE001 - report to the parent, never hang it
        conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        conn.close()


def time_limited(setup: Setup, key: str, path: str, layout: ScaledLayout, repeats: int, warmup: int,
                 limit_s: float, seed: int = 0) -> tuple[Timing | None, str | None]:
    """:func:`time_clearing` in a forked process that is killed when one clearing takes longer
    than ``limit_s``; returns (timing of the repeats done, or None; why it stopped, or None).

    OSQP can run for minutes on these programs; its C loop cannot be interrupted from Python,
    so the limit needs a process of its own. Without ``fork`` (not Linux/macOS) it runs in-process.
    """
    import multiprocessing as mp

    if "fork" not in mp.get_all_start_methods():
        t = time_clearing(setup, key, path, layout, repeats, warmup, seed)
        return t, None
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, setup, key, path, layout, repeats, warmup, seed), daemon=True)
    proc.start()
    send.close()
    walls, solves, bad, rebuilt, reason = [], [], 0, False, None
    try:
        while True:
            if not recv.poll(limit_s):
                reason = (f"one clearing took more than {limit_s:g} s (killed; {len(walls)} of {repeats} timed "
                          f"clearings done)")
                break
            try:
                msg = recv.recv()
            except EOFError:
                reason = "worker process ended without a result"
                break
            if msg[0] == "clearing":
                _, kind, wall, solve_ms, ok = msg
                if kind == "repeat":
                    walls.append(wall)
                    solves.append(solve_ms)
                    bad += not ok
            elif msg[0] == "done":
                rebuilt = msg[1]
                break
            else:
                reason = msg[1]
                break
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        recv.close()
    if not walls:
        return None, reason
    return Timing(float(np.median(walls)), float(np.median(solves)), walls, bad, rebuilt), reason


def warm_cvxpy() -> None:
    """Import and run CVXPY with OSQP and Clarabel once, so that forked workers start warm."""
    import cvxpy as cp

    z = cp.Variable(2)
    c = cp.Parameter(2, value=np.ones(2))
    prob = cp.Problem(cp.Minimize(c @ z), [z >= 0, cp.sum(z) == 1])
    for solver in ("OSQP", "CLARABEL"):
        try:
            prob.solve(solver=solver)
        except Exception:  # noqa: BLE001, S110 - a missing solver shows up in the measured paths
            pass


def profile_fast(setup: Setup, key: str, n_bids: int = RATIO_BIDS, repeats: int = 5) -> dict[str, float]:
    """Where a fast-path clearing spends its time (cProfile, ms per clearing; profiling inflates
    the Python parts): HiGHS ``run``, HiGHS value updates and reads, ``LinearTD.locate``
    (Python loop over bids), ``NetworkResponse.shift`` (without locate), the rest."""
    import cProfile
    import pstats

    layout = scale_book(setup.instance.book, setup.system.linear, n_bids, setup.cfg.market.price_cap_eur_per_mwh)
    rng = np.random.default_rng(0)
    scheme = _scheme(setup, key, "highs")
    scheme.clear(new_instance(setup.instance, layout, rng), evaluate=False)
    insts = [new_instance(setup.instance, layout, rng) for _ in range(repeats)]
    prof = cProfile.Profile()
    prof.enable()
    for inst in insts:
        scheme.clear(inst, evaluate=False)
    prof.disable()
    stats = pstats.Stats(prof).stats   # (file, line, name) -> (cc, nc, tottime, cumtime, callers)
    total = run = update = locate = shift = locate_in_shift = 0.0
    for (file, _, name), (_, _, tt, ct, callers) in stats.items():
        total += tt
        if "highspy" in name and name.endswith(".run>"):
            run += tt
        elif "highspy" in name and any(w in name for w in ("change", "getSolution", "getInfo", "getModelStatus")):
            update += tt
        elif name == "locate" and file.endswith("linear.py"):
            locate += ct
            locate_in_shift += sum(v[3] for c, v in callers.items() if c[2] == "shift")
        elif name == "shift" and file.endswith("stages.py"):
            shift += ct
    k = 1e3 / repeats
    parts = {"total_ms": total * k, "highs_run_ms": run * k, "highs_update_ms": update * k,
             "locate_ms": locate * k, "shift_ms": (shift - locate_in_shift) * k}
    parts["other_ms"] = max(parts["total_ms"] - sum(v for n, v in parts.items() if n != "total_ms"), 0.0)
    return {n: round(v, 2) for n, v in parts.items()}


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Least-squares slope of log y against log x (None with fewer than two usable points)."""
    pts = [(a, b) for a, b in zip(x, y) if a and b and a > 0 and b > 0 and math.isfinite(b)]
    if len(pts) < 2 or len({a for a, _ in pts}) < 2:
        return None
    lx, ly = np.log([a for a, _ in pts]), np.log([b for _, b in pts])
    return float(np.polyfit(lx, ly, 1)[0])


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


# ---------------------------------------------------------------------------------------------
# benchmarks
# ---------------------------------------------------------------------------------------------
def bench_clearing(setup: Setup, sizes: Sequence[int] = FULL_SIZES, schemes: Sequence[str] = tuple(SCHEME_KEYS),
                   paths: Sequence[str] = PATHS, repeats: int = 5, warmup: int = 1,
                   cvxpy_sizes: Sequence[int] | None = None, cvxpy_schemes: Sequence[str] | None = None,
                   cvxpy_repeats: int | None = None, cvxpy_limit_s: float = 10.0,
                   cvxpy_budget_s: float | None = None, diag_sizes: Sequence[int] = (),
                   log: Callable[[str], None] | None = None) -> dict:
    """ms per clearing for every scheme, bid count and path; see the module docstring.

    The fast path runs in this process at every size. The CVXPY paths run at ``cvxpy_sizes``
    (default: ``sizes``) for ``cvxpy_schemes``, each cell in a worker process killed when one
    clearing exceeds ``cvxpy_limit_s`` (the cell goes to ``timeouts`` and larger sizes of that
    scheme and path are skipped); once ``cvxpy_budget_s`` is spent the remaining cells are
    skipped. ``diag_sizes``: sizes where the CVXPY paths also run with Clarabel instead of OSQP
    (``cvxpy_clarabel``, ``naive_clarabel``), to separate the rebuild cost from OSQP's iterations.
    """
    all_paths = list(paths) + ([f"{p}_clarabel" for p in paths if p not in IN_PROCESS] if diag_sizes else [])
    ms: dict[str, Any] = {p: {k: {} for k in schemes} for p in all_paths}
    solve: dict[str, Any] = {p: {k: {} for k in schemes} for p in all_paths}
    samples: dict[str, Any] = {p: {k: {} for k in schemes} for p in all_paths}
    cpu: dict[str, Any] = {p: {k: {} for k in schemes} for p in all_paths if p in IN_PROCESS}
    timeouts: dict[str, Any] = {p: {} for p in all_paths if p not in IN_PROCESS}
    partial: dict[str, Any] = {p: {} for p in all_paths if p not in IN_PROCESS}   # cells killed after some repeats
    rounds: dict[str, dict[int, float]] = {}
    skipped: list[str] = []
    notes: list[str] = []
    price_cap = setup.cfg.market.price_cap_eur_per_mwh
    all_sizes = sorted(set(sizes) | set(cvxpy_sizes or ()) | set(diag_sizes))
    layouts = {n: scale_book(setup.instance.book, setup.system.linear, n, price_cap) for n in all_sizes}

    def record(path: str, key: str, n: int, t: Timing, reps: int) -> None:
        ms[path][key][n], solve[path][key][n], samples[path][key][n] = t.ms, t.solve_ms, t.samples
        if path in cpu:
            cpu[path][key][n] = t.cpu_ms
        if t.rounds and path == "fast":
            rounds.setdefault(key, {})[n] = float(np.median(t.rounds))
        if t.not_optimal:
            notes.append(f"{key} {path} {n} bids: {t.not_optimal}/{len(t.samples)} clearings not optimal")
        if t.rebuilt:
            notes.append(f"{key} {path} {n} bids: programs were rebuilt between repeats")
        if log:
            log(f"  {key:8s} {path:15s} {n:5d} bids: {t.ms:10.1f} ms  (solver {t.solve_ms:.1f} ms, "
                f"{len(t.samples)} timed)")

    for path in (p for p in paths if p in IN_PROCESS):
        for key in schemes:
            for n in sizes:
                record(path, key, n, time_clearing(setup, key, path, layouts[n], repeats, warmup), repeats)

    slow = [p for p in all_paths if p not in IN_PROCESS]
    if not slow:
        return {"ms": ms, "solve_ms": solve, "samples": samples, "timeouts": timeouts, "partial": {},
                "skipped": skipped, "notes": notes, "n_bids": {n: len(layouts[n]) for n in all_sizes},
                "rounds": rounds, "cpu_ms": cpu}
    warm_cvxpy()
    t_start = time.perf_counter()
    c_schemes = [k for k in (cvxpy_schemes or schemes) if k in schemes]
    c_reps = cvxpy_repeats or repeats
    for key in c_schemes:
        if key == "CS_D_dec":
            notes.append("CS_D_dec (decentralized CS_D) always solves with HiGHS: the Benders cuts are added to "
                         "the HiGHS model in place, so it has no CVXPY path")
            continue
        for path in slow:
            cell_sizes = list(diag_sizes if path.endswith("_clarabel") else (cvxpy_sizes or sizes))
            # the ratio size first, so that its ratio is measured (or bounded) for every scheme
            cell_sizes.sort(key=lambda n: (n != RATIO_BIDS, n))
            stop: tuple[int, str] | None = None   # (size that timed out, why)
            for n in cell_sizes:
                if stop is not None and n > stop[0]:
                    skipped.append(f"{key} {path} {n} bids: skipped, {stop[1]} at {stop[0]} bids")
                    continue
                if cvxpy_budget_s is not None and time.perf_counter() - t_start > cvxpy_budget_s:
                    skipped.append(f"{key} {path} {n} bids: CVXPY time budget of {cvxpy_budget_s:g} s spent")
                    continue
                # the naive path's warm-up is CVXPY's own (warm_cvxpy): each of its clearings is a first one
                w = 0 if path.startswith("naive") else warmup
                t, reason = time_limited(setup, key, path, layouts[n], c_reps, w, cvxpy_limit_s)
                if t is not None:
                    record(path, key, n, t, c_reps)
                if reason is not None:
                    if t is not None:
                        partial[path].setdefault(key, {})[n] = len(t.samples)
                    if t is None:
                        timeouts[path].setdefault(key, {})[n] = cvxpy_limit_s
                        if stop is None or n < stop[0]:
                            stop = (n, f"one clearing took more than {cvxpy_limit_s:g} s")
                    notes.append(f"{key} {path} {n} bids: {reason}")
                    if log:
                        log(f"  {key:8s} {path:15s} {n:5d} bids: {reason}")
    return {"ms": ms, "solve_ms": solve, "samples": samples, "timeouts": timeouts, "partial": partial,
            "skipped": skipped, "notes": notes, "n_bids": {n: len(layouts[n]) for n in all_sizes}, "rounds": rounds,
            "cpu_ms": cpu}


def ratios(clear: dict, num: str, den: str, n: int = RATIO_BIDS) -> tuple[dict[str, float], dict[str, bool]]:
    """Per scheme ``num``/``den`` ms at ``n`` bids, plus ``overall`` (ratio of the times summed
    over the schemes that have both) and ``geomean`` (of the per-scheme ratios).

    A ``num`` cell that hit the time limit counts at the limit, and one killed after some repeats
    at the median of those, so their ratios are lower bounds; the second dict says which are.
    """
    res: dict[str, float] = {}
    lower: dict[str, bool] = {}
    tot_a = tot_b = 0.0
    logs = []
    for key in clear["ms"].get(den, {}):
        b = clear["ms"][den][key].get(n)
        a = clear["ms"].get(num, {}).get(key, {}).get(n)
        lim = clear.get("timeouts", {}).get(num, {}).get(key, {}).get(n)
        cut = clear.get("partial", {}).get(num, {}).get(key, {}).get(n) is not None   # median of the fast ones
        if a is None and lim is not None:
            a = 1e3 * lim
        r = _ratio(a, b)
        if r is None:
            continue
        res[key], lower[key] = r, lim is not None or cut
        tot_a += a
        tot_b += b
        logs.append(math.log(r))
    if tot_b:
        res["overall"] = tot_a / tot_b
        res["geomean"] = float(math.exp(np.mean(logs)))
        lower["overall"] = lower["geomean"] = any(lower.values())
    return res, lower


def bench_areas(scenario: str = "spain-like", area_counts: Sequence[int] = FULL_AREA_COUNTS, n_bids: int = 1000,
                schemes: Sequence[str] = tuple(SCHEME_KEYS), repeats: int = 5, warmup: int = 1,
                log: Callable[[str], None] | None = None, loaded: Setup | None = None) -> dict:
    """Fast-path ms per clearing against the number of detailed distribution areas, at a fixed
    total of ``n_bids`` bids (spread round-robin over T and the areas).

    The areas are the first ``k`` of :data:`AREA_ORDER` (nested sets; 4 = the default preset's),
    everything else from ``scenario``. ``loaded``: an already built setup reused when its areas match.
    """
    ms: dict[str, dict[int, float]] = {k: {} for k in schemes}
    info: dict[int, dict] = {}
    notes = []
    for na in area_counts:
        if na > len(AREA_ORDER):
            notes.append(f"{na} areas: 1-HVMV-mixed-all-2-sw has only {len(AREA_ORDER)} MV areas (skipped)")
            continue
        if loaded is not None and tuple(loaded.cfg.grid.areas) == AREA_ORDER[:na]:
            setup = loaded
        else:
            setup = prepare(scenario, {"grid": {"areas": list(AREA_ORDER[:na])}})
        lin = setup.system.linear
        info[na] = {"buses": len(setup.system.net.bus), "d_buses": int(sum(f.n_bus for f in lin.feeders)),
                    "t_buses": int(lin.dc.n_bus), "preset_bids": len(setup.instance.book),
                    "build_s": round(setup.build_s, 2)}
        layout = scale_book(setup.instance.book, lin, n_bids, setup.cfg.market.price_cap_eur_per_mwh)
        for key in schemes:
            t = time_clearing(setup, key, "fast", layout, repeats, warmup)
            ms[key][na] = t.ms
            if t.not_optimal:
                notes.append(f"{key} {na} areas: {t.not_optimal}/{repeats} clearings not optimal")
            if log:
                log(f"  {key:8s} {na:2d} areas ({info[na]['buses']} buses): {t.ms:8.1f} ms")
    counts = sorted(info)
    exps = {k: loglog_slope(counts, [ms[k][c] for c in counts]) for k in schemes}
    exps["all"] = loglog_slope(counts, [sum(ms[k][c] for k in schemes) for c in counts])
    return {"n_areas": counts, "n_bids": n_bids, "ms": ms, "exponent": exps, "systems": info, "notes": notes}


def bid_scaling(clear: dict) -> dict:
    """Log-log slope of ms per clearing against bids, per path and scheme (``all``: summed times)."""
    res: dict[str, Any] = {}
    for path, per in clear["ms"].items():
        exps = {}
        common = None
        for key, d in per.items():
            ns = sorted(d)
            if ns:
                exps[key] = loglog_slope(ns, [d[n] for n in ns])
                common = set(ns) if common is None else common & set(ns)
        if common:
            ns = sorted(common)
            exps["all"] = loglog_slope(ns, [sum(d[n] for d in per.values() if n in d) for n in ns])
        if any(v is not None for v in exps.values()):
            res[path] = exps
    fast = clear["ms"].get("fast", {})
    top = {}
    for key, d in fast.items():   # slope between the two largest sizes: the large-book trend
        ns = sorted(d)[-2:]
        if len(ns) == 2:
            top[key] = loglog_slope(ns, [d[n] for n in ns])
    return {"n_bids": sorted({n for d in fast.values() for n in d}), "ms": fast, "exponent": res,
            "exponent_fast_top2": top}


def machine_info() -> dict:
    """CPU count, Python, platform, load and solver versions."""
    from importlib import metadata

    def ver(d: str) -> str:
        try:
            return metadata.version(d)
        except metadata.PackageNotFoundError:
            return "none"

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"cpu_count": os.cpu_count(), "cpu_usable": usable, "python": platform.python_version(),
            "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "load_avg_1_5_15": [round(x, 2) for x in load],
            "versions": {d: ver(d) for d in ("highspy", "cvxpy", "osqp", "clarabel", "numpy", "scipy")}}


ENV_CASES = {"quick": (("smartnet/Bidding-v0", "linear"),),   # for env_steps(quick=True) called directly
             "full": (("smartnet/Bidding-v0", "linear"), ("smartnet/Bidding-v0", "ac"),
                      ("smartnet/Dispatch-v0", "linear"), ("smartnet/Dispatch-v0", "ac"))}


def _env_step_module():
    """``benchmarks/env_step.py`` as a module, or None when the script is not there (an installed package)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "env_step.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("_smartnet_env_step_bench", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def env_episodes(scenario: str = "spain-like", episodes: int = 4, every_day: bool = False) -> tuple[dict, str]:
    """ms per step over whole default episodes (``default_episodes`` of ``benchmarks/env_step.py``)
    of each env id, linear physics: ``({env_id: {mean_ms, median_ms, max_ms, ms_per_step, start_step}}, note)``;
    ``every_day``: one episode on each day an episode can start on instead of ``episodes`` random ones."""
    try:
        mod = _env_step_module()
        if mod is None:
            return {}, "benchmarks/env_step.py not found: env_episode_ms left empty"
        res = {eid: mod.default_episodes(eid, scenario, episodes, 0, every_day) for eid in mod.IDS}
    except Exception as e:  # noqa: BLE001 - a failed env measurement is reported, never crashes the benchmark
        return {}, f"benchmarks/env_step.py failed ({type(e).__name__}: {e})"
    which = "one on every day an episode can start on" if every_day else f"{episodes} on random days"
    return res, (f"default_episodes() of benchmarks/env_step.py: whole episodes per env as registered "
                 f"(96 steps from 00:00), {which}, linear physics, random actions, after one warm-up episode")


def env_steps(scenario: str = "spain-like", quick: bool = False) -> tuple[dict, str]:
    """Single-process env steps and their split, measured by ``single_process`` of
    ``benchmarks/env_step.py``: ``({env_id: {physics: {steps_per_s, clearing_ms, …}}}, note)``,
    or ``({}, reason)`` when the script is missing or fails (quick: 8 timed steps, full: 32).
    """
    steps = 8 if quick else 32
    res: dict[str, dict[str, dict[str, float]]] = {}
    try:
        mod = _env_step_module()
        if mod is None:
            return {}, "benchmarks/env_step.py not found: env_steps_per_s left empty"
        for env_id, physics in ENV_CASES["quick" if quick else "full"]:
            kw = {"scenario": scenario, "physics": physics, "episode_steps": 96, "start_period": 44}
            r = mod.single_process(env_id, kw, steps, 0)
            res.setdefault(env_id, {})[physics] = {k: round(float(v), 3) for k, v in r.items()}
    except Exception as e:  # noqa: BLE001 - a failed env measurement is reported, never crashes the benchmark
        return {}, f"benchmarks/env_step.py failed ({type(e).__name__}: {e})"
    return res, (f"single_process() of benchmarks/env_step.py, {steps} timed steps after 1 warm-up step, "
                 "random actions, 1 process, resets excluded, episodes start at 11:00")


# ---------------------------------------------------------------------------------------------
# the whole report
# ---------------------------------------------------------------------------------------------
MODES: dict[str, dict[str, Any]] = {
    "full": dict(sizes=FULL_SIZES, repeats=7, cvxpy_sizes=FULL_SIZES, cvxpy_schemes=None, cvxpy_repeats=3,
                 cvxpy_limit_s=10.0, cvxpy_budget_s=900.0, diag_sizes=(RATIO_BIDS,),
                 area_counts=FULL_AREA_COUNTS, area_bids=1000, profile=True),
    # < 60 s: no 5,000 bids, CVXPY only at 1,000 bids with 2 s per clearing and 20 s in all,
    # areas 1 and 4 (without CS_D_dec), no env steps
    "quick": dict(sizes=QUICK_SIZES, repeats=3, cvxpy_sizes=(RATIO_BIDS,), cvxpy_schemes=None, cvxpy_repeats=2,
                  cvxpy_limit_s=2.0, cvxpy_budget_s=20.0, diag_sizes=(), area_counts=QUICK_AREA_COUNTS,
                  area_bids=1000, profile=False),
    # smoke test only: toy system, two sizes, one repeat, CVXPY for CS_A only, no areas, no env steps
    "tiny": dict(sizes=(20, 100), repeats=1, cvxpy_sizes=(100,), cvxpy_schemes=("CS_A",), cvxpy_repeats=1,
                 cvxpy_limit_s=20.0, cvxpy_budget_s=None, diag_sizes=(), area_counts=(), area_bids=100,
                 profile=False),
}


PARTS = ("clearing", "areas", "env")


def run_benchmark(mode: str = "full", scenario: str | None = None, repeats: int | None = None,
                  log: Callable[[str], None] | None = None, parts: Sequence[str] = PARTS) -> dict:
    """Everything ``smartnet-gym benchmark`` reports, as a JSON-ready dict.

    ``mode``: 'full', 'quick' or 'tiny' (see :data:`MODES`). ``parts``: 'clearing' (all three
    paths) or 'fast' (fast path only, enough for the bid exponents), 'areas', 'env'.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; allowed: {', '.join(MODES)}")
    bad = set(parts) - {*PARTS, "fast"}
    if bad:
        raise ValueError(f"unknown parts {sorted(bad)}; allowed: {', '.join(PARTS)}, fast")
    p = MODES[mode]
    scenario = scenario or ("toy" if mode == "tiny" else "spain-like")
    repeats = repeats or p["repeats"]
    t0 = time.perf_counter()
    machine = machine_info()
    setup = prepare(scenario)
    if log:
        log(f"{scenario}: {len(setup.system.net.bus)} buses, {len(setup.system.areas)} areas, "
            f"H={setup.instance.horizon}, truthful book {len(setup.instance.book)} bids "
            f"(system loaded in {setup.build_s:.1f} s)")
        log("clearing per scheme, bids and path:")
    paths = PATHS if "clearing" in parts else ("fast",)
    clear = bench_clearing(setup, p["sizes"], paths=paths, repeats=repeats, cvxpy_sizes=p["cvxpy_sizes"],
                           cvxpy_schemes=p["cvxpy_schemes"], cvxpy_repeats=p["cvxpy_repeats"],
                           cvxpy_limit_s=p["cvxpy_limit_s"], cvxpy_budget_s=p["cvxpy_budget_s"],
                           diag_sizes=p["diag_sizes"] if "clearing" in parts else (), log=log)
    ratio_n = RATIO_BIDS if RATIO_BIDS in p["sizes"] else max(p["cvxpy_sizes"])
    notes = list(clear["notes"])
    profile = {}
    if p["profile"] and "clearing" in parts:
        if log:
            log(f"profile of the fast path at {ratio_n} bids (cProfile, ms per clearing):")
        for key in SCHEME_KEYS:
            profile[key] = profile_fast(setup, key, ratio_n, repeats=3 if key == "CS_D_dec" else 5)
            if log:
                log(f"  {key:8s} {profile[key]}")
    areas: dict = {}
    if p["area_counts"] and "areas" in parts:
        if log:
            log(f"scaling with distribution areas ({p['area_bids']} bids, fast path):")
        a_schemes = tuple(k for k in SCHEME_KEYS if mode != "quick" or k != "CS_D_dec")
        areas = bench_areas(scenario, p["area_counts"], p["area_bids"], schemes=a_schemes,
                            repeats=min(repeats, 2) if mode == "quick" else repeats, log=log, loaded=setup)
        if mode == "quick":
            notes.append("quick mode: area scaling without CS_D_dec (about 1 s per clearing), 2 repeats")
        notes += areas.pop("notes")
        if max(p["area_counts"]) < len(AREA_ORDER):
            notes.append(f"area scaling up to {max(p['area_counts'])} areas in this mode "
                         f"(full mode: {', '.join(map(str, FULL_AREA_COUNTS))})")
        else:
            notes.append("16 areas is not possible: 1-HVMV-mixed-all-2-sw has 15 MV areas (all 15 measured)")
    episodes: dict = {}
    if mode == "tiny" or "env" not in parts:
        env, env_note = {}, "not measured in tiny mode" if mode == "tiny" else "not asked for"
    elif mode == "quick":
        env, env_note = {}, "not measured in quick mode (about 40 s in full mode)"
    else:
        if log:
            log("env steps (benchmarks/env_step.py):")
        env, env_note = env_steps(scenario, quick=mode == "quick")
        episodes, ep_note = env_episodes(scenario, every_day=True)
        notes.append(f"env_episode_ms: {ep_note}")
    notes.append(f"env_steps_per_s: {env_note}")
    machine["load_avg_end"] = [round(x, 2) for x in (os.getloadavg() if hasattr(os, "getloadavg") else ())]
    fast_at = {k: d.get(ratio_n) for k, d in clear["ms"]["fast"].items()}
    nof, nof_lb = ratios(clear, "naive", "fast", ratio_n)
    cof, cof_lb = ratios(clear, "cvxpy", "fast", ratio_n)
    eof, _ = ratios(clear, "explicit", "fast", ratio_n)
    noc, _ = ratios(clear, "naive", "cvxpy", ratio_n)
    rep = {
        "scenario": scenario, "mode": mode, "horizon_periods": setup.instance.horizon,
        "sizes": list(p["sizes"]), "cvxpy_sizes": list(p["cvxpy_sizes"]), "repeats": repeats,
        "cvxpy_repeats": p["cvxpy_repeats"], "cvxpy_limit_s": p["cvxpy_limit_s"], "warmup": 1,
        "ratio_at_bids": ratio_n,
        "clear_ms": clear["ms"]["fast"], "clear_ms_explicit": clear["ms"].get("explicit", {}),
        "clear_cpu_ms": clear["cpu_ms"]["fast"], "clear_cpu_ms_explicit": clear["cpu_ms"].get("explicit", {}),
        "clear_ms_cvxpy": clear["ms"].get("cvxpy", {}),
        "clear_ms_naive": clear["ms"].get("naive", {}),
        "clear_ms_diagnostic": {p_: clear["ms"][p_] for p_ in clear["ms"] if p_.endswith("_clarabel")},
        "solve_ms": clear["solve_ms"],
        "timeouts_s": clear["timeouts"],
        "partial_cells": clear["partial"],
        "benders_rounds": clear["rounds"],
        "naive_over_fast": nof, "naive_over_fast_lower_bound": nof_lb,
        "cvxpy_over_fast": cof, "cvxpy_over_fast_lower_bound": cof_lb,
        "naive_over_cvxpy": noc, "explicit_over_fast": eof,
        "targets": {
            "fast_ms_max": TARGET_FAST_MS, "naive_over_fast_min": TARGET_NAIVE_OVER_FAST,
            "fast_ms_met": {k: (v is not None and v <= TARGET_FAST_MS) for k, v in fast_at.items()},
            "fast_cpu_ms_met": {k: (d.get(ratio_n) is not None and d[ratio_n] <= TARGET_FAST_MS)
                                for k, d in clear["cpu_ms"]["fast"].items()},
            # None: a lower bound below the target (the CVXPY cell was killed), so not decided
            "naive_over_fast_met": {k: True if v >= TARGET_NAIVE_OVER_FAST else (None if nof_lb.get(k) else False)
                                    for k, v in nof.items()},
            "exponent_max": TARGET_EXPONENT,
            "env_steps_per_s_min": TARGET_ENV_STEPS_PER_S,
            "env_step_ms_max_linear": TARGET_ENV_STEP_MS,
            "env_step_ms_met": {eid: 1e3 / per["linear"]["steps_per_s"] <= TARGET_ENV_STEP_MS
                                for eid, per in env.items() if per.get("linear", {}).get("steps_per_s")},
            "env_episode_ms_met": {eid: d["mean_ms"] <= TARGET_ENV_STEP_MS for eid, d in episodes.items()},
        },
        "scaling": {"bids": bid_scaling(clear), "areas": areas},
        "profile_fast_ms": profile,
        "machine": machine,
        "env_steps_per_s": {eid: {ph: d["steps_per_s"] for ph, d in per.items()} for eid, per in env.items()},
        "env_step_split_ms": env,
        "env_episode_ms": episodes,
        "skipped": clear["skipped"],
        "notes": notes,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    sc = rep["scaling"]
    rep["targets"]["bids_exponent_met"] = {k: v <= TARGET_EXPONENT for k, v in
                                           sc["bids"]["exponent"].get("fast", {}).items() if v is not None}
    rep["targets"]["areas_exponent_met"] = {k: v <= TARGET_EXPONENT for k, v in
                                            (areas.get("exponent") or {}).items() if v is not None}
    if clear["ms"].get("naive_clarabel"):
        nc, _ = ratios(clear, "naive_clarabel", "cvxpy_clarabel", ratio_n)
        rep["rebuild_over_resolve_clarabel"] = nc
    return rep


# ---------------------------------------------------------------------------------------------
# text tables
# ---------------------------------------------------------------------------------------------
def _fmt(v: float | None, width: int = 9) -> str:
    if v is None:
        return f"{'-':>{width}s}"
    return f"{v:{width}.1f}" if v >= 10 else f"{v:{width}.2f}"


def _fx(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def _cell(rep: dict, path: str, key: str, n: int, width: int = 9) -> str:
    field = {"fast": "clear_ms", "fast (cpu)": "clear_cpu_ms", "explicit": "clear_ms_explicit",
             "explicit (cpu)": "clear_cpu_ms_explicit", "cvxpy": "clear_ms_cvxpy", "naive": "clear_ms_naive"}.get(path)
    d = rep.get(field, {}) if field else rep["clear_ms_diagnostic"].get(path, {})
    v = d.get(key, {}).get(n)
    if v is None:
        lim = rep["timeouts_s"].get(path, {}).get(key, {}).get(n)
        if lim is not None:
            return f"{'>' + format(1e3 * lim, '.0f'):>{width}s}"
    if rep.get("partial_cells", {}).get(path, {}).get(key, {}).get(n) is not None:
        return _fmt(v, width - 1) + "*"
    return _fmt(v, width)


def format_clearing(rep: dict) -> str:
    """Table: ms per clearing per scheme, path and bids; ratios; targets."""
    sizes = sorted(set(rep["sizes"]) | set(rep["cvxpy_sizes"]))
    n = rep["ratio_at_bids"]
    m = rep["machine"]
    lines = [(f"Market clearing, {rep['scenario']} (H = {rep['horizon_periods']} periods per clearing), "
              f"ms per clearing (median; fast: {rep['repeats']} after 1 warm-up, CVXPY paths: "
              f"{rep['cvxpy_repeats']}, limit {rep['cvxpy_limit_s']:g} s per clearing)"),
             (f"machine: {m['cpu_usable']} usable cores, Python {m['python']}, load avg (1/5/15 min) "
              f"{m['load_avg_1_5_15']} at start, {m.get('load_avg_end')} at end"),
             ("fast = dual simplex (numba) on the bid-space LP, network limits added when they bind (built once, hot start); "
              "explicit = HiGHS on the explicit program (every bus and branch, built once, hot start); cvxpy = CVXPY DPP, compiled once, OSQP (Clarabel fallback); "
              "naive = CVXPY rebuilt + compiled every clearing; '>N' = killed after N ms; '-' = not run; "
              "'*' = median of the clearings done before one was killed (the true median is higher)"), ""]
    head = f"{'scheme':9s} {'path':15s}" + "".join(f"{s:>9d}" for s in sizes) + f"  {'solver@' + str(n):>12s}"
    lines += [head, "-" * len(head)]
    paths = ["fast", "fast (cpu)", "explicit", "explicit (cpu)", "cvxpy", "naive"] + list(rep["clear_ms_diagnostic"])
    for key in rep["clear_ms"]:
        first = True
        for path in paths:
            cells = [_cell(rep, path, key, s) for s in sizes]
            if path != "fast" and all(c.strip() == "-" for c in cells):
                continue
            sv = rep["solve_ms"].get(path, {}).get(key, {}).get(n)
            lines.append(f"{key if first else '':9s} {path:15s}{''.join(cells)}  {_fmt(sv, 12)}")
            first = False
    lines.append("")
    for name, key_, lb in (("naive/fast", "naive_over_fast", "naive_over_fast_lower_bound"),
                            ("cvxpy/fast", "cvxpy_over_fast", "cvxpy_over_fast_lower_bound"),
                            ("naive/cvxpy", "naive_over_cvxpy", None),
                            ("explicit/fast", "explicit_over_fast", None),
                            ("rebuild/re-solve, both Clarabel", "rebuild_over_resolve_clarabel", None)):
        r = rep.get(key_)
        if not r:
            continue
        bound = rep.get(lb, {}) if lb else {}
        cells = ", ".join(f"{k} {'>=' if bound.get(k) else ''}{v:.1f}x" for k, v in r.items())
        lines.append(f"{name} at {n} bids: {cells}")
    t = rep["targets"]
    fast = {k: d.get(n) for k, d in rep["clear_ms"].items()}
    lines.append(f"target fast path <= {t['fast_ms_max']:g} ms at {n} bids: " + ", ".join(
        f"{k} {_fx(v)} ms {'ok' if t['fast_ms_met'].get(k) else 'MISSED'}" for k, v in fast.items()))
    cpu = {k: d.get(n) for k, d in rep.get("clear_cpu_ms", {}).items()}
    if cpu:
        lines.append("  the same in CPU ms of this process (what an idle core would take): " + ", ".join(
            f"{k} {_fx(v)} ms {'ok' if t['fast_cpu_ms_met'].get(k) else 'MISSED'}" for k, v in cpu.items()))
    nf = rep["naive_over_fast"].get("overall")
    bound = ">=" if rep["naive_over_fast_lower_bound"].get("overall") else ""
    met = t["naive_over_fast_met"]
    verdict = {True: "ok", False: "MISSED", None: "not decided (lower bound)"}
    line = (f"target naive/fast >= {t['naive_over_fast_min']:g}x: overall "
            f"{'-' if nf is None else f'{bound}{nf:.1f}x'} {verdict[met.get('overall', False)]}; missed by: "
            + (", ".join(k for k, ok in met.items() if ok is False) or "none"))
    undecided = [k for k, ok in met.items() if ok is None]
    if undecided:
        line += f"; not decided (CVXPY cell killed): {', '.join(undecided)}"
    lines.append(line)
    prof = rep.get("profile_fast_ms") or {}
    if prof:
        cols = ["total_ms", "highs_run_ms", "highs_update_ms", "locate_ms", "shift_ms", "other_ms"]
        lines += ["", f"Fast path at {n} bids, where the time goes (cProfile, ms per clearing, inflated by profiling):",
                  f"{'scheme':9s}" + "".join(f"{c.removesuffix('_ms'):>14s}" for c in cols)]
        for k, d in prof.items():
            lines.append(f"{k:9s}" + "".join(_fmt(d.get(c), 14) for c in cols))
    if rep["skipped"]:
        lines += ["", "skipped:"] + [f"  {s}" for s in rep["skipped"]]
    return "\n".join(lines)


def format_scaling(rep: dict) -> str:
    """Tables: ms against bids (exponents per path) and against areas (exponents)."""
    lines = []
    b = rep["scaling"]["bids"]
    ns = b["n_bids"]
    lines.append(f"Scaling with bids: fast path, ms per clearing ({rep['scenario']}, {rep['horizon_periods']} periods)")
    lines.append(f"{'scheme':9s}" + "".join(f"{n:>9d}" for n in ns))
    for k, d in b["ms"].items():
        lines.append(f"{k:9s}" + "".join(_fmt(d.get(n)) for n in ns))
    rounds = rep.get("benders_rounds", {})
    for k, d in rounds.items():
        lines.append(f"{k:9s}" + "".join(f"{'-' if d.get(n) is None else format(d[n], '.0f'):>9s}" for n in ns)
                     + "  <- Benders rounds (median)")
    lines += ["", "log-log slope of ms per clearing against bids (1 = linear)"]
    paths = list(b["exponent"])
    lines.append(f"{'scheme':9s}" + "".join(f"{p:>9s}" for p in paths))
    keys = list(dict.fromkeys(k for p in paths for k in b["exponent"][p]))
    top = b.get("exponent_fast_top2", {})
    if top and ns:
        paths_h = "".join(f"{p:>9s}" for p in paths)
        lines[-1] = f"{'scheme':9s}{paths_h}  fast, {ns[-2] if len(ns) > 1 else ns[-1]}->{ns[-1]} bids only"
    for k in keys:
        lines.append(f"{k:9s}" + "".join(f"{_fx(b['exponent'][p].get(k)):>9s}" for p in paths)
                     + (f"  {_fx(top.get(k)):>9s}" if top else ""))
    a = rep["scaling"].get("areas") or {}
    if a.get("n_areas"):
        lines += ["", f"Scaling with detailed distribution areas: fast path, {a['n_bids']} bids, ms per clearing"]
        counts = a["n_areas"]
        lines.append(f"{'scheme':9s}" + "".join(f"{c:>8d}" for c in counts) + "  exponent")
        lines.append(f"{'(buses)':9s}" + "".join(f"{a['systems'][c]['buses']:>8d}" for c in counts))
        for k, d in a["ms"].items():
            lines.append(f"{k:9s}" + "".join(_fmt(d.get(c), 8) for c in counts) + f"  {_fx(a['exponent'].get(k)):>8s}")
        lines.append(f"{'all':9s}" + "".join(_fmt(sum(d.get(c, 0) for d in a['ms'].values()), 8) for c in counts)
                     + f"  {_fx(a['exponent'].get('all')):>8s}")
    t = rep.get("targets", {})
    for what in ("bids", "areas"):
        met = t.get(f"{what}_exponent_met") or {}
        if met:
            missed = [k for k, ok in met.items() if not ok]
            lines.append(f"target: time roughly linear in {what} (exponent <= {t['exponent_max']:g}): "
                         + ("ok for all" if not missed else "MISSED by " + ", ".join(missed)))
    return "\n".join(lines)


def format_env(env: dict) -> list[str]:
    """Table: env steps/s and the split of a step (``env_step_split_ms`` of the report)."""
    if not env:
        return ["env steps/s: - (see notes)"]
    lines = ["Env steps (single process, benchmarks/env_step.py)",
             (f"{'env':22s} {'physics':7s} {'steps/s':>8s} {'ms/step':>8s} {'clear ms':>9s} {'phys ms':>8s} "
              f"{'yard ms':>8s} {'rest ms':>8s}")]
    verdicts = []
    for env_id, per in env.items():
        for physics, r in per.items():
            x = r.get("steps_per_s", float("nan"))
            lines.append(f"{env_id.split('/')[-1]:22s} {physics:7s} {x:8.1f} {1e3 / x if x > 0 else float('nan'):8.2f} "
                         f"{r.get('clearing_ms', 0):9.1f} {r.get('physics_ms', 0):8.1f} "
                         f"{r.get('yardstick_ms', 0):8.1f} {r.get('rest_ms', 0):8.1f}")
            goal = TARGET_ENV_STEPS_PER_S.get(physics)
            if goal is not None:
                verdicts.append(f"{env_id.split('/')[-1]} {physics} {x:.0f} {'ok' if x >= goal else 'MISSED'}")
    targets = ", ".join(f"{v:g} ({k})" for k, v in TARGET_ENV_STEPS_PER_S.items())
    return lines + [f"target env steps/s >= {targets}: " + ", ".join(verdicts),
                    ("(these steps start at 11:00, the congested middle of the day; the env step <= "
                     f"{TARGET_ENV_STEP_MS:g} ms target is read on whole default episodes, below)")]


def format_episodes(episodes: dict) -> list[str]:
    """The whole-default-episode lines (the figure the ≤ 2 ms target is read on)."""
    return [f"{eid.split('/')[-1]:22s} whole default episodes (linear): mean {d['mean_ms']:.2f} ms/step, "
            f"median {d['median_ms']:.2f}, max {d['max_ms']:.2f} "
            f"{'ok' if d['mean_ms'] <= TARGET_ENV_STEP_MS else 'MISSED'} (target <= {TARGET_ENV_STEP_MS:g} ms)"
            for eid, d in episodes.items()]


def format_report(rep: dict) -> str:
    tail = ([""] + format_env(rep.get("env_step_split_ms", {})) + format_episodes(rep.get("env_episode_ms", {}))
            + ["", "notes:"])
    tail += [f"  {s}" for s in rep["notes"]]
    tail.append(f"total {rep['seconds']:.0f} s")
    return "\n".join([format_clearing(rep), "", format_scaling(rep)] + tail)


def script_main(argv: list[str] | None, description: str, parts: Sequence[str],
                formatter: Callable[[dict], str], drop: Sequence[str] = ()) -> int:
    """Body of the scripts in ``benchmarks/``: options --quick/--scenario/--repeats/--json/--out,
    run ``parts``, print ``formatter(report)`` and the notes (or the JSON without ``drop`` keys)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="fewer sizes, areas and repeats (< 60 s)")
    p.add_argument("--scenario", default=None, help="preset name or YAML path (default spain-like)")
    p.add_argument("--repeats", type=int, default=None, help="timed clearings per cell (median reported)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--out", metavar="FILE", help="also write the JSON report to FILE")
    args = p.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        p.error(f"--repeats must be >= 1 (got {args.repeats})")
    log = None if args.json else (lambda s: print(s, file=sys.stderr, flush=True))
    rep = run_benchmark("quick" if args.quick else "full", args.scenario, args.repeats, log=log, parts=parts)
    rep = {k: v for k, v in rep.items() if k not in drop}
    text = json.dumps(rep, indent=2, default=_json_default)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    if args.json:
        print(text)
    else:
        print(formatter(rep))
        print("\nnotes:\n" + "\n".join(f"  {s}" for s in rep["notes"]))
    return 0


# ---------------------------------------------------------------------------------------------
# command line (wired into smartnet_gym.cli as `smartnet-gym benchmark`)
# ---------------------------------------------------------------------------------------------
def add_benchmark_parser(sub) -> argparse.ArgumentParser:
    """Add the ``benchmark`` subcommand to an ``add_subparsers()`` object."""
    b = sub.add_parser("benchmark", help="time the market clearing (schemes x bids x solver paths) and its scaling")
    b.add_argument("--quick", action="store_true", help="fewer sizes and repeats, no CVXPY above 1,000 bids (< 60 s)")
    b.add_argument("--json", action="store_true", help="print JSON instead of tables")
    b.add_argument("--out", metavar="FILE", help="also write the JSON report to FILE")
    b.add_argument("--scenario", default=None, help="preset name or YAML path (default spain-like)")
    b.add_argument("--repeats", type=int, default=None, help="timed clearings per cell (median reported)")
    b.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)   # smoke test: toy, 1 repeat
    return b


def cmd_benchmark(args: argparse.Namespace) -> int:
    """Run the benchmark; tables (or JSON with --json) on stdout, progress on stderr."""
    if args.repeats is not None and args.repeats < 1:
        from smartnet_gym.errors import ConfigError

        raise ConfigError(f"--repeats must be >= 1 (got {args.repeats})")
    mode = "tiny" if getattr(args, "tiny", False) else "quick" if args.quick else "full"
    log = None if args.json else (lambda s: print(s, file=sys.stderr, flush=True))
    rep = run_benchmark(mode, scenario=args.scenario, repeats=args.repeats, log=log)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(rep, indent=2, default=_json_default))
    if args.json:
        print(json.dumps(rep, indent=2, default=_json_default))
    else:
        print(format_report(rep))
    return 0


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


__all__ = ["PATHS", "SCHEME_KEYS", "ScaledLayout", "Setup", "Timing", "add_benchmark_parser", "bench_areas",
           "bench_clearing", "bid_scaling", "cmd_benchmark", "env_steps", "format_clearing", "format_report",
           "format_scaling", "loglog_slope", "machine_info", "new_instance", "prepare", "ratios", "run_benchmark",
           "scale_book", "script_main", "time_clearing", "time_limited"]
