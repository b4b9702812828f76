"""Small studies on the toy system for the study tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from smartnet_gym.study.execute import RUN_COLUMNS, STEP_RUN_COLUMNS


def write_study(folder: Path, **over) -> Path:
    """A toy study YAML (3 schemes × 2 days × 2 seeds × 4 steps unless overridden) in ``folder``."""
    data = {"name": "toy-test", "scenarios": ["toy"], "schemes": ["CS_A", "CS_B", "CS_D"],
            "days": [10, 200], "seeds": [0, 1], "steps": 4, "physics": "linear", "retries": 1}
    data.update(over)
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def broken_scenario(folder: Path) -> Path:
    """A scenario whose grid file is not a pandapower net: every cell of it fails when it runs."""
    (folder / "broken-net.json").write_text('{"not": "a pandapower net"}')
    path = folder / "broken.yaml"
    path.write_text(yaml.safe_dump({"extends": "toy", "grid": {"source": "pandapower_json",
                                                               "pandapower_json": "broken-net.json"}}))
    return path


def computed(cells: pd.DataFrame) -> pd.DataFrame:
    """The computed columns of a cells table (without where and how long a cell ran), sorted by key."""
    return cells.drop(columns=list(RUN_COLUMNS)).sort_values("cell_key").reset_index(drop=True)


def computed_steps(steps: pd.DataFrame) -> pd.DataFrame:
    """The computed columns of a steps table (without the clearings' wall times)."""
    return steps.drop(columns=list(STEP_RUN_COLUMNS)).sort_values(["cell_key", "step"]).reset_index(drop=True)
