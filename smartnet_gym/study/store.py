"""A study's results folder: one file per finished cell, written atomically, keyed by content.

Layout of ``DIR``: ``study.yaml`` (the resolved study), ``study.json`` (its digest), ``cells/``
(``<stem>.parquet`` = the cell's row, ``<stem>.steps.parquet`` = its steps when kept), and the
aggregates ``cells.parquet``, ``steps.parquet``, ``summary.csv``, ``failures.csv`` and figures.
A cell file appears whole or not at all (temporary name, then ``os.replace``), so killing the
driver or a worker never loses or corrupts a finished cell.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
import yaml

from smartnet_gym import __version__
from smartnet_gym.errors import ConfigError
from smartnet_gym.results import atomic_write_text
from smartnet_gym.study.cells import Cell
from smartnet_gym.study.config import StudyConfig, validate_study
from smartnet_gym.study.execute import CellResult

FAILURE_COLUMNS = ("cell_key", "scenario", "variant", "scheme", "day", "seed", "attempts", "error")


def atomic_write(path: Path, writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp)`` on a temporary file beside ``path``, then move it into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        writer(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class StudyStore:
    """The results folder of one study: finished cells, failures and aggregates."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.cells_dir = self.path / "cells"

    @classmethod
    def create(cls, path: str | Path, study: StudyConfig, force: bool = False) -> StudyStore:
        """Open ``path`` for ``study``: refuse a folder holding another study (or anything else)
        unless ``force``; record the study's config and digest."""
        store = cls(path)
        if store.path.exists() and not store.path.is_dir():
            raise ConfigError(f"--out {str(store.path)!r} exists and is not a folder")
        old = read_digest(store.path)
        if not force:
            if old is not None and old != study.digest():
                raise ConfigError(f"--out {str(store.path)!r} holds a study with another config (digest {old}, "
                                  f"this one {study.digest()}); use another folder, or --force to adopt "
                                  "the new config (cells whose content is unchanged are kept)")
            if old is None and store.path.is_dir() and any(store.path.iterdir()):
                raise ConfigError(f"--out {str(store.path)!r} exists, is not empty and holds no study; "
                                  "use --force to write the study there")
        try:
            store.cells_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"--out {str(store.path)!r} is not writable: {e.strerror}") from None
        for stale in store.cells_dir.glob(".*.tmp"):     # left by a killed driver: never a finished cell
            stale.unlink(missing_ok=True)
        atomic_write_text(store.path / "study.yaml",
                          yaml.safe_dump(study.model_dump(mode="json"), sort_keys=False))
        atomic_write_text(store.path / "study.json", json.dumps(
            {"name": study.name, "digest": study.digest(), "smartnet_gym": __version__}, indent=2))
        return store

    def done(self, cells: Iterable[Cell], with_steps: bool = False) -> set[str]:
        """Keys of the ``cells`` whose result file (and, ``with_steps``, steps file) exists."""
        present = {p.name for p in self.cells_dir.glob("*.parquet")}
        return {c.key for c in cells if f"{c.file_stem}.parquet" in present
                and (not with_steps or f"{c.file_stem}.steps.parquet" in present)}

    def write(self, cell: Cell, result: CellResult) -> None:
        """Store a finished cell: its steps first, then its row (whose presence marks it done)."""
        if result.steps is not None:
            atomic_write(self.cells_dir / f"{cell.file_stem}.steps.parquet",
                         lambda p: result.steps.to_parquet(p, index=False))
        atomic_write(self.cells_dir / f"{cell.file_stem}.parquet",
                     lambda p: pd.DataFrame([result.row]).to_parquet(p, index=False))

    def rows(self, cells: Iterable[Cell]) -> pd.DataFrame:
        """Result rows of the finished ``cells``, in the cells' order."""
        files = [self.cells_dir / f"{c.file_stem}.parquet" for c in cells]
        frames = [pd.read_parquet(f) for f in files if f.is_file()]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def steps(self, cells: Iterable[Cell]) -> pd.DataFrame:
        """Per-step rows of the finished ``cells`` that kept them."""
        files = [self.cells_dir / f"{c.file_stem}.steps.parquet" for c in cells]
        frames = [pd.read_parquet(f) for f in files if f.is_file()]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def rows_of_any_version(self, cells: Iterable[Cell], with_steps: bool) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """Result rows (and steps) of ``cells`` stored by any version of the package: every row
        file whose labels are one of the cells', of the code version that finished most of them."""
        ids = ("scenario", "variant", "scheme", "day", "seed")
        wanted = {tuple(c.labels()[k] for k in ids): i for i, c in enumerate(cells)}   # the study's order
        found: list[tuple[int, Path, pd.DataFrame]] = []     # (position in the study, file, row)
        for f in sorted(self.cells_dir.glob("*.parquet")):
            if f.name.endswith(".steps.parquet"):
                continue
            row = pd.read_parquet(f)
            pos = wanted.get(tuple(row.iloc[0][k] for k in ids))
            if pos is not None:
                found.append((pos, f, row))
        if not found:
            return pd.DataFrame(), None
        version = pd.Series([r.iloc[0]["code_digest"] for _, _, r in found]).value_counts().index[0]
        found = sorted((x for x in found if x[2].iloc[0]["code_digest"] == version), key=lambda x: x[0])
        rows = pd.concat([r for _, _, r in found], ignore_index=True)
        if not with_steps:
            return rows, None
        step_files = [f.with_name(f.name.replace(".parquet", ".steps.parquet")) for _, f, _ in found]
        frames = [pd.read_parquet(f) for f in step_files if f.is_file()]
        return rows, pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def write_failures(self, failures: list[dict[str, object]]) -> None:
        """``failures.csv``: one row per cell that failed every attempt (header only when none)."""
        df = pd.DataFrame(failures, columns=list(FAILURE_COLUMNS))
        atomic_write(self.path / "failures.csv", lambda p: df.to_csv(p, index=False))


def read_digest(path: Path) -> str | None:
    """Digest of the study stored in ``path`` (None if it holds none)."""
    meta = path / "study.json"
    if not meta.is_file():
        return None
    try:
        return json.loads(meta.read_text())["digest"]
    except (ValueError, KeyError):
        return None


def read_study(path: str | Path) -> StudyConfig:
    """The study stored in a results folder (for ``--report``)."""
    f = Path(path) / "study.yaml"
    if not f.is_file():
        raise ConfigError(f"--report {str(path)!r} holds no study (no study.yaml)")
    return validate_study(yaml.safe_load(f.read_text()) or {}, f"study in {str(path)!r}")
