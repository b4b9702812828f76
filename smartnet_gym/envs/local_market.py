"""A local market of n providers inside the bidding envs (``competitors=n``): the sweep's market, stepped.

``smartnet-gym market-power`` (:mod:`smartnet_gym.experiments.market_power`) measures market power on
single clearings. This module puts the same local market into the rolling loop, so that an RL
agent can learn in it: every step the bids of one distribution area are replaced by the n
providers of :func:`~smartnet_gym.experiments.market_power.local_instance` (knobs:
:class:`~smartnet_gym.experiments.market_power.LocalMarketConfig`; defaults: the analytic case of the
``local-market`` preset), sized on the DSO's need that :func:`~smartnet_gym.experiments.market_power.
probe_local_need` reveals for this step's forecast. Provider i (0 … n − 1) prices its H offers
(one per period, in the need's direction) with H actions, mapped like every bidding env:
``price = cost_i + (a + 1)/2 · (cap − cost_i)``. Providers without an action bid truthfully.

Physical layer: the providers are virtual resources at the market's bus; their delivery is
booked on a flexible unit of the area at that bus (``host_unit``, e.g. the preset's PV plant),
so the loop sees the net injection change at the right bus. Delivery is not capped by that
unit's output (the book no longer has the loop's layout): every activation counts as delivered,
as in the sweep.

Indicators of the local market (period 0, with the probed need; Lerner and uplift against the
same step cleared with truthful bids): see :data:`INDICATOR_KEYS` and :meth:`LocalCompetition.step`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from smartnet_gym.cba.market_power import outcome_indicators
from smartnet_gym.envs.core import finite_or_none
from smartnet_gym.envs.providers import BidMapper, bid_book
from smartnet_gym.envs.spaces import scaled, time_features
from smartnet_gym.errors import ConfigError
from smartnet_gym.experiments.market_power import (
    LocalInstance,
    LocalMarketConfig,
    check_price_cap,
    farthest_bus,
    local_instance,
    local_market_config,
    probe_local_need,
    resolve_area,
)

if TYPE_CHECKING:
    from smartnet_gym.envs.core import EpisodeCore
    from smartnet_gym.market.bids import BidBook
    from smartnet_gym.simulation.loop import StepOutcome

#: local-market indicators in ``info`` (period 0): ``local_<key>``
INDICATOR_KEYS = ("need_mw", "offered_mw", "activated_mw", "hhi_offered", "hhi_activated", "psi", "rsi",
                  "price_eur_per_mwh", "truthful_price_eur_per_mwh", "lerner", "uplift_eur_per_mwh")
#: account columns of the area's market that the virtual providers replace (recomputed here)
ACCOUNT_KEYS = ("hhi_offered", "hhi_activated", "psi", "rsi")


def as_local_market(knobs: LocalMarketConfig | Mapping[str, Any] | None) -> LocalMarketConfig:
    """The knobs as a validated :class:`LocalMarketConfig` (errors name ``local_market.<field>``)."""
    if isinstance(knobs, LocalMarketConfig):
        return knobs
    if knobs is not None and not isinstance(knobs, Mapping):
        raise ConfigError(f"local_market: must be a mapping of LocalMarketConfig fields (got {knobs!r})")
    try:
        return local_market_config(**dict(knobs or {}))
    except ConfigError as e:
        raise ConfigError(f"local_market: {e}") from None


def make_competition(core: EpisodeCore, competitors: int | None,
                     local_market: LocalMarketConfig | Mapping[str, Any] | None,
                     bid_quantity: bool) -> LocalCompetition | None:
    """An env's local market of ``competitors`` providers; None without both (the scenario's own bids)."""
    if competitors is None and local_market is None:
        return None
    if competitors is None:
        raise ConfigError("competitors: local_market needs competitors (an integer >= 1)")
    if bid_quantity:
        raise ConfigError("bid_quantity: must be False with competitors (the providers' offers are fixed)")
    return LocalCompetition(core, competitors, local_market)


class LocalCompetition:
    """n providers at one bus replace an area's bids; provider i's H prices come from an action.

    :param core: the env's episode core (scenario, system, loop).
    :param competitors: providers in the local market, 1 … ``local_market.max_competitors``.
    :param local_market: :class:`LocalMarketConfig` or a mapping of its fields (None: defaults).
    """

    def __init__(self, core: EpisodeCore, competitors: int,
                 local_market: LocalMarketConfig | Mapping[str, Any] | None = None):
        lm = as_local_market(local_market)
        if isinstance(competitors, bool) or int(competitors) != competitors or \
                not 1 <= competitors <= lm.max_competitors:
            raise ConfigError(f"competitors: must be an integer in 1..{lm.max_competitors} "
                              f"(local_market.max_competitors) (got {competitors!r})")
        system, market = core.system, core.cfg.market
        check_price_cap(market, lm)
        lin = system.linear
        self.core, self.lm, self.n = core, lm, int(competitors)
        self.area = resolve_area(system, lm.area)
        self.bus = farthest_bus(lin, self.area) if lm.bus is None else int(lm.bus)
        if lin.bus_area.get(self.bus, None) != self.area:
            raise ConfigError(f"local_market.bus: {self.bus} is not a bus of area {system.areas[self.area].name}")
        units = system.units
        host = np.flatnonzero((units.area == self.area) & (units.bus == self.bus))
        if not len(host):
            buses = sorted(set(units.bus[units.area == self.area].tolist()))
            raise ConfigError(f"local_market.bus: no flexible unit of area {system.areas[self.area].name} at bus "
                              f"{self.bus} to carry the providers' delivery; buses with units: {buses}")
        self.host_unit = int(host[0])
        self.cap = float(market.price_cap_eur_per_mwh)
        h = core.loop.horizon
        # local_instance's rows: the kept rows, then period-major × provider (then the DSO fallback)
        k0 = int((lin.locate(core.loop.layout.bus)[0] != self.area).sum())
        self.mappers = [BidMapper(k0 + np.arange(h) * self.n + i, np.arange(h), h, self.cap, False)
                        for i in range(self.n)]
        self.costs = lm.provider_costs()[:self.n]
        self.scale_mw = max(float(units.p_rated_mw[units.area == self.area].sum()), 1e-6)
        self.local: LocalInstance | None = None
        self._t = -1
        self.last_price = np.full(h, np.nan)

    @property
    def obs_dim(self) -> int:
        """Observation size of each provider: 3H + 5."""
        return 3 * self.core.loop.horizon + 5

    def restart(self) -> None:
        """Forget the last step (call at every reset)."""
        self.local = None
        self.last_price = np.full(self.core.loop.horizon, np.nan)

    def current(self) -> LocalInstance:
        """The local market of the loop's current step (built once per step; the last one after the end)."""
        loop = self.core.loop
        if self.local is None or (not loop.done and self._t != loop.t):
            inst = loop.instance()
            lin, market = self.core.system.linear, self.core.cfg.market
            need = probe_local_need(lin, market, inst, self.area, self.bus, self.core.scheme("CS_B"))
            self.local = local_instance(lin, inst, self.area, self.bus, need, self.n, self.lm)
            self._t = loop.t
        return self.local

    def observe(self, i: int) -> list[np.ndarray]:
        """Provider i's observation parts (clipped later by ``pack``).

        | part | size | scale |
        |---|---|---|
        | own offer per period (+ up, − down) | H | / Σ rated power of the area's units |
        | local price of the last clearing per period (0 before the first / none) | H | / price cap |
        | published imbalance need forecast per period | H | / Σ rated power of all units |
        | time: sin, cos of time of day and of day of year | 4 | — |
        | own true cost | 1 | / price cap |
        """
        local, loop = self.current(), self.core.loop
        book, rows = local.inst.book, self.mappers[i].rows
        offer = book.direction[rows] * book.qty_mw[rows]
        return [scaled(offer, self.scale_mw), scaled(self.last_price, self.cap),
                scaled(local.inst.need_mw, self.core.need_scale_mw),
                time_features(loop.t if not loop.done else loop.t - 1), np.array([self.costs[i] / self.cap])]

    def book(self, actions: Sequence[np.ndarray]) -> BidBook:
        """The local market's book with providers 0 … len(actions) − 1 priced by their actions."""
        return bid_book(self.current().inst.book, self.mappers[:len(actions)], actions)

    def physical(self, book: BidBook) -> BidBook:
        """``book`` with the virtual providers' rows booked on the host unit (what the loop delivers)."""
        local = self.current()
        unit = np.where(local.area_of_bid == self.area, self.host_unit, book.unit)
        return replace(book, unit=unit)

    def step(self, actions: Sequence[np.ndarray]) -> tuple[StepOutcome, dict[str, Any], list[float]]:
        """Clear and deliver one step; the loop's outcome, the local indicators (period 0), the markups.

        The markups are provider i's asked price − true cost in period 0 [EUR/MWh], one per action.

        Info keys: ``local_<k>`` for k in :data:`INDICATOR_KEYS` (None when the DSO needs nothing),
        ``local_<area>_<k>`` for k in :data:`ACCOUNT_KEYS` (the account's columns of this area,
        recomputed with the providers as distinct units and the probed need), ``competitors``.
        """
        local = self.current()
        book = self.book(actions)
        res = self.core.loop.step(book=self.physical(book))
        truthful = self.core.scheme(self.core.scheme_name).clear(local.inst, evaluate=False)
        ind = outcome_indicators(replace(local.inst, book=book), res.clearing, local.area_of_bid, truthful,
                                 local.local_need_mw, local.provider)[f"local_{self.area}"]
        self.last_price = np.asarray(ind.price_eur_per_mwh, float).copy()
        info = {f"local_{k}": finite_or_none(float(getattr(ind, k)[0])) for k in INDICATOR_KEYS}
        info |= {f"local_{self.area}_{k}": finite_or_none(float(getattr(ind, k)[0])) for k in ACCOUNT_KEYS}
        info["competitors"] = self.n
        first = [m.rows[0] for m in self.mappers[:len(actions)]]
        markups = (book.price_eur_per_mwh[first] - book.true_cost_eur_per_mwh[first]).tolist()
        return res, info, markups


def mapped_book_costs(core: EpisodeCore, competition: LocalCompetition | None) -> np.ndarray:
    """True cost [EUR/MWh] of each row of the book the agents' mappers index: the local market's
    book with ``competitors``, else the loop's truthful book (what a fixed markup is added to)."""
    if competition is not None:
        return competition.current().inst.book.true_cost_eur_per_mwh
    return core.loop.truthful_book.true_cost_eur_per_mwh


__all__ = ["ACCOUNT_KEYS", "INDICATOR_KEYS", "LocalCompetition", "as_local_market", "make_competition",
           "mapped_book_costs"]
