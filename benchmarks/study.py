"""Study throughput: cells per second in process and on Ray with 1, 2, … workers, and where a cell's
time goes.

    python benchmarks/study.py [--scenario spain-like] [--days 20] [--physics ac] [--workers 1,2]

Every run uses a fresh results folder, the same cells (one-day cells, all five schemes, seed 0,
``--days`` days spread over 2016) and a warm system cache; Ray runs include starting the embedded
Ray instance and each worker's first build, as a user's run does.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import tempfile
import time
from pathlib import Path

import numpy as np

from smartnet_gym.config import SCHEMES, load_scenario
from smartnet_gym.grid.build import build_system
from smartnet_gym.simulation.compare import run_scheme
from smartnet_gym.study.config import validate_study
from smartnet_gym.study.engines import InProcessEngine, RayEngine
from smartnet_gym.study.runner import run_study

#: parts of a cell: (file suffix, function) whose cumulative time is reported
PARTS = {"loop construction": ("simulation/loop.py", "__init__"), "episode start": ("simulation/loop.py", "reset"),
         "market instance": ("simulation/loop.py", "instance"), "clearing": ("schemes/base.py", "clear"),
         "physical layer": ("simulation/physics.py", "run"), "unwanted measures": ("simulation/unwanted.py", "run"),
         "CBA row": ("cba/accounts.py", "step_account"), "episode frame": ("cba/accounts.py", "episode_frame")}


def study_of(scenario: str, days: int, physics: str) -> dict:
    return {"name": "bench", "scenarios": [scenario], "schemes": list(SCHEMES), "physics": physics,
            "days": [int(d) for d in np.linspace(0, 364, days).round()], "seeds": [0]}


def throughput(study: dict, engine) -> dict:
    """Wall time and cells per second of the whole study in a fresh folder."""
    cfg = validate_study(study)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = run_study(cfg, Path(tmp) / "out", engine, progress=False)
        wall = time.perf_counter() - t0
    assert run.failed == 0, "a benchmark cell failed"
    return {"cells": run.cells, "wall_s": round(wall, 2), "cells_per_s": round(run.cells / wall, 3)}


def cell_split(scenario: str, day: int, physics: str) -> dict[str, dict[str, float]]:
    """Seconds per part of one one-day cell of each scheme (cProfile, after a warm-up cell)."""
    cfg = load_scenario(scenario, {"data": {"start_day": day}})
    system = build_system(cfg)
    run_scheme(system, cfg, "CS_A", 8, 0, physics)
    out = {}
    for scheme in SCHEMES:
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        run_scheme(system, cfg, scheme, 96, 0, physics)
        prof.disable()
        wall = time.perf_counter() - t0
        st = pstats.Stats(prof).stats
        row = {"cell_s": wall}
        for name, (suffix, func) in PARTS.items():
            row[name] = sum(v[3] for k, v in st.items() if k[0].endswith(suffix) and k[2] == func)
        out[scheme] = {k: round(v, 3) for k, v in row.items()}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="spain-like")
    p.add_argument("--days", type=int, default=20, help="days spread over 2016 (cells = 5 x days)")
    p.add_argument("--physics", choices=("ac", "linear"), default="ac")
    p.add_argument("--workers", default="1,2", help="comma list of Ray worker counts")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    study = study_of(args.scenario, args.days, args.physics)
    build_system(load_scenario(args.scenario))                       # warm the disk cache
    rep = {"scenario": args.scenario, "physics": args.physics, "in_process": throughput(study, InProcessEngine())}
    for w in (int(x) for x in args.workers.split(",")):
        rep[f"ray_{w}_workers"] = throughput(study, RayEngine(workers=w))
    rep["cell_split_s"] = cell_split(args.scenario, 182, args.physics)
    if args.json:
        print(json.dumps(rep, indent=2))
        return
    print(f"{args.scenario}, {args.physics} physics, {study_of(args.scenario, args.days, args.physics)['days'][:3]}... "
          f"({args.days} days x 5 schemes)")
    for k, v in rep.items():
        if isinstance(v, dict) and "cells_per_s" in v:
            print(f"  {k:16s} {v['cells']} cells in {v['wall_s']:7.1f} s = {v['cells_per_s']:.2f} cells/s")
    print("  seconds per one-day cell (1 July), by part:")
    parts = list(next(iter(rep["cell_split_s"].values())))
    print("  " + "scheme".ljust(8) + "".join(f"{x[:14]:>15s}" for x in parts))
    for scheme, row in rep["cell_split_s"].items():
        print("  " + scheme.ljust(8) + "".join(f"{row[x]:15.3f}" for x in parts))


if __name__ == "__main__":
    main()
