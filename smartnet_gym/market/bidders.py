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
    """Which (unit, direction, period) each bid row is; built once per system and horizon.

    Everything the truthful book takes from the unit table is gathered here once, so that a
    book per step is a few array operations.
    """

    unit: np.ndarray
    direction: np.ndarray
    period: np.ndarray
    bus: np.ndarray
    storage: np.ndarray
    storage_units: np.ndarray    # unit index of each battery, in storage-index order
    storage_energy_mwh: np.ndarray   # energy capacity of each battery
    rated_mw: np.ndarray         # rated power of each row's unit: the offer of rows no forecast bounds
    cost_eur_per_mwh: np.ndarray     # true cost of each row (its unit's up or down cost)
    sgen_rows: np.ndarray        # rows bounded by their sgen's forecast output (PV, wind curtailment)
    sgen_at: tuple[np.ndarray, np.ndarray]   # (period, sgen) of each of sgen_rows in an (H, n_sgen) forecast
    load_rows: np.ndarray        # rows bounded by a share of their load's forecast (demand response)
    load_at: tuple[np.ndarray, np.ndarray]   # (period, load) of each of load_rows in an (H, n_load) forecast

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
    kind, el = units.kind[unit], units.element_idx[unit]
    sgen_rows = np.flatnonzero(np.isin(kind, CURTAILABLE) & (el >= 0))
    load_rows = np.flatnonzero((kind == UnitKind.LOAD) & (el >= 0))
    cost = np.where(direction > 0, units.cost_up_eur_per_mwh[unit], units.cost_down_eur_per_mwh[unit])
    return BookLayout(unit, direction, period, units.bus[unit], sid[unit], storage_units,
                      units.energy_mwh[storage_units].astype(float), units.p_rated_mw[unit].astype(float),
                      cost.astype(float), sgen_rows, (period[sgen_rows], el[sgen_rows]),
                      load_rows, (period[load_rows], el[load_rows]))


def available_mw(layout: BookLayout, load_p: np.ndarray, sgen_p: np.ndarray, load_flex_share: float) -> np.ndarray:
    """Offered quantity of each bid row from the forecast (load_p, sgen_p: (H, n_element))."""
    qty = layout.rated_mw.copy()
    qty[layout.sgen_rows] = np.maximum(sgen_p[layout.sgen_at], 0.0)
    qty[layout.load_rows] = load_flex_share * np.maximum(load_p[layout.load_at], 0.0)
    return qty


def truthful_book(layout: BookLayout, load_p: np.ndarray, sgen_p: np.ndarray, load_flex_share: float,
                  soc_mwh: np.ndarray) -> BidBook:
    """The competitive book: available quantity at true cost."""
    st = StorageState(layout.storage_energy_mwh.copy(), np.asarray(soc_mwh, float))
    return BidBook(unit=layout.unit, bus=layout.bus, direction=layout.direction, period=layout.period,
                   qty_mw=available_mw(layout, load_p, sgen_p, load_flex_share),
                   price_eur_per_mwh=layout.cost_eur_per_mwh.copy(),
                   true_cost_eur_per_mwh=layout.cost_eur_per_mwh.copy(),
                   storage=layout.storage, storage_state=st)
