"""Market-power indicators per market and period: HHI, PSI, RSI, Lerner index, price uplift.

A *market* is a set of bid rows of one :class:`~smartnet_gym.market.bids.BidBook`: the global
market is every bid, a local market the bids of one distribution area. Each indicator is
computed per period t of the clearing horizon, on the market's bids **in the need's direction**:

- need direction ``s_t = sign(need_t)``: +1 (up: more injection / less consumption) for a
  shortage, −1 (down) for a surplus — the sign convention of bids.py and ``MarketInstance.need_mw``.
  Only bids with ``direction == s_t`` and ``period == t`` supply that need; bids of the other
  direction are ignored. Periods with ``|need_t| ≤ tol`` have no direction: every indicator is NaN.
- providers are ``BidBook.unit``: the quantities of all rows of one unit are summed first.

With ``q_i`` = offered MW of provider i (in the need direction, period t), ``Q = Σ_i q_i``,
``N = |need_t|``:

| indicator | formula | textbook values |
|---|---|---|
| ``hhi_offered`` | 10,000 · Σ_i (q_i / Q)² | n equal providers: 10,000 / n; monopoly: 10,000 |
| ``hhi_activated`` | the same on activated MW (NaN if nothing activated) | |
| ``psi`` | 1 if Q − max_i q_i < N else 0 (the need cannot be met without the largest provider) | |
| ``rsi`` | (Q − max_i q_i) / N | RSI < 1 ⇔ PSI = 1 |
| ``lerner`` | (p − p_truthful) / p, guarded: NaN if |p| ≤ tol and |p − p_truthful| > tol, 0 if both ≈ 0 | 0 under truthful bidding |
| ``uplift_eur_per_mwh`` | p − p_truthful | 0 under truthful bidding |

``p`` is the market's clearing price **in the need direction** [EUR/MWh, ≥ 0 when providers are
paid]: what a MWh activated in the need's direction earns. ``p_truthful`` is the same price
of the same instance cleared with truthful bids (prices = true costs), the competitive
benchmark. :func:`paid_price` computes it from payments (local markets: a locational price,
different at each bus, so the activation-weighted average); :func:`uniform_price_in_need_direction`
from the uniform balance price (global market: ``s_t · λ_t``).

Everything here is numpy on struct-of-arrays books (no pandas, no solver), so it can run
inside an env step. The local market's need is not part of the instance (a DSO's need is a
congestion to remove, not a MW figure): pass it, or take it from the truthful clearing with
:func:`revealed_local_need`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from smartnet_gym.market.program import DT_H
from smartnet_gym.memo import ArrayMemo

if TYPE_CHECKING:
    from smartnet_gym.market.bids import BidBook
    from smartnet_gym.market.schemes import ClearingOutcome
    from smartnet_gym.market.stages import MarketInstance

HHI_SCALE = 10_000.0
NEED_TOL_MW = 1e-6
PRICE_TOL_EUR_PER_MWH = 1e-6

__all__ = [
    "HHI_SCALE",
    "MarketIndicators",
    "binding_concentration",
    "hhi",
    "lerner_index",
    "market_indicators",
    "need_direction",
    "outcome_indicators",
    "paid_price",
    "pivotal_supplier",
    "price_uplift",
    "residual_supply_index",
    "revealed_local_need",
    "uniform_price_in_need_direction",
]


# ------------------------------------------------------------------------ single-period indicators
def _provider_totals(qty_mw: np.ndarray, provider: np.ndarray) -> np.ndarray:
    """Total quantity of each provider (order of ``np.unique(provider)``)."""
    _, inv = np.unique(np.asarray(provider), return_inverse=True)
    return np.bincount(inv.reshape(-1), weights=np.asarray(qty_mw, float), minlength=inv.max(initial=-1) + 1)


def hhi(qty_mw: np.ndarray, provider: np.ndarray) -> float:
    """Herfindahl–Hirschman index of the providers' shares of ``qty_mw`` [0..10,000]; NaN if Σ = 0."""
    tot = _provider_totals(qty_mw, provider)
    s = tot.sum()
    return float(HHI_SCALE * ((tot / s) ** 2).sum()) if s > 0 else float("nan")


def residual_supply_index(offer_mw: np.ndarray, provider: np.ndarray, need_mw: float) -> float:
    """RSI = (total offer − largest provider's offer) / |need|; NaN without a need."""
    tot = _provider_totals(offer_mw, provider)
    n = abs(float(need_mw))
    return float((tot.sum() - tot.max(initial=0.0)) / n) if n > NEED_TOL_MW else float("nan")


def pivotal_supplier(offer_mw: np.ndarray, provider: np.ndarray, need_mw: float) -> float:
    """PSI: 1.0 if the need cannot be met without the largest provider's offer, else 0.0 (NaN: no need)."""
    rsi = residual_supply_index(offer_mw, provider, need_mw)
    return float(rsi < 1.0 - 1e-9) if np.isfinite(rsi) else float("nan")


def lerner_index(price: np.ndarray | float, truthful_price: np.ndarray | float,
                 tol: float = PRICE_TOL_EUR_PER_MWH) -> np.ndarray:
    """(p − p_truthful) / p per period; 0 where both are ≈ equal and p ≈ 0, NaN where only p ≈ 0."""
    p = np.atleast_1d(np.asarray(price, float))
    pt = np.atleast_1d(np.asarray(truthful_price, float))
    up = p - pt
    out = np.divide(up, p, out=np.full(np.broadcast(p, pt).shape, np.nan), where=np.abs(p) > tol)
    return np.where((np.abs(p) <= tol) & (np.abs(up) <= tol), 0.0, out)


def price_uplift(price: np.ndarray | float, truthful_price: np.ndarray | float) -> np.ndarray:
    """p − p_truthful per period [EUR/MWh]."""
    return np.atleast_1d(np.asarray(price, float)) - np.atleast_1d(np.asarray(truthful_price, float))


# ------------------------------------------------------------------------ per-period, per-market
@dataclass(frozen=True)
class MarketIndicators:
    """Indicators of one market for every period of one clearing (arrays of shape (H,))."""

    market: str                          # "global" or "local_<area>"
    need_mw: np.ndarray                  # |need| [MW]
    direction: np.ndarray                # need direction s_t (+1 up, −1 down, 0 none)
    offered_mw: np.ndarray               # Q: offer in the need direction [MW]
    largest_offer_mw: np.ndarray         # max_i q_i [MW]
    activated_mw: np.ndarray             # activation in the need direction [MW]
    hhi_offered: np.ndarray              # [0..10,000]
    hhi_activated: np.ndarray
    psi: np.ndarray                      # 1.0 / 0.0
    rsi: np.ndarray
    price_eur_per_mwh: np.ndarray        # p in the need direction
    truthful_price_eur_per_mwh: np.ndarray
    lerner: np.ndarray
    uplift_eur_per_mwh: np.ndarray

    def as_dict(self) -> dict[str, np.ndarray]:
        """The per-period arrays by name (for tables)."""
        return {k: v for k, v in self.__dict__.items() if k != "market"}


def provider_index(book: BidBook) -> tuple[np.ndarray, int]:
    """(index of each bid's provider in 0..n−1, n providers), numbered in ``np.unique(book.unit)`` order.

    A table over the range of unit indices instead of a sort: units are small integers.
    """
    unit = np.asarray(book.unit, np.int64).reshape(-1)
    if not len(unit):
        return unit, 0
    pos = unit - unit.min()
    present = np.zeros(int(pos.max()) + 1, bool)
    present[pos] = True
    rank = np.cumsum(present) - 1
    return rank[pos], int(rank[-1]) + 1


def _hhi_rows(tot: np.ndarray) -> np.ndarray:
    """HHI over the last axis of provider totals; NaN where the total is 0."""
    s = tot.sum(axis=-1)
    share = np.divide(tot, s[..., None], out=np.zeros_like(tot), where=s[..., None] > 0)
    return np.where(s > 0, HHI_SCALE * (share ** 2).sum(axis=-1), np.nan)


def need_direction(need_mw: np.ndarray, tol: float = NEED_TOL_MW) -> np.ndarray:
    """s_t: +1 for a shortage (up), −1 for a surplus (down), 0 where |need| ≤ tol."""
    need = np.asarray(need_mw, float)
    return np.where(np.abs(need) > tol, np.sign(need), 0.0).astype(int)


def _in_need_direction(book: BidBook, needs: np.ndarray, masks: np.ndarray
                       ) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """(market j, bid i) pairs, ordered by j then i, where bid i supplies market j's need in its period,
    and (n_markets, H) s_t."""
    h = needs.shape[1]
    s = need_direction(needs)
    per = book.period
    inside = per < h
    s_bid = s[:, np.minimum(per, h - 1)]
    ok = masks & inside[None, :] & (book.direction[None, :] == s_bid) & (s_bid != 0)
    return np.divmod(np.flatnonzero(ok), ok.shape[1]), s    # np.nonzero(ok), without its 2-D overhead


def _paid_prices(book: BidBook, ok: tuple[np.ndarray, np.ndarray], n_m: int, h: int, activated_mw: np.ndarray,
                 payment_eur: np.ndarray) -> np.ndarray:
    """(n_markets, H) :func:`paid_price` of several markets of one book (``ok``: :func:`_in_need_direction`)."""
    j, i = ok
    key = j * h + book.period[i]
    pay = np.bincount(key, weights=np.asarray(payment_eur, float)[i], minlength=n_m * h).reshape(n_m, h)
    mwh = DT_H * np.bincount(key, weights=np.asarray(activated_mw, float)[i], minlength=n_m * h).reshape(n_m, h)
    return np.divide(pay, mwh, out=np.full((n_m, h), np.nan), where=mwh > 1e-9)


def _concentration(offer: np.ndarray, act: np.ndarray, need_abs: np.ndarray, has_need: np.ndarray
                   ) -> dict[str, np.ndarray]:
    """HHI of offers and activations, RSI and PSI from provider totals (last axis) per market."""
    rsi = np.divide(offer.sum(axis=-1) - offer.max(axis=-1, initial=0.0), need_abs,
                    out=np.full(need_abs.shape, np.nan), where=has_need)
    return dict(hhi_offered=np.where(has_need, _hhi_rows(offer), np.nan),
                hhi_activated=np.where(has_need, _hhi_rows(act), np.nan),
                psi=np.where(has_need, (rsi < 1.0 - 1e-9).astype(float), np.nan), rsi=rsi)


@dataclass(frozen=True)
class _BindingLayout:
    """What :func:`binding_concentration` derives from a book's layout and the bids' areas.

    Every first-period bid of direction ±1 counts in the global market and, in a distribution
    area, in its local market too, twice (offered, activated): one ``np.bincount`` of
    ``concat(qty_mw, activated_mw)[rows]`` over ``key`` gives the provider totals of every market
    in both directions, shape (2, n_markets · 2 + [up], n_prov).
    """

    rows: np.ndarray
    key: np.ndarray
    n_prov: int
    n_markets: int                   # markets with bids: 1 + the highest area + 1


_BINDING_LAYOUTS: ArrayMemo[_BindingLayout] = ArrayMemo(9)


def _binding_layout(book: BidBook, area_of_bid: np.ndarray) -> _BindingLayout:
    """The :class:`_BindingLayout` of ``book`` and ``area_of_bid``, kept for their arrays
    (:class:`~smartnet_gym.memo.ArrayMemo`: the books of one layout share them, see
    ``BidBook.with_values``; a new or changed array rebuilds it)."""
    def build() -> _BindingLayout:
        inv, n_prov = provider_index(book)
        first = np.flatnonzero((book.period == 0) & (np.abs(book.direction) == 1))
        area = area_of_bid[first]
        local = area >= 0
        rows = np.r_[first, first[local]]
        market = np.r_[np.zeros(len(first), np.int64), 1 + area[local]]
        n_markets = int(market.max(initial=0)) + 1
        key = (market * 2 + (book.direction[rows] > 0)) * n_prov + inv[rows]
        return _BindingLayout(np.r_[rows, rows + len(book)], np.r_[key, key + n_markets * 2 * n_prov], n_prov,
                              n_markets)

    return _BINDING_LAYOUTS.get((book.unit, book.period, book.direction, area_of_bid), build)


def binding_concentration(book: BidBook, activated_mw: np.ndarray, need_mw: np.ndarray,
                          area_of_bid: np.ndarray, local_need_mw: np.ndarray) -> dict[str, np.ndarray]:
    """HHI (offered, activated), PSI and RSI of the global and each local market in the binding
    period 0: the CBA's per-step figures, as :func:`outcome_indicators` ``(…, horizon=1)`` gives
    them (the same operations, so bit for bit), without its prices and dataclasses: this runs in
    every env step, so the few per-market figures are plain Python floats until the end.

    Returns ``{field: (1 + n_areas,) array}``, row 0 the global market, row 1 + a area a's.
    """
    needs = [float(np.asarray(need_mw, float).reshape(-1)[0]),
             *np.asarray(local_need_mw, float)[:, 0].tolist()]
    s = [(1 if x > 0 else -1) if abs(x) > NEED_TOL_MW else 0 for x in needs]     # need_direction
    lay = _binding_layout(book, np.asarray(area_of_bid))
    n_prov, n_in = lay.n_prov, lay.n_markets
    if n_in > len(needs):
        raise IndexError(f"bids in area {n_in - 2}, but local needs of {len(needs) - 1} areas only")
    w = np.concatenate((book.qty_mw, np.asarray(activated_mw, float)))[lay.rows]
    tot = np.bincount(lay.key, weights=w, minlength=4 * n_in * n_prov).reshape(4 * n_in, n_prov)
    # each market's provider totals in its need's direction: (offered / activated, market, provider)
    pick = [2 * j + (d > 0) for j, d in enumerate(s[:n_in])]
    tot = tot.take(pick + [2 * n_in + r for r in pick], axis=0).reshape(2, n_in, n_prov)
    q = tot.sum(axis=-1)
    share = tot / np.where(q > 0, q, 1.0)[..., None]        # (rows with q = 0 are not used)
    sq = (share ** 2).sum(axis=-1).tolist()
    big = tot[0].max(axis=-1, initial=0.0).tolist()
    q = q.tolist()
    nan = float("nan")
    res: dict[str, list[float]] = {"hhi_offered": [], "hhi_activated": [], "psi": [], "rsi": []}
    for j, (d, n) in enumerate(zip(s, needs)):
        if d == 0:                                          # no need: no direction
            fig = (nan, nan, nan, nan)
        else:
            # (no bids beyond the last area with bids)
            qo, qa, b, so, sa = (q[0][j], q[1][j], big[j], sq[0][j], sq[1][j]) if j < n_in else (0.0,) * 5
            rsi = (qo - b) / abs(n)
            fig = (HHI_SCALE * so if qo > 0 else nan, HHI_SCALE * sa if qa > 0 else nan,
                   float(rsi < 1.0 - 1e-9), rsi)
        for v, k in zip(fig, ("hhi_offered", "hhi_activated", "psi", "rsi")):
            res[k].append(v)
    return {k: np.array(v) for k, v in res.items()}


def _indicators(book: BidBook, ok: tuple[np.ndarray, np.ndarray], s: np.ndarray, needs: np.ndarray,
                activated_mw: np.ndarray, prices: np.ndarray, truthful_prices: np.ndarray,
                names: list[str]) -> dict[str, MarketIndicators]:
    """Indicators of several markets of one book (rows of ``needs``/``prices``; ``ok``, ``s``:
    :func:`_in_need_direction`) at once."""
    n_m, h = needs.shape
    inv, n_prov = provider_index(book)
    j, i = ok
    key = (j * h + book.period[i]) * n_prov + inv[i]
    size = n_m * h * n_prov
    offer = np.bincount(key, weights=book.qty_mw[i], minlength=size).reshape(n_m, h, n_prov).astype(float)
    act = np.bincount(key, weights=np.asarray(activated_mw, float)[i], minlength=size)
    act = act.reshape(n_m, h, n_prov).astype(float)
    has_need = s != 0
    q = offer.sum(axis=-1)
    big = offer.max(axis=-1, initial=0.0)
    n_abs = np.abs(needs)
    fields = dict(
        need_mw=n_abs, direction=s,
        offered_mw=np.where(has_need, q, np.nan), largest_offer_mw=np.where(has_need, big, np.nan),
        activated_mw=np.where(has_need, act.sum(axis=-1), np.nan),
        **_concentration(offer, act, n_abs, has_need),
        price_eur_per_mwh=prices, truthful_price_eur_per_mwh=truthful_prices,
        lerner=np.where(has_need, lerner_index(prices, truthful_prices), np.nan),
        uplift_eur_per_mwh=np.where(has_need, price_uplift(prices, truthful_prices), np.nan))
    return {name: MarketIndicators(market=name, **{k: v[r] for k, v in fields.items()})
            for r, name in enumerate(names)}


def market_indicators(book: BidBook, activated_mw: np.ndarray, need_mw: np.ndarray,
                      price_eur_per_mwh: np.ndarray | None = None,
                      truthful_price_eur_per_mwh: np.ndarray | None = None,
                      mask: np.ndarray | None = None, market: str = "global") -> MarketIndicators:
    """Indicators of the market made of the rows ``mask`` of ``book`` (default: all rows).

    :param activated_mw: (n_bids,) activation of every row of ``book`` (a ClearingOutcome's).
    :param need_mw: (H,) signed need of this market (+ shortage / up, − surplus / down).
    :param price_eur_per_mwh: (H,) clearing price in the need direction; NaN if omitted.
    :param truthful_price_eur_per_mwh: (H,) the same under truthful bids; NaN if omitted.
    """
    need = np.asarray(need_mw, float).reshape(1, -1)
    h = need.shape[1]
    m = np.ones((1, len(book)), bool) if mask is None else np.asarray(mask, bool).reshape(1, -1)
    p = np.full((1, h), np.nan) if price_eur_per_mwh is None else np.asarray(price_eur_per_mwh, float).reshape(1, h)
    pt = (np.full((1, h), np.nan) if truthful_price_eur_per_mwh is None
          else np.asarray(truthful_price_eur_per_mwh, float).reshape(1, h))
    ok, s = _in_need_direction(book, need, m)
    return _indicators(book, ok, s, need, activated_mw, p, pt, [market])[market]


# ------------------------------------------------------------------------ prices
def paid_price(book: BidBook, activated_mw: np.ndarray, payment_eur: np.ndarray, need_mw: np.ndarray,
               mask: np.ndarray | None = None) -> np.ndarray:
    """Average price paid per MWh activated in the need direction, per period [EUR/MWh].

    Σ payment / (Δt · Σ activation) over the market's bids in the need direction; under
    pay-as-clear with one price this is that price. NaN where nothing was activated.
    """
    need = np.asarray(need_mw, float).reshape(1, -1)
    m = np.ones((1, len(book)), bool) if mask is None else np.asarray(mask, bool).reshape(1, -1)
    ok, _ = _in_need_direction(book, need, m)
    return _paid_prices(book, ok, 1, need.shape[1], activated_mw, payment_eur)[0]


def uniform_price_in_need_direction(uniform_price_eur_per_mwh: np.ndarray, need_mw: np.ndarray) -> np.ndarray:
    """s_t · λ_t: what a MWh in the need direction earns at the uniform (balance) price."""
    s = need_direction(need_mw)
    lam = np.asarray(uniform_price_eur_per_mwh, float)
    return np.where(s != 0, s * lam, np.nan)


# ------------------------------------------------------------------------ one clearing
def revealed_local_need(inst: MarketInstance, truthful: ClearingOutcome, area_of_bid: np.ndarray,
                        n_areas: int) -> np.ndarray:
    """(n_areas, H) signed need of each local market, as the truthful clearing reveals it.

    The net activation of the area's bids by the area's own stages (``local_<a>…``, CS_B and
    CS_C); for schemes without a local stage (CS_A, CS_D, CS_E), the area's net activation in
    all stages — congestion relief plus whatever the area's bids won of the system need. A
    lower bound where the local program had to use a slack.
    """
    book, h = inst.book, inst.horizon
    out = np.zeros((n_areas, h))
    local = [r for r in truthful.records if r.name.startswith("local_")]
    records = local or list(truthful.records)
    for r in records:
        if not r.result.ok:
            continue
        idx = r.bids
        a = area_of_bid[idx]
        k = a >= 0
        np.add.at(out, (a[k], book.period[idx][k]), book.direction[idx][k] * r.result.x_mw[k])
    return out


def _market_prices(inst: MarketInstance, out: ClearingOutcome, needs: np.ndarray,
                   ok: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(n_markets, H): row 0 the global market's uniform price, the others their paid prices."""
    h = needs.shape[1]
    prices = _paid_prices(inst.book, ok, len(needs), h, out.activated_mw, out.payment_eur)
    prices[0] = uniform_price_in_need_direction(np.asarray(out.uniform_price_eur_per_mwh)[:h], needs[0])
    return prices


def outcome_indicators(inst: MarketInstance, out: ClearingOutcome, area_of_bid: np.ndarray,
                       truthful: ClearingOutcome | None = None, local_need_mw: np.ndarray | None = None,
                       providers: np.ndarray | None = None, horizon: int | None = None
                       ) -> dict[str, MarketIndicators]:
    """Indicators of the global market and of each local market for one clearing.

    :param area_of_bid: (n_bids,) area of each bid (−1 = transmission), ``lin.locate(book.bus)[0]``.
    :param truthful: the same instance cleared with truthful bids (for Lerner and uplift, and
        for the local needs when ``local_need_mw`` is omitted); without it those are NaN.
    :param local_need_mw: (n_areas, H) signed need of each local market.
    :param providers: (n_bids,) bool, rows that are providers (default all; e.g. exclude a DSO's
        own fallback measure).
    :param horizon: only the first ``horizon`` periods (default all; the CBA needs the binding one).
    Returns ``{"global": …, "local_0": …, …}``; the global need is ``inst.need_mw`` and its
    price the uniform price in the need direction, a local market's price is :func:`paid_price`.
    """
    area_of_bid = np.asarray(area_of_bid, int)
    n_areas = int(area_of_bid.max(initial=-1)) + 1
    if local_need_mw is None:
        local_need_mw = (revealed_local_need(inst, truthful, area_of_bid, n_areas) if truthful is not None
                         else np.zeros((n_areas, inst.horizon)))
    prov = np.ones(len(inst.book), bool) if providers is None else np.asarray(providers, bool)
    names = ["global"] + [f"local_{a}" for a in range(len(local_need_mw))]
    areas = np.arange(len(local_need_mw))[:, None]
    masks = np.vstack([prov[None, :], prov[None, :] & (area_of_bid[None, :] == areas)])
    h = inst.horizon if horizon is None else horizon
    needs = np.vstack([np.asarray(inst.need_mw, float)[None, :h],
                       np.asarray(local_need_mw, float).reshape(-1, inst.horizon)[:, :h]])
    ok, s = _in_need_direction(inst.book, needs, masks)
    p = _market_prices(inst, out, needs, ok)
    pt = _market_prices(inst, truthful, needs, ok) if truthful is not None else np.full_like(p, np.nan)
    return _indicators(inst.book, ok, s, needs, out.activated_mw, p, pt, names)
