"""The clearing's grid model against the physical layer over whole episodes spread across the year.

Runs one-day cells with AC physics (by default with perfect forecasts, so that only the grid
model errs) through the study engine and reports, per scenario and season, the precision and
recall of the violated elements the model predicted for each delivered period and the voltage
error at violated elements (see :mod:`smartnet_gym.simulation.model_check`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from smartnet_gym.simulation.model_check import precision_recall
from smartnet_gym.study.cells import SEASONS
from smartnet_gym.study.config import StudyConfig, validate_study
from smartnet_gym.study.engines import InProcessEngine, RayEngine
from smartnet_gym.study.runner import run_study

#: every forecast error set to 0 (realised values = forecasts = day-ahead schedule)
PERFECT_FORECASTS = {"data": {"forecast": {"load_sigma": 0.0, "res_sigma": 0.0, "day_ahead_load_sigma": 0.0,
                                           "day_ahead_res_sigma": 0.0}}}
#: columns of the report — a contract of `smartnet-gym validate-grid --episodes`
REPORT_COLUMNS = ("scenario", "season", "cells", "steps", "tp", "fp", "fn", "precision", "recall",
                  "d_precision", "d_recall", "voltage_error_max_pu", "voltage_error_p95_pu", "mismatch_steps",
                  "t_violations", "ac_reclears")


def episode_study(scenarios: list[str], scheme: str, every: int, first: int, perfect: bool) -> StudyConfig:
    """The cells of the check: one scheme, a day every ``every`` days, AC physics."""
    return validate_study({
        "name": "grid-model-check", "scenarios": scenarios, "schemes": [scheme], "physics": "ac",
        "days": {"first": first, "last": 364, "every": every}, "seeds": [0],
        "variants": {"perfect-forecasts" if perfect else "forecasts": PERFECT_FORECASTS if perfect else {}}},
        "validate-grid --episodes")


def model_report(cells: pd.DataFrame) -> pd.DataFrame:
    """Precision, recall and voltage errors per scenario and season (and ``all``) from cell rows, with the
    realised transmission overloads and the re-clearings the AC check of the dispatch asked for."""
    rows = []
    for scen, g in cells.groupby("scenario", sort=False):
        for season in ("all",) + SEASONS:
            part = g if season == "all" else g[g["season"] == season]
            if part.empty:
                continue
            tp, fp, fn = (float(part[f"model_{k}"].sum()) for k in ("tp", "fp", "fn"))
            dtp, dfp, dfn = (float(part[f"model_d_{k}"].sum()) for k in ("tp", "fp", "fn"))
            p, r = precision_recall(tp, fp, fn)
            dp, dr = precision_recall(dtp, dfp, dfn)
            rows.append({"scenario": scen, "season": season, "cells": len(part), "steps": int(part["steps"].sum()),
                         "tp": tp, "fp": fp, "fn": fn, "precision": p, "recall": r, "d_precision": dp,
                         "d_recall": dr, "voltage_error_max_pu": float(part["model_voltage_error_max_pu"].max()),
                         "voltage_error_p95_pu": float(np.nanmax(part["model_voltage_error_p95_pu"])),
                         "mismatch_steps": float(part["model_mismatch_steps"].sum()),
                         "t_violations": float(part["t_violations"].sum()),
                         "ac_reclears": float(part["ac_reclears"].sum()) if "ac_reclears" in part else float("nan")})
    return pd.DataFrame(rows, columns=list(REPORT_COLUMNS))


def validate_episodes(scenarios: list[str], out: str | Path, scheme: str = "CS_D", every: int = 14, first: int = 3,
                      perfect: bool = True, engine: InProcessEngine | RayEngine | None = None,
                      force: bool = False, progress: bool = True) -> pd.DataFrame:
    """Run the check's cells into ``out`` (a study folder: reruns continue it) and report."""
    study = episode_study(scenarios, scheme, every, first, perfect)
    run = run_study(study, out, engine or RayEngine(), force=force, progress=progress)
    report = model_report(pd.read_parquet(Path(out) / "cells.parquet"))
    if run.failed:
        report.attrs["failed_cells"] = run.failed
    return report
