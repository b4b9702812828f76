"""Scheme: an ordered composition of clearing stages, folded over one market instance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from smartnet_gym.config import MarketConfig
from smartnet_gym.grid.linear import LinearTD
from smartnet_gym.market.program import DT_H
from smartnet_gym.market.stages import (
    ClearingState,
    JointClearing,
    MarketInstance,
    NetworkResponse,
    Stage,
    StageRecord,
    evaluate_cost,
    evaluation_stage,
)


@dataclass(frozen=True)
class ClearingOutcome:
    """Result of one clearing of one scheme (all periods of the horizon)."""

    scheme: str
    variant: str
    status: str                     # "optimal" or the first failing stage's status
    failed_stages: int
    objective_eur: float            # Σ of the stages' program objectives
    activated_mw: np.ndarray        # (n_bids,)
    payment_eur: np.ndarray         # (n_bids,) to each provider
    true_cost_eur: np.ndarray       # (n_bids,) provider's real cost
    residual_imbalance_mw: np.ndarray   # (H,) need − net activation (+ = still short)
    balance_slack_mw: float         # Σ |balance slacks| over stages and periods
    network_slack_mw: float         # Σ flow-limit slacks of the stages
    voltage_slack_pu2: float
    uniform_price_eur_per_mwh: np.ndarray  # (H,) of the last stage that balanced
    served_buy_mw: np.ndarray       # (n_buy,) CS_E
    solve_ms: float
    records: tuple[StageRecord, ...]
    evaluated_cost_eur: float = float("nan")
    forced_mw: np.ndarray = field(default_factory=lambda: np.zeros(0))   # planned forced measures (inst.forced rows)

    @property
    def market_cost_eur(self) -> float:
        """What the buyers (operators, BRPs in CS_E) pay the providers."""
        return float(self.payment_eur.sum())

    @property
    def profit_eur(self) -> np.ndarray:
        return self.payment_eur - self.true_cost_eur

    @property
    def slack_mw(self) -> float:
        return self.balance_slack_mw + self.network_slack_mw


class Scheme:
    """A coordination scheme = a name, a variant and a tuple of stages; no scheme subclasses another."""

    def __init__(self, name: str, variant: str, stages: Sequence[Stage], lin: LinearTD, cfg: MarketConfig):
        self.name, self.variant, self.stages, self.lin, self.cfg = name, variant, tuple(stages), lin, cfg
        self.response = NetworkResponse(lin)
        self._evaluator: JointClearing | None = None

    def reset(self) -> None:
        """Cold solvers (as a new scheme would have), keeping the built programs' static parts."""
        for stage in self.stages:
            stage.reset()
        if self._evaluator is not None:
            self._evaluator.reset()

    def clear(self, inst: MarketInstance, evaluate: bool = True) -> ClearingOutcome:
        """Run the stages in order; never raises on solver trouble (statuses are reported).

        The stages clear the bids and, where the instance offers them, the forced measures
        (:meth:`MarketInstance.with_forced_options`); the outcome is the bids' (records included),
        the planned forced measures apart (``forced_mw``)."""
        full = inst.with_forced_options()
        state = ClearingState.start(full, self.cfg)
        for stage in self.stages:
            stage.run(full, state, self.response)
        return self._outcome(inst, full, state, evaluate)

    def evaluate(self, inst: MarketInstance, x: np.ndarray) -> float:
        """Cost of activations ``x`` in the full linear T&D model with the common penalties (and the
        forced measures the instance offers, cleared at their best given ``x``)."""
        if self._evaluator is None:
            self._evaluator = evaluation_stage(self.lin, self.cfg)
        return evaluate_cost(self._evaluator, inst, x)[0]

    def _outcome(self, inst: MarketInstance, full: MarketInstance, state: ClearingState,
                 evaluate: bool) -> ClearingOutcome:
        h, n = inst.horizon, len(inst.book)
        book = inst.book
        net = np.bincount(book.period, weights=book.direction * state.activated_mw[:n], minlength=h)
        records = state.records if full is inst else [_bids_only(r, n) for r in state.records]
        results = [r.result for r in state.records]
        failed = [r for r in results if not r.ok]
        price = np.full(h, np.nan)
        for r in results:
            if r.ok and r.uniform_price.shape[0]:
                price = r.uniform_price[0]
        return ClearingOutcome(
            scheme=self.name, variant=self.variant,
            status="optimal" if not failed else failed[0].status, failed_stages=len(failed),
            objective_eur=float(sum(r.objective_eur for r in results if r.ok)),
            activated_mw=state.activated_mw[:n], payment_eur=state.payment_eur[:n],
            true_cost_eur=DT_H * book.true_cost_eur_per_mwh * state.activated_mw[:n],
            residual_imbalance_mw=inst.need_mw - net,
            balance_slack_mw=float(sum(np.abs(r.balance_slack_mw).sum() for r in results)),
            network_slack_mw=float(sum(r.flow_slack_mw for r in results)),
            voltage_slack_pu2=float(sum(r.voltage_slack_pu2 for r in results)),
            uniform_price_eur_per_mwh=price, served_buy_mw=state.served_buy_mw,
            solve_ms=float(sum(r.solve_ms for r in results)), records=tuple(records),
            evaluated_cost_eur=self.evaluate(inst, state.activated_mw[:n]) if evaluate else float("nan"),
            forced_mw=state.activated_mw[n:])


def _bids_only(rec: StageRecord, n: int) -> StageRecord:
    """``rec`` restricted to the first ``n`` rows of the cleared book (the bids, without the forced
    measures that follow them)."""
    keep = rec.bids < n
    if keep.all():
        return rec
    res = replace(rec.result, x_mw=rec.result.x_mw[keep], bid_price=rec.result.bid_price[keep])
    return replace(rec, result=res, bids=rec.bids[keep],
                   payment_eur=None if rec.payment_eur is None else rec.payment_eur[keep])
