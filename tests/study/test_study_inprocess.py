"""`smartnet-gym study` in process: same numbers as `compare`, reruns, failures, bad configs, statistics."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from studykit import broken_scenario, computed, write_study

from smartnet_gym.cba.accounts import SUMMARY_COLUMNS as COMPARE_COLUMNS
from smartnet_gym.cli import main
from smartnet_gym.config import load_scenario
from smartnet_gym.grid.build import build_system
from smartnet_gym.simulation.compare import run_compare
from smartnet_gym.study.config import load_study
from smartnet_gym.study.engines import InProcessEngine
from smartnet_gym.study.runner import run_study
from smartnet_gym.study.summary import SUMMARY_COLUMNS, markdown_table, summarize_study


def test_cells_equal_compare(tmp_path):
    """A cell is the episode `compare` runs for the same scenario, day, seed, scheme and physics."""
    study = load_study(write_study(tmp_path, days=[200], seeds=[3], steps=6))
    run = run_study(study, tmp_path / "out", InProcessEngine(), progress=False)
    assert (run.cells, run.ran, run.failed) == (3, 3, 0)
    cells = pd.read_parquet(tmp_path / "out" / "cells.parquet").set_index("scheme")
    cfg = load_scenario("toy", {"data": {"start_day": 200}})
    _, summary, _ = run_compare(build_system(cfg), cfg, ["CS_A", "CS_B", "CS_D"], 6, 3, "linear",
                                show_progress=False)
    summary = summary.set_index("scheme")
    for col in COMPARE_COLUMNS[1:]:
        np.testing.assert_array_equal(cells.loc[summary.index, col].to_numpy(), summary[col].to_numpy(), col)


def test_per_step_rows_add_up_to_the_cell(tmp_path):
    study = load_study(write_study(tmp_path, schemes=["CS_C"], days=[30], seeds=[0], per_step=True))
    run_study(study, tmp_path / "out", InProcessEngine(), progress=False)
    steps = pd.read_parquet(tmp_path / "out" / "steps.parquet")
    cells = pd.read_parquet(tmp_path / "out" / "cells.parquet")
    assert len(steps) == 4 and set(steps["cell_key"]) == set(cells["cell_key"])
    assert steps["total_cost_eur"].sum() == pytest.approx(cells["total_cost_eur"].iloc[0], rel=1e-12)


def test_rerun_after_a_killed_study_runs_only_the_missing_cells(tmp_path):
    """SIGKILL the driver mid-study: finished cells stay untouched, a rerun runs only the rest."""
    cfg = write_study(tmp_path, days=[0, 60, 120, 180, 240, 300], steps=24)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "smartnet_gym.cli", "study", "--config", str(cfg), "--out",
                             str(out), "--in-process", "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cells_dir = out / "cells"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if cells_dir.is_dir() and len(list(cells_dir.glob("*.parquet"))) >= 3:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {p.name: p.stat().st_mtime_ns for p in cells_dir.glob("*.parquet")}
    assert 3 <= len(before) < 36, "the study was not interrupted mid-way"
    run = run_study(load_study(cfg), out, InProcessEngine(), progress=False)
    assert (run.cells, run.skipped, run.ran, run.failed) == (36, len(before), 36 - len(before), 0)
    after = {p.name: p.stat().st_mtime_ns for p in cells_dir.glob("*.parquet")}
    assert all(after[k] == v for k, v in before.items())
    again = run_study(load_study(cfg), out, InProcessEngine(), progress=False)
    assert (again.skipped, again.ran) == (36, 0)
    fresh = run_study(load_study(cfg), tmp_path / "fresh", InProcessEngine(), progress=False)
    assert fresh.ran == 36
    pd.testing.assert_frame_equal(computed(pd.read_parquet(out / "cells.parquet")),
                                  computed(pd.read_parquet(tmp_path / "fresh" / "cells.parquet")))


def test_failing_cells_are_retried_then_listed(tmp_path, capsys):
    cfg = write_study(tmp_path, scenarios=["toy", str(broken_scenario(tmp_path))], schemes=["CS_A"],
                      days=[10], seeds=[0], retries=2)
    code = main(["study", "--config", str(cfg), "--out", str(tmp_path / "out"), "--in-process", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1 and "1 failed" in out
    failures = pd.read_csv(tmp_path / "out" / "failures.csv")
    assert list(failures["scenario"]) == ["broken"] and list(failures["attempts"]) == [3]
    assert "broken-net.json" in failures["error"].iloc[0] or "Error" in failures["error"].iloc[0]
    assert list(pd.read_parquet(tmp_path / "out" / "cells.parquet")["scenario"]) == ["toy"]


@pytest.mark.parametrize("over,field", [
    ({"schemes": ["CS_Z"]}, "schemes"), ({"dayz": [1]}, "dayz"), ({"days": {"first": 5, "every": 0}}, "days.every"),
    ({"days": [400]}, "days"), ({"seeds": [-1]}, "seeds"), ({"steps": 0}, "steps"),
    ({"variants": {"pf": {"data": {"forecast": {"load_sigma": -1}}}}}, "variants.pf"),
    ({"variants": {"x": {"market": {"nope": 1}}}}, "market.nope"), ({"reference": "CS_E"}, "reference"),
    ({"scenarios": ["no-such-preset"]}, "no-such-preset"), ({"days": [365], "steps": 96}, "allowed days 0..364"),
    ({"retries": float("inf")}, "retries")])
def test_bad_study_configs_exit_2_naming_the_field(tmp_path, capsys, over, field):
    cfg = write_study(tmp_path, **over)
    code = main(["study", "--config", str(cfg), "--out", str(tmp_path / "out"), "--in-process", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and field in err and "Traceback" not in err


def test_a_changed_study_refuses_its_old_folder_unless_forced(tmp_path, capsys):
    out = str(tmp_path / "out")
    cfg = write_study(tmp_path, schemes=["CS_A"], days=[10], seeds=[0])
    assert main(["study", "--config", str(cfg), "--out", out, "--in-process", "--no-progress"]) == 0
    write_study(tmp_path, schemes=["CS_A", "CS_B"], days=[10], seeds=[0])
    assert main(["study", "--config", str(cfg), "--out", out, "--in-process", "--no-progress"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["study", "--config", str(cfg), "--out", out, "--in-process", "--no-progress", "--force"]) == 0
    assert "1 already done, 1 run" in capsys.readouterr().out
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "file.txt").write_text("x")
    assert main(["study", "--config", str(cfg), "--out", str(tmp_path / "other"), "--in-process"]) == 2


def test_report_rerenders_the_same_summary(tmp_path, capsys):
    cfg = write_study(tmp_path, days=[10, 100, 200, 300])
    out = tmp_path / "out"
    assert main(["study", "--config", str(cfg), "--out", str(out), "--in-process", "--no-progress"]) == 0
    first = (out / "summary.csv").read_text()
    (out / "summary.csv").unlink()
    (out / "paired.png").unlink()
    assert main(["study", "--report", str(out)]) == 0
    assert (out / "summary.csv").read_text() == first and (out / "paired.png").is_file()
    for name in ("cells.parquet", "failures.csv", "totals.png", "seasons.png", "study.yaml", "study.json"):
        assert (out / name).is_file(), name


def test_report_of_cells_from_another_code_version(tmp_path, monkeypatch):
    """Cells computed by another version of the package are reported, never dropped; a folder
    without any of the study's cells is refused and left as it is."""
    import smartnet_gym.study.cells as cells_mod

    cfg = write_study(tmp_path, days=[10, 100])
    out = tmp_path / "out"
    assert main(["study", "--config", str(cfg), "--out", str(out), "--in-process", "--no-progress"]) == 0
    first = pd.read_parquet(out / "cells.parquet")
    summary = (out / "summary.csv").read_text()
    monkeypatch.setattr(cells_mod, "code_digest", lambda: "another-version")   # the package changed since
    assert main(["study", "--report", str(out)]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(out / "cells.parquet"), first)
    assert (out / "summary.csv").read_text() == summary
    for f in (out / "cells").glob("*.parquet"):
        f.unlink()
    assert main(["study", "--report", str(out)]) == 2
    pd.testing.assert_frame_equal(pd.read_parquet(out / "cells.parquet"), first)


def test_paired_summary_matches_scipy():
    """Paired differences and their 95 % CI equal scipy's paired t-test on the same cells."""
    rng = np.random.default_rng(1)
    days = np.arange(0, 364, 7)
    base = rng.normal(50e3, 20e3, len(days))
    rows = []
    for s, shift in (("CS_A", 0.0), ("CS_D", 800.0)):
        for d, b in zip(days, base, strict=True):
            total = b + shift + rng.normal(0, 500)
            rows.append({"scenario": "x", "variant": "base", "scheme": s, "day": int(d), "seed": 0,
                         "season": ["winter", "spring", "summer", "autumn"][int(d) // 91],
                         "total_cost_eur": total, "ict_cost_eur": 10.0, "market_cost_eur": 0.0,
                         "afrr_cost_eur": 0.0, "unwanted_cost_eur": 0.0, "d_violations": 0,
                         "d_violation_steps": 0, "t_violations": 0})
    rows = pd.DataFrame(rows)
    summary = summarize_study(rows, ("CS_A", "CS_D"), "CS_A")
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    r = summary[(summary.metric == "total_cost_eur") & (summary.season == "all") & (summary.versus == "CS_A")].iloc[0]
    a = rows[rows.scheme == "CS_A"].sort_values("day")["total_cost_eur"].to_numpy()
    d = rows[rows.scheme == "CS_D"].sort_values("day")["total_cost_eur"].to_numpy()
    ref = stats.ttest_rel(d, a)
    ci = ref.confidence_interval(0.95)
    assert r["n"] == len(days) and r["mean"] == pytest.approx(np.mean(d - a), rel=1e-12)
    assert (r["ci95_low"], r["ci95_high"]) == (pytest.approx(ci.low, rel=1e-9), pytest.approx(ci.high, rel=1e-9))
    assert r["p_value"] == pytest.approx(ref.pvalue, rel=1e-6) and r["ci_excludes_zero"]
    # unpaired, the day-to-day spread hides the difference; paired, it is clear
    unpaired = summary[(summary.metric == "total_cost_eur") & (summary.season == "all") & (summary.versus == "")]
    assert (unpaired["ci95_high"] - unpaired["ci95_low"]).min() > 10 * (r["ci95_high"] - r["ci95_low"])
    table = markdown_table(summary, "CS_A")
    assert f"| x | base | CS_D − CS_A | **{r['mean']:+,.0f} [" in table and table.count("\n") == 2


def test_a_worker_on_other_code_fails_its_cells(tmp_path, monkeypatch):
    """Cells are keyed by the package's code: a result computed by other code is not taken."""
    from smartnet_gym.study import runner

    monkeypatch.setattr(runner, "code_digest", lambda: "another-version")
    cfg = write_study(tmp_path, schemes=["CS_A"], days=[10], seeds=[0], retries=0)
    run = run_study(load_study(cfg), tmp_path / "out", InProcessEngine(), progress=False)
    assert (run.ran, run.failed) == (0, 1)
    assert "other smartnet_gym code" in pd.read_csv(tmp_path / "out" / "failures.csv")["error"].iloc[0]


def test_validate_grid_episodes_reports_precision_and_recall(tmp_path, capsys):
    import json

    code = main(["validate-grid", "--episodes", "--scenario", "toy", "--every", "120", "--in-process",
                 "--out", str(tmp_path / "vg"), "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert code == 0 and rep["perfect_forecasts"] and rep["scheme"] == "CS_D"
    rows = {r["season"]: r for r in rep["rows"]}
    assert rows["all"]["cells"] == 4 and rows["all"]["steps"] == 4 * 96
    for key in ("precision", "recall", "d_precision", "d_recall", "voltage_error_max_pu", "tp", "fp", "fn",
                "t_violations", "ac_reclears"):
        assert key in rows["all"]
    cells = pd.read_parquet(tmp_path / "vg" / "cells.parquet")
    assert (cells["physics"] == "ac").all() and cells["model_tp"].notna().all()
    assert main(["validate-grid", "--episodes", "--scenario", "toy", "--in-process"]) == 2    # --out is required
