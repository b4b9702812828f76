"""ms per clearing for every scheme, bid count and solver path, the ratios between paths, a profile.

The CVXPY paths run each (scheme, size) cell in a forked worker (:mod:`.limited`) that is killed
when one clearing takes longer than ``cvxpy_limit_s``: the cell is reported in ``timeouts_s`` and
its ratios become lower bounds; larger sizes of that scheme and path are then skipped, as is
everything once ``cvxpy_budget_s`` is spent. Every skip is listed in ``skipped``. Decentralized
CS_D (``CS_D_dec``) always runs on HiGHS (its Benders cuts are added to the HiGHS model), so it
has the fast path only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from smartnet_gym.bench.instances import SCHEME_KEYS, Setup, new_instance, scale_book
from smartnet_gym.bench.limited import time_limited, warm_cvxpy
from smartnet_gym.bench.timing import IN_PROCESS, PATHS, Timing, scheme_of, time_clearing

FULL_SIZES = (50, 200, 1000, 5000)
QUICK_SIZES = (50, 200, 1000)
RATIO_BIDS = 1000


def profile_fast(setup: Setup, key: str, n_bids: int = RATIO_BIDS, repeats: int = 5) -> dict[str, float]:
    """Where a fast-path clearing spends its time (cProfile, ms per clearing; profiling inflates
    the Python parts): HiGHS ``run``, HiGHS value updates and reads, ``LinearTD.locate``
    (Python loop over bids), ``NetworkResponse.shift`` (without locate), the rest."""
    import cProfile
    import pstats

    layout = scale_book(setup.instance.book, setup.system.linear, n_bids, setup.cfg.market.price_cap_eur_per_mwh)
    rng = np.random.default_rng(0)
    scheme = scheme_of(setup, key, "highs")
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



def _ratio(a: float | None, b: float | None) -> float | None:
    """a / b, None if either is missing or b is not positive."""
    return None if a is None or b is None or b <= 0 else a / b



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

