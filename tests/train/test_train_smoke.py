"""Smoke: PPO trains for 2,048 steps on Bidding-v0 and Dispatch-v0 (toy, linear, short episodes),
saves, reloads and evaluates; TensorBoard holds the CBA scalars; a checkpoint resumes.

Both runs use ``configs/train/smoke.yaml`` (Dispatch with its env id and kwargs swapped in) and
are trained once per module (about a minute each on 2 cores).
"""

from __future__ import annotations

import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from train.config import load_train_config
from train.evaluate import evaluate, load_model_policy, plot_evaluation, resolve_policy
from train.train import train

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "train" / "smoke.yaml"
DISPATCH_KW = {"scenario": "toy", "physics": "linear", "episode_steps": 32, "start_period": 40, "regret_info": False}
CBA_TAGS = ("cba/total_cost_eur", "cba/market_cost_eur", "cba/afrr_cost_eur", "cba/unwanted_cost_eur",
            "cba/ict_cost_eur", "cba/bidders_profit_eur")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Both smoke runs, the Dispatch one in a second process (2 cores: half the wall time)."""
    root = tmp_path_factory.mktemp("runs")
    bid = load_train_config(SMOKE, {"name": "bid"})
    dis = load_train_config(SMOKE, {"name": "dis", "env_id": "smartnet/Dispatch-v0", "env_kwargs": DISPATCH_KW,
                                    "eval": {"freq": 0}})
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        other = pool.submit(train, dis, root)
        bid_res = train(bid, runs_dir=root)
        dis_res = other.result()
    return {"root": root, "bid": (bid, bid_res), "dis": (dis, dis_res)}


@pytest.mark.parametrize("key", ["bid", "dis"])
def test_run_folder(runs, key):
    cfg, res = runs[key]
    run = Path(res.run_dir)
    assert res.num_timesteps == cfg.total_timesteps == res.trained_timesteps
    for f in ("config.yaml", "scenario.json", "model.zip", "vecnormalize.pkl", "train.json"):
        assert (run / f).is_file(), f
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "ckpt_1024_steps.zip", "ckpt_2048_steps.zip", "ckpt_vecnormalize_1024_steps.pkl",
        "ckpt_vecnormalize_2048_steps.pkl"]
    assert not [p for p in run.rglob(".*") if p.is_file()]      # no temporary files left behind
    assert load_train_config(run / "config.yaml") == cfg
    if key == "bid":   # eval.freq 1024: the best validation model is kept
        assert (run / "best_model.zip").is_file() and (run / "best_vecnormalize.pkl").is_file()
        assert res.best_mean_reward is not None


@pytest.mark.parametrize("key", ["bid", "dis"])
def test_tensorboard_has_cba_scalars(runs, key):
    _, res = runs[key]
    (tb,) = (Path(res.run_dir) / "tb").iterdir()
    ea = EventAccumulator(str(tb))
    ea.Reload()
    tags = set(ea.Tags()["scalars"])
    assert set(CBA_TAGS) <= tags, sorted(tags)
    extra = "cba/profit_eur" if key == "bid" else "cba/operator_cost_eur"
    assert extra in tags
    assert all(np.isfinite(e.value) for e in ea.Scalars("cba/total_cost_eur"))
    # market-power indicators of the global market, as episode means
    assert {"market_power/hhi_offered", "market_power/psi"} <= tags
    assert all(0 <= e.value <= 10_000 for e in ea.Scalars("market_power/hhi_offered"))
    assert {"rollout/ep_rew_mean", "train/loss"} <= tags
    if key == "bid":
        assert "eval/mean_reward" in tags


def test_reload_and_evaluate(runs, tmp_path):
    _, bid = runs["bid"]
    policy = load_model_policy(resolve_policy(bid.run_dir))
    assert policy.obs_normalizer is not None and policy.obs_normalizer.norm_obs
    ev = evaluate("smartnet/Bidding-v0", [bid.run_dir, "truthful", "random"], 2, env_kwargs={"episode_steps": 8})
    df, summ = ev.episodes, ev.summary
    assert len(df) == 3 * 2 and list(summ["policy"]) == ["bid", "truthful", "random"]
    assert set(df["day"] % 10) == {9}                                   # held-out test days
    assert df.groupby("policy")["day"].apply(tuple).nunique() == 1    # the same episodes for every policy
    assert {"reward", "total_cost_eur", "market_cost_eur", "profit_eur", "profit_vs_truthful_eur"} <= set(df)
    assert np.allclose(df.loc[df["policy"] == "truthful", "profit_vs_truthful_eur"], 0.0)
    for col in ("reward_mean", "reward_ci95", "total_cost_eur_mean", "profit_vs_truthful_eur_ci95"):
        assert col in summ
    plot_evaluation(summ, tmp_path / "e.png", "profit_eur")
    assert (tmp_path / "e.png").stat().st_size > 1000

    _, dis = runs["dis"]
    ev = evaluate("smartnet/Dispatch-v0", [dis.run_dir, "optimal"], 1, schemes=["CS_B", "CS_D"],
                  env_kwargs={"episode_steps": 4})
    df = ev.episodes
    assert len(df) == 2 * 2 and set(df["scheme"]) == {"CS_B", "CS_D"}
    assert ev.meta["env_kwargs"]["CS_B"]["regret_info"] is True       # yardstick on for evaluation
    opt = df[df["policy"] == "optimal"]
    assert np.abs(opt["regret_eur"]).max() < 1e-3
    assert (df["regret_eur"] >= -1e-3).all()


def test_resume_from_checkpoint(runs, tmp_path):
    cfg, res = runs["dis"]
    root = tmp_path / "runs"
    shutil.copytree(res.run_dir, root / cfg.name)
    ckpt = root / cfg.name / "checkpoints" / "ckpt_1024_steps.zip"
    more = cfg.model_copy(update={"total_timesteps": 1536, "checkpoint_freq": 0})
    out = train(more, runs_dir=root, resume=str(ckpt))
    assert out.num_timesteps == 1536 and out.trained_timesteps == 512
    (tb,) = (root / cfg.name / "tb").iterdir()        # the same TensorBoard run continues
    ea = EventAccumulator(str(tb))
    ea.Reload()
    assert max(e.step for e in ea.Scalars("cba/total_cost_eur")) > 1024
