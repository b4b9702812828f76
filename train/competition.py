"""``python -m train.competition``: does a learned bidder's markup fall with more competitors?

For each n in ``--competitors`` (default 1..5) PPO is trained as provider 0 of the local market of
``smartnet/Bidding-v0`` with ``competitors=n`` (rivals truthful; :mod:`smartnet_gym.envs.local_market`,
knobs of :class:`~smartnet_gym.experiments.market_power.LocalMarketConfig`) with the config
``--config`` (default ``configs/train/competition_ppo.yaml``), then three policies play the same
held-out *test* days (:func:`train.episodes.plan_episodes`):

| policy | what it bids |
|---|---|
| ``ppo`` | the trained model, deterministic |
| ``best_response`` | per step, the markup of :func:`~smartnet_gym.experiments.market_power.best_response` (the sweep's grid search, rivals' costs included) on that step's local market, on every period |
| ``truthful`` | its true cost |

Runs go to ``RUNS_DIR/<config name>_n<n>/`` (``smartnet-gym train``'s layout); an existing
``model.zip`` is reused unless ``--retrain``. Outputs (written atomically into ``--out``):

| file | content |
|---|---|
| ``steps.csv`` | one row per n × policy × episode × step: reward, profit, the agent's period-0 markup and the local indicators of period 0 (``local_*``) |
| ``markup_vs_n.csv`` | one row per n × policy: episode means ± 95 % CI of markup, analytic best-response markup, local price, truthful price, Lerner, uplift, HHI, PSI, RSI (over steps with a need) and profit per episode; ``profit_share_of_best_response`` |
| ``markup_vs_n.png`` | markup, local price, Lerner index and profit vs n per policy (95 % CI) |
| ``run.json`` | config, runs and their training time, episode plan, seconds |

The analytic best response (equal costs, inelastic need, as the defaults): the cap where
provider 0 is pivotal (PSI = 1), its cost where it is not.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from smartnet_gym.errors import ConfigError
from smartnet_gym.experiments.market_power import LocalMarketConfig, best_response, markup_grid
from smartnet_gym.results import OutputDir
from train.config import TrainConfig, load_train_config, validate_train_config
from train.episodes import EpisodeSpec, plan_episodes
from train.metrics import mean_ci95

DEFAULT_CONFIG = "configs/train/competition_ppo.yaml"
POLICIES = ("ppo", "best_response", "truthful")
#: per-step indicators averaged over the steps with a need (``local_`` info keys, period 0)
LOCAL_KEYS = ("price_eur_per_mwh", "truthful_price_eur_per_mwh", "lerner", "uplift_eur_per_mwh", "hhi_offered",
              "hhi_activated", "psi", "rsi", "need_mw")

Act = Callable[[Any, np.ndarray], np.ndarray]


# ------------------------------------------------------------------------ policies
def truthful_act(env: Any, obs: np.ndarray) -> np.ndarray:
    """Every offer at its true cost (a = −1)."""
    return -np.ones(env.action_space.shape, np.float32)


def best_response_act(env: Any, obs: np.ndarray) -> np.ndarray:
    """The grid-search best response of provider 0 on this step's local market (one markup, every period)."""
    comp = env.unwrapped.competition
    cap, cost = comp.cap, float(comp.costs[0])
    br = best_response(env.unwrapped.core.scheme(env.unwrapped.core.scheme_name), [comp.current()],
                       markup_grid(comp.lm, cap, comp.n), cap)
    a = 2.0 * br.markup_eur_per_mwh / (cap - cost) - 1.0
    return np.full(env.action_space.shape, np.clip(a, -1.0, 1.0), np.float32)


def model_act(run_dir: str | Path) -> Act:
    """The trained model of ``run_dir`` (with its VecNormalize observation statistics), deterministic."""
    from train.evaluate import load_model_policy, resolve_policy

    policy = load_model_policy(resolve_policy(str(run_dir)))
    return lambda env, obs: policy.predict(obs, deterministic=True)[0]


# ------------------------------------------------------------------------ episodes
def nan_if_none(v: float | None) -> float:
    """An info value as a float (None, the env's "not defined", → NaN)."""
    return float("nan") if v is None else float(v)


def play(env: Any, act: Act, spec: EpisodeSpec) -> list[dict[str, Any]]:
    """One planned episode; a row per step with reward, profit, markup and the ``local_*`` indicators."""
    obs, _ = env.reset(seed=spec.seed, options={"start_step": spec.start_step})
    rows, k = [], 0
    while True:
        obs, reward, terminated, truncated, info = env.step(act(env, obs))
        rows.append({"step": k, "reward": float(reward), "profit_eur": info["profit_eur"],
                     "markup_eur_per_mwh": info["markup_eur_per_mwh"],
                     **{f"local_{key}": nan_if_none(info[f"local_{key}"]) for key in LOCAL_KEYS}})
        k += 1
        if terminated or truncated:
            return rows


def analytic_markup(df: pd.DataFrame, cap: float, cost: float, equal_costs_inelastic: bool) -> pd.Series:
    """Per step: cap − cost where provider 0 is pivotal, else 0 (NaN unless equal costs and an inelastic need)."""
    if not equal_costs_inelastic:
        return pd.Series(np.nan, index=df.index)
    return (cap - cost) * df["local_psi"].astype(float)


def episode_means(steps: pd.DataFrame, keys: Sequence[str], group: Sequence[str]) -> pd.DataFrame:
    """Per ``group`` × episode: mean of ``keys`` over the steps with a need, and the episode's profit."""
    need = steps[steps["local_need_mw"].astype(float) > 0]
    means = need.groupby([*group, "episode"])[list(keys)].mean()
    profit = steps.groupby([*group, "episode"])["profit_eur"].sum()
    return means.join(profit, how="right").reset_index()


def summarize(episodes: pd.DataFrame, keys: Sequence[str], group: Sequence[str]) -> pd.DataFrame:
    """Per ``group``: episodes and ``<key>_mean``/``<key>_ci95`` (95 % Student-t over episodes)."""
    rows = []
    for gk, g in episodes.groupby(list(group), sort=False):
        row: dict[str, Any] = dict(zip(group, gk if isinstance(gk, tuple) else (gk,), strict=True))
        row["episodes"] = len(g)
        for k in [*keys, "profit_eur"]:
            row[f"{k}_mean"], row[f"{k}_ci95"] = mean_ci95(g[k].to_numpy(dtype=float))
        rows.append(row)
    return pd.DataFrame(rows)


def _ci(summary: pd.DataFrame, key: str) -> np.ndarray:
    return np.nan_to_num(summary[f"{key}_ci95"].to_numpy(dtype=float))


def plot_markup_vs_n(summary: pd.DataFrame, path: str | Path, title: str = "") -> None:
    """Markup, local price, Lerner index and profit per episode vs n, per policy, with 95 % CI."""
    from smartnet_gym.plotting import agg_pyplot

    plt = agg_pyplot()
    fig, ax = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
    panels = [("markup_eur_per_mwh", "period-0 markup bid − cost [EUR/MWh]"),
              ("local_price_eur_per_mwh", "local price [EUR/MWh]"), ("local_lerner", "Lerner index [-]"),
              ("profit_eur", "profit of provider 0 [EUR/episode]")]
    for a, (key, label) in zip(ax.flat, panels, strict=True):
        for k, (policy, s) in enumerate(summary.groupby("policy", sort=False)):
            a.errorbar(s["n_competitors"] + 0.05 * (k - 1), s[f"{key}_mean"], yerr=_ci(s, key), marker="o", ms=4,
                       capsize=3, label=policy)
        if key == "markup_eur_per_mwh":
            first = summary[summary["policy"] == summary["policy"].iloc[0]]
            a.plot(first["n_competitors"], first["analytic_markup_eur_per_mwh_mean"], "k:", lw=1.5,
                   label="analytic best response")
        a.set_ylabel(label)
        a.grid(alpha=0.3)
    for a in ax[1]:
        a.set_xlabel("competitors in the local market n")
    ax[0, 0].legend(fontsize=8)
    fig.suptitle(f"Learned bidding vs competition (held-out days, mean ± 95 % CI){' — ' + title if title else ''}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)


# ------------------------------------------------------------------------ the experiment
def run_config(base: TrainConfig, n: int, timesteps: int | None) -> TrainConfig:
    """The training config of the run with ``n`` competitors (name ``<base>_n<n>``)."""
    data = base.model_dump(mode="json")
    data["name"] = f"{base.name}_n{n}"
    data["env_kwargs"] = {**base.env_kwargs, "competitors": n}
    if timesteps is not None:
        data["total_timesteps"] = timesteps
    return validate_train_config(data, f"run {data['name']}")


def train_or_reuse(cfg: TrainConfig, runs_dir: Path, retrain: bool) -> dict[str, Any]:
    """Train ``cfg`` into ``runs_dir`` unless its model exists (and not ``retrain``); its train.json."""
    from train.train import train

    run = runs_dir / cfg.name
    if retrain or not (run / "model.zip").is_file():
        train(cfg, runs_dir=runs_dir, force=True)
    return json.loads((run / "train.json").read_text())


def evaluate_n(cfg: TrainConfig, run_dir: Path | None, episodes: int, seed: int) -> tuple[pd.DataFrame, list]:
    """Step rows of every policy on the same ``episodes`` test episodes (``ppo`` only with ``run_dir``)."""
    import gymnasium as gym

    import smartnet_gym  # noqa: F401  (registers the ids)

    env = gym.make(cfg.env_id, **cfg.env_kwargs)
    plan = plan_episodes(env, "test", episodes, seed, cfg.days.first, cfg.days.last)
    acts: dict[str, Act] = {"best_response": best_response_act, "truthful": truthful_act}
    if run_dir is not None:
        acts = {"ppo": model_act(run_dir), **acts}
    rows = []
    for policy, act in acts.items():
        for i, spec in enumerate(plan):
            for r in play(env, act, spec):
                rows.append({"policy": policy, "episode": i, "day": spec.day, **r})
    env.close()
    return pd.DataFrame(rows), plan


def check_competitors(base: TrainConfig, competitors: Sequence[int]) -> LocalMarketConfig:
    """The base config's local market; a ConfigError if some n is outside 1..max_competitors."""
    from smartnet_gym.envs.local_market import as_local_market

    lm = as_local_market(base.env_kwargs.get("local_market"))
    bad = [n for n in competitors if not 1 <= n <= lm.max_competitors]
    if bad or not competitors:
        raise ConfigError(f"--competitors: each n must be in 1..{lm.max_competitors} (local_market.max_competitors) "
                          f"(got {list(competitors)})")
    return lm


def competition_experiment(base: TrainConfig, competitors: Sequence[int], runs_dir: Path, episodes: int,
                           seed: int = 0, timesteps: int | None = None, retrain: bool = False,
                           progress: Callable[[str], None] | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Train (or reuse) and evaluate one run per n; (steps, summary, metadata)."""
    lm = check_competitors(base, competitors)
    frames, meta_runs, plan = [], {}, []
    for n in competitors:
        cfg = run_config(base, n, timesteps)
        meta_runs[n] = train_or_reuse(cfg, runs_dir, retrain)
        if progress:
            progress(f"n={n}: trained {meta_runs[n]['num_timesteps']} steps in {meta_runs[n]['wall_s']:.0f} s")
        df, plan = evaluate_n(cfg, runs_dir / cfg.name, episodes, seed)
        frames.append(df.assign(n_competitors=n))
        if progress:
            progress(f"n={n}: evaluated {episodes} episodes x {df['policy'].nunique()} policies")
    steps = pd.concat(frames, ignore_index=True)
    steps = steps[["n_competitors", *[c for c in steps.columns if c != "n_competitors"]]]
    from smartnet_gym.config import load_scenario

    cap = load_scenario(base.env_kwargs.get("scenario", "spain-like")).market.price_cap_eur_per_mwh
    exact = lm.cost_step_eur_per_mwh == 0 and lm.reservation_price_eur_per_mwh is None
    steps["analytic_markup_eur_per_mwh"] = analytic_markup(steps, cap, float(lm.provider_costs()[0]), exact)
    keys = ["markup_eur_per_mwh", "analytic_markup_eur_per_mwh", *[f"local_{k}" for k in LOCAL_KEYS]]
    summary = summarize(episode_means(steps, keys, ["n_competitors", "policy"]), keys, ["n_competitors", "policy"])
    br = summary[summary["policy"] == "best_response"].set_index("n_competitors")["profit_eur_mean"]
    ratio = summary["profit_eur_mean"] / summary["n_competitors"].map(br)
    summary["profit_share_of_best_response"] = ratio.where(summary["n_competitors"].map(br).abs() > 1e-9)
    meta = {"config": base.model_dump(mode="json"), "competitors": list(competitors), "runs": meta_runs,
            "episodes": [asdict(s) for s in plan], "seed": seed, "price_cap_eur_per_mwh": cap}
    return steps, summary, meta


# ------------------------------------------------------------------------ command line
def parse_int_list(text: str, flag: str) -> list[int]:
    """``"1,2,3"`` → [1, 2, 3]; a ConfigError naming ``flag`` otherwise."""
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{flag}: must be a comma list of integers (got {text!r})") from None
    if not out:
        raise ConfigError(f"{flag}: give at least one integer (got {text!r})")
    return out


def at_least(flag: str, value: int, low: int) -> None:
    """A ConfigError naming ``flag`` unless ``value >= low``."""
    if value < low:
        raise ConfigError(f"{flag}: must be >= {low} (got {value})")


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m train.competition``."""
    p = argparse.ArgumentParser(prog="python -m train.competition", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="output folder (created; refused if not empty unless --force)")
    p.add_argument("--config", default=DEFAULT_CONFIG, help=f"base training config (default {DEFAULT_CONFIG})")
    p.add_argument("--competitors", default="1,2,3,4,5", help="comma list of n (default 1,2,3,4,5)")
    p.add_argument("--timesteps", type=int, help="override total_timesteps of every run")
    p.add_argument("--episodes", type=int, default=9, help="held-out test episodes per n and policy (default 9)")
    p.add_argument("--seed", type=int, default=0, help="seed of the episode plan (default 0)")
    p.add_argument("--runs-dir", default="runs", help="parent folder of the training runs (default runs)")
    p.add_argument("--retrain", action="store_true", help="train even if a run's model.zip exists")
    p.add_argument("--force", action="store_true", help="overwrite a non-empty --out")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the experiment; user errors exit with code 2 and a one-line message naming the field."""
    args = build_parser().parse_args(argv)
    try:
        at_least("--episodes", args.episodes, 1)
        if args.timesteps is not None:
            at_least("--timesteps", args.timesteps, 1)
        competitors = parse_int_list(args.competitors, "--competitors")
        base = load_train_config(args.config)
        check_competitors(base, competitors)
        out = OutputDir(args.out, force=args.force)
    except ConfigError as e:
        print(f"error: {e}")
        return 2
    t0 = time.perf_counter()
    steps, summary, meta = competition_experiment(base, competitors, Path(args.runs_dir), args.episodes,
                                                  args.seed, args.timesteps, args.retrain,
                                                  progress=lambda m: print(m, flush=True))
    meta["seconds"] = time.perf_counter() - t0
    with out:   # committed together, or nothing is left behind
        out.write("steps.csv", lambda p: steps.to_csv(p, index=False))
        out.write("markup_vs_n.csv", lambda p: summary.to_csv(p, index=False))
        out.write("markup_vs_n.png", lambda p: plot_markup_vs_n(summary, p, base.env_kwargs.get("scenario", "")))
        out.write_json("run.json", meta)
    cols = ["n_competitors", "policy", "markup_eur_per_mwh_mean", "analytic_markup_eur_per_mwh_mean",
            "local_price_eur_per_mwh_mean", "local_lerner_mean", "local_psi_mean", "profit_eur_mean",
            "profit_share_of_best_response"]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary[cols].round(3).to_string(index=False))
    print(f"-> {args.out} ({meta['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
