"""Scripted truthful bidders: every unit offers its available flexibility at its true cost.

This is the competitive benchmark. The book layout is fixed per system (one bid per unit,
direction it can offer, and period), so programs are built once and agents only change
quantities and prices. Availability per period comes from the forecast:

| kind | up (more injection) | down (less injection) |
|---|---|---|
| PV, WIND | 0 | forecast output (curtailment) |
| LOAD | share × forecast load (consume less) | share × forecast load (consume more) |
| STORAGE | rated power (SoC linked in the clearing) | rated power |
| GENERATOR | rated range | rated range |
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smartnet_gym.grid.system import UnitKind, UnitTable
from smartnet_gym.market.bids import BidBook, StorageState

CURTAILABLE = (UnitKind.PV, UnitKind.WIND)


@dataclass(frozen=True)
class BookLayout:
    """Which (unit, direction, period) each bid row is; built once per system and horizon."""

    unit: np.ndarray
    direction: np.ndarray
    period: np.ndarray
    bus: np.ndarray
    storage: np.ndarray
    storage_units: np.ndarray    # unit index of each battery, in storage-index order

    def __len__(self) -> int:
        return len(self.unit)


def book_layout(units: UnitTable, horizon: int) -> BookLayout:
    """One bid per unit, offered direction and period (periods outermost, then units)."""
    u_rows, d_rows = [], []
    for u in range(len(units)):
        kind = UnitKind(int(units.kind[u]))
        dirs = (-1,) if kind in CURTAILABLE else (1, -1)
        for d in dirs:
            u_rows.append(u)
            d_rows.append(d)
    u1 = np.array(u_rows, int)
    d1 = np.array(d_rows, int)
    unit = np.tile(u1, horizon)
    direction = np.tile(d1, horizon)
    period = np.repeat(np.arange(horizon), len(u1))
    storage_units = np.flatnonzero(units.kind == UnitKind.STORAGE)
    sid = np.full(len(units), -1)
    sid[storage_units] = np.arange(len(storage_units))
    return BookLayout(unit, direction, period, units.bus[unit], sid[unit], storage_units)


def available_mw(units: UnitTable, layout: BookLayout, load_p: np.ndarray, sgen_p: np.ndarray,
                 load_flex_share: float) -> np.ndarray:
    """Offered quantity of each bid row from the forecast (load_p, sgen_p: (H, n_element))."""
    u, t = layout.unit, layout.period
    kind = units.kind[u]
    el = units.element_idx[u]
    qty = units.p_rated_mw[u].astype(float).copy()
    curt = np.isin(kind, CURTAILABLE) & (el >= 0)
    qty[curt] = np.maximum(sgen_p[t[curt], el[curt]], 0.0)
    load = (kind == UnitKind.LOAD) & (el >= 0)
    qty[load] = load_flex_share * np.maximum(load_p[t[load], el[load]], 0.0)
    return qty


def truthful_book(units: UnitTable, layout: BookLayout, load_p: np.ndarray, sgen_p: np.ndarray,
                  load_flex_share: float, soc_mwh: np.ndarray) -> BidBook:
    """The competitive book: available quantity at true cost."""
    u = layout.unit
    cost = np.where(layout.direction > 0, units.cost_up_eur_per_mwh[u], units.cost_down_eur_per_mwh[u])
    st = StorageState(units.energy_mwh[layout.storage_units].astype(float), np.asarray(soc_mwh, float))
    return BidBook(unit=u, bus=layout.bus, direction=layout.direction, period=layout.period,
                   qty_mw=available_mw(units, layout, load_p, sgen_p, load_flex_share),
                   price_eur_per_mwh=cost.astype(float), true_cost_eur_per_mwh=cost.astype(float),
                   storage=layout.storage, storage_state=st)
