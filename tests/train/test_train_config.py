"""Training configs: bad configs raise ConfigError naming the field, and nothing is trained or written."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
import yaml

from smartnet_gym.errors import ConfigError
from train.cli import add_train_parser, cmd_train
from train.config import dump_train_config, load_train_config, validate_train_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "train"
BASE = {"name": "t", "env_id": "smartnet/Bidding-v0", "env_kwargs": {"scenario": "toy"}, "algo": "PPO",
        "total_timesteps": 64}


@pytest.mark.parametrize("name", ["smoke", "bidding_ppo", "dispatch_ppo"])
def test_shipped_configs_validate(name):
    cfg = load_train_config(CONFIGS / f"{name}.yaml")
    assert cfg.name == name and cfg.total_timesteps > 0
    again = validate_train_config(yaml.safe_load(dump_train_config(cfg)))
    assert again == cfg


@pytest.mark.parametrize(("change", "field"), [
    ({"env_id": "smartnet/Biding-v0"}, "env_id"),
    ({"algo": "A2C"}, "algo"),
    ({"total_timesteps": -5}, "total_timesteps"),
    ({"total_timesteps": 0}, "total_timesteps"),
    ({"n_envs": 0}, "n_envs"),
    ({"learning_rate": 0.1}, "learning_rate"),                      # unknown top-level field
    ({"eval": {"freq": 10, "episode": 2}}, "eval.episode"),         # unknown nested field
    ({"env_kwargs": {"scenario": "toy", "episode_step": 8}}, "env_kwargs.episode_step"),
    ({"algo_kwargs": {"n_step": 8}}, "algo_kwargs.n_step"),
    ({"algo_kwargs": {"seed": 3}}, "algo_kwargs.seed"),
    ({"algo_kwargs": {"policy_kwargs": {"activation_fn": "sigmoid"}}}, "algo_kwargs.policy_kwargs.activation_fn"),
    ({"days": {"first": 200, "last": 100}}, "days"),
])
def test_bad_config_names_the_field(change, field):
    with pytest.raises(ConfigError, match=r"(^|[ :;])" + re.escape(field) + ": "):
        validate_train_config(BASE | change)


def test_algo_any_case():
    assert validate_train_config(BASE | {"algo": "sac"}).algo == "SAC"


def _cli(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_train_parser(p.add_subparsers(dest="command"))
    return p.parse_args(["train", *argv])


@pytest.mark.parametrize(("change", "field"), [
    ({"env_id": "smartnet/Nope-v0"}, "env_id"),
    ({"algo": "DQN"}, "algo"),
    ({"total_timesteps": -1}, "total_timesteps"),
    ({"foo": 1}, "foo"),
    ({"env_kwargs": {"scenario": "no-such-preset"}}, "env_kwargs"),
])
def test_cli_bad_config_trains_nothing(tmp_path, change, field):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump(BASE | change))
    runs = tmp_path / "runs"
    with pytest.raises(ConfigError, match=field):
        cmd_train(_cli(["--config", str(cfg), "--runs-dir", str(runs)]))
    assert not runs.exists()


def test_cli_missing_config_and_bad_resume(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        cmd_train(_cli(["--config", str(tmp_path / "none.yaml")]))
    cfg = tmp_path / "ok.yaml"
    cfg.write_text(yaml.safe_dump(BASE))
    with pytest.raises(ConfigError, match="--resume"):
        cmd_train(_cli(["--config", str(cfg), "--runs-dir", str(tmp_path / "runs"), "--resume", "nope.zip"]))
    assert not (tmp_path / "runs").exists()


def test_used_run_folder_is_refused(tmp_path):
    cfg = tmp_path / "ok.yaml"
    cfg.write_text(yaml.safe_dump(BASE))
    (tmp_path / "runs" / "t").mkdir(parents=True)
    (tmp_path / "runs" / "t" / "model.zip").write_text("x")
    with pytest.raises(ConfigError, match="--force"):
        cmd_train(_cli(["--config", str(cfg), "--runs-dir", str(tmp_path / "runs")]))
    assert (tmp_path / "runs" / "t" / "model.zip").read_text() == "x"
