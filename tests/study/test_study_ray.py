"""`smartnet-gym study` on an embedded Ray instance: the same cells as in process, failures, dead workers."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from studykit import broken_scenario, computed, computed_steps, write_study

ray = pytest.importorskip("ray")

from smartnet_gym.study.config import load_study
from smartnet_gym.study.engines import InProcessEngine, RayEngine
from smartnet_gym.study.runner import run_study


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One embedded 2-CPU Ray instance for the module (the engine reuses a running instance)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_and_in_process_give_identical_cells(tmp_path):
    cfg = write_study(tmp_path, schemes=["CS_A", "CS_B", "CS_C", "CS_D", "CS_E"], per_step=True)
    via_ray = run_study(load_study(cfg), tmp_path / "ray", RayEngine(workers=2), progress=False)
    local = run_study(load_study(cfg), tmp_path / "local", InProcessEngine(), progress=False)
    assert via_ray.ran == local.ran == 20 and via_ray.failed == 0
    ray_cells = pd.read_parquet(tmp_path / "ray" / "cells.parquet")
    pd.testing.assert_frame_equal(computed(ray_cells), computed(pd.read_parquet(tmp_path / "local" / "cells.parquet")),
                                  check_exact=True)
    pd.testing.assert_frame_equal(computed_steps(pd.read_parquet(tmp_path / "ray" / "steps.parquet")),
                                  computed_steps(pd.read_parquet(tmp_path / "local" / "steps.parquet")),
                                  check_exact=True)
    assert ray_cells["worker"].nunique() == 2          # two worker processes shared the cells
    assert (tmp_path / "ray" / "summary.csv").read_text() == (tmp_path / "local" / "summary.csv").read_text()


def test_a_failing_cell_on_ray_is_retried_then_listed(tmp_path):
    cfg = write_study(tmp_path, scenarios=["toy", str(broken_scenario(tmp_path))], schemes=["CS_A", "CS_D"],
                      days=[10], seeds=[0], retries=1)
    run = run_study(load_study(cfg), tmp_path / "out", RayEngine(), progress=False)
    assert (run.ran, run.failed) == (2, 2)
    failures = pd.read_csv(tmp_path / "out" / "failures.csv")
    assert sorted(failures["scheme"]) == ["CS_A", "CS_D"] and set(failures["attempts"]) == {2}
    assert set(failures["scenario"]) == {"broken"} and failures["error"].str.len().min() > 0


def _running_cell_pids() -> list[int]:
    """Ray worker processes executing a cell right now (Ray titles them ``ray::run_cell``)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes().startswith(b"ray::run_cell"):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds Ray's worker processes through /proc")
def test_killing_a_worker_loses_no_finished_cell(tmp_path):
    cfg = write_study(tmp_path, days=[0, 60, 120, 180], steps=24, retries=2)
    out = tmp_path / "out"
    killed: list[int] = []
    finished_at_kill: dict[str, int] = {}

    def kill_one_worker() -> None:
        deadline = time.time() + 60
        while time.time() < deadline and not killed:
            files = list((out / "cells").glob("*.parquet")) if (out / "cells").is_dir() else []
            pids = _running_cell_pids()
            if len(files) >= 2 and pids:
                finished_at_kill.update({p.name: p.stat().st_mtime_ns for p in files})
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.01)

    killer = threading.Thread(target=kill_one_worker)
    killer.start()
    run = run_study(load_study(cfg), out, RayEngine(workers=2), progress=False)
    killer.join()
    assert killed, "no worker was killed mid-cell"
    assert (run.ran, run.failed) == (24, 0)            # the killed cell was retried by Ray
    after = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.parquet")}
    assert all(after[k] == v for k, v in finished_at_kill.items())
    run_study(load_study(cfg), tmp_path / "fresh", InProcessEngine(), progress=False)
    pd.testing.assert_frame_equal(computed(pd.read_parquet(out / "cells.parquet")),
                                  computed(pd.read_parquet(tmp_path / "fresh" / "cells.parquet")))
