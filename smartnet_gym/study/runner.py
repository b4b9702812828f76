"""Run a study: expand its cells, skip the finished ones, run the rest on an engine, aggregate."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from smartnet_gym.errors import ConfigError
from smartnet_gym.study.cells import Cell, code_digest, expand
from smartnet_gym.study.config import StudyConfig
from smartnet_gym.study.engines import Finished, InProcessEngine, RayEngine
from smartnet_gym.study.figures import plot_paired, plot_seasons, plot_totals
from smartnet_gym.study.store import StudyStore, atomic_write, read_study
from smartnet_gym.study.summary import summarize_study


@dataclass(frozen=True)
class StudyRun:
    """What a run of a study did."""

    cells: int          # cells of the study
    skipped: int        # already finished before this run
    ran: int            # finished in this run
    failed: int         # failed every attempt in this run
    seconds: float
    summary: pd.DataFrame


def run_study(study: StudyConfig, out: str | Path, engine: InProcessEngine | RayEngine,
              force: bool = False, per_step: bool = False, progress: bool = True) -> StudyRun:
    """Run every unfinished cell of ``study`` into ``out`` and (re)write the aggregates."""
    from tqdm.auto import tqdm

    cells = expand(study)
    store = StudyStore.create(out, study, force)
    keep_steps = per_step or study.per_step
    done = store.done(cells, with_steps=keep_steps)
    todo = [c for c in cells if c.key not in done]
    failures: list[dict[str, object]] = []
    store.write_failures(failures)
    t0 = time.perf_counter()
    ran = 0
    with tqdm(total=len(cells), initial=len(cells) - len(todo), desc=f"study {study.name}", unit="cell",
              disable=not progress, dynamic_ncols=True) as bar:
        bar.set_postfix(failed=0)
        for fin in engine.run(todo, keep_steps, study.retries):
            if fin.result is not None and fin.result.row["code_digest"] != code_digest():
                fin = Finished(fin.cell, None, f"the worker runs other smartnet_gym code (digest "
                               f"{fin.result.row['code_digest']}, the driver's {code_digest()}): install "
                               "the same version on every node", fin.attempts)
            if fin.result is not None:
                store.write(fin.cell, fin.result)
                ran += 1
            else:
                failures.append({**{k: fin.cell.labels()[k] for k in ("scenario", "variant", "scheme", "day", "seed")},
                                 "cell_key": fin.cell.key, "attempts": fin.attempts, "error": fin.error})
                store.write_failures(failures)
                bar.set_postfix(failed=len(failures))
            bar.update(1)
    summary = write_report(store, study, cells, keep_steps)
    return StudyRun(len(cells), len(cells) - len(todo), ran, len(failures), time.perf_counter() - t0, summary)


def write_report(store: StudyStore, study: StudyConfig, cells: list[Cell], keep_steps: bool) -> pd.DataFrame:
    """``cells.parquet``, ``steps.parquet`` (if kept), ``summary.csv`` and the figures, from the cell files."""
    return write_aggregates(store, study, store.rows(cells), store.steps(cells) if keep_steps else None)


def write_aggregates(store: StudyStore, study: StudyConfig, rows: pd.DataFrame,
                     steps: pd.DataFrame | None) -> pd.DataFrame:
    """The aggregates of the result ``rows`` (and ``steps``, when kept) of ``study``."""
    atomic_write(store.path / "cells.parquet", lambda p: rows.to_parquet(p, index=False))
    if steps is not None:
        atomic_write(store.path / "steps.parquet", lambda p: steps.to_parquet(p, index=False))
    reference = study.reference_scheme()
    summary = summarize_study(rows, study.schemes, reference)
    atomic_write(store.path / "summary.csv", lambda p: summary.to_csv(p, index=False))
    if not rows.empty:
        atomic_write(store.path / "totals.png", lambda p: plot_totals(rows, study.schemes, p))
        atomic_write(store.path / "paired.png", lambda p: plot_paired(summary, reference, p))
        atomic_write(store.path / "seasons.png", lambda p: plot_seasons(summary, study.schemes, p))
    return summary


def report_study(out: str | Path) -> pd.DataFrame:
    """Re-render the aggregates of a results folder from its cell files.

    The cells are those the folder holds for the study's cells, computed by whichever version of
    the package ran them (one version: the one that finished most of them); a folder with none
    of them is refused, never emptied."""
    study = read_study(out)
    store = StudyStore(out)
    cells = expand(study)
    keep_steps = study.per_step or _has_steps(store)
    if len(store.done(cells)) == len(cells):
        return write_report(store, study, cells, keep_steps)
    rows, steps = store.rows_of_any_version(cells, keep_steps)
    if rows.empty:
        raise ConfigError(f"--report {str(out)!r}: no finished cell of study {study.name!r} in {str(store.cells_dir)!r}")
    return write_aggregates(store, study, rows, steps)


def _has_steps(store: StudyStore) -> bool:
    return any(store.cells_dir.glob("*.steps.parquet"))
