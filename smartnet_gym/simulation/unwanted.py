"""Unwanted measures: forced curtailment and load shedding that remove what the market left violated.

The clearing may hold the same measures as options (:class:`ForcedOptions`,
``market.forced_measures``): it then values a forecast violation at what the measures that remove
it cost and buys flexibility only where that is cheaper. It does not dispatch them: the measures
below remove what the grid shows after delivery, as without the options.

A one-period clearing over the full linear T&D model around the realised state, whose only
"bids" are forced curtailment of generation and shedding of load at every bus, priced at VoLL.
Its slack penalties are a thousand times the value of the violations
(:mod:`smartnet_gym.market.penalties`, with VoLL as the basis) and do not depend on the market's
penalties: every violation forced measures can remove is removed, at VoLL per MWh.

What even they cannot remove is *unresolved*: its size after the measures (the linear state
around the realised one plus their response) in pu·h of voltage outside the band and % of
rating·h of overload, per DSO and for the TSO, priced on the same basis — VoLL per MW·h of
D overload, VoLL / max_k |PTDF_lk| per MW·h of T overload and VoLL / S_k per pu²·h of squared-voltage excess at bus k (S_k its voltage
sensitivity): what removing it would cost if forced measures could.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smartnet_gym.config import MarketConfig
from smartnet_gym.grid.linear import BaseState
from smartnet_gym.grid.sensitivity import activation_response
from smartnet_gym.grid.system import TDSystem
from smartnet_gym.market.bids import FORCED_UNIT, BidBook
from smartnet_gym.market.clearing import ClearingProgram
from smartnet_gym.market.penalties import (
    REMOVAL_PRIORITY,
    branch_relief_sensitivity,
    root_gains,
    voltage_self_sensitivity,
)
from smartnet_gym.market.program import DT_H, ProgramSpec
from smartnet_gym.simulation.physics import ViolationCheck


@dataclass(frozen=True)
class Unresolved:
    """Violations forced measures could not remove (after them), per DSO and the TSO (last)."""

    cost_eur: np.ndarray          # (n_areas + 1,)
    voltage_pu_h: np.ndarray      # (n_areas,) Σ_bus |v outside the band| × Δt
    loading_pct_h: np.ndarray     # (n_areas + 1,) Σ_branch overload in % of rating × Δt

    @classmethod
    def none(cls, n_areas: int) -> Unresolved:
        return cls(np.zeros(n_areas + 1), np.zeros(n_areas), np.zeros(n_areas + 1))


@dataclass(frozen=True)
class UnwantedOutcome:
    energy_mwh: float            # Σ |forced change| × Δt
    cost_eur: float
    net_injection_mw: float      # Σ signed injection change (shedding +, curtailment −)
    curtailed_mwh: float         # generation curtailed by force
    per_area_eur: np.ndarray     # (n_areas + 1,) last entry: transmission
    unit_mw: np.ndarray          # (n_options,) forced change per option
    status: str
    unresolved: Unresolved


class ForcedOptions:
    """The forced measures as options of the clearing, for every period of its horizon: shedding
    the load of each bus that has load (up) and curtailing the generation of each bus that has
    generation (down), at VoLL, up to the outlook's load and generation there; outside every
    balance row (their imbalance is aFRR's, as that of the unwanted measures)."""

    def __init__(self, system: TDSystem, horizon: int, voll_eur_per_mwh: float):
        modelled = np.array(sorted(system.linear.bus_area), dtype=np.int64)
        load = np.intersect1d(np.unique(system.load_bus), modelled)
        gen = np.intersect1d(np.unique(system.sgen_bus), modelled)
        n = len(load) + len(gen)
        self.size = horizon * n                 # options in the book: every period
        # per (period, element) of the outlook: its option's position in the book (elements at
        # buses outside the model have none); each option sums its bus's elements
        self._load = np.flatnonzero(np.isin(system.load_bus, load))
        self._gen = np.flatnonzero(np.isin(system.sgen_bus, gen))
        offsets = n * np.arange(horizon)[:, None]
        self._load_pos = (offsets + np.searchsorted(load, system.load_bus[self._load])).ravel()
        self._gen_pos = (offsets + len(load) + np.searchsorted(gen, system.sgen_bus[self._gen])).ravel()
        bus = np.tile(np.r_[load, gen], horizon)
        self.layout = BidBook.from_arrays(
            bus=bus, direction=np.tile(np.r_[np.ones(len(load)), -np.ones(len(gen))], horizon),
            period=np.repeat(np.arange(horizon), n), qty_mw=np.zeros(len(bus)),
            price_eur_per_mwh=np.full(len(bus), voll_eur_per_mwh), unit=np.full(len(bus), FORCED_UNIT))

    def book(self, load_p: np.ndarray, sgen_p: np.ndarray) -> BidBook:
        """The options for an outlook: (H, n_load) load and (H, n_sgen) generation per element."""
        load_p, sgen_p = np.asarray(load_p), np.asarray(sgen_p)
        if len(self._load) < load_p.shape[1]:
            load_p = load_p[:, self._load]
        if len(self._gen) < sgen_p.shape[1]:
            sgen_p = sgen_p[:, self._gen]
        qty = np.bincount(self._load_pos, load_p.ravel(), self.size)
        qty += np.bincount(self._gen_pos, sgen_p.ravel(), self.size)
        return self.layout.with_values(qty_mw=np.maximum(qty, 0.0, out=qty))


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
            "qp_epsilon": 0.0, "penalty_scale": 1.0, "voltage_penalty_eur_per_pu2h": None, "forced_measures": False,
            "flow_reliability_margin_pct": 0.0,     # forced measures remove violations of the ratings
            "network_penalty_eur_per_mwh": REMOVAL_PRIORITY * voll_eur_per_mwh})
        self.prog = ClearingProgram(lin, self.book, ProgramSpec(True, areas, (), root_coupling=True), 1, strict, "highs")
        self.bus_rows = net_pos.get_indexer(buses)
        self._both_rows = np.concatenate((self.bus_rows, self.bus_rows))    # the options' buses, up then down
        self.n_bus = len(net_pos)
        self.check = ViolationCheck(system)
        # MW a forced measure must move per MW of overload removed from each limited T branch
        self.t_relief = branch_relief_sensitivity(lin.dc)[self.check.t_limited]
        # value of a squared-voltage excess at each D bus (ViolationCheck's node order) [EUR/(pu²·h)]
        gains = root_gains(lin)
        self.w_price = voll_eur_per_mwh / np.concatenate(
            [voltage_self_sensitivity(f, gains[f.area]) for f in lin.feeders]) if lin.feeders else np.zeros(0)

    def run(self, state: BaseState, load_bus_mw: np.ndarray, gen_bus_mw: np.ndarray) -> UnwantedOutcome:
        """Remove violations of ``state``; load/gen per bus (net.bus order) bound the options."""
        n = len(self.bus)
        qty = np.maximum(np.concatenate((load_bus_mw[self.bus_rows], gen_bus_mw[self.bus_rows])), 0.0)
        book = self.book.with_values(qty_mw=qty)
        res = self.prog.solve(book, state, np.zeros((0, 1)))
        n_areas = len(self.system.areas)
        if not res.ok:     # no measures: every violation stays, unresolved
            return UnwantedOutcome(0.0, 0.0, 0.0, 0.0, np.zeros(n_areas + 1), np.zeros(2 * n), res.status,
                                   self.unresolved(state))
        x = np.where(res.x_mw > 1e-7, res.x_mw, 0.0)
        cost = DT_H * self.voll * x
        per_area = np.zeros(n_areas + 1)
        np.add.at(per_area, np.where(self.area >= 0, self.area, n_areas), cost)
        dp = np.zeros(self.n_bus)
        np.add.at(dp, self._both_rows, book.direction * x)
        after = state.first_period(activation_response(self.system.linear, dp))
        return UnwantedOutcome(float(DT_H * x.sum()), float(cost.sum()), float((book.direction * x).sum()),
                               float(DT_H * x[n:].sum()), per_area, x, res.status, self.unresolved(after))

    def unresolved(self, st: BaseState) -> Unresolved:
        """Size and value of the violations of a one-period state, per DSO and the TSO (last)."""
        c = self.check
        n_areas = c.n_areas
        e = c.elements(st)
        w_excess = np.maximum(e.w - c.v_max ** 2, 0.0) + np.maximum(c.v_min ** 2 - e.w, 0.0)
        d_over = np.maximum(e.d_mva - c.d_rating, 0.0)
        t_over = np.maximum(e.t_mw - c.t_rating, 0.0)
        dev = e.v_dev
        d_area = c.node_area[c.d_limited]
        cost = np.zeros(n_areas + 1)
        cost[:n_areas] = DT_H * (np.bincount(c.node_area, self.w_price * w_excess, n_areas)
                                 + self.voll * np.bincount(d_area, d_over, n_areas))
        cost[n_areas] = DT_H * self.voll * (t_over / self.t_relief).sum()
        loading = np.zeros(n_areas + 1)
        loading[:n_areas] = DT_H * np.bincount(d_area, d_over / c.d_rating * 100.0, n_areas)
        loading[n_areas] = DT_H * (t_over / c.t_rating * 100.0).sum()
        return Unresolved(cost, DT_H * np.bincount(c.node_area, dev, n_areas), loading)
