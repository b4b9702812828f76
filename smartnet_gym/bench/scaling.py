"""How the fast-path clearing time grows with the bids and the detailed distribution areas (log-log slopes)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from smartnet_gym.bench.instances import SCHEME_KEYS, Setup, prepare, scale_book
from smartnet_gym.bench.timing import time_clearing

FULL_AREA_COUNTS = (1, 2, 4, 8, 15)
QUICK_AREA_COUNTS = (1, 4)
# nested area sets of 1-HVMV-mixed-all-2-sw: the first 4 are the default preset's
AREA_ORDER = ("MV1.101", "MV2.101", "MV3.101", "MV4.101", "MV1.102", "MV2.102", "MV3.102", "MV1.103",
              "MV1.104", "MV1.105", "MV1.106", "MV1.107", "MV1.108", "MV2.103", "MV3.103")


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Least-squares slope of log y against log x (None with fewer than two usable points)."""
    pts = [(a, b) for a, b in zip(x, y) if a and b and a > 0 and b > 0 and math.isfinite(b)]
    if len(pts) < 2 or len({a for a, _ in pts}) < 2:
        return None
    lx, ly = np.log([a for a, _ in pts]), np.log([b for _, b in pts])
    return float(np.polyfit(lx, ly, 1)[0])



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
