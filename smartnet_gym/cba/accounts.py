"""Cost–benefit account: one row of numbers per step, a DataFrame per episode (SPEC §5).

Who pays (TSO or a DSO) follows the stage that activated a bid: local DSO stages are paid by
that DSO, TSO stages by the TSO; in a joint clearing (CS_D, CS_E) the TSO pays the uniform
price and the DSO of the bid's area pays the locational difference (its congestion share).
Only the first (binding) period of each clearing is paid and delivered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from smartnet_gym.cba.ict import ict_cost_per_step
from smartnet_gym.cba.market_power import binding_concentration
from smartnet_gym.market.program import DT_H

if TYPE_CHECKING:
    from smartnet_gym.market.schemes import ClearingOutcome
    from smartnet_gym.market.stages import MarketInstance
    from smartnet_gym.simulation.loop import RollingLoop
    from smartnet_gym.simulation.physics import PhysicalState, Violations
    from smartnet_gym.simulation.unwanted import UnwantedOutcome

#: summary columns (one row per scheme) — a contract of `smartnet-gym compare`
SUMMARY_COLUMNS = ("scheme", "total_cost_eur", "market_cost_eur", "afrr_cost_eur", "unwanted_cost_eur",
                   "ict_cost_eur", "imbalance_mwh", "d_violations", "t_violations", "curtailed_mwh",
                   "clearing_failures")
COST_COMPONENTS = ("market_cost_eur", "afrr_cost_eur", "unwanted_cost_eur", "ict_cost_eur")


def split_payments(inst: MarketInstance, out: ClearingOutcome, delivered: np.ndarray, n_areas: int,
                   area_of_bid: np.ndarray) -> np.ndarray:
    """Payment for the delivered first-period activations, by payer: [TSO, DSO_0, …]."""
    book = inst.book
    pay = np.zeros(n_areas + 1)
    for rec in out.records:
        idx = rec.bids
        if rec.payment_eur is None or not rec.result.ok or not len(idx):
            continue
        # only the binding first period is paid, for what was delivered
        share = np.divide(delivered[idx], out.activated_mw[idx], out=np.zeros(len(idx)),
                          where=out.activated_mw[idx] > 1e-12) * (book.period[idx] == 0)
        p = rec.payment_eur * share
        areas = area_of_bid[idx]
        if rec.name.startswith(("local_", "dso_")):
            np.add.at(pay, 1 + areas, p)
        elif rec.name.startswith("joint"):
            res = rec.result
            lam = res.uniform_price[0, book.period[idx]] if res.uniform_price.shape[0] else 0.0
            # the DSO pays the locational difference to the uniform price (its congestion share)
            congestion = np.where(areas >= 0, p - DT_H * book.direction[idx] * np.nan_to_num(lam)
                                  * rec.result.x_mw * share, 0.0)
            np.add.at(pay, 1 + areas[areas >= 0], congestion[areas >= 0])
            pay[0] += p.sum() - congestion.sum()
        else:
            pay[0] += p.sum()
    return pay


def step_account(loop: RollingLoop, inst: MarketInstance, out: ClearingOutcome, *, delivered: np.ndarray,
                 unit_mw: np.ndarray, need_real_mw: float, curtailed_market_mwh: float,
                 violations: Violations, unwanted: UnwantedOutcome | None, physical: PhysicalState) -> dict:
    """The CBA row of one step (floats only; per-DSO columns named dso<k>_…)."""
    cfg = loop.cfg
    book = inst.book
    n_areas = loop.n_areas
    area_of_bid = loop.bid_areas(book)
    pay = split_payments(inst, out, delivered, n_areas, area_of_bid)
    true_cost = float(DT_H * (book.true_cost_eur_per_mwh * delivered).sum())
    market = float(pay.sum())
    act_net = float(unit_mw.sum())
    unw_net = unwanted.net_injection_mw if unwanted else 0.0
    afrr_signed_mwh = DT_H * (need_real_mw - act_net - unw_net)
    price0 = out.uniform_price_eur_per_mwh[0]
    sim = cfg.simulation
    afrr_price = max(sim.afrr_floor_eur_per_mwh,
                     (abs(price0) if np.isfinite(price0) else 0.0) + sim.afrr_premium_eur_per_mwh)
    afrr_cost = abs(afrr_signed_mwh) * afrr_price
    unw_cost = unwanted.cost_eur if unwanted else 0.0
    unw_area = unwanted.per_area_eur if unwanted else np.zeros(n_areas + 1)
    ict = ict_cost_per_step(cfg.cba, loop.scheme.name)
    row = {
        "step": float(loop.t), "need_forecast_mw": float(inst.need_mw[0]), "need_real_mw": need_real_mw,
        "market_cost_eur": market, "market_cost_tso_eur": float(pay[0]),
        "bidders_true_cost_eur": true_cost, "bidders_profit_eur": market - true_cost,
        "activation_mwh": float(DT_H * delivered.sum()), "activation_net_mwh": DT_H * act_net,
        "afrr_energy_mwh": abs(afrr_signed_mwh), "afrr_signed_mwh": afrr_signed_mwh,
        "afrr_price_eur_per_mwh": afrr_price, "afrr_cost_eur": afrr_cost,
        "imbalance_mwh": abs(DT_H * need_real_mw), "imbalance_signed_mwh": DT_H * need_real_mw,
        "unwanted_cost_eur": unw_cost, "unwanted_energy_mwh": unwanted.energy_mwh if unwanted else 0.0,
        "unwanted_net_mwh": DT_H * unw_net,
        "unwanted_cost_tso_eur": float(unw_area[-1]),
        "d_violations": float(violations.d_total), "t_violations": float(violations.t_loading),
        "max_voltage_dev_pu": violations.max_voltage_dev_pu, "max_loading_pct": violations.max_loading_pct,
        "curtailed_mwh": curtailed_market_mwh + (unwanted.curtailed_mwh if unwanted else 0.0),
        "ict_cost_eur": ict,
        "clearing_failures": float(not out.status == "optimal"),
        "pf_failures": float(not physical.converged),
        "slack_mw": out.slack_mw,
        "uniform_price_eur_per_mwh": float(price0) if np.isfinite(price0) else float("nan"),
        "solve_ms": out.solve_ms,
    }
    # market-power indicators of the global market and each local (area) market, binding period;
    # local needs are the areas' own imbalance (their congestion need is not known in advance)
    conc = binding_concentration(book, out.activated_mw, inst.need_mw, area_of_bid, inst.area_need_mw)
    for j in range(len(inst.area_need_mw) + 1):
        tag = "" if j == 0 else f"local_{j - 1}_"
        for k in ("hhi_offered", "hhi_activated", "psi", "rsi"):
            row[f"{tag}{k}"] = float(conc[k][j])
    row["total_cost_eur"] = sum(row[k] for k in COST_COMPONENTS)
    row["tso_cost_eur"] = float(pay[0]) + afrr_cost + float(unw_area[-1])
    row = {k: float(v) for k, v in row.items()}   # plain floats (logging, JSON, TensorBoard)
    for a in range(n_areas):
        row[f"dso{a}_market_cost_eur"] = float(pay[1 + a])
        row[f"dso{a}_unwanted_cost_eur"] = float(unw_area[a])
        row[f"dso{a}_violations"] = float(violations.per_area[a])
    if len(out.served_buy_mw):
        first = inst.buy.period == 0
        wtp = DT_H * (inst.buy.wtp_eur_per_mwh * out.served_buy_mw * first).sum()
        row["welfare_eur"] = float(wtp - true_cost)
    else:
        row["welfare_eur"] = float("nan")
    return row


def episode_frame(rows: list[dict], scheme: str) -> pd.DataFrame:
    """Per-step accounts of one episode as a DataFrame (the user-facing table)."""
    df = pd.DataFrame(rows)
    df.insert(0, "scheme", scheme)
    return df


def summarize(steps: pd.DataFrame) -> pd.DataFrame:
    """One row per scheme with the contract columns of `compare` (plus a few extras)."""
    sums = ["total_cost_eur", "market_cost_eur", "afrr_cost_eur", "unwanted_cost_eur", "ict_cost_eur",
            "imbalance_mwh", "d_violations", "t_violations", "curtailed_mwh", "clearing_failures",
            "afrr_energy_mwh", "unwanted_energy_mwh", "bidders_profit_eur", "pf_failures", "welfare_eur"]
    g = steps.groupby("scheme", sort=False)
    out = g[sums].sum(min_count=1).reset_index()
    out["steps"] = g.size().to_numpy()
    out["mean_price_eur_per_mwh"] = g["uniform_price_eur_per_mwh"].mean().to_numpy()
    for k in ("hhi_offered", "psi", "rsi"):     # market power of the global market, step mean
        if k in steps:
            out[f"mean_{k}"] = g[k].mean().to_numpy()
    return out[list(SUMMARY_COLUMNS) + [c for c in out.columns if c not in SUMMARY_COLUMNS]]
