"""Cost–benefit account: one row of numbers per step, a DataFrame per episode.

Who pays (TSO or a DSO) follows the stage that activated a bid: local DSO stages are paid by
that DSO, TSO stages by the TSO; in a joint clearing (CS_D, CS_E) the TSO pays the uniform
price and the DSO of the bid's area pays the locational difference (its congestion share).
Only the first (binding) period of each clearing is paid and delivered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from smartnet_gym.cba.afrr import afrr_price
from smartnet_gym.cba.ict import ict_cost_per_step
from smartnet_gym.cba.market_power import binding_concentration
from smartnet_gym.market.program import DT_H
from smartnet_gym.memo import ArrayMemo

if TYPE_CHECKING:
    from smartnet_gym.config import ScenarioConfig
    from smartnet_gym.market.bids import BidBook
    from smartnet_gym.market.schemes import ClearingOutcome
    from smartnet_gym.market.stages import MarketInstance
    from smartnet_gym.simulation.physics import PhysicalState, Violations
    from smartnet_gym.simulation.unwanted import UnwantedOutcome

#: summary columns (one row per scheme) — a contract of `smartnet-gym compare`
SUMMARY_COLUMNS = ("scheme", "total_cost_eur", "market_cost_eur", "afrr_cost_eur", "unwanted_cost_eur",
                   "unresolved_cost_eur", "ict_cost_eur", "imbalance_mwh", "d_violations", "t_violations", "curtailed_mwh",
                   "clearing_failures")
COST_COMPONENTS = ("market_cost_eur", "afrr_cost_eur", "unwanted_cost_eur", "unresolved_cost_eur", "ict_cost_eur")
#: market-power columns per market (binding_concentration's fields), in column order
_CONCENTRATION_FIELDS = ("hhi_offered", "hhi_activated", "psi", "rsi")


@dataclass(frozen=True)
class _PaymentLayout:
    """What :func:`split_payments` derives from a book's layout and the bids' areas, per bid."""

    first: np.ndarray                # 1.0 in the binding first period, else 0.0
    dt_direction: np.ndarray         # Δt · direction [h]
    payer: np.ndarray                # 0 the TSO, 1 + a the DSO of area a
    in_area: np.ndarray              # bid in a distribution area
    every_bid: bytes                 # np.arange(n_bids) as bytes: a record of every bid in order


_PAYMENT_LAYOUTS: ArrayMemo[_PaymentLayout] = ArrayMemo(9)


def _payment_layout(book: BidBook, area_of_bid: np.ndarray) -> _PaymentLayout:
    """The :class:`_PaymentLayout` of ``book`` and ``area_of_bid``, kept for their arrays
    (:class:`~smartnet_gym.memo.ArrayMemo`: the books of one layout share them)."""
    return _PAYMENT_LAYOUTS.get((book.period, book.direction, area_of_bid), lambda: _PaymentLayout(
        (book.period == 0).astype(float), DT_H * book.direction, 1 + area_of_bid, area_of_bid >= 0,
        np.arange(len(book)).tobytes()))


def _add_by_payer(pay: np.ndarray, payer: np.ndarray, values: np.ndarray) -> None:
    """``pay[payer] += values`` in order (``np.add.at``); as one ``np.bincount`` (several times faster,
    the same sums bit for bit) while ``pay`` is still all zero, i.e. for the first paying record."""
    if pay.any():
        np.add.at(pay, payer, values)
    else:
        pay += np.bincount(payer, weights=values, minlength=len(pay))


def split_payments(inst: MarketInstance, out: ClearingOutcome, delivered: np.ndarray, n_areas: int,
                   area_of_bid: np.ndarray) -> np.ndarray:
    """Payment for the delivered first-period activations, by payer: [TSO, DSO_0, …]."""
    book = inst.book
    lay = _payment_layout(book, np.asarray(area_of_bid))
    pay = np.zeros(n_areas + 1)
    act = out.activated_mw
    # only the binding first period is paid, for what was delivered: the paid share of each bid
    share = np.divide(delivered, act, out=np.zeros(len(act)), where=act > 1e-12) * lay.first
    for rec in out.records:
        idx = rec.bids
        if rec.payment_eur is None or not rec.result.ok or not len(idx):
            continue
        # a joint stage's bids are every bid in order: views instead of gathers
        rows = slice(None) if idx.dtype == np.intp and idx.tobytes() == lay.every_bid else idx
        sh = share[rows]
        p = rec.payment_eur * sh
        if rec.name.startswith(("local_", "dso_")):
            _add_by_payer(pay, lay.payer[rows], p)
        elif rec.name.startswith("joint"):
            res = rec.result
            lam = 0.0
            if res.uniform_price.shape[0]:
                lam = res.uniform_price[0]
                if not np.isfinite(lam).all():
                    lam = np.nan_to_num(lam)
                lam = lam[book.period[rows]]
            # the DSO pays the locational difference to the uniform price (its congestion share)
            congestion = np.where(lay.in_area[rows], p - lay.dt_direction[rows] * lam * res.x_mw * sh, 0.0)
            tso = pay[0]                  # (the TSO's rows add their 0.0 to its bin: set it here)
            _add_by_payer(pay, lay.payer[rows], congestion)
            pay[0] = tso + (p.sum() - congestion.sum())
        else:
            pay[0] += p.sum()
    return pay


@lru_cache(maxsize=16)
def _concentration_columns(n_markets: int) -> tuple[str, ...]:
    """Account columns of :func:`binding_concentration`, market by market (global first)."""
    return tuple(f"{'' if j == 0 else f'local_{j - 1}_'}{k}"
                 for j in range(n_markets) for k in _CONCENTRATION_FIELDS)


@lru_cache(maxsize=16)
def _dso_columns(n_areas: int) -> tuple[str, ...]:
    """Per-DSO account columns, DSO by DSO."""
    return tuple(f"dso{a}_{k}" for a in range(n_areas)
                 for k in ("market_cost_eur", "unwanted_cost_eur", "violations", "unresolved_cost_eur",
                           "unresolved_voltage_pu_h", "unresolved_loading_pct_h"))


def step_account(inst: MarketInstance, out: ClearingOutcome, *, cfg: ScenarioConfig, scheme: str, step: int,
                 n_areas: int, area_of_bid: np.ndarray, delivered: np.ndarray, unit_mw: np.ndarray,
                 need_real_mw: float, curtailed_market_mwh: float, violations: Violations,
                 unwanted: UnwantedOutcome | None, physical: PhysicalState) -> dict:
    """The CBA row of step ``step`` of ``scheme`` (floats only; per-DSO columns named dso<k>_…).

    ``area_of_bid`` is the area of each bid of ``inst.book`` (−1 = transmission).
    """
    book = inst.book
    pay = split_payments(inst, out, delivered, n_areas, area_of_bid)
    true_cost = float(DT_H * (book.true_cost_eur_per_mwh * delivered).sum())
    market = float(pay.sum())
    act_net = float(unit_mw.sum())
    unw_net = float(unwanted.net_injection_mw) if unwanted else 0.0
    afrr_signed_mwh = DT_H * (need_real_mw - act_net - unw_net)
    price0 = float(out.uniform_price_eur_per_mwh[0])
    finite0 = math.isfinite(price0)
    afrr_eur_per_mwh = afrr_price(cfg, book, out.activated_mw, afrr_signed_mwh / DT_H)
    afrr_cost = abs(afrr_signed_mwh) * afrr_eur_per_mwh
    unw_cost = float(unwanted.cost_eur) if unwanted else 0.0
    unw_area = unwanted.per_area_eur if unwanted else np.zeros(n_areas + 1)
    ict = float(ict_cost_per_step(cfg.cba, scheme))
    pay_tso, unw_tso = float(pay[0]), float(unw_area[-1])
    unres_cost, unres_v, unres_load = ((unwanted.unresolved.cost_eur, unwanted.unresolved.voltage_pu_h,
                                        unwanted.unresolved.loading_pct_h) if unwanted else
                                       (np.zeros(n_areas + 1), np.zeros(n_areas), np.zeros(n_areas + 1)))
    unres_tso = float(unres_cost[-1])
    row = {
        "step": float(step), "need_forecast_mw": float(inst.need_mw[0]), "need_real_mw": float(need_real_mw),
        "market_cost_eur": market, "market_cost_tso_eur": pay_tso,
        "bidders_true_cost_eur": true_cost, "bidders_profit_eur": market - true_cost,
        "activation_mwh": float(DT_H * delivered.sum()), "activation_net_mwh": DT_H * act_net,
        "afrr_energy_mwh": abs(afrr_signed_mwh), "afrr_signed_mwh": afrr_signed_mwh,
        "afrr_price_eur_per_mwh": afrr_eur_per_mwh, "afrr_cost_eur": afrr_cost,
        "imbalance_mwh": float(abs(DT_H * need_real_mw)), "imbalance_signed_mwh": float(DT_H * need_real_mw),
        "unwanted_cost_eur": unw_cost, "unwanted_energy_mwh": float(unwanted.energy_mwh) if unwanted else 0.0,
        "unwanted_net_mwh": DT_H * unw_net,
        "unwanted_cost_tso_eur": unw_tso,
        "unresolved_cost_eur": float(unres_cost.sum()), "unresolved_cost_tso_eur": unres_tso,
        "unresolved_voltage_pu_h": float(unres_v.sum()), "unresolved_loading_pct_h": float(unres_load.sum()),
        "d_violations": float(violations.d_total), "t_violations": float(violations.t_loading),
        "max_voltage_dev_pu": float(violations.max_voltage_dev_pu),
        "max_loading_pct": float(violations.max_loading_pct),
        "curtailed_mwh": float(curtailed_market_mwh + (unwanted.curtailed_mwh if unwanted else 0.0)),
        "ict_cost_eur": ict,
        "clearing_failures": float(out.status != "optimal"),
        "pf_failures": float(not physical.converged),
        "slack_mw": float(out.slack_mw),
        "uniform_price_eur_per_mwh": price0 if finite0 else float("nan"),
        "solve_ms": float(out.solve_ms),
    }
    # market-power indicators of the global market and each local market, binding period; local
    # needs are the areas' own imbalance (their congestion need is not known in advance)
    conc = binding_concentration(book, out.activated_mw, inst.need_mw, area_of_bid, inst.area_need_mw)
    per_market = zip(*(conc[k].tolist() for k in _CONCENTRATION_FIELDS))
    row.update(zip(_concentration_columns(len(conc["rsi"])), (v for fig in per_market for v in fig)))
    row["total_cost_eur"] = sum(row[k] for k in COST_COMPONENTS)
    row["tso_cost_eur"] = pay_tso + afrr_cost + unw_tso + unres_tso
    dso = zip(pay[1:].tolist(), unw_area[:n_areas].tolist(), violations.per_area[:n_areas].tolist(),
              unres_cost[:n_areas].tolist(), unres_v.tolist(), unres_load[:n_areas].tolist(),
              strict=True)
    row.update(zip(_dso_columns(n_areas), (float(v) for area in dso for v in area)))
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
    sums = ["total_cost_eur", "market_cost_eur", "afrr_cost_eur", "unwanted_cost_eur", "unresolved_cost_eur",
            "unresolved_voltage_pu_h", "unresolved_loading_pct_h", "ict_cost_eur",
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
