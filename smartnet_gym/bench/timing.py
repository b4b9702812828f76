"""Time one scheme's clearings on one path: the median of the repeats after the warm-up.

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
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from smartnet_gym.bench.instances import SCHEME_KEYS, ScaledLayout, Setup, new_instance

PATHS = ("fast", "explicit", "cvxpy", "naive")
IN_PROCESS = ("fast", "explicit")   # HiGHS paths: timed in this process, no time limit
BACKENDS = {"fast": "highs", "explicit": "highs-full"}   # every other path: "cvxpy"


def scheme_of(setup: Setup, key: str, backend: str):
    """A fresh scheme of benchmark key ``key`` (scheme and variant) on ``backend``."""
    from smartnet_gym.market.schemes import make_scheme

    name, variant = SCHEME_KEYS[key]
    mcfg = setup.cfg.market.model_copy(update={"variant": variant})
    return make_scheme(name, setup.system.linear, mcfg, backend)


def _n_programs(scheme) -> int:
    """Programs cached by the scheme's stages (must not grow between repeats)."""
    return sum(len(getattr(s, "_programs", {})) for s in scheme.stages)


@dataclass
class Timing:
    """Times of one (scheme, path, size) cell."""

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
    scheme = scheme_of(setup, key, backend)
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
            scheme = scheme_of(setup, key, backend)   # fresh: every program is built and compiled again
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
