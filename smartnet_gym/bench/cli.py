"""Command lines of the benchmarks: ``smartnet-gym benchmark`` and the scripts in ``benchmarks/``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from smartnet_gym.bench.report import format_report, json_default
from smartnet_gym.bench.run import run_benchmark


def script_main(argv: list[str] | None, description: str, parts: Sequence[str],
                formatter: Callable[[dict], str], drop: Sequence[str] = ()) -> int:
    """Body of the scripts in ``benchmarks/``: options --quick/--scenario/--repeats/--json/--out,
    run ``parts``, print ``formatter(report)`` and the notes (or the JSON without ``drop`` keys)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="fewer sizes, areas and repeats (< 60 s)")
    p.add_argument("--scenario", default=None, help="preset name or YAML path (default spain-like)")
    p.add_argument("--repeats", type=int, default=None, help="timed clearings per cell (median reported)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--out", metavar="FILE", help="also write the JSON report to FILE")
    args = p.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        p.error(f"--repeats must be >= 1 (got {args.repeats})")
    log = None if args.json else (lambda s: print(s, file=sys.stderr, flush=True))
    rep = run_benchmark("quick" if args.quick else "full", args.scenario, args.repeats, log=log, parts=parts)
    rep = {k: v for k, v in rep.items() if k not in drop}
    text = json.dumps(rep, indent=2, default=json_default)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    if args.json:
        print(text)
    else:
        print(formatter(rep))
        print("\nnotes:\n" + "\n".join(f"  {s}" for s in rep["notes"]))
    return 0


def add_benchmark_parser(sub) -> argparse.ArgumentParser:
    """Add the ``benchmark`` subcommand to an ``add_subparsers()`` object."""
    b = sub.add_parser("benchmark", help="time the market clearing (schemes x bids x solver paths) and its scaling")
    b.add_argument("--quick", action="store_true", help="fewer sizes and repeats, no CVXPY above 1,000 bids (< 60 s)")
    b.add_argument("--json", action="store_true", help="print JSON instead of tables")
    b.add_argument("--out", metavar="FILE", help="also write the JSON report to FILE")
    b.add_argument("--scenario", default=None, help="preset name or YAML path (default spain-like)")
    b.add_argument("--repeats", type=int, default=None, help="timed clearings per cell (median reported)")
    b.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)   # smoke test: toy, 1 repeat
    return b


def cmd_benchmark(args: argparse.Namespace) -> int:
    """Run the benchmark; tables (or JSON with --json) on stdout, progress on stderr."""
    if args.repeats is not None and args.repeats < 1:
        from smartnet_gym.errors import ConfigError

        raise ConfigError(f"--repeats must be >= 1 (got {args.repeats})")
    mode = "tiny" if getattr(args, "tiny", False) else "quick" if args.quick else "full"
    log = None if args.json else (lambda s: print(s, file=sys.stderr, flush=True))
    rep = run_benchmark(mode, scenario=args.scenario, repeats=args.repeats, log=log)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(rep, indent=2, default=json_default))
    if args.json:
        print(json.dumps(rep, indent=2, default=json_default))
    else:
        print(format_report(rep))
    return 0
