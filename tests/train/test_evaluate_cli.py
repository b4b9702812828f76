"""``smartnet-gym evaluate`` through its argparse parser: outputs, user errors, and a SAC run."""

from __future__ import annotations

import argparse
import doctest
import json

import pandas as pd
import pytest

import baselines
from smartnet_gym.errors import ConfigError, UnknownNameError
from train.config import validate_train_config
from train.evaluate import add_evaluate_parser, cmd_evaluate
from train.train import train

FAST = json.dumps({"scenario": "toy", "physics": "linear", "episode_steps": 2, "start_period": 44})


def _cli(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_evaluate_parser(p.add_subparsers(dest="command"))
    return p.parse_args(["evaluate", *argv])


def test_evaluate_writes_the_outputs(tmp_path, capsys):
    out = tmp_path / "ev"
    args = _cli(["--env", "smartnet/DSOLimits-v0", "--policy", "truthful", "--baselines", "all", "--episodes", "2",
                 "--env-kwargs", FAST, "--schemes", "cs_a,CS_B", "--out", str(out), "--no-progress"])
    assert cmd_evaluate(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["episodes.csv", "evaluate.png", "run.json", "summary.csv",
                                                     "summary.md"]
    eps, summ = pd.read_csv(out / "episodes.csv"), pd.read_csv(out / "summary.csv")
    policies = ["truthful", "optimal", "fixed_limits", "random", "prequalify"]
    assert len(eps) == 2 * 5 * 2 and list(dict.fromkeys(summ["policy"])) == policies
    assert list(dict.fromkeys(summ["scheme"])) == ["CS_A", "CS_B"]
    assert {"episode", "reward", "total_cost_eur", "market_cost_eur", "afrr_cost_eur", "unwanted_cost_eur",
            "ict_cost_eur", "evaluated_cost_eur", "cs_d_evaluated_cost_eur"} <= set(eps)
    assert {"reward_mean", "reward_ci95", "total_cost_eur_mean", "total_cost_eur_ci95"} <= set(summ)
    assert (eps["evaluated_cost_eur"] >= eps["cs_d_evaluated_cost_eur"] - 1e-3).all()
    assert "| CS_B | truthful | 2 |" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "err", "match"), [
    (["--env", "smartnet/Dispatch-v1", "--policy", "random"], UnknownNameError, "Dispatch-v0"),
    (["--env", "smartnet/Dispatch-v0", "--policy", "optimall"], ConfigError, "optimal"),
    pytest.param(["--env", "smartnet/Dispatch-v0", "--policy", "markup"], UnknownNameError, "allowed",
                 marks=pytest.mark.slow),   # raised once the spain-like env is built
    (["--env", "smartnet/Dispatch-v0", "--policy", "random", "--env-kwargs", "{\"episode_step\": 2}"], ConfigError,
     "episode_step"),
    (["--env", "smartnet/Dispatch-v0", "--policy", "random", "--env-kwargs", "[1]"], ConfigError, "JSON object"),
    (["--env", "smartnet/Dispatch-v0", "--policy", "random", "--schemes", "CS_X"], UnknownNameError, "scheme"),
])
def test_evaluate_user_errors_write_nothing(tmp_path, argv, err, match):
    out = tmp_path / "ev"
    with pytest.raises(err, match=match):
        cmd_evaluate(_cli([*argv, "--episodes", "1", "--out", str(out), "--no-progress"]))
    assert not out.exists() and not list(tmp_path.iterdir())


def test_evaluate_refuses_a_used_out(tmp_path):
    (tmp_path / "x").write_text("keep")
    with pytest.raises(ConfigError, match="--force"):
        cmd_evaluate(_cli(["--env", "smartnet/Dispatch-v0", "--policy", "random", "--out", str(tmp_path)]))


def test_sac_trains_and_checkpoints_its_replay_buffer(tmp_path):
    cfg = validate_train_config({
        "name": "sac", "env_id": "smartnet/DSOLimits-v0", "algo": "sac", "total_timesteps": 48,
        "env_kwargs": {"scenario": "toy", "physics": "linear", "episode_steps": 16, "start_period": 44},
        "algo_kwargs": {"learning_starts": 16, "batch_size": 16, "policy_kwargs": {"net_arch": [16]}},
        "checkpoint_freq": 32, "progress_bar": False, "tensorboard": False})
    res = train(cfg, runs_dir=tmp_path)
    ck = tmp_path / "sac" / "checkpoints"
    assert res.num_timesteps == 48 and (tmp_path / "sac" / "model.zip").is_file()
    assert {"ckpt_32_steps.zip", "ckpt_replay_buffer_32_steps.pkl", "ckpt_vecnormalize_32_steps.pkl"} <= {
        p.name for p in ck.iterdir()}


def test_baselines_doctest():
    assert doctest.testmod(baselines, raise_on_error=False).failed == 0
