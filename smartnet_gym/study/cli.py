"""`smartnet-gym study`: run a declarative study on Ray (or in process), or re-render its report."""

from __future__ import annotations

import argparse

from smartnet_gym.errors import ConfigError

HELP = """Run every cell (scheme x scenario x variant x day x forecast seed) of a study YAML into
--out DIR. Finished cells are kept under DIR/cells/ and skipped by a rerun; failing cells are
retried, then listed in DIR/failures.csv. By default an embedded local Ray instance uses every
core; --address joins a running cluster (see `ray start`)."""


def add_study_parser(sub: argparse._SubParsersAction) -> None:
    from smartnet_gym.cli_types import int_at_least

    s = sub.add_parser("study", help="many days x seeds x schemes x scenarios on Ray, with paired CIs",
                       description=HELP)
    what = s.add_mutually_exclusive_group(required=True)
    what.add_argument("--config", metavar="STUDY.yaml", help="the study to run (needs --out)")
    what.add_argument("--report", metavar="DIR", help="re-render summary.csv and figures of DIR from its cells")
    s.add_argument("--out", metavar="DIR", help="results folder (a rerun continues it)")
    where = s.add_mutually_exclusive_group()
    where.add_argument("--address", metavar="ADDR",
                       help="join a running Ray cluster: 'auto' or host:port (default: embedded local Ray)")
    where.add_argument("--in-process", action="store_true", help="no Ray: run the cells one by one here")
    s.add_argument("--workers", type=int_at_least("--workers", 1), default=None,
                   help="cells run at once (default: every CPU of the machine or cluster)")
    s.add_argument("--per-step", action="store_true", help="also keep every step's CBA row (steps.parquet)")
    s.add_argument("--force", action="store_true", help="adopt a changed study config in an existing --out")
    s.add_argument("--markdown", metavar="METRIC", nargs="?", const="total_cost_eur", default=None,
                   help="also print the paired differences to the reference as a markdown table "
                        "(METRIC: a summary.csv metric, default total_cost_eur)")
    s.add_argument("--no-progress", action="store_true")


def cmd_study(args: argparse.Namespace) -> int:
    from smartnet_gym.study.config import load_study
    from smartnet_gym.study.engines import InProcessEngine, RayEngine
    from smartnet_gym.study.runner import report_study, run_study
    from smartnet_gym.study.store import read_study
    from smartnet_gym.study.summary import markdown_table

    if args.report:
        summary = report_study(args.report)
        print(f"report of {args.report}: {len(summary)} summary rows, figures rewritten")
        if args.markdown:
            print(markdown_table(summary, read_study(args.report).reference_scheme(), args.markdown))
        return 0
    if not args.out:
        raise ConfigError("--out is required with --config")
    study = load_study(args.config)
    engine = InProcessEngine() if args.in_process else RayEngine(args.address, args.workers)
    run = run_study(study, args.out, engine, force=args.force, per_step=args.per_step,
                    progress=not args.no_progress)
    print(f"study {study.name}: {run.cells} cells, {run.skipped} already done, {run.ran} run, "
          f"{run.failed} failed, in {run.seconds:.1f} s -> {args.out}")
    _print_ranking(run.summary, study.reference_scheme())
    if args.markdown:
        print(markdown_table(run.summary, study.reference_scheme(), args.markdown))
    return 0 if run.failed == 0 else 1


def _print_ranking(summary, reference: str) -> None:
    """The paired total-cost differences to the reference over all seasons, one line per scheme."""
    d = summary[(summary["metric"] == "total_cost_eur") & (summary["season"] == "all")
                & (summary["versus"] == reference)]
    for _, r in d.iterrows():
        verdict = "CI excludes 0" if r["ci_excludes_zero"] else "not significant"
        print(f"  {r['scenario']:14s} {r['variant']:12s} {r['scheme']} - {reference}: {r['mean']:>12,.0f} EUR "
              f"[{r['ci95_low']:,.0f}, {r['ci95_high']:,.0f}] n={r['n']} ({verdict})")
