"""Export a clearing stage's program as a standard MPS file (objective in EUR), to re-solve anywhere."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from smartnet_gym.errors import ConfigError
from smartnet_gym.market.solvers import HighsBackend
from smartnet_gym.market.stages import StageRecord


def export_mps(record: StageRecord, path: str) -> dict:
    """Write the LP variant of ``record``'s program with the values of its last solve."""
    prog = record.program
    if prog is None or prog.last_vectors is None:
        raise ConfigError("--export-lp: the final stage has no program to export")
    if not str(path).endswith(".mps"):
        raise ConfigError(f"--export-lp {path!r}: the file name must end with .mps")
    m = dataclasses.replace(prog.m, quad=np.zeros_like(prog.m.quad))   # the LP variant
    backend = HighsBackend(m)
    sol = backend.solve(*prog.last_vectors)
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        backend.write_mps(str(path))
    except OSError as e:
        raise ConfigError(f"--export-lp {path!r}: {e.strerror}") from None
    return {"file": str(path), "lp_objective_eur": sol.objective_eur, "columns": m.n_col, "rows": m.n_row}
