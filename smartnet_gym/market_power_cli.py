"""`smartnet-gym market-power`: market power in a small local flexibility market.

The experiment (instances, the DSO's need, the local market, best responses, indicators) is
:mod:`smartnet_gym.experiments.market_power`; this module is its command line.

Output: ``DIR/sweep.csv`` (one row per scheme × bidding × n), ``DIR/market_power.png``,
``DIR/run.json`` (resolved scenario, digest, knobs).
"""

from __future__ import annotations

import argparse
import time

from smartnet_gym.config import load_scenario
from smartnet_gym.errors import ConfigError
from smartnet_gym.experiments.market_power import (
    check_price_cap,
    local_market_config,
    plot_market_power,
    resolve_area,
    run_sweep,
    sweep_instances,
)
from smartnet_gym.market.schemes import normalize_scheme


def _float_list(text: str | None, name: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"{name}: must be a comma list of numbers (got {text!r})") from None


def add_market_power_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``market-power`` to the ``smartnet-gym`` subcommands; returns its parser."""
    p = sub.add_parser("market-power", help="market power in a local market vs the number of competitors",
                       description=__doc__.splitlines()[0].split(": ", 1)[1])
    p.add_argument("--scenario", default="local-market", help="preset name or YAML path")
    p.add_argument("--out", required=True, help="output folder (created; refused if not empty)")
    p.add_argument("--force", action="store_true", help="overwrite a non-empty --out")
    p.add_argument("--schemes", default="CS_B,CS_D", help="comma list of CS_A … CS_E (default CS_B,CS_D)")
    p.add_argument("--max-competitors", type=int, default=None, help="providers in the full local market; the sweep runs n = 1 … N (default 5)")
    p.add_argument("--steps", type=int, default=4, help="market steps (instances) per sweep point (default 4)")
    p.add_argument("--seed", type=int, default=0, help="forecast-error seed")
    g = p.add_argument_group("local market knobs (defaults: LocalMarketConfig)")
    g.add_argument("--shares", help="comma list of offer shares, provider 0 strategic, sum 1")
    g.add_argument("--strategic-share", type=float, help="provider 0's share if --shares is unset")
    g.add_argument("--liquidity", type=float, help="full market's total offer / need")
    g.add_argument("--cost", type=float, help="provider 0's true cost [EUR/MWh]")
    g.add_argument("--cost-step", type=float, help="cost step between providers [EUR/MWh]")
    g.add_argument("--reservation-price", type=float, help="DSO fallback price (elastic need) [EUR/MWh]")
    g.add_argument("--markup-points", type=int, help="grid points of the best-response search")
    g.add_argument("--start-step", type=int, help="first step of the day [15 min] (default 44 = 11:00)")
    g.add_argument("--area", help="distribution area name (default the first)")
    g.add_argument("--bus", type=int, help="pandapower bus of the local providers (default farthest)")
    p.add_argument("--no-progress", action="store_true", help="no progress lines")
    return p


def cmd_market_power(args: argparse.Namespace) -> int:
    """Run the sweep and write sweep.csv, market_power.png and run.json into ``--out``."""
    from smartnet_gym.grid.build import build_system
    from smartnet_gym.results import OutputDir

    if args.steps < 1:
        raise ConfigError(f"steps: must be >= 1 (got {args.steps})")
    if args.seed < 0:
        raise ConfigError(f"seed: must be >= 0 (got {args.seed})")
    schemes = [normalize_scheme(s) for s in str(args.schemes).split(",") if s.strip()]
    if not schemes:
        raise ConfigError("schemes: needs at least one of CS_A … CS_E")
    lm = local_market_config(
        max_competitors=args.max_competitors, shares=_float_list(args.shares, "shares"),
        strategic_share=args.strategic_share, liquidity=args.liquidity, cost_eur_per_mwh=args.cost,
        cost_step_eur_per_mwh=args.cost_step, reservation_price_eur_per_mwh=args.reservation_price,
        markup_points=args.markup_points, start_step_of_day=args.start_step, area=args.area, bus=args.bus)
    cfg = load_scenario(args.scenario)
    check_price_cap(cfg.market, lm)
    out = OutputDir(args.out, force=args.force)   # refuse a bad --out before any work
    t0 = time.perf_counter()
    try:
        system = build_system(cfg)
        area = resolve_area(system, lm.area)
        instances = sweep_instances(system, cfg, lm, args.steps, args.seed)

        def progress(scheme: str, n: int) -> None:
            if not args.no_progress:
                print(f"  {scheme} n={n} done ({time.perf_counter() - t0:.1f} s)", flush=True)

        df = run_sweep(system.linear, cfg.market, instances, lm, schemes, area, lm.bus, progress=progress)
        secs = time.perf_counter() - t0
        out.write("sweep.csv", lambda p: df.to_csv(p, index=False))
        out.write("market_power.png", lambda p: plot_market_power(
            df, p, title=f"{cfg.name}, area {system.areas[area].name}, {args.steps} steps"))
        out.write_json("run.json", {"scenario": cfg.name, "config_digest": cfg.digest(),
                                    "config": cfg.model_dump(mode="json"),
                                    "local_market": lm.model_dump(mode="json"), "schemes": schemes,
                                    "steps": args.steps, "seed": args.seed, "area": system.areas[area].name,
                                    "seconds": secs})
    except BaseException:
        out.discard()
        raise
    out.commit()
    cols = ["scheme", "bidding", "n_competitors", "markup_eur_mwh", "hhi", "psi", "rsi", "price_eur_mwh",
            "lerner", "local_payment_eur"]
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(df[cols].round(3).to_string(index=False))
    print(f"{len(schemes)} schemes x {df['n_competitors'].max()} sizes x {args.steps} steps in {secs:.1f} s "
          f"-> {args.out}")
    return 0
