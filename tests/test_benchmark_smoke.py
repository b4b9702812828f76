"""Smoke test of `smartnet-gym benchmark` (not a timed test: no assertion on speed).

The hidden ``--tiny`` mode runs on the toy system with two bid counts and one repeat (CVXPY
paths for CS_A only), and must produce the report's keys with positive finite numbers.
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest

from smartnet_gym.bench.cli import add_benchmark_parser, cmd_benchmark
from smartnet_gym.bench.instances import scale_book
from smartnet_gym.bench.scaling import loglog_slope
from smartnet_gym.market.bids import BidBook


def _numbers(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield obj


def _positive_finite(d: dict) -> None:
    vals = list(_numbers(d))
    assert vals, "no numbers"
    assert all(math.isfinite(v) and v > 0 for v in vals), d


def test_benchmark_tiny_report(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_benchmark_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "bench.json"
    args = parser.parse_args(["benchmark", "--tiny", "--json", "--out", str(out)])
    assert cmd_benchmark(args) == 0
    printed = json.loads(capsys.readouterr().out)
    rep = json.loads(out.read_text())
    assert printed["clear_ms"] == rep["clear_ms"]
    for key in ("clear_ms", "clear_ms_explicit", "clear_ms_cvxpy", "clear_ms_naive", "naive_over_fast",
                "explicit_over_fast", "scaling", "machine", "env_steps_per_s"):
        assert key in rep, key
    assert set(rep["clear_ms"]) == {"CS_A", "CS_B", "CS_C", "CS_D", "CS_D_dec", "CS_E"}
    for scheme, per_size in rep["clear_ms"].items():
        assert set(per_size) == {"20", "100"}, scheme
    _positive_finite(rep["clear_ms"])
    _positive_finite(rep["clear_ms_explicit"])
    _positive_finite(rep["clear_cpu_ms"])
    assert set(rep["clear_cpu_ms"]) == set(rep["clear_ms"])
    assert set(rep["clear_ms_explicit"]) == set(rep["clear_ms"])
    _positive_finite(rep["clear_ms_cvxpy"])
    _positive_finite(rep["clear_ms_naive"])
    assert "CS_A" in rep["clear_ms_naive"] and "100" in rep["clear_ms_naive"]["CS_A"]
    _positive_finite(rep["naive_over_fast"])
    assert "overall" in rep["naive_over_fast"]
    bids = rep["scaling"]["bids"]["exponent"]["fast"]
    assert set(bids) >= set(rep["clear_ms"]) | {"all"}
    assert all(math.isfinite(v) for v in bids.values())   # slopes may be ~0 or negative on a toy
    assert rep["machine"]["cpu_count"] >= 1 and rep["machine"]["python"]
    assert rep["env_steps_per_s"] == {} and rep["env_step_split_ms"] == {}


def test_scale_book_exact_sizes_and_steps(toy_system):
    lin = toy_system.linear
    buses = [int(b) for b in lin.dc.bus[:2]]
    book = BidBook.from_arrays(bus=[buses[0], buses[0], buses[1], buses[1]], direction=[1, -1, 1, -1],
                               period=[0, 0, 1, 1], qty_mw=[4.0, 2.0, 6.0, 3.0],
                               price_eur_per_mwh=[50.0, 10.0, 60.0, 20.0], unit=[0, 0, 1, 1])
    for n in (1, 3, 4, 9, 10):
        lay = scale_book(book, lin, n)
        b = lay.book()
        assert len(b) == n
        if n >= len(book):   # every source row's quantity is split, not changed
            assert np.isclose(b.qty_mw.sum(), book.qty_mw.sum())
    b = scale_book(book, lin, 8).book()   # two price steps per row, prices rising by step
    for r in range(len(book)):
        k = (b.unit == book.unit[r]) & (b.direction == book.direction[r]) & (b.period == book.period[r])
        assert k.sum() == 2 and np.allclose(np.diff(b.price_eur_per_mwh[k]), 5.0)
    rng = np.random.default_rng(1)
    b2 = scale_book(book, lin, 8).book(rng)
    assert b2.layout_key() == b.layout_key() and not np.allclose(b2.qty_mw, b.qty_mw)


def test_loglog_slope():
    assert math.isclose(loglog_slope([10, 100, 1000], [1, 10, 100]), 1.0)
    assert loglog_slope([10], [1]) is None


def test_env_steps_report_shape():
    """env_steps gives {env_id: {physics: split}}; the report's env_steps_per_s is {env_id: {physics: x}}."""
    from smartnet_gym.bench.env_step import env_steps

    res, note = env_steps("toy", quick=True)
    assert set(res) == {"smartnet/Bidding-v0"}, note
    split = res["smartnet/Bidding-v0"]["linear"]
    assert split["steps_per_s"] > 0 and split["clearing_ms"] > 0
    assert split["rest_ms"] == pytest.approx(1e3 / split["steps_per_s"] - split["clearing_ms"]
                                             - split.get("physics_ms", 0.0), abs=0.01)


def test_env_table_prints_the_targets():
    from smartnet_gym.bench.report import format_env

    text = "\n".join(format_env({"smartnet/Bidding-v0": {"linear": {"steps_per_s": 1200.0},
                                                          "ac": {"steps_per_s": 100.0}}}))
    assert "Bidding-v0 linear 1200 ok" in text and "Bidding-v0 ac 100 MISSED" in text
    assert "0.83" in text and "read on whole default episodes" in text   # the 2 ms step target: below


def test_env_episodes_time_whole_default_episodes():
    """default_episodes times every step of whole episodes (96 each, resets excluded) of each id."""
    from smartnet_gym.bench.env_step import env_episodes
    from smartnet_gym.bench.report import format_episodes

    res, note = env_episodes("toy", episodes=1)
    assert set(res) == {"smartnet/Bidding-v0", "smartnet/Dispatch-v0"}, note
    for d in res.values():
        assert len(d["ms_per_step"]) == len(d["start_step"]) == 1
        assert d["start_step"][0] % 96 == 0                    # registered default: episodes start at 00:00
        assert d["mean_ms"] == pytest.approx(d["ms_per_step"][0]) and d["max_ms"] >= d["median_ms"] > 0
    text = "\n".join(format_episodes({"smartnet/Bidding-v0": {"mean_ms": 1.5, "median_ms": 1.4, "max_ms": 2.2}}))
    assert "mean 1.50 ms/step" in text and " ok " in text


def test_every_day_times_one_episode_on_each_start_day():
    """every_day: one whole default episode on each day an episode can start on, in order."""
    import gymnasium as gym

    from smartnet_gym.bench.env_step import default_episodes

    env = gym.make("smartnet/Bidding-v0", scenario="toy", physics="linear")
    core = env.unwrapped.core
    days = [((core.cfg.data.start_day + d) % core.n_days) * 96 for d in range(core.random_days)]
    env.close()
    d = default_episodes("smartnet/Bidding-v0", "toy", 0, 0, every_day=True, revisit=True)
    assert d["start_step"] == days and len(set(days)) == core.random_days == 28
    assert len(d["ms_per_step"]) == 28 and d["mean_ms"] > 0 and d["max_ms"] >= d["median_ms"]
    assert d["revisit_max_ms"] >= d["revisit_mean_ms"] > 0
    from smartnet_gym.bench.report import format_congested

    line = format_congested({"scenario": "italy-like", "smartnet/Bidding-v0": {**d, "mean_ms": 3.5, "max_ms": 6.0}})[0]
    assert "italy-like every start day" in line and "MISSED" in line and "points cached" in line


def test_env_step_timing_works_from_an_installed_copy(tmp_path, toy_system):
    """The package alone (copied without the repository's ``benchmarks/``) measures env steps."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import smartnet_gym

    site = tmp_path / "site"
    shutil.copytree(Path(smartnet_gym.__file__).parent, site / "smartnet_gym")   # with caches: no new JIT
    code = ("import smartnet_gym.bench.env_step as m, sys; "
            "assert m.__file__.startswith(sys.argv[1]), m.__file__; "
            "res, note = m.env_steps('toy', quick=True); "
            "assert res['smartnet/Bidding-v0']['linear']['steps_per_s'] > 0, note")
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", code, str(site)], check=False, cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
