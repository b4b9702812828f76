"""``smartnet-gym sweep``: trials on Ray Tune equal the in-process ones, finished trials are never
redone, bad sweeps fail naming the field, and the results table against hand computations."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from smartnet_gym.cli import main
from smartnet_gym.errors import ConfigError
from train.sweep import AGENT, load_sweep, results_table, run_sweep

TRAIN = """env_id: smartnet/Bidding-v0
env_kwargs: {scenario: toy, physics: linear, episode_steps: 4, start_period: 44, action_mode: provider}
algo: PPO
algo_kwargs: {n_steps: 32, batch_size: 16, n_epochs: 1}
total_timesteps: 64
progress_bar: false
"""


def _sweep(tmp_path, body: str = "schemes: [CS_A, CS_D]\nseeds: [0]\n"):
    (tmp_path / "train.yaml").write_text(TRAIN)
    path = tmp_path / "sweep.yaml"
    path.write_text("name: t\ntrain: train.yaml\nevaluate: {episodes: 2, baselines: [truthful, optimal]}\n" + body)
    return path


@pytest.mark.slow
def test_ray_tune_equals_in_process_and_reruns_skip(tmp_path):
    path = _sweep(tmp_path)
    table, failed = run_sweep(path, tmp_path / "local", in_process=True)
    assert not failed and set(table["scheme"]) == {"CS_A", "CS_D"}
    assert set(table["policy"]) == {AGENT, "truthful", "optimal"}
    _, failed = run_sweep(path, tmp_path / "ray", workers=2)
    assert not failed and (tmp_path / "ray" / "tune").is_dir()
    a = pd.read_csv(tmp_path / "local" / "episodes.csv")
    b = pd.read_csv(tmp_path / "ray" / "episodes.csv")
    pd.testing.assert_frame_equal(a, b)
    for trial in ("toy_CS_A_s0", "toy_CS_D_s0"):
        run = tmp_path / "ray" / "runs" / trial
        assert (run / "model.zip").is_file() and any((run / "tb").iterdir())
    # a rerun trains nothing; a trial without its evaluation is trained again
    model = tmp_path / "local" / "runs" / "toy_CS_A_s0" / "model.zip"
    before = os.stat(model).st_mtime_ns
    os.remove(tmp_path / "local" / "runs" / "toy_CS_D_s0" / "evaluation.csv")
    run_sweep(path, tmp_path / "local", in_process=True)
    assert os.stat(model).st_mtime_ns == before
    assert (tmp_path / "local" / "runs" / "toy_CS_D_s0" / "evaluation.csv").is_file()
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "local" / "episodes.csv"), a)


@pytest.mark.parametrize(("body", "field"), [
    ("schemes: [CS_X]\n", "schemes"),
    ("seeds: [1, 1]\n", "seeds"),
    ("colour: red\n", "colour"),
    ("evaluate: {episodes: 0}\n", "evaluate.episodes"),
])
def test_bad_sweeps_name_the_field(tmp_path, body, field):
    path = tmp_path / "s.yaml"
    (tmp_path / "train.yaml").write_text(TRAIN)
    path.write_text("name: t\ntrain: train.yaml\n" + body)
    with pytest.raises(ConfigError, match=field):
        load_sweep(path)
    assert main(["sweep", "--config", str(path), "--out", str(tmp_path / "o"), "--in-process"]) == 2


def test_unknown_baseline_and_env_argument(tmp_path):
    path = _sweep(tmp_path, "evaluate: {baselines: [oracle]}\n")
    with pytest.raises(ConfigError, match="evaluate.baselines"):
        load_sweep(path)
    (tmp_path / "train.yaml").write_text(TRAIN.replace("action_mode: provider", "action_moed: provider"))
    path.write_text("name: t\ntrain: train.yaml\n")
    with pytest.raises(ConfigError, match="action_moed"):
        load_sweep(path)


def test_results_table_by_hand():
    """Two seeds × one episode: the agent earns 30 and 10 (payments 50 and 20 for 1 MWh each),
    truthful 5, the best response 40; system costs 120 and 100 against truthful 90."""
    rows = []
    for seed, (profit, pay, cost) in enumerate([(30.0, 50.0, 120.0), (10.0, 20.0, 100.0)]):
        trial = f"x_CS_B_s{seed}"
        for policy, p, y, c in ((AGENT, profit, pay, cost), ("truthful", 5.0, 10.0, 90.0), ("optimal", 40.0, 60.0, 130.0)):
            rows.append({"trial": trial, "scenario": "x", "scheme": "CS_B", "train_seed": seed, "policy": policy,
                         "episode": 0, "reward": p / 100, "total_cost_eur": c, "profit_eur": p,
                         "provider_payment_eur": y, "provider_delivered_mwh": 1.0,
                         "profit_vs_truthful_eur": p - 5.0})
    t = results_table(pd.DataFrame(rows)).set_index("policy")
    a = t.loc[AGENT]
    assert a["n"] == 2 and t.loc["truthful", "n"] == 1          # a baseline counts each episode once
    assert a["total_cost_vs_truthful_eur_mean"] == pytest.approx(20.0)
    assert a["profit_vs_truthful_eur_mean"] == pytest.approx(15.0)
    assert a["lerner_mean"] == pytest.approx((30 / 50 + 10 / 20) / 2)
    assert a["price_eur_per_mwh_mean"] == pytest.approx(35.0)
    assert a["best_response_share_mean"] == pytest.approx(20.0 / 40.0)
    assert np.isfinite(a["total_cost_vs_truthful_eur_ci95"])


@pytest.mark.slow
def test_sweep_on_a_two_node_cluster(tmp_path):
    """``--address``: the trials of a sweep spread over a 2-node Ray cluster simulated on this
    machine, with the same episodes as in this process."""
    import json

    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    try:
        path = _sweep(tmp_path)
        _, failed = run_sweep(path, tmp_path / "cluster", address=c.address)
        assert not failed
    finally:
        import ray

        ray.shutdown()
        c.shutdown()
    nodes = {json.loads(f.read_text().splitlines()[-1])["node"] for f in (tmp_path / "cluster" / "tune").glob("*/result.json")}
    assert len(nodes) == 2
    run_sweep(path, tmp_path / "local", in_process=True)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "cluster" / "episodes.csv"),
                                  pd.read_csv(tmp_path / "local" / "episodes.csv"))
