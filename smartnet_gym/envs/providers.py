"""Strategic flexibility providers: which bids they own, how actions become bids, what they earn.

A provider is a set of flexible units (one unit, or an aggregator of several). Its *rows* are the
rows of the loop's bid book that belong to its units (every offered direction and period of the
horizon). Each row is mapped to an action *slot*; :class:`BidMapper` turns the slot actions into
prices (and optionally quantities) of those rows:

    price = cost + share(a_price) · max(price_cap − cost, 0)      share(a) = (a + 1) / 2
    qty   = share(a_qty) · forecast available quantity            (only with ``bid_quantity``)

so a = −1 is the truthful bid (price = true cost; quantity 0 only for a_qty = −1) and a = +1 bids
the price cap. :func:`settle` books the provider's first-period payment and true cost scaled by
what was really delivered, the same rule as the CBA account (``cba.accounts.split_payments``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from smartnet_gym.envs.spaces import scaled, share, time_features
from smartnet_gym.errors import UnknownNameError, did_you_mean
from smartnet_gym.grid.system import UnitKind
from smartnet_gym.market.program import DT_H

if TYPE_CHECKING:
    from smartnet_gym.envs.core import EpisodeCore
    from smartnet_gym.grid.system import TDSystem
    from smartnet_gym.market.bids import BidBook
    from smartnet_gym.market.stages import MarketInstance
    from smartnet_gym.simulation.loop import StepOutcome

TRANSMISSION = "transmission"


def resolve_provider(system: TDSystem, provider: str | Sequence[str] | None) -> np.ndarray:
    """Unit indices (sorted) of a provider given by unit name(s) and/or area name(s).

    None = every unit of area 0 (the aggregator of its largest D units and its battery). An area
    name (``"MV1.101"``), its DSO name (``"DSO1"``) or ``"transmission"`` selects all its units.
    """
    units = system.units
    by_area = {a.name: a.index for a in system.areas} | {a.dso: a.index for a in system.areas}
    by_area[TRANSMISSION] = -1
    if provider is None:
        provider = [system.areas[0].name]
    names = [provider] if isinstance(provider, str) else list(provider)
    if not names:
        raise ValueError("provider: give at least one unit or area name")
    chosen: set[int] = set()
    for n in names:
        if n in by_area:
            chosen.update(np.flatnonzero(units.area == by_area[n]).tolist())
        elif n in units.name:
            chosen.add(units.name.index(n))
        else:
            raise UnknownNameError(did_you_mean(n, list(units.name) + list(by_area), "provider (unit or area)"))
    if not chosen:
        raise ValueError(f"provider {provider!r} has no flexible units")
    return np.array(sorted(chosen), dtype=int)


ACTION_MODES = ("bid", "unit", "provider")


def action_slots(layout, rows: np.ndarray, mode: str, unit_names: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """The action slot of each of a provider's ``rows`` and each slot's name, for ``mode``: one
    slot per bid row (``"bid"``), per unit × direction (``"unit"``: shared over the horizon), or per
    direction (``"provider"``: one markup up, one down)."""
    if mode not in ACTION_MODES:
        raise ValueError(f"action_mode: must be one of {', '.join(ACTION_MODES)} (got {mode!r})")
    unit, up = layout.unit[rows], layout.direction[rows] > 0
    word = np.where(up, "up", "down")
    if mode == "bid":
        return np.arange(len(rows)), [f"{unit_names[u]} {w} t+{t}" for u, w, t in
                                      zip(unit, word, layout.period[rows], strict=True)]
    key = unit * 2 + up if mode == "unit" else up.astype(np.int64)
    _, first, slot = np.unique(key, return_index=True, return_inverse=True)
    names = [f"{unit_names[unit[i]]} {word[i]}" if mode == "unit" else f"all {word[i]}" for i in first]
    return slot, names


class BidMapper:
    """Maps the slot actions of one provider onto its rows of the bid book.

    :param rows: book rows of the provider (layout order).
    :param slot: action slot of each row (0..n_slots−1); rows sharing a slot get the same action.
    :param n_slots: price actions of this provider; the action has ``2·n_slots`` entries with
        ``bid_quantity`` (prices first, then quantity shares).
    """

    def __init__(self, rows: np.ndarray, slot: np.ndarray, n_slots: int, price_cap_eur_per_mwh: float,
                 bid_quantity: bool):
        self.rows, self.slot, self.n_slots = np.asarray(rows, int), np.asarray(slot, int), int(n_slots)
        self.cap, self.bid_quantity = float(price_cap_eur_per_mwh), bool(bid_quantity)

    @property
    def n_actions(self) -> int:
        return self.n_slots * (2 if self.bid_quantity else 1)

    def apply(self, price: np.ndarray, qty: np.ndarray, cost: np.ndarray, a: np.ndarray) -> None:
        """Write this provider's prices (and quantities) into ``price``/``qty`` in place."""
        r = self.rows
        c = cost[r]
        price[r] = c + share(a[self.slot]) * np.maximum(self.cap - c, 0.0)
        if self.bid_quantity:
            qty[r] = qty[r] * share(a[self.n_slots + self.slot])


def bid_book(truthful: BidBook, mappers: Sequence[BidMapper], actions: Sequence[np.ndarray]) -> BidBook:
    """The truthful book with each provider's rows replaced by its action's bids."""
    price = truthful.price_eur_per_mwh.copy()
    qty = truthful.qty_mw.copy()
    for m, a in zip(mappers, actions, strict=True):
        m.apply(price, qty, truthful.true_cost_eur_per_mwh, a)
    return truthful.with_values(qty_mw=qty, price_eur_per_mwh=price)


@dataclass(frozen=True)
class Settlement:
    """What one provider got for the binding (first) period of one step."""

    payment_eur: float        # paid for the delivered energy (pay-as-clear or pay-as-bid)
    true_cost_eur: float      # its real cost of the delivered energy
    activated_mwh: float      # cleared energy of period 0
    delivered_mwh: float      # energy really delivered

    @property
    def profit_eur(self) -> float:
        return self.payment_eur - self.true_cost_eur

    @property
    def undelivered_mwh(self) -> float:
        return max(self.activated_mwh - self.delivered_mwh, 0.0)

    def as_info(self, prefix: str = "provider_") -> dict[str, float]:
        return {f"{prefix}payment_eur": self.payment_eur, f"{prefix}true_cost_eur": self.true_cost_eur,
                f"{prefix}activated_mwh": self.activated_mwh, f"{prefix}delivered_mwh": self.delivered_mwh,
                "profit_eur": self.profit_eur}


def reward_args(reward_scale_eur: float, non_delivery_penalty_eur_per_mwh: float) -> tuple[float, float]:
    """Validated (reward scale [EUR], non-delivery penalty [EUR/MWh]) of a bidding env."""
    if not reward_scale_eur > 0:
        raise ValueError(f"reward_scale_eur: must be > 0 (got {reward_scale_eur})")
    if not non_delivery_penalty_eur_per_mwh >= 0:
        raise ValueError(f"non_delivery_penalty_eur_per_mwh: must be >= 0 (got {non_delivery_penalty_eur_per_mwh})")
    return float(reward_scale_eur), float(non_delivery_penalty_eur_per_mwh)


def provider_reward(s: Settlement, penalty_eur_per_mwh: float, reward_scale_eur: float
                    ) -> tuple[float, dict[str, float]]:
    """``(profit − penalty · undelivered MWh) / scale`` and the provider's info entries."""
    penalty = penalty_eur_per_mwh * s.undelivered_mwh
    return (s.profit_eur - penalty) / reward_scale_eur, s.as_info() | {"non_delivery_penalty_eur": penalty}


def settle(res: StepOutcome, delivered: np.ndarray, rows: np.ndarray) -> Settlement:
    """Payment and true cost of ``rows`` in period 0, scaled by delivered / activated per row."""
    out = res.clearing
    r = rows[res.instance.book.period[rows] == 0]
    act = out.activated_mw[r]
    scale = np.divide(delivered[r], act, out=np.zeros(len(r)), where=act > 1e-12)
    return Settlement(float((out.payment_eur[r] * scale).sum()), float((out.true_cost_eur[r] * scale).sum()),
                      float(DT_H * act.sum()), float(DT_H * delivered[r].sum()))


class ProviderObservation:
    """A provider's observation: only what it can know (its forecasts, its SoC, public signals).

    | part | size | value | scale |
    |---|---|---|---|
    | availability | n_slots | forecast available quantity of the slot's bids | / Σ rated power of their units (0 if no bid) |
    | state of charge | n_batteries (1 with identity) | SoC of each own battery (0 if none) | 2·SoC/energy − 1 |
    | last prices | H | uniform price of the last clearing, per period | / price cap (0 before the first) |
    | need forecast | H | the TSO's published imbalance forecast | / Σ rated power of all units |
    | time | 4 | sin, cos of time of day; sin, cos of day of year | — |
    | identity (optional) | 5 + 2 | one-hot unit kind; own true cost up, down | — ; / price cap |

    Everything is clipped to [-1, 1].
    """

    def __init__(self, core: EpisodeCore, mapper: BidMapper, units_idx: np.ndarray, identity: bool = False):
        loop = core.loop
        u = loop.system.units
        self.core, self.mapper, self.horizon = core, mapper, loop.horizon
        self.need_scale_mw = core.need_scale_mw
        # Σ rated power of each slot's rows (a slot's own unit's when it has one row; 0 → 1e-9: no bid)
        self.rated = np.maximum(np.bincount(mapper.slot, u.p_rated_mw[loop.layout.unit[mapper.rows]],
                                            mapper.n_slots), 1e-9)
        self.batteries = np.flatnonzero(np.isin(loop.storage_units, units_idx))
        self.energy = np.maximum(u.energy_mwh[loop.storage_units[self.batteries]], 1e-9)
        self.identity = None
        if identity:
            (unit,) = units_idx
            kind = np.zeros(len(UnitKind))
            kind[int(u.kind[unit])] = 1.0
            dirs = set(loop.layout.direction[mapper.rows].tolist())
            cap = mapper.cap
            self.identity = np.r_[kind, u.cost_up_eur_per_mwh[unit] / cap if 1 in dirs else 0.0,
                                  u.cost_down_eur_per_mwh[unit] / cap if -1 in dirs else 0.0]

    @property
    def dim(self) -> int:
        h = self.horizon
        n_soc = 1 if self.identity is not None else len(self.batteries)
        return self.mapper.n_slots + n_soc + 2 * h + 4 + (0 if self.identity is None else 7)

    def parts(self, inst: MarketInstance, last_prices: np.ndarray) -> list[np.ndarray]:
        m = self.mapper
        avail = np.bincount(m.slot, inst.book.qty_mw[m.rows], m.n_slots) / self.rated
        loop = self.core.loop
        soc = 2.0 * loop.soc_mwh[self.batteries] / self.energy - 1.0
        if self.identity is not None and not len(soc):   # one slot for every agent (shared policies)
            soc = np.zeros(1)
        parts = [avail, soc, scaled(last_prices, self.mapper.cap), scaled(inst.need_mw, self.need_scale_mw),
                 time_features(loop.t if not loop.done else loop.t - 1)]
        if self.identity is not None:
            parts.append(self.identity)
        return parts
