"""`smartnet-gym …` command line: scenarios, validate-grid, clear, compare, study, market-power, train, evaluate, sweep, benchmark.

User errors (bad config, unknown names, bad paths) print one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

import numpy as np

from smartnet_gym.cli_types import int_at_least
from smartnet_gym.config import SCHEMES, load_scenario, preset_descriptions
from smartnet_gym.errors import SmartnetError

EXIT_USER_ERROR = 2


def _schemes(text: str) -> list[str]:
    from smartnet_gym.market.schemes import normalize_scheme

    names = [s for s in text.split(",") if s.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"--schemes needs at least one of {', '.join(SCHEMES)}")
    try:
        return [normalize_scheme(s) for s in names]
    except SmartnetError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="smartnet-gym", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("scenarios", help="list the scenario presets")

    v = sub.add_parser("validate-grid", help="linear grid models vs pandapower AC power flow")
    v.add_argument("--scenario", default="spain-like", help="preset name or YAML path")
    v.add_argument("--samples", type=int_at_least("--samples", 1), default=200)
    v.add_argument("--seed", type=int_at_least("--seed", 0), default=0)
    v.add_argument("--json", action="store_true", help="print JSON instead of a table")
    v.add_argument("--episodes", action="store_true",
                   help="whole one-day episodes with AC physics: the clearing's predicted violations of each "
                        "delivered period vs the physical layer (precision, recall), per season; "
                        "--scenario may be a comma list")
    v.add_argument("--every", type=int_at_least("--every", 1), default=14, help="--episodes: a day every N days")
    v.add_argument("--first", type=int_at_least("--first", 0), default=3, help="--episodes: the first day (0 = 1 January)")
    v.add_argument("--scheme", type=lambda s: _schemes(s)[0], default="CS_D", help="--episodes: the scheme cleared")
    v.add_argument("--with-forecast-errors", action="store_true",
                   help="--episodes: keep the scenario's forecast errors (default: perfect forecasts)")
    v.add_argument("--out", help="--episodes: study folder of the cells (a rerun continues it)")
    v.add_argument("--in-process", action="store_true", help="--episodes: no Ray")
    v.add_argument("--workers", type=int_at_least("--workers", 1), default=None, help="--episodes: Ray workers")
    v.add_argument("--force", action="store_true", help="--episodes: adopt a changed check in --out")

    c = sub.add_parser("clear", help="clear the market once with the truthful scripted bids")
    c.add_argument("--scenario", default="spain-like", help="preset name or YAML path")
    c.add_argument("--scheme", type=lambda s: _schemes(s)[0], default="CS_D", help="CS_A … CS_E")
    c.add_argument("--variant", choices=("centralized", "decentralized"), default=None)
    c.add_argument("--step", type=int_at_least("--step", 0), default=48, help="step of the episode (15 min each)")
    c.add_argument("--seed", type=int_at_least("--seed", 0), default=0)
    c.add_argument("--lp", action="store_true", help="the LP variant (no quadratic term)")
    c.add_argument("--backend", choices=("highs", "highs-full", "cvxpy"), default=None,
                   help="highs: fast path (network limits screened); highs-full: HiGHS on the explicit "
                        "program; cvxpy: the CVXPY+OSQP reference")
    c.add_argument("--json", action="store_true")
    c.add_argument("--export-lp", metavar="FILE", help="write the final stage's LP as MPS")

    m = sub.add_parser("compare", help="run the schemes on the same days and compare their CBA")
    m.add_argument("--scenario", default="spain-like", help="preset name or YAML path")
    m.add_argument("--schemes", type=_schemes, default=list(SCHEMES), help="comma list, default all five")
    m.add_argument("--steps", type=int_at_least("--steps", 1), default=96, help="market steps (96 = one day)")
    m.add_argument("--seed", type=int_at_least("--seed", 0), default=0)
    m.add_argument("--physics", choices=("ac", "linear"), default=None)
    m.add_argument("--out", required=True, help="output folder (created; refused if not empty)")
    m.add_argument("--force", action="store_true", help="overwrite a non-empty --out")
    m.add_argument("--no-progress", action="store_true")
    from smartnet_gym.bench.cli import add_benchmark_parser
    from smartnet_gym.market_power_cli import add_market_power_parser
    from smartnet_gym.study.cli import add_study_parser
    from train.cli import add_train_parser
    from train.evaluate import add_evaluate_parser
    from train.sweep import add_sweep_parser

    add_study_parser(sub)
    add_market_power_parser(sub)
    add_train_parser(sub)
    add_evaluate_parser(sub)
    add_sweep_parser(sub)
    add_benchmark_parser(sub)
    return p


def _scenario_system(name: str):
    from smartnet_gym.grid.build import build_system

    cfg = load_scenario(name)
    return cfg, build_system(cfg)


def cmd_scenarios(args: argparse.Namespace) -> int:
    for name, desc in preset_descriptions().items():
        print(f"{name:14s} {desc}")
    return 0


def cmd_validate_grid(args: argparse.Namespace) -> int:
    if args.episodes:
        return _validate_episodes(args)
    from smartnet_gym.grid.validate import validate_grid

    cfg, system = _scenario_system(args.scenario)
    rep = validate_grid(system, samples=args.samples, seed=args.seed)
    rep = {"scenario": cfg.name, **rep}
    if args.json:
        print(json.dumps(rep, indent=2, default=float))
        return 0
    print(f"scenario {cfg.name}: {rep['samples']} samples, {rep['buses']} buses, areas {', '.join(rep['areas'])}")
    print(f"  max voltage error  {rep['max_voltage_error_pu']:.4f} pu   (target <= 0.01)")
    print(f"  max flow error     {rep['max_flow_error_pct_of_rating']:.2f} % of rating (target <= 5)")
    return 0


def _validate_episodes(args: argparse.Namespace) -> int:
    from smartnet_gym.errors import ConfigError
    from smartnet_gym.study.engines import InProcessEngine, RayEngine
    from smartnet_gym.study.model_validation import validate_episodes

    if not args.out:
        raise ConfigError("--out is required with --episodes (the cells are kept there)")
    scenarios = [s.strip() for s in args.scenario.split(",") if s.strip()]
    engine = InProcessEngine() if args.in_process else RayEngine(workers=args.workers)
    rep = validate_episodes(scenarios, args.out, args.scheme, args.every, args.first, perfect=not args.with_forecast_errors,
                            engine=engine, force=args.force, progress=not args.json)
    if args.json:
        print(json.dumps({"scheme": args.scheme, "every": args.every, "perfect_forecasts": not args.with_forecast_errors,
                          "rows": rep.to_dict(orient="records")}, indent=2, default=float))
        return 0
    with_errors = "with the scenario's forecast errors" if args.with_forecast_errors else "perfect forecasts"
    print(f"grid model vs AC physics, {args.scheme}, a day every {args.every} days, {with_errors} (target: "
          "precision and recall >= 0.9)")
    print(rep.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    return 0


def cmd_clear(args: argparse.Namespace) -> int:
    from smartnet_gym.simulation.compare import check_window, episode_start
    from smartnet_gym.simulation.loop import RollingLoop

    over: dict = {"market": {"scheme": args.scheme}}
    if args.variant:
        over["market"]["variant"] = args.variant
    if args.lp:
        over["market"]["qp_epsilon"] = 0.0
    if args.backend:
        over["market"]["backend"] = args.backend
    from smartnet_gym.grid.build import build_system

    cfg = load_scenario(args.scenario, over)
    system = build_system(cfg)
    check_window(system, cfg, args.step + 1)
    loop = RollingLoop(system, cfg, physics="linear")
    loop.reset(episode_start(cfg) + args.step, 1, np.random.default_rng(args.seed))
    inst = loop.instance()
    t0 = time.perf_counter()
    out = loop.scheme.clear(inst, evaluate=True)
    wall_ms = (time.perf_counter() - t0) * 1e3
    last = out.records[-1] if out.records else None
    # the final stage's program may clear several DSOs at once (one record each): its cost is their sum
    final = [r for r in out.records if last.program is not None and r.program is last.program] if last else []
    final = final or ([last] if last else [])
    rep = {
        "scenario": cfg.name, "scheme": out.scheme, "variant": out.variant, "status": out.status,
        "step": args.step, "seed": args.seed, "program": "LP" if cfg.market.qp_epsilon == 0 else "QP",
        "backend": cfg.market.backend,
        "objective_eur": out.objective_eur, "market_cost_eur": out.market_cost_eur,
        "evaluated_cost_eur": out.evaluated_cost_eur, "slack_mw": out.slack_mw,
        "balance_slack_mw": out.balance_slack_mw, "network_slack_mw": out.network_slack_mw,
        "activated_mw": float(out.activated_mw.sum()),
        "uniform_price_eur_per_mwh": [None if not np.isfinite(v) else float(v) for v in out.uniform_price_eur_per_mwh],
        "need_mw": inst.need_mw.tolist(), "n_bids": len(inst.book),
        "solve_ms": out.solve_ms, "wall_ms": wall_ms,
        "stages": [{"name": r.name, "status": r.result.status, "objective_eur": r.result.objective_eur,
                    "solve_ms": r.result.solve_ms} for r in out.records],
        "final_stage_objective_eur": sum(r.result.objective_eur for r in final) if final else None,
    }
    if args.export_lp:
        from smartnet_gym.market.export import export_mps

        rep["export_lp"] = export_mps(last, args.export_lp)
    if args.json:
        print(json.dumps(rep, indent=2, default=float))
    else:
        for k, v in rep.items():
            if k != "stages":
                print(f"{k:28s} {v}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from smartnet_gym.grid.build import build_system
    from smartnet_gym.plotting import plot_compare, plot_timeline
    from smartnet_gym.results import OutputDir
    from smartnet_gym.simulation.compare import check_window, run_compare

    cfg = load_scenario(args.scenario)
    out = OutputDir(args.out, force=args.force)   # refuse a bad --out before any work
    try:
        system = build_system(cfg)
        check_window(system, cfg, args.steps)
        physics = args.physics or cfg.simulation.physics
        steps_df, summary, secs = run_compare(system, cfg, args.schemes, args.steps, args.seed, physics,
                                              show_progress=not args.no_progress)
        out.write("summary.csv", lambda p: summary.to_csv(p, index=False))
        out.write("steps.csv", lambda p: steps_df.to_csv(p, index=False))
        out.write("compare.png", lambda p: plot_compare(summary, p, title=f"{cfg.name}, {args.steps} steps"))
        out.write("timeline.png", lambda p: plot_timeline(steps_df, p))
        out.write_json("run.json", {"scenario": cfg.name, "config_digest": cfg.digest(),
                                    "config": cfg.model_dump(mode="json"), "schemes": args.schemes,
                                    "steps": args.steps, "seed": args.seed, "physics": physics,
                                    "seconds": secs})
    except BaseException:
        out.discard()
        raise
    out.commit()
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 20):
        cols = ["scheme", "total_cost_eur", "market_cost_eur", "afrr_cost_eur", "unwanted_cost_eur",
                "unresolved_cost_eur", "ict_cost_eur", "d_violations", "t_violations", "clearing_failures"]
        print(summary[cols].round(1).to_string(index=False))
    print(f"{len(args.schemes)} schemes x {args.steps} steps ({physics} physics) in {secs:.1f} s -> {args.out}")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from smartnet_gym.study.cli import cmd_study as run

    return run(args)


def cmd_market_power(args: argparse.Namespace) -> int:
    from smartnet_gym.market_power_cli import cmd_market_power as run

    return run(args)


def cmd_train(args: argparse.Namespace) -> int:
    from train.cli import cmd_train as run

    return run(args)


def cmd_sweep(args: argparse.Namespace) -> int:
    from train.sweep import cmd_sweep as run

    return run(args)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from train.evaluate import cmd_evaluate as run

    return run(args)


def cmd_benchmark(args: argparse.Namespace) -> int:
    from smartnet_gym.bench.cli import cmd_benchmark as run

    return run(args)


COMMANDS = {"scenarios": cmd_scenarios, "validate-grid": cmd_validate_grid, "clear": cmd_clear,
            "compare": cmd_compare, "study": cmd_study, "market-power": cmd_market_power, "train": cmd_train,
            "evaluate": cmd_evaluate, "sweep": cmd_sweep, "benchmark": cmd_benchmark}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except SmartnetError as e:
        print(f"smartnet-gym {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
