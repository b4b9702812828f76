"""Text tables of a benchmark report, and its JSON encoding."""

from __future__ import annotations

import numpy as np

from smartnet_gym.bench.run import (
    TARGET_CONGESTED_MEAN_MS,
    TARGET_CONGESTED_WORST_MS,
    TARGET_ENV_STEP_MS,
    TARGET_ENV_STEPS_PER_S,
)


def _fmt(v: float | None, width: int = 9) -> str:
    """A number right-aligned in ``width`` (2 decimals below 10, else 1; ``-`` for None)."""
    if v is None:
        return f"{'-':>{width}s}"
    return f"{v:{width}.1f}" if v >= 10 else f"{v:{width}.2f}"


def _fx(v: float | None) -> str:
    """A number with 2 decimals, ``-`` for None."""
    return "-" if v is None else f"{v:.2f}"


def _cell(rep: dict, path: str, key: str, n: int, width: int = 9) -> str:
    """One table cell: ms, ``>limit`` for a killed cell, ``*`` for a partly timed one."""
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
    lines = ["Env steps (single process, smartnet_gym.bench.env_step)",
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


def format_congested(congested: dict) -> list[str]:
    """The congested preset's whole-episode lines, against its mean and worst-day targets."""
    scenario = congested.get("scenario", "")
    return [f"{eid.split('/')[-1]:22s} {scenario} every start day (linear): mean {d['mean_ms']:.2f} ms/step, "
            f"worst day {d['max_ms']:.2f} "
            f"{'ok' if d['mean_ms'] <= TARGET_CONGESTED_MEAN_MS and d['max_ms'] <= TARGET_CONGESTED_WORST_MS else 'MISSED'}"
            f" (targets <= {TARGET_CONGESTED_MEAN_MS:g} / {TARGET_CONGESTED_WORST_MS:g} ms); the same days again "
            f"(points cached): mean {d.get('revisit_mean_ms', float('nan')):.2f}, worst {d.get('revisit_max_ms', float('nan')):.2f}"
            for eid, d in congested.items() if eid != "scenario"]


def format_report(rep: dict) -> str:
    """All tables of ``smartnet-gym benchmark``, the notes and the total time."""
    tail = ([""] + format_env(rep.get("env_step_split_ms", {})) + format_episodes(rep.get("env_episode_ms", {}))
            + format_congested(rep.get("env_episode_ms_congested", {})) + ["", "notes:"])
    tail += [f"  {s}" for s in rep["notes"]]
    tail.append(f"total {rep['seconds']:.0f} s")
    return "\n".join([format_clearing(rep), "", format_scaling(rep)] + tail)


def json_default(o: object) -> object:
    """``json.dumps`` default: numpy scalars and arrays as Python numbers and lists."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
