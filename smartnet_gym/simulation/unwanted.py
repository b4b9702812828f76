"""Unwanted measures: forced curtailment and load shedding that remove what the market left violated.

A one-period clearing over the full linear T&D model around the realised state, whose only
"bids" are forced curtailment of generation and shedding of load at every bus, priced at the
VoLL-like penalty; network penalties are raised tenfold so that removing a violation is always
worth it. Whatever even this cannot remove is reported as remaining violation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smartnet_gym.config import MarketConfig
from smartnet_gym.grid.linear import BaseState
from smartnet_gym.grid.system import TDSystem
from smartnet_gym.market.bids import BidBook
from smartnet_gym.market.clearing import ClearingProgram
from smartnet_gym.market.program import DT_H, ProgramSpec


@dataclass(frozen=True)
class UnwantedOutcome:
    energy_mwh: float            # Σ |forced change| × Δt
    cost_eur: float
    net_injection_mw: float      # Σ signed injection change (shedding +, curtailment −)
    curtailed_mwh: float         # generation curtailed by force
    per_area_eur: np.ndarray     # (n_areas + 1,) last entry: transmission
    unit_mw: np.ndarray          # (n_options,) forced change per option
    status: str


class UnwantedMeasures:
    """Built once per system: options at every bus with load or generation."""

    def __init__(self, system: TDSystem, cfg: MarketConfig, voll_eur_per_mwh: float):
        lin = system.linear
        self.system, self.voll = system, voll_eur_per_mwh
        buses = np.array(sorted(lin.bus_area), dtype=np.int64)
        net_pos = system.net.bus.index
        self.bus = buses
        # option k: shed load at bus (up, +) or curtail generation at bus (down, −)
        self.book = BidBook.from_arrays(bus=np.r_[buses, buses], direction=np.r_[np.ones(len(buses)), -np.ones(len(buses))],
                                        period=np.zeros(2 * len(buses)), qty_mw=np.zeros(2 * len(buses)),
                                        price_eur_per_mwh=np.full(2 * len(buses), voll_eur_per_mwh))
        self.area = lin.locate(self.book.bus)[0]
        areas = tuple(f.area for f in lin.feeders)
        strict = cfg.model_copy(update={
            "qp_epsilon": 0.0,
            "network_penalty_eur_per_mwh": 10 * max(cfg.network_penalty_eur_per_mwh, voll_eur_per_mwh),
            "voltage_penalty_eur_per_pu2h": 10 * cfg.voltage_penalty_eur_per_pu2h})
        self.prog = ClearingProgram(lin, self.book, ProgramSpec(True, areas, ()), 1, strict, "highs")
        self.bus_rows = net_pos.get_indexer(buses)

    def run(self, state: BaseState, load_bus_mw: np.ndarray, gen_bus_mw: np.ndarray) -> UnwantedOutcome:
        """Remove violations of ``state``; load/gen per bus (net.bus order) bound the options."""
        n = len(self.bus)
        qty = np.r_[np.maximum(load_bus_mw[self.bus_rows], 0.0), np.maximum(gen_bus_mw[self.bus_rows], 0.0)]
        book = self.book.with_values(qty_mw=qty)
        res = self.prog.solve(book, state, np.zeros((0, 1)))
        n_areas = len(self.system.areas)
        if not res.ok:
            return UnwantedOutcome(0.0, 0.0, 0.0, 0.0, np.zeros(n_areas + 1), np.zeros(2 * n), res.status)
        x = np.where(res.x_mw > 1e-7, res.x_mw, 0.0)
        cost = DT_H * self.voll * x
        per_area = np.zeros(n_areas + 1)
        np.add.at(per_area, np.where(self.area >= 0, self.area, n_areas), cost)
        return UnwantedOutcome(float(DT_H * x.sum()), float(cost.sum()), float((book.direction * x).sum()),
                               float(DT_H * x[n:].sum()), per_area, x, res.status)
