"""``smartnet-gym evaluate``: agents and baselines on the same held-out episodes, mean ± 95 % CI.

Every policy (a trained run or model ``.zip``, or a baseline name from :mod:`baselines`) plays
the same planned episodes (:func:`train.episodes.plan_episodes`: N days of the *test* split,
spread over the run's day range, env seed ``seed + i``), under each scheme of ``--schemes``.
The Dispatch baselines that choose every bid's activation play the env with
``action_mode="bid"`` when the agent's action is compact: the same episodes and dynamics.
The operator envs' yardsticks are switched on (``regret_info`` / ``bound_info``). Output folder:

| file | content |
|---|---|
| ``episodes.csv`` | one row per scheme × policy × episode: ``episode``, ``reward`` (sum), every CBA component summed over the episode (``total_cost_eur``, ``market_cost_eur``, …; see :mod:`train.metrics`) and the env's own sums (``regret_eur``, ``profit_eur``, …), plus paired differences on the same episode: ``reward_vs_truthful``, ``profit_vs_truthful_eur``, ``reward_gap_to_optimal``, ``total_cost_vs_optimal_eur`` (when truthful / optimal are among the policies) |
| ``summary.csv`` | one row per scheme × policy: ``episodes`` and, per metric, ``<metric>_mean`` and ``<metric>_ci95`` (half-width of the two-sided Student-t 95 % interval over episodes) |
| ``summary.md`` | the main metrics as a Markdown table (``mean ± ci95``) |
| ``evaluate.png`` | mean episode reward and the env's key metric (Dispatch: regret, Bidding: profit, DSOLimits: total cost) with 95 % CI, per policy and scheme |
| ``run.json`` | env id and kwargs, policies and their sources, the episode plan, seconds |

Wire into ``smartnet_gym/cli.py``: ``add_evaluate_parser(sub)`` and ``COMMANDS["evaluate"] = cmd_evaluate``.
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from smartnet_gym.cli_types import int_at_least
from smartnet_gym.errors import ConfigError, SmartnetError
from train.config import (
    FieldError,
    TrainConfig,
    algo_class,
    check_env_kwargs,
    env_parameters,
    load_train_config,
)
from train.episodes import SPLITS, EpisodeSpec, plan_episodes
from train.metrics import SUM_KEYS, EpisodeAccumulator, mean_ci95

#: paired differences to a reference policy on the same episode: (column, reference, metric, sign)
PAIRED = (("reward_vs_truthful", "truthful", "reward", 1.0),
          ("profit_vs_truthful_eur", "truthful", "profit_eur", 1.0),
          ("reward_gap_to_optimal", "optimal", "reward", -1.0),
          ("total_cost_vs_optimal_eur", "optimal", "total_cost_eur", 1.0))
#: second panel of the figure, per env id
KEY_METRIC = {"smartnet/Dispatch-v0": "regret_eur", "smartnet/Bidding-v0": "profit_eur",
              "smartnet/DSOLimits-v0": "total_cost_eur"}
#: metrics of the printed table and ``summary.md``
TABLE_METRICS = ("reward", "total_cost_eur", "regret_eur", "reward_gap_to_optimal", "profit_eur",
                 "profit_vs_truthful_eur")
#: env arguments that switch the yardstick infos on
YARDSTICK_KWARGS = ("regret_info", "bound_info")


class ModelPolicy:
    """A trained SB3 model behind the baselines' ``predict``, with its VecNormalize observation scaling."""

    def __init__(self, model: Any, obs_normalizer: Any | None, label: str):
        self.model, self.obs_normalizer, self.name = model, obs_normalizer, label

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        obs = observation
        if self.obs_normalizer is not None and self.obs_normalizer.norm_obs:
            obs = self.obs_normalizer.normalize_obs(np.asarray(observation))
        return self.model.predict(obs, state=state, episode_start=episode_start, deterministic=deterministic)


@dataclass
class PolicySource:
    """Where a policy comes from: a baseline name, or a model file and its run's config."""

    label: str
    baseline: str | None = None
    model_path: str | None = None
    run_config: TrainConfig | None = field(default=None, repr=False)


def _model_file(path: Path) -> tuple[Path, Path]:
    """(model .zip, run folder) of a run folder or a model/checkpoint file."""
    if path.is_dir():
        return path / "model.zip", path
    run = path.parent if (path.parent / "config.yaml").is_file() else path.parent.parent
    return path, run


def resolve_policy(spec: str) -> PolicySource:
    """A baseline name, or a path to a run folder / model ``.zip`` (its run's ``config.yaml`` beside it)."""
    from baselines import BASELINES

    key = spec.strip().lower().replace("-", "_")
    if key in BASELINES:
        return PolicySource(key, baseline=key)
    path = Path(spec)
    if not path.exists():
        from smartnet_gym.errors import did_you_mean

        raise ConfigError(f"--policy {spec!r} is neither a file or run folder nor a baseline: "
                          + did_you_mean(spec, list(BASELINES), "baseline"))
    model, run = _model_file(path)
    if not model.is_file():
        raise ConfigError(f"--policy {spec!r}: no model file {str(model)!r}")
    cfg_path = run / "config.yaml"
    if not cfg_path.is_file():
        raise ConfigError(f"--policy {spec!r}: no config.yaml of its run in {str(run)!r}")
    cfg = load_train_config(cfg_path)
    label = cfg.name if model.name == "model.zip" else f"{cfg.name}:{model.stem}"
    return PolicySource(label, model_path=str(model), run_config=cfg)


def load_model_policy(src: PolicySource) -> ModelPolicy:
    """Load the model of ``src`` (CPU) and its VecNormalize statistics (if saved beside it)."""
    from train.callbacks import companion_path

    model = algo_class(src.run_config.algo).load(src.model_path, device="cpu")
    stats = companion_path(src.model_path)
    norm = None
    if stats.is_file():
        with open(stats, "rb") as f:
            norm = pickle.load(f)   # VecNormalize without its venv: normalize_obs only needs the statistics
    elif src.run_config.normalize.obs:
        raise ConfigError(f"--policy {src.model_path!r}: its VecNormalize statistics {str(stats)!r} are missing")
    return ModelPolicy(model, norm, src.label)


def _check_spaces(policy: ModelPolicy, env: Any) -> None:
    m = policy.model
    for what in ("observation_space", "action_space"):
        if getattr(m, what).shape != getattr(env, what).shape:
            raise ConfigError(f"--policy {policy.name!r}: its {what} {getattr(m, what).shape} does not match the "
                              f"env's {getattr(env, what).shape} (evaluate with the run's env kwargs)")


def run_episode(env: Any, policy: Any, spec: EpisodeSpec) -> dict[str, float]:
    """Play one planned episode; the sums of :class:`~train.metrics.EpisodeAccumulator`."""
    if hasattr(policy, "seed"):
        policy.seed(spec.seed)
    obs, _ = env.reset(seed=spec.seed, options={"start_step": spec.start_step})
    acc = EpisodeAccumulator()
    while True:
        action, _ = policy.predict(obs, deterministic=True)
        obs, reward, terminated, truncated, info = env.step(action)
        acc.add(info, reward)
        if terminated or truncated:
            return acc.result()


def add_paired(df: pd.DataFrame, paired: Sequence[tuple[str, str, str, float]] = PAIRED,
               by: Sequence[str] = ("scheme", "episode")) -> pd.DataFrame:
    """Add the ``paired`` differences (default :data:`PAIRED`) to the reference policy's row with
    the same ``by`` values (the same scheme and episode), where the reference policy ran."""
    df = df.copy()
    by = list(by)
    for col, ref, metric, sign in paired:
        if metric not in df or not (df["policy"] == ref).any():
            continue
        base = df[df["policy"] == ref].set_index(by)[metric]
        other = base.reindex(pd.MultiIndex.from_frame(df[by])).to_numpy()
        df[col] = sign * (df[metric].to_numpy() - other)
    return df


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """One row per scheme × policy: episodes, ``<metric>_mean`` and ``<metric>_ci95`` of every metric."""
    id_cols = {"scheme", "policy", "episode", "day", "start_step", "seed", "steps"}
    metrics = [c for c in df.columns if c not in id_cols and pd.api.types.is_numeric_dtype(df[c])]
    rows = []
    for (scheme, policy), g in df.groupby(["scheme", "policy"], sort=False):
        row: dict[str, Any] = {"scheme": scheme, "policy": policy, "episodes": len(g)}
        for m in metrics:
            row[f"{m}_mean"], row[f"{m}_ci95"] = mean_ci95(g[m].to_numpy())
        rows.append(row)
    return pd.DataFrame(rows)


def plot_evaluation(summary: pd.DataFrame, path: str | Path, key_metric: str, title: str = "") -> None:
    """Two panels, bars with 95 % CI: mean episode reward and ``key_metric``, per policy and scheme."""
    from smartnet_gym.plotting import agg_pyplot

    plt = agg_pyplot()
    panels = [("reward", "episode reward")] + ([(key_metric, key_metric)] if f"{key_metric}_mean" in summary else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    policies = list(dict.fromkeys(summary["policy"]))
    schemes = list(dict.fromkeys(summary["scheme"]))
    width = 0.8 / len(schemes)
    x = np.arange(len(policies))
    for ax, (metric, label) in zip(axes[0], panels, strict=True):
        for k, scheme in enumerate(schemes):
            s = summary[summary["scheme"] == scheme].set_index("policy").reindex(policies)
            err = np.nan_to_num(s[f"{metric}_ci95"].to_numpy(dtype=float))
            ax.bar(x + (k - (len(schemes) - 1) / 2) * width, s[f"{metric}_mean"], width, yerr=err, capsize=3,
                   label=scheme)
        vals = np.abs(summary[f"{metric}_mean"].to_numpy(dtype=float))
        vals = vals[np.isfinite(vals) & (vals > 1e-9)]
        if len(vals) and vals.max() / vals.min() > 100:     # values over decades: linear near 0, log beyond
            ax.set_yscale("symlog", linthresh=vals.max() * 1e-3)
        ax.set_xticks(x, policies, rotation=30, ha="right")
        ax.set_ylabel(label)
        ax.axhline(0, color="k", lw=0.5)
    axes[0][0].set_title(f"mean over episodes ± 95 % CI{' — ' + title if title else ''}", fontsize=9)
    if len(schemes) > 1:
        axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)


def markdown_table(summary: pd.DataFrame, metrics: Sequence[str], digits: int = 4) -> str:
    """A Markdown table of ``summary``: scheme, policy, episodes and ``mean ± ci95`` of ``metrics``."""
    cols = [m for m in metrics if f"{m}_mean" in summary]
    lines = ["| scheme | policy | episodes | " + " | ".join(cols) + " |", "|---" * (3 + len(cols)) + "|"]
    for _, r in summary.iterrows():
        cells = []
        for m in cols:
            mean, half = r[f"{m}_mean"], r[f"{m}_ci95"]
            cells.append("—" if not np.isfinite(mean) else
                         f"{mean:.{digits}g}" + ("" if not np.isfinite(half) else f" ± {half:.2g}"))
        lines.append(f"| {r['scheme']} | {r['policy']} | {r['episodes']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@dataclass
class Evaluation:
    """Result of :func:`evaluate`: per-episode rows, the summary and the run metadata."""

    episodes: pd.DataFrame
    summary: pd.DataFrame
    meta: dict[str, Any]


def _env_kwargs(env_id: str, sources: Sequence[PolicySource], env_kwargs: dict[str, Any] | None,
                scenario: str | None) -> dict[str, Any]:
    runs = [s.run_config for s in sources if s.run_config is not None]
    for cfg in runs:
        if cfg.env_id != env_id:
            raise ConfigError(f"--policy {cfg.name!r} was trained on {cfg.env_id}, not on --env {env_id}")
    kw = dict(runs[0].env_kwargs) if runs else {}
    kw.update(env_kwargs or {})
    if scenario:
        kw["scenario"] = scenario
    for k in YARDSTICK_KWARGS:
        if k in (env_parameters(env_id) or ()) and k not in (env_kwargs or {}):
            kw[k] = True
    try:
        check_env_kwargs(env_id, kw)
    except FieldError as e:
        raise ConfigError(f"--env-kwargs {e.loc.removeprefix('env_kwargs.')}: {e.msg}") from None
    return kw


def _make_env(env_id: str, kw: dict[str, Any]) -> Any:
    import gymnasium as gym

    import smartnet_gym  # noqa: F401

    try:
        return gym.make(env_id, **kw)
    except SmartnetError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"--env {env_id} with {kw}: {e}") from None


def evaluate(env_id: str, policies: Sequence[str], episodes: int, *, schemes: Sequence[str] | None = None,
             env_kwargs: dict[str, Any] | None = None, scenario: str | None = None, split: str = "test",
             days: tuple[int, int] | None = None, seed: int = 0, progress: bool = False) -> Evaluation:
    """Evaluate ``policies`` (baseline names or model paths) on ``episodes`` planned episodes per scheme.

    :param env_kwargs: env arguments over those of the (first) trained run among ``policies``.
    :param days: (first, last) day range of the split; default: the run's, else the whole year.

    Raises:
        ConfigError / UnknownNameError: unknown env id, policy, scheme or env argument; spaces
        of a model that do not fit the env.
    """
    import gymnasium as gym

    import smartnet_gym  # noqa: F401

    if env_id not in gym.registry:
        from smartnet_gym.errors import UnknownNameError, did_you_mean

        raise UnknownNameError(did_you_mean(env_id, [k for k in gym.registry if k.startswith("smartnet/")], "env id"))
    if episodes < 1:
        raise ConfigError(f"--episodes: must be >= 1 (got {episodes})")
    if split not in SPLITS:
        raise ConfigError(f"--split: must be one of {', '.join(SPLITS)} (got {split!r})")
    sources = [resolve_policy(p) for p in policies]
    labels = [s.label for s in sources]
    if len(set(labels)) != len(labels) or not labels:
        raise ConfigError(f"--policy: give each policy once (got {labels})")
    kw = _env_kwargs(env_id, sources, env_kwargs, scenario)
    runs = [s.run_config for s in sources if s.run_config is not None]
    first, last = days if days is not None else ((runs[0].days.first, runs[0].days.last) if runs else (0, 365))
    models = {s.label: load_model_policy(s) for s in sources if s.model_path}
    rows, plan, scheme_kwargs, digests = [], None, {}, {}
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(schemes or [None]) * len(sources) * episodes, unit="episode")
    for scheme in schemes or [None]:
        skw = kw if scheme is None else {**kw, "scheme": scheme}
        env = _make_env(env_id, skw)
        core = env.unwrapped.core
        scheme_kwargs[core.scheme_name], digests[core.scheme_name] = skw, core.cfg.digest()
        plan = plan_episodes(env, split, episodes, seed, first, last)
        per_bid_env = None
        for src in sources:
            play = env
            if src.baseline:
                from baselines import make_baseline, plays_per_bid

                if plays_per_bid(src.baseline, env):   # same episodes and dynamics, one action per bid
                    per_bid_env = per_bid_env or _make_env(env_id, {**skw, "action_mode": "bid"})
                    play = per_bid_env
                policy = make_baseline(src.baseline, play)
            else:
                policy = models[src.label]
                _check_spaces(policy, env)
            for i, spec in enumerate(plan):
                res = run_episode(play, policy, spec)
                rows.append({"scheme": core.scheme_name, "policy": src.label, "episode": i, "day": spec.day,
                             "start_step": spec.start_step, "seed": spec.seed, **res})
                if bar is not None:
                    bar.update(1)
        env.close()
        if per_bid_env is not None:
            per_bid_env.close()
    if bar is not None:
        bar.close()
    df = pd.DataFrame(rows)
    lead = ["scheme", "policy", "episode", "day", "start_step", "seed", "steps", "reward"]
    df = add_paired(df[lead + [c for c in SUM_KEYS if c in df]])
    meta = {"env_id": env_id, "env_kwargs": scheme_kwargs, "config_digest": digests, "split": split,
            "days": [first, last], "seed": seed, "episodes": [asdict(s) for s in plan],
            "policies": {s.label: s.model_path or f"baseline:{s.baseline}" for s in sources},
            "seconds": time.perf_counter() - t0}
    return Evaluation(df, summarize(df), meta)


# ------------------------------------------------------------------------------------------ CLI
def _comma_list(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def add_evaluate_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``evaluate`` subcommand to ``sub`` (the CLI's subparsers)."""
    p = sub.add_parser("evaluate", help="agents vs baselines on held-out days (mean and 95 %% CI)",
                       description="Evaluate trained agents and baselines on the same held-out episodes; "
                                   "writes episodes.csv, summary.csv, evaluate.png and run.json to --out.")
    p.add_argument("--env", required=True, help="env id, e.g. smartnet/Dispatch-v0")
    p.add_argument("--policy", action="append", required=True, type=_comma_list, metavar="PATH|BASELINE[,...]",
                   help="run folder, model .zip or baseline name (truthful, optimal, perfect_foresight, markup, "
                        "merit_order, fixed_limits, prequalify, random); repeat or comma-separate")
    p.add_argument("--baselines", type=_comma_list, default=[], metavar="all|NAME[,...]",
                   help="add these baselines (all = every baseline of the env)")
    p.add_argument("--episodes", type=int_at_least("--episodes", 1), default=10,
                   help="episodes per policy and scheme (default 10)")
    p.add_argument("--out", required=True, help="output folder (created; refused if not empty)")
    p.add_argument("--schemes", type=_comma_list, help="evaluate under each scheme, e.g. CS_A,CS_B")
    p.add_argument("--scenario", help="scenario preset or YAML (overrides the run's)")
    p.add_argument("--env-kwargs", default="{}", help="JSON object of env arguments, e.g. '{\"episode_steps\": 96}'")
    p.add_argument("--split", choices=SPLITS, default="test", help="days to evaluate on (default test)")
    p.add_argument("--first-day", type=int, help="first day of the range (default: the run's, else 0)")
    p.add_argument("--last-day", type=int, help="last day of the range (default: the run's, else 365)")
    p.add_argument("--seed", type=int, default=0, help="episode i uses env seed SEED + i")
    p.add_argument("--force", action="store_true", help="overwrite a non-empty --out")
    p.add_argument("--no-progress", action="store_true")
    return p


def _policy_list(args: argparse.Namespace) -> list[str]:
    """``--policy`` entries, then the ``--baselines`` ones not already named ("all" expands per env id)."""
    pols = [p for group in args.policy for p in group]
    names = args.baselines
    if names == ["all"]:
        import gymnasium as gym

        import smartnet_gym  # noqa: F401
        from baselines import available_baselines

        names = list(available_baselines(args.env)) if args.env in gym.registry else []
    return pols + [n for n in names if n not in pols]


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Run ``smartnet-gym evaluate``; prints the summary table."""
    from smartnet_gym.market.schemes import normalize_scheme
    from smartnet_gym.results import OutputDir

    try:
        kw = json.loads(args.env_kwargs)
    except json.JSONDecodeError as e:
        raise ConfigError(f"--env-kwargs is not valid JSON: {e}") from None
    if not isinstance(kw, dict):
        raise ConfigError(f"--env-kwargs must be a JSON object (got {args.env_kwargs!r})")
    schemes = [normalize_scheme(s) for s in args.schemes] if args.schemes else None
    days = None
    if args.first_day is not None or args.last_day is not None:
        days = (0 if args.first_day is None else args.first_day, 365 if args.last_day is None else args.last_day)
    out = OutputDir(args.out, force=args.force)      # refuse a bad --out before any work
    try:
        ev = evaluate(args.env, _policy_list(args), args.episodes, schemes=schemes, env_kwargs=kw,
                      scenario=args.scenario, split=args.split, days=days, seed=args.seed,
                      progress=not args.no_progress)
        out.write("episodes.csv", lambda p: ev.episodes.to_csv(p, index=False))
        out.write("summary.csv", lambda p: ev.summary.to_csv(p, index=False))
        out.write("evaluate.png", lambda p: plot_evaluation(
            ev.summary, p, KEY_METRIC.get(args.env, "total_cost_eur"),
            title=f"{args.env.split('/')[-1]}, {args.episodes} {args.split} episodes"))
        out.write("summary.md", lambda p: p.write_text(markdown_table(ev.summary, TABLE_METRICS) + "\n"))
        out.write_json("run.json", ev.meta)
    except BaseException:
        out.discard()
        raise
    out.commit()
    print(markdown_table(ev.summary, TABLE_METRICS))
    print(f"{len(ev.episodes)} episodes in {ev.meta['seconds']:.1f} s -> {args.out}")
    return 0


__all__ = ["Evaluation", "ModelPolicy", "PolicySource", "add_evaluate_parser", "add_paired", "cmd_evaluate",
           "evaluate", "load_model_policy", "markdown_table", "plot_evaluation", "resolve_policy", "run_episode",
           "summarize"]
