"""``python -m train.collusion``: do learning providers in one local market raise prices (tacit collusion)?

``--agents`` providers (default 3) of a symmetric local market (``multi_bidding_v0`` with
``competitors`` = ``--agents``; equal shares, ``--liquidity`` × the DSO's need offered in total,
equal true costs) all learn at once. ``--learner shared``: one PPO policy is shared by all of them
(SB3; :class:`train.multiagent.ParallelVecEnv`: one VecEnv slot per agent, as SuperSuit's
``pettingzoo_env_to_vec_env_v1``). ``--learner independent``: every provider has its own PPO
policy and learns from its own profit (RLlib multi-agent PPO, :mod:`train.independent`). PPO's
hyperparameters, normalisation, days and the episode settings (scenario, scheme, episode length, start period) come from ``--config``, a Bidding-v0
training config (default ``configs/train/competition_ppo.yaml``).

With ``liquidity / agents ≥ 1`` every provider alone covers the need (RSI ≥ 1 for each): the
competitive (Bertrand) price is the true cost, the collusive one the price cap. Then three
joint policies play the same held-out test days:

| policy | every agent bids |
|---|---|
| ``ppo`` | the shared trained policy, deterministic, on its own observation |
| ``truthful`` | its true cost (the competitive benchmark) |
| ``cap`` | the price cap (full collusion) |

Outputs (written atomically into ``--out``):

| file | content |
|---|---|
| ``steps.csv`` | one row per policy × episode × step: the local indicators of period 0 (``local_*``), each agent's markup and profit |
| ``collusion.csv`` | one row per policy: episode means ± 95 % CI of the local price, truthful price, Lerner, uplift, HHI (offered, activated), PSI, RSI, mean markup (steps with a need) and the agents' total profit per episode |
| ``training.csv`` | shared: per PPO rollout, timesteps, mean local price, Lerner and markup of the (stochastic) training policy; independent: per RLlib iteration, agent steps and each agent's mean episode return |
| ``collusion.png`` | local price and Lerner per policy (95 % CI), and the price during training |
| ``model.zip``, ``vecnormalize.pkl`` | shared: the policy and its normalisation statistics |
| ``rllib/`` | independent: RLlib's checkpoint (one module per agent; ``Algorithm.from_checkpoint``) |
| ``run.json`` | config, env kwargs, training steps and time, episode plan, seconds |
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from stable_baselines3.common.callbacks import BaseCallback

from smartnet_gym.errors import ConfigError
from train.competition import (
    DEFAULT_CONFIG,
    LOCAL_KEYS,
    at_least,
    episode_means,
    nan_if_none,
    summarize,
)
from train.config import TrainConfig, algo_arguments, load_train_config
from train.episodes import EpisodeSpec, plan_episodes, split_days
from train.multiagent import ParallelVecEnv, day_options

JointAct = Callable[[Any, dict[str, np.ndarray]], dict[str, np.ndarray]]


def symmetric_market(agents: int, liquidity: float) -> dict[str, Any]:
    """LocalMarketConfig fields of ``agents`` equal providers offering ``liquidity`` × the need together."""
    if agents < 2:
        raise ConfigError(f"--agents: collusion needs at least 2 providers (got {agents})")
    return {"max_competitors": agents, "shares": [1.0 / agents] * agents, "liquidity": liquidity}


def env_kwargs(base: TrainConfig, agents: int, liquidity: float) -> dict[str, Any]:
    """multi_bidding_v0 arguments: the base config's episode settings, ``agents`` learning providers."""
    kw = {k: v for k, v in base.env_kwargs.items() if k not in ("provider", "bid_quantity")}
    market = {**(kw.get("local_market") or {}), **symmetric_market(agents, liquidity)}   # e.g. the config's area
    return {**kw, "competitors": agents, "local_market": market}


def make_env(kwargs: dict[str, Any]) -> Any:
    """The parallel env (errors name the argument)."""
    from smartnet_gym.envs import multi_bidding_v0

    try:
        return multi_bidding_v0.parallel_env(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"env_kwargs: {e}") from None


# ------------------------------------------------------------------------ training
class PriceLog(BaseCallback):
    """SB3 callback: mean local price, Lerner and markup of every rollout (what the training policy does)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, float]] = []
        self._acc: list[tuple[float, float, float]] = []

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if info.get("local_need_mw"):
                self._acc.append((nan_if_none(info["local_price_eur_per_mwh"]), nan_if_none(info["local_lerner"]),
                                  float(info["markup_eur_per_mwh"])))
        return True

    def _on_rollout_end(self) -> None:
        a = np.array(self._acc, float).reshape(-1, 3)
        m = np.nanmean(a, axis=0) if len(a) else np.full(3, np.nan)
        self.rows.append({"timesteps": float(self.num_timesteps), "local_price_eur_per_mwh": m[0],
                          "local_lerner": m[1], "markup_eur_per_mwh": m[2]})
        self._acc = []


def train_shared(base: TrainConfig, kwargs: dict[str, Any], timesteps: int) -> tuple[Any, Any, pd.DataFrame, float]:
    """Train one PPO policy shared by all agents; (model, VecNormalize, training log, seconds)."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

    if base.algo != "PPO":
        raise ConfigError(f"algo: the multi-agent experiment trains PPO (got {base.algo})")
    torch.set_num_threads(base.torch_threads)
    env = make_env(kwargs)
    days = split_days("train", env.core.n_days, base.days.first, base.days.last)
    venv = VecMonitor(ParallelVecEnv(env, day_options(env, days)))
    n = base.normalize
    venv = VecNormalize(venv, norm_obs=n.obs, norm_reward=n.reward, clip_obs=n.clip_obs, clip_reward=n.clip_reward,
                        gamma=base.gamma)
    model = PPO(base.policy, venv, seed=base.seed, device="cpu", verbose=0, **algo_arguments(base))
    log = PriceLog()
    t0 = time.perf_counter()
    model.learn(total_timesteps=timesteps, callback=log)
    secs = time.perf_counter() - t0
    venv.close()
    return model, venv, pd.DataFrame(log.rows), secs


# ------------------------------------------------------------------------ evaluation
def constant_act(value: float) -> JointAct:
    """Every agent's every price action at ``value`` (−1 truthful, +1 the cap)."""
    return lambda env, obs: {a: np.full(env.action_space(a).shape, value, np.float32) for a in obs}


def shared_act(model: Any, norm: Any) -> JointAct:
    """The shared policy, deterministic, each agent on its own (normalised) observation."""
    def act(env: Any, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        agents = list(obs)
        x = np.stack([obs[a] for a in agents])
        if norm is not None and norm.norm_obs:
            x = norm.normalize_obs(x)
        actions, _ = model.predict(x, deterministic=True)
        return dict(zip(agents, actions, strict=True))
    return act


def play_joint(env: Any, act: JointAct, spec: EpisodeSpec) -> list[dict[str, Any]]:
    """One planned episode of the parallel env; a row per step (local indicators, markups and profits)."""
    obs, _ = env.reset(seed=spec.seed, options={"start_step": spec.start_step})
    rows, k = [], 0
    while env.agents:
        obs, _, _, _, infos = env.step(act(env, obs))
        first = next(iter(infos.values()))
        markups = [infos[a]["markup_eur_per_mwh"] for a in infos]
        row = {"step": k, **{f"local_{key}": nan_if_none(first[f"local_{key}"]) for key in LOCAL_KEYS},
               "markup_eur_per_mwh": float(np.mean(markups)),
               "profit_eur": float(sum(infos[a]["profit_eur"] for a in infos))}
        row |= {f"markup_{a}": infos[a]["markup_eur_per_mwh"] for a in infos}
        row |= {f"profit_{a}": infos[a]["profit_eur"] for a in infos}
        rows.append(row)
        k += 1
    return rows


def evaluate_joint(kwargs: dict[str, Any], acts: dict[str, JointAct], base: TrainConfig, episodes: int,
                   seed: int) -> tuple[pd.DataFrame, list[EpisodeSpec]]:
    """Step rows of every joint policy on the same test episodes."""
    env = make_env(kwargs)
    plan = plan_episodes(env, "test", episodes, seed, base.days.first, base.days.last)
    rows = []
    for policy, act in acts.items():
        for i, spec in enumerate(plan):
            rows += [{"policy": policy, "episode": i, "day": spec.day, **r} for r in play_joint(env, act, spec)]
    env.close()
    return pd.DataFrame(rows), plan


def plot_collusion(summary: pd.DataFrame, training: pd.DataFrame, path: str | Path, title: str = "") -> None:
    """Local price and Lerner per policy (95 % CI) and the training policy's price per rollout."""
    from smartnet_gym.plotting import agg_pyplot

    plt = agg_pyplot()
    fig, ax = plt.subplots(1, 3, figsize=(13, 4))
    x = np.arange(len(summary))
    for a, key, label in ((ax[0], "local_price_eur_per_mwh", "local price [EUR/MWh]"),
                          (ax[1], "local_lerner", "Lerner index [-]")):
        a.bar(x, summary[f"{key}_mean"], yerr=np.nan_to_num(summary[f"{key}_ci95"].to_numpy(float)), capsize=3)
        a.set_xticks(x, summary["policy"])
        a.set_ylabel(label)
    t = summary.set_index("policy")
    if "truthful" in t.index:
        ax[2].axhline(t.loc["truthful", "local_price_eur_per_mwh_mean"], color="k", ls="--", label="truthful")
    if "cap" in t.index:
        ax[2].axhline(t.loc["cap", "local_price_eur_per_mwh_mean"], color="tab:red", ls=":", label="cap (collusive)")
    if "local_price_eur_per_mwh" in training:
        ax[2].plot(training["timesteps"], training["local_price_eur_per_mwh"], "-o", ms=3,
                   label="PPO while training (stochastic)")
    ax[2].set_xlabel("agent steps (all agents)")
    ax[2].set_ylabel("local price [EUR/MWh]")
    ax[2].legend(fontsize=8)
    for a in ax:
        a.grid(alpha=0.3)
    fig.suptitle(f"Learning providers in one local market (held-out days){' — ' + title if title else ''}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)


def collusion_experiment(base: TrainConfig, agents: int, liquidity: float, timesteps: int, episodes: int,
                         seed: int = 0, learner: str = "shared") -> dict[str, Any]:
    """Train the learners — one PPO policy shared by all agents (SB3) or one per agent (RLlib,
    :mod:`train.independent`) — and evaluate them against truthful and cap bidding; every output part."""
    kwargs = env_kwargs(base, agents, liquidity)
    if learner == "shared":
        model, venv, training, secs = train_shared(base, kwargs, timesteps)
        learned, steps_trained = shared_act(model, venv), int(model.num_timesteps)
    else:
        from train.independent import independent_act, train_independent

        env = make_env(kwargs)
        days = split_days("train", env.core.n_days, base.days.first, base.days.last)
        model, training, secs = train_independent(base, kwargs, env.possible_agents, timesteps, days)
        venv, learned, steps_trained = None, independent_act(model), int(training["timesteps"].iloc[-1])
    acts = {"ppo": learned, "truthful": constant_act(-1.0), "cap": constant_act(1.0)}
    steps, plan = evaluate_joint(kwargs, acts, base, episodes, seed)
    keys = ["markup_eur_per_mwh", *[f"local_{k}" for k in LOCAL_KEYS]]
    summary = summarize(episode_means(steps, keys, ["policy"]), keys, ["policy"])
    meta = {"config": base.model_dump(mode="json"), "env_kwargs": kwargs, "agents": agents, "liquidity": liquidity,
            "learner": learner, "timesteps": steps_trained, "train_seconds": secs,
            "episodes": [asdict(s) for s in plan], "seed": seed}
    return {"model": model, "venv": venv, "steps": steps, "summary": summary, "training": training, "meta": meta}


# ------------------------------------------------------------------------ command line
def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m train.collusion``."""
    p = argparse.ArgumentParser(prog="python -m train.collusion", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="output folder (created; refused if not empty unless --force)")
    p.add_argument("--config", default=DEFAULT_CONFIG, help=f"PPO and episode settings (default {DEFAULT_CONFIG})")
    p.add_argument("--agents", type=int, default=3, help="learning providers in the local market (default 3)")
    p.add_argument("--liquidity", type=float, default=3.0, help="their total offer / the DSO's need (default 3)")
    p.add_argument("--timesteps", type=int, default=36864, help="agent steps, all agents together (default 36864)")
    p.add_argument("--episodes", type=int, default=9, help="held-out test episodes per policy (default 9)")
    p.add_argument("--seed", type=int, help="training seed (default: the config's); the episode plan uses 0")
    p.add_argument("--learner", choices=("shared", "independent"), default="shared",
                   help="one PPO policy shared by all agents (SB3), or one per agent (RLlib; default shared)")
    p.add_argument("--force", action="store_true", help="overwrite a non-empty --out")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the experiment; user errors exit with code 2 and a one-line message naming the field."""
    from smartnet_gym.results import OutputDir
    from train.callbacks import save_model_atomic

    args = build_parser().parse_args(argv)
    try:
        for flag, v, low in (("--agents", args.agents, 2), ("--timesteps", args.timesteps, 1),
                             ("--episodes", args.episodes, 1)):
            at_least(flag, v, low)
        if not args.liquidity > 0:
            raise ConfigError(f"--liquidity: must be > 0 (got {args.liquidity})")
        base = load_train_config(args.config, {} if args.seed is None else {"seed": args.seed})
        make_env(env_kwargs(base, args.agents, args.liquidity)).close()   # bad knobs fail before training
        out = OutputDir(args.out, force=args.force)
    except ConfigError as e:
        print(f"error: {e}")
        return 2
    t0 = time.perf_counter()
    r = collusion_experiment(base, args.agents, args.liquidity, args.timesteps, args.episodes,
                             learner=args.learner)
    r["meta"]["seconds"] = time.perf_counter() - t0
    title = f"{args.agents} {args.learner} learners, liquidity {args.liquidity:g}"
    with out:   # committed together, or nothing is left behind
        out.write("steps.csv", lambda p: r["steps"].to_csv(p, index=False))
        out.write("collusion.csv", lambda p: r["summary"].to_csv(p, index=False))
        out.write("training.csv", lambda p: r["training"].to_csv(p, index=False))
        out.write("collusion.png", lambda p: plot_collusion(r["summary"], r["training"], p, title))
        if args.learner == "shared":
            out.write("model.zip", lambda p: save_model_atomic(r["model"], p, p.with_name("vecnormalize.pkl")))
        else:
            out.write("rllib", lambda p: r["model"].save_to_path(str(p.resolve())))
        out.write_json("run.json", r["meta"])
    cols = ["policy", "local_price_eur_per_mwh_mean", "local_price_eur_per_mwh_ci95",
            "local_truthful_price_eur_per_mwh_mean", "local_lerner_mean", "local_uplift_eur_per_mwh_mean",
            "local_uplift_eur_per_mwh_ci95", "local_hhi_activated_mean", "local_rsi_mean", "markup_eur_per_mwh_mean",
            "profit_eur_mean"]
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(r["summary"][cols].round(3).to_string(index=False))
    print(f"-> {args.out} ({r['meta']['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
