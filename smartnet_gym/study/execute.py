"""Run one cell where it lands (driver or Ray worker): the same rolling loop as `compare`.

A process keeps the T&D systems it built (or loaded from the disk cache), so a worker pays the
build once per scenario and reuses it for every later cell of that scenario.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass

import pandas as pd

from smartnet_gym.cba.accounts import summarize
from smartnet_gym.grid.build import build_system, system_cache_key
from smartnet_gym.grid.system import TDSystem
from smartnet_gym.simulation.compare import check_window, run_scheme
from smartnet_gym.simulation.model_check import MODEL_COLUMNS
from smartnet_gym.study.cells import Cell

#: columns that describe how a cell ran, not what it computed (left out of equality checks)
RUN_COLUMNS = ("seconds", "worker")
#: the same for the per-step rows (wall time of each clearing)
STEP_RUN_COLUMNS = ("solve_ms",)
_KEEP_SYSTEMS = 4
_systems: OrderedDict[str, TDSystem] = OrderedDict()


@dataclass(frozen=True)
class CellResult:
    """A finished cell: its result row (labels + every summary CBA column) and optionally its steps."""

    row: dict[str, object]
    steps: pd.DataFrame | None


def system_for(cell: Cell) -> TDSystem:
    """The cell's T&D system, built once per process (least recently used of a few kept)."""
    key = system_cache_key(cell.config)
    if key in _systems:
        _systems.move_to_end(key)
        return _systems[key]
    system = build_system(cell.config)
    _systems[key] = system
    while len(_systems) > _KEEP_SYSTEMS:
        _systems.popitem(last=False)
    return system


def model_check_totals(steps: pd.DataFrame) -> dict[str, float]:
    """The grid-model check over the cell: confusion counts summed, voltage error at violated elements
    (max and 95th percentile over steps), steps whose predicted and realised violations differ,
    steps whose forecast (before activations) showed D violations, and the re-clearings the AC
    check of the dispatch asked for (``simulation.ac_check_rounds``)."""
    counts = [c for c in MODEL_COLUMNS if c.startswith("model_") and c[-3:] in ("_tp", "_fp", "_fn")]
    out = {c: float(steps[c].sum(min_count=1)) for c in counts}
    err = steps["model_voltage_error_pu"]
    out["model_voltage_error_max_pu"] = float(err.max())
    out["model_voltage_error_p95_pu"] = float(err.quantile(0.95)) if err.notna().any() else float("nan")
    out["model_mismatch_steps"] = float(((steps["model_fp"] + steps["model_fn"]) > 0).sum()) \
        if err.notna().any() else float("nan")
    out["d_forecast_steps"] = float((steps["forecast_d_violations"] > 0).sum()) \
        if err.notna().any() else float("nan")
    out["ac_reclears"] = float(steps["ac_reclears"].sum())
    return out


def worker_name() -> str:
    """Where a cell ran: host and process, and the Ray node when it ran on Ray."""
    name = f"{socket.gethostname()}:{os.getpid()}"
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        name += f":{ray.get_runtime_context().get_node_id()[:8]}"
    return name


def run_cell(cell: Cell, keep_steps: bool = False) -> CellResult:
    """Simulate the cell's episode and summarise its CBA (one row; the steps on request)."""
    t0 = time.perf_counter()
    system = system_for(cell)
    check_window(system, cell.config, cell.steps)
    steps = run_scheme(system, cell.config, cell.scheme, cell.steps, cell.seed, cell.physics)
    summary = summarize(steps).iloc[0].to_dict()
    summary.pop("scheme")
    row = {**cell.labels(), **summary,
           "d_violation_steps": int((steps["d_violations"] > 0).sum()),
           "t_violation_steps": int((steps["t_violations"] > 0).sum()),
           **model_check_totals(steps), "seconds": time.perf_counter() - t0, "worker": worker_name()}
    if keep_steps:
        steps = steps.drop(columns="scheme")
        for k, v in reversed(list(cell.labels().items())):
            steps.insert(0, k, v)
        return CellResult(row, steps)
    return CellResult(row, None)
