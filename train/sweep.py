"""``smartnet-gym sweep``: one training config over presets × schemes × seeds as a Ray Tune sweep.

Every trial trains the config (``env_kwargs.scenario`` and ``scheme`` and the seed replaced) with
:func:`train.train.train`, then evaluates its final model against baselines on held-out test days
(:func:`train.evaluate.evaluate`, the same episodes for every policy). The sweep file::

    name: bidders-real-system
    train: ../train/bidding_real.yaml        # a training config, relative to this file
    scenarios: [italy-like, spain-like]      # default: the training config's
    schemes: [CS_A, CS_B, CS_C, CS_D, CS_E]  # default: the training config's
    seeds: [0, 1, 2]
    evaluate: {episodes: 8, baselines: [truthful, optimal]}

Trials run on Ray Tune: an embedded local Ray instance with every core by default, a cluster
with ``--address`` (then ``--out`` must be a file system every node sees, as Tune's
``storage_path`` requires). Output folder:

| path | content |
|---|---|
| ``runs/TRIAL/`` | the trial's run (``model.zip``, ``vecnormalize.pkl``, ``tb/`` TensorBoard, ``train.json``, ``config.yaml``) and ``evaluation.csv`` (its episodes) |
| ``tune/`` | Ray Tune's experiment folder (per-trial ``result.json``, ``params.json``) |
| ``episodes.csv`` | every trial's evaluation episodes: ``scenario``, ``scheme``, ``train_seed``, ``policy`` (``agent`` = the trained model), ``episode``, CBA sums and paired differences |
| ``results.csv`` | one row per scenario × scheme × policy: ``n`` and ``<metric>_mean``, ``<metric>_ci95`` (95 % Student-t half-width), see :data:`RESULT_METRICS` |
| ``results.md``, ``results.png`` | the agent's rows as a table and a figure |

A trial whose ``evaluation.csv`` exists is finished and never redone; an interrupted trial is
trained again from scratch. Trials that still fail after ``--retries`` are listed in
``failures.csv`` (exit code 1).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from smartnet_gym.cli_types import int_at_least
from smartnet_gym.config import SCHEMES, read_yaml_mapping
from smartnet_gym.errors import ConfigError
from smartnet_gym.plotting import agg_pyplot
from smartnet_gym.results import atomic_write_text
from smartnet_gym.study.store import atomic_write
from train.evaluate import add_paired
from train.metrics import mean_ci95

AGENT = "agent"
#: what a result row reports: (column, meaning); each as ``<column>_mean`` and ``<column>_ci95``
RESULT_METRICS = (
    ("reward", "episode reward"),
    ("total_cost_eur", "system cost of the episode (market + aFRR + unwanted + unresolved + ICT)"),
    ("total_cost_vs_truthful_eur", "system cost increase over everyone bidding truthfully, same episode"),
    ("profit_eur", "the provider's profit (payment − true cost of what it delivered)"),
    ("profit_vs_truthful_eur", "its profit over bidding truthfully, same episode"),
    ("lerner", "(price obtained − true cost) / price obtained, episodes with a payment"),
    ("price_eur_per_mwh", "price obtained: payment / delivered energy"),
    ("best_response_share", "agent's mean profit / the best response's (paired bootstrap 95 % interval)"),
    ("regret_eur", "Dispatch: policy − optimal cost on the common yardstick"),
    ("gap_closed", "Dispatch: (reward − random's) / (optimal's − random's) (paired bootstrap interval)"),
    ("d_violations", "distribution violations (element-steps)"),
    ("t_violations", "transmission violations (element-steps)"),
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class EvaluateSpec(_Model):
    """How each trial's model is evaluated."""

    episodes: int = Field(6, ge=1, le=1000, description="test episodes per trial (the same for every policy)")
    baselines: tuple[str, ...] = Field(("truthful", "optimal"), description="baselines played on the same episodes")


class SweepConfig(_Model):
    """A sweep: one training config over scenarios × schemes × seeds."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$", description="sweep name")
    train: str = Field(..., description="training config YAML, relative to the sweep file")
    scenarios: tuple[str, ...] | None = Field(None, min_length=1, description="presets or scenario files")
    schemes: tuple[str, ...] | None = Field(None, min_length=1, description="coordination schemes")
    seeds: tuple[int, ...] = Field((0,), min_length=1, description="training seeds")
    evaluate: EvaluateSpec = EvaluateSpec()
    retries: int = Field(1, ge=0, le=10, description="retries of a failing trial")

    @field_validator("schemes")
    @classmethod
    def _schemes(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is None:
            return v
        up = tuple(s.strip().upper() for s in v)
        bad = [s for s in up if s not in SCHEMES]
        if bad:
            raise ValueError(f"unknown scheme {bad[0]!r}; allowed: {', '.join(SCHEMES)}")
        if len(set(up)) != len(up):
            raise ValueError("each scheme at most once")
        return up

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if min(v) < 0 or len(set(v)) != len(v):
            raise ValueError("seeds must be distinct and >= 0")
        return v


@dataclass(frozen=True)
class Trial:
    """One training run of the sweep."""

    name: str
    scenario: str | None      # None: the training config's
    scheme: str | None        # None: the training config's
    seed: int
    label: str                # the scenario's name in the tables


def load_sweep(path: str | Path) -> tuple[SweepConfig, dict[str, Any], list[Trial]]:
    """The sweep, its training config (a validated mapping) and its trials; every name checked."""
    from baselines import BASELINES
    from train.config import load_train_config, validate_train_config

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--config {str(path)!r}: no such file")
    try:
        cfg = SweepConfig(**read_yaml_mapping(p, f"--config {str(path)!r}"))
    except ValidationError as e:
        err = e.errors()[0]
        raise ConfigError(f"sweep {p.name}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    bad = [b for b in cfg.evaluate.baselines if b not in BASELINES]
    if bad:
        raise ConfigError(f"evaluate.baselines: unknown {bad[0]!r}; allowed: {', '.join(BASELINES)}")
    base = load_train_config(p.parent / cfg.train).model_dump(mode="json")
    trials = []
    for scenario in cfg.scenarios or (None,):
        scen = scenario
        if scenario is not None and (p.parent / scenario).is_file():
            scen = str((p.parent / scenario).resolve())
        for scheme in cfg.schemes or (None,):
            for seed in cfg.seeds:
                label = Path(scenario or base["env_kwargs"].get("scenario", "default")).stem
                t = Trial(f"{label}_{scheme or 'default'}_s{seed}", scen, scheme, seed, label)
                validate_train_config(trial_config(base, t), f"trial {t.name}")   # env kwargs checked
                trials.append(t)
    return cfg, base, trials


def trial_config(base: dict[str, Any], t: Trial) -> dict[str, Any]:
    """The training config mapping of trial ``t``: its name, seed, scenario and scheme."""
    kw = dict(base["env_kwargs"])
    if t.scenario is not None:
        kw["scenario"] = t.scenario
    if t.scheme is not None:
        kw["scheme"] = t.scheme
    return {**base, "name": t.name, "seed": t.seed, "env_kwargs": kw, "progress_bar": False}


def evaluation_file(out: Path, t: Trial) -> Path:
    return out / "runs" / t.name / "evaluation.csv"


def run_trial(trial: dict[str, Any], base: dict[str, Any], out: str, evaluate_spec: dict[str, Any]) -> dict[str, Any]:
    """Train one trial and evaluate its model; writes ``runs/NAME/evaluation.csv`` last (atomically)."""
    from train.config import validate_train_config
    from train.evaluate import evaluate, resolve_policy
    from train.train import train

    t = Trial(**trial)
    runs = Path(out) / "runs"
    cfg = validate_train_config(trial_config(base, t), f"trial {t.name}")
    res = train(cfg, runs_dir=runs, force=True)          # an unfinished trial starts again
    spec = EvaluateSpec(**evaluate_spec)
    run_dir = str(runs / t.name)
    ev = evaluate(cfg.env_id, [run_dir, *spec.baselines], spec.episodes,
                  schemes=[t.scheme] if t.scheme else None)
    df = ev.episodes
    df["policy"] = df["policy"].replace({resolve_policy(run_dir).label: AGENT})
    df.insert(0, "train_seed", t.seed)
    df.insert(0, "scenario", t.label)
    df.insert(0, "trial", t.name)
    atomic_write_text(evaluation_file(Path(out), t), df.to_csv(index=False))
    return {"trial": t.name, "steps_per_s": res.steps_per_s, "train_s": res.wall_s,
            "evaluation_s": ev.meta["seconds"]}


def _tune_trial(config: dict[str, Any]) -> None:
    """Ray Tune function trainable: one trial, its summary (and the Ray node that ran it) reported to Tune."""
    import ray
    from ray import tune

    summary = run_trial(config["trial"], config["base"], config["out"], config["evaluate"])
    tune.report({**summary, "node": ray.get_runtime_context().get_node_id()})


def run_sweep(path: str | Path, out: str | Path, address: str | None = None, workers: int | None = None,
              in_process: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """Run the unfinished trials of the sweep at ``path`` into ``out``; the results table and the
    names of the trials that failed."""
    cfg, base, trials = load_sweep(path)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "sweep.json", json.dumps({"sweep": cfg.model_dump(mode="json"), "train": base,
                                                      "trials": [asdict(t) for t in trials]}, indent=2))
    todo = [t for t in trials if not evaluation_file(out, t).is_file()]
    ev = cfg.evaluate.model_dump(mode="json")
    if todo and in_process:
        for t in todo:
            run_trial(asdict(t), base, str(out), ev)
    elif todo:
        _tune(todo, base, out, ev, cfg.retries, address, workers)
    failed = [t.name for t in trials if not evaluation_file(out, t).is_file()]
    if failed:
        atomic_write_text(out / "failures.csv", pd.DataFrame({"trial": failed}).to_csv(index=False))
    elif (out / "failures.csv").is_file():
        os.remove(out / "failures.csv")
    episodes = pd.concat([pd.read_csv(evaluation_file(out, t)) for t in trials if t.name not in failed],
                         ignore_index=True) if len(failed) < len(trials) else pd.DataFrame()
    table = results_table(episodes) if len(episodes) else pd.DataFrame()
    write_results(out, episodes, table)
    return table, failed


def _tune(todo: Sequence[Trial], base: dict[str, Any], out: Path, ev: dict[str, Any], retries: int,
          address: str | None, workers: int | None) -> None:
    from ray import tune

    from smartnet_gym.study.engines import connect_ray

    ray, started = connect_ray(address, workers)
    try:
        tuner = tune.Tuner(
            tune.with_resources(_tune_trial, {"cpu": 1}),
            param_space={"trial": tune.grid_search([asdict(t) for t in todo]), "base": base, "out": str(out),
                         "evaluate": ev},
            tune_config=tune.TuneConfig(max_concurrent_trials=workers,
                                        trial_name_creator=lambda tr: tr.config["trial"]["name"],
                                        trial_dirname_creator=lambda tr: tr.config["trial"]["name"]),
            run_config=tune.RunConfig(name="tune", storage_path=str(out), verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=retries)))
        tuner.fit()
    finally:
        if started:
            ray.shutdown()


def _bootstrap_ratio(num: np.ndarray, den: np.ndarray, reps: int = 2000) -> tuple[float, float]:
    """mean(num) / mean(den) and the half-width of its paired bootstrap 95 % interval (seeded)."""
    if not len(num) or abs(den.mean()) < 1e-12:
        return float("nan"), float("nan")
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(num), (reps, len(num)))
    d = den[idx].mean(axis=1)
    r = np.divide(num[idx].mean(axis=1), d, out=np.full(reps, np.nan), where=np.abs(d) > 1e-12)
    lo, hi = np.nanpercentile(r, [2.5, 97.5])
    return float(num.mean() / den.mean()), float((hi - lo) / 2)


def results_table(episodes: pd.DataFrame) -> pd.DataFrame:
    """One row per scenario × scheme × policy, :data:`RESULT_METRICS` with 95 % intervals.

    The agent's rows pool every (training seed, test episode); a baseline, the same for every
    seed, counts each test episode once. Paired metrics compare policies on the same episode."""
    df = episodes.copy()
    if "provider_payment_eur" in df:
        pay, energy = df["provider_payment_eur"], df["provider_delivered_mwh"]
        df["lerner"] = np.where(pay > 1e-9, df["profit_eur"] / pay.where(pay > 1e-9), np.nan)
        df["price_eur_per_mwh"] = np.where(energy > 1e-9, pay / energy.where(energy > 1e-9), np.nan)
    df = add_paired(df, (("total_cost_vs_truthful_eur", "truthful", "total_cost_eur", 1.0),), by=("trial", "episode"))
    rows = []
    for (scenario, scheme, policy), g in df.groupby(["scenario", "scheme", "policy"], sort=False):
        if policy != AGENT:
            g = g.drop_duplicates("episode")
        row: dict[str, Any] = {"scenario": scenario, "scheme": scheme, "policy": policy, "n": len(g)}
        for col, _ in RESULT_METRICS:
            if col in g:
                row[f"{col}_mean"], row[f"{col}_ci95"] = mean_ci95(g[col].to_numpy())
        pair = df[(df["scenario"] == scenario) & (df["scheme"] == scheme)].pivot_table(
            index=["trial", "episode"], columns="policy", values="reward" if "regret_eur" in df else "profit_eur",
            aggfunc="first") if policy == AGENT else None
        if pair is not None and "profit_eur" in df and "optimal" in pair:
            row["best_response_share_mean"], row["best_response_share_ci95"] = _bootstrap_ratio(
                pair[AGENT].to_numpy(), pair["optimal"].to_numpy())
        if pair is not None and "regret_eur" in df and {"optimal", "random"} <= set(pair):
            row["gap_closed_mean"], row["gap_closed_ci95"] = _bootstrap_ratio(
                (pair[AGENT] - pair["random"]).to_numpy(), (pair["optimal"] - pair["random"]).to_numpy())
        rows.append(row)
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame) -> str:
    """The table's rows as Markdown, ``mean ± ci95`` per reported metric."""
    cols = [c for c, _ in RESULT_METRICS if f"{c}_mean" in table and table[f"{c}_mean"].notna().any()]
    head = "| scenario | scheme | policy | n | " + " | ".join(cols) + " |"
    lines = [head, "|" + "---|" * 4 + "---:|" * len(cols)]
    for _, r in table.iterrows():
        cells = []
        for c in cols:
            m, h = r.get(f"{c}_mean"), r.get(f"{c}_ci95")
            cells.append("" if pd.isna(m) else (f"{m:,.3g}" if pd.isna(h) else f"{m:,.4g} ± {h:,.2g}"))
        lines.append(f"| {r['scenario']} | {r['scheme']} | {r['policy']} | {r['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_results(out: Path, episodes: pd.DataFrame, table: pd.DataFrame) -> None:
    """``episodes.csv``, ``results.csv``, ``results.md`` and ``results.png`` (atomically)."""
    atomic_write_text(out / "episodes.csv", episodes.to_csv(index=False))
    atomic_write_text(out / "results.csv", table.to_csv(index=False))
    atomic_write_text(out / "results.md", markdown(table) if len(table) else "no finished trial\n")
    if len(table):
        atomic_write(out / "results.png", lambda p: plot_results(table, p))


def plot_results(table: pd.DataFrame, path: Path) -> None:
    """Per scenario, the agent's key paired metrics by scheme with 95 % intervals."""
    plt = agg_pyplot()
    agent = table[table["policy"] == AGENT]
    metrics = [m for m in ("profit_vs_truthful_eur", "total_cost_vs_truthful_eur", "gap_closed", "regret_eur")
               if f"{m}_mean" in agent and agent[f"{m}_mean"].notna().any()][:2] or ["reward"]
    scenarios = list(dict.fromkeys(agent["scenario"]))
    fig, axes = plt.subplots(len(metrics), 1, figsize=(7, 3 * len(metrics)), squeeze=False)
    for ax, m in zip(axes[:, 0], metrics, strict=True):
        width = 0.8 / max(len(scenarios), 1)
        for i, s in enumerate(scenarios):
            g = agent[agent["scenario"] == s]
            x = np.arange(len(g)) + i * width
            ax.bar(x, g[f"{m}_mean"], width, yerr=g[f"{m}_ci95"].fillna(0), capsize=3, label=s)
            ax.set_xticks(np.arange(len(g)) + width * (len(scenarios) - 1) / 2, g["scheme"])
        ax.axhline(0, color="k", lw=0.5)
        ax.set_ylabel(m)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def add_sweep_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``sweep`` subcommand to ``sub`` (the CLI's subparsers)."""
    p = sub.add_parser("sweep", help="train one config over presets x schemes x seeds on Ray Tune, then evaluate",
                       description="Train one config over presets x schemes x seeds as a Ray Tune sweep, evaluate "
                                   "each model against baselines on held-out test days, and build the results "
                                   "table (see train/sweep.py for the files).")
    p.add_argument("--config", required=True, help="sweep YAML (configs/sweeps/NAME.yaml)")
    p.add_argument("--out", required=True, help="output folder (a rerun continues it)")
    p.add_argument("--address", help="Ray cluster to join ('auto' or host:port); default: embedded local Ray")
    p.add_argument("--workers", type=int_at_least("--workers", 1), help="trials at a time (default: every CPU)")
    p.add_argument("--in-process", action="store_true", help="run the trials one by one in this process, no Ray")
    return p


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run ``smartnet-gym sweep``; prints the agent's rows and where everything went."""
    table, failed = run_sweep(args.config, args.out, args.address, args.workers, args.in_process)
    if len(table):
        print(markdown(table[table["policy"] == AGENT]))
    print(f"sweep -> {args.out} ({len(failed)} failed trial(s){': ' + ', '.join(failed) if failed else ''})")
    return 1 if failed else 0


__all__ = ["RESULT_METRICS", "SweepConfig", "Trial", "add_sweep_parser", "cmd_sweep", "load_sweep",
           "results_table", "run_sweep", "run_trial"]
