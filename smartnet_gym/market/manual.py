"""An operator's own activation decision turned into a clearing outcome (no optimisation).

Used by operator environments: the agent picks activations directly; they are settled
pay-as-bid (there is no market price without a clearing) and booked to the TSO.
"""

from __future__ import annotations

import numpy as np

from smartnet_gym.market.clearing import ProgramResult
from smartnet_gym.market.program import DT_H
from smartnet_gym.market.schemes.base import ClearingOutcome
from smartnet_gym.market.stages import MarketInstance, StageRecord


def manual_outcome(inst: MarketInstance, x_mw: np.ndarray, scheme: str) -> ClearingOutcome:
    """Activations ``x_mw`` (clipped to the offers) as a ClearingOutcome paid at the bid prices."""
    book, h = inst.book, inst.horizon
    x = np.clip(np.asarray(x_mw, float), 0.0, book.qty_mw)
    net = np.zeros(h)
    np.add.at(net, book.period, book.direction * x)
    price = book.price_eur_per_mwh.astype(float)
    cost = float(DT_H * (price * x).sum())
    res = ProgramResult("optimal", cost, x, np.zeros(0), np.zeros((1, h)), 0.0, 0.0,
                        np.full((1, h), np.nan), book.direction * price, 0.0, x)
    return ClearingOutcome(
        scheme=scheme, variant="operator", status="optimal", failed_stages=0, objective_eur=cost,
        activated_mw=x, payment_eur=DT_H * price * x, true_cost_eur=DT_H * book.true_cost_eur_per_mwh * x,
        residual_imbalance_mw=inst.need_mw - net, balance_slack_mw=0.0, network_slack_mw=0.0,
        voltage_slack_pu2=0.0, uniform_price_eur_per_mwh=np.full(h, np.nan), served_buy_mw=np.zeros(0),
        solve_ms=0.0, records=(StageRecord("operator", res, np.arange(len(book)), None, DT_H * price * x),))
