"""Market power in a small local flexibility market: the experiment of `smartnet-gym market-power`.

SmartNet's CS_B concern is illiquidity: a DSO buying congestion relief from a handful of
providers. This experiment measures it on real clearings of a scenario's T&D model:

1. **Instances.** ``steps`` consecutive market steps of the scenario from ``start_step_of_day``
   of ``data.start_day`` (forecasts, base flows and voltages, system need from the rolling loop).
2. **The DSO's need.** The congestion relief the area needs, in MW at one bus (``bus``; default
   the area bus farthest from the substation in resistance, where relief counts most), per period:
   the activation of an ample probe offer at that bus in CS_B's local market. It is a physical
   need, the same for every scheme; the need is inelastic when the network penalties exceed the
   price cap (the default), elastic with ``reservation_price_eur_per_mwh`` (a DSO fallback measure
   at that price, e.g. firm curtailment, offered in the need direction).
3. **The local market.** The area's own bids are replaced by ``n`` providers at that bus offering
   relief in the need direction; the full market (n = ``max_competitors``) offers ``liquidity`` × the
   need, provider i a share ``shares[i]`` of it, at true cost ``cost_eur_per_mwh + i ·
   cost_step_eur_per_mwh``. Offers scale with the need, so every period has the same structure
   and the textbook answers hold period by period. Provider 0 is the strategic one; the sweep
   adds its rivals 1 … n − 1 in order. Transmission bids stay truthful.
4. **Bidding.** *truthful*: everyone bids its true cost. *strategic*: provider 0 bids cost + m on
   all its offers, others truthful; m is the best response found by a grid search over
   [0, cap − cost] (``markup_points`` points plus the rivals' costs and the reservation price):
   the m with the largest profit summed over the instances (ties → the smallest m).
5. **Indicators** (:mod:`smartnet_gym.cba.market_power`) of the local market, averaged over the
   (step, period) samples with a need: HHI, PSI, RSI, local price, Lerner index and uplift over
   the truthful price of the same n; costs are the clearings' payments over all periods of
   each horizon (a market-only experiment: no physical layer, every period settled).

Analytic answers with equal costs and an inelastic need: PSI = 1 ⇔ the rivals' offer
``liquidity · Σ_{j=1}^{n−1} share_j`` < 1 (RSI < 1); a pivotal provider's best response is the
price cap (Lerner (cap − cost)/cap), a non-pivotal one's is its cost (Lerner 0, Bertrand).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from smartnet_gym.cba.market_power import NEED_TOL_MW, outcome_indicators
from smartnet_gym.config import MarketConfig, ScenarioConfig
from smartnet_gym.errors import ConfigError, UnknownNameError, did_you_mean
from smartnet_gym.market.bids import BidBook
from smartnet_gym.market.program import DT_H
from smartnet_gym.market.schemes import ClearingOutcome, Scheme, make_scheme
from smartnet_gym.market.stages import MarketInstance

if TYPE_CHECKING:
    import pandas as pd

    from smartnet_gym.grid.linear import LinearTD
    from smartnet_gym.grid.system import TDSystem

PROBE_MW = 1e3          # ample probe offer that reveals the DSO's need
RIVAL_UNDERCUT_EUR_PER_MWH = 0.01   # grid points just below each rival's cost

#: sweep.csv columns, in order (a contract of `smartnet-gym market-power`)
SWEEP_COLUMNS = (
    "scheme", "bidding", "n_competitors", "markup_eur_mwh", "hhi", "hhi_activated", "psi", "rsi",
    "lerner", "price_eur_mwh", "truthful_price_eur_mwh", "uplift_eur_mwh", "need_mw", "offered_mw",
    "activated_mw", "global_price_eur_mwh", "global_lerner", "local_payment_eur", "fallback_cost_eur",
    "market_cost_eur", "true_cost_eur", "strategic_profit_eur", "slack_mw", "samples", "failed_clearings",
)


# ------------------------------------------------------------------------ knobs
class LocalMarketConfig(BaseModel):
    """Knobs of the local market of the sweep (defaults: the analytic case of ``local-market``).

    With the defaults (5 providers, strategic share 0.4, rivals 0.15 each, liquidity 3, equal
    costs, inelastic need): the strategic provider alone offers 1.2 × the need, each rival
    0.45 ×; RSI = 0, 0.45, 0.9, 1.35, 1.8 for n = 1 … 5, so it is pivotal for n ≤ 3 and its
    best response falls from the price cap to its cost at n = 4.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    max_competitors: int = Field(5, ge=1, le=50, description="providers in the full local market [-]")
    shares: tuple[float, ...] | None = Field(
        None, description="offer share of each provider in the full market (provider 0 strategic), sum 1; "
        "default: strategic_share for provider 0, the rest split equally")
    strategic_share: float = Field(0.4, gt=0, le=1, description="provider 0's share when shares is unset [-]")
    liquidity: float = Field(3.0, gt=0, le=100, description="full market's total offer / the DSO's need [-]")
    cost_eur_per_mwh: float = Field(50.0, ge=0, description="true cost of provider 0 [EUR/MWh]")
    cost_step_eur_per_mwh: float = Field(0.0, ge=0, description="cost of provider i = cost + i * step [EUR/MWh]")
    reservation_price_eur_per_mwh: float | None = Field(
        None, gt=0, description="DSO fallback price (elastic need); unset = inelastic [EUR/MWh]")
    markup_points: int = Field(21, ge=2, le=1001, description="grid points of the best-response search [-]")
    start_step_of_day: int = Field(44, ge=0, le=95, description="first market step of data.start_day [15 min]")
    area: str | None = Field(None, description="distribution area name (e.g. MV1.101); default the first")
    bus: int | None = Field(None, description="pandapower bus of the local providers; default farthest bus")

    @model_validator(mode="after")
    def _check(self) -> LocalMarketConfig:
        n = self.max_competitors
        if self.shares is not None:
            if len(self.shares) != n:
                raise ValueError(f"shares: has {len(self.shares)} entries but max_competitors is {n}")
            if min(self.shares) <= 0:
                raise ValueError(f"shares: every share must be > 0 (got {list(self.shares)})")
            if abs(sum(self.shares) - 1.0) > 1e-6:
                raise ValueError(f"shares: must sum to 1 (got {sum(self.shares):.6g})")
        elif n > 1 and self.strategic_share >= 1.0:
            raise ValueError(f"strategic_share: must be < 1 when there are rivals (got {self.strategic_share})")
        if self.reservation_price_eur_per_mwh is not None and \
                self.reservation_price_eur_per_mwh <= self.provider_costs().max():
            raise ValueError(f"reservation_price_eur_per_mwh: {self.reservation_price_eur_per_mwh:g} must exceed "
                             f"the providers' highest true cost {self.provider_costs().max():g} EUR/MWh")
        return self

    def provider_shares(self) -> np.ndarray:
        """Share of the full market's offer of each provider (provider 0 = strategic)."""
        n = self.max_competitors
        if self.shares is not None:
            return np.asarray(self.shares, float)
        if n == 1:
            return np.ones(1)
        return np.r_[self.strategic_share, np.full(n - 1, (1.0 - self.strategic_share) / (n - 1))]

    def provider_costs(self) -> np.ndarray:
        """True cost of each provider [EUR/MWh]."""
        return self.cost_eur_per_mwh + self.cost_step_eur_per_mwh * np.arange(self.max_competitors)


def local_market_config(**fields: Any) -> LocalMarketConfig:
    """Validate knobs (``None`` = default); errors are a ConfigError naming the field."""
    try:
        return LocalMarketConfig(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as e:
        lines = []
        for err in e.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field (not allowed)"
            lines.append(f"{loc}: {msg}" + (f" (got {err['input']!r})" if loc else ""))
        raise ConfigError("invalid local market: " + "; ".join(lines)) from None


def check_price_cap(market: MarketConfig, lm: LocalMarketConfig, instances: Sequence[MarketInstance] = ()) -> None:
    """The price cap must exceed every true cost in the market (else truthful bids are invalid)."""
    cap = market.price_cap_eur_per_mwh
    top = float(lm.provider_costs().max())
    if cap <= top:
        raise ConfigError(f"market.price_cap_eur_per_mwh: {cap:g} must exceed the local providers' highest "
                          f"true cost {top:g} EUR/MWh (cost_eur_per_mwh + i * cost_step_eur_per_mwh)")
    r = lm.reservation_price_eur_per_mwh
    if r is not None and r > cap:
        raise ConfigError(f"reservation_price_eur_per_mwh: {r:g} must be <= market.price_cap_eur_per_mwh {cap:g}")
    for inst in instances:
        c = inst.book.true_cost_eur_per_mwh
        if len(c) and c.max() > cap:
            raise ConfigError(f"market.price_cap_eur_per_mwh: {cap:g} is below a truthful bid's true cost "
                              f"{c.max():g} EUR/MWh (flex cost ranges of the scenario)")


# ------------------------------------------------------------------------ the local market
def farthest_bus(lin: LinearTD, area: int) -> int:
    """Pandapower bus of ``area`` with the largest series resistance from its T root."""
    f = next(f for f in lin.feeders if f.area == area)
    path = np.zeros(f.n_bus)
    done = f.parent < 0
    path[done] = f.r_pu[done]
    while not done.all():
        k = ~done & done[np.maximum(f.parent, 0)]
        path[k] = path[f.parent[k]] + f.r_pu[k]
        done |= k
    return int(f.bus[int(np.argmax(path))])


def _with_rows(book: BidBook, keep: np.ndarray, bus: int, direction: np.ndarray, period: np.ndarray,
               qty: np.ndarray, price: np.ndarray, unit: np.ndarray) -> BidBook:
    """``book``'s rows ``keep`` followed by new rows at ``bus`` (no storage)."""
    k = len(qty)
    return replace(
        book, unit=np.r_[book.unit[keep], unit].astype(int), bus=np.r_[book.bus[keep], np.full(k, bus)].astype(int),
        direction=np.r_[book.direction[keep], direction].astype(int),
        period=np.r_[book.period[keep], period].astype(int), qty_mw=np.r_[book.qty_mw[keep], qty],
        price_eur_per_mwh=np.r_[book.price_eur_per_mwh[keep], price],
        true_cost_eur_per_mwh=np.r_[book.true_cost_eur_per_mwh[keep], price],
        storage=np.r_[book.storage[keep], np.full(k, -1)].astype(int))


def probe_local_need(lin: LinearTD, market: MarketConfig, inst: MarketInstance, area: int, bus: int,
                     probe: Scheme | None = None) -> np.ndarray:
    """(H,) signed MW the DSO needs at ``bus`` (+ up, − down): CS_B's local clearing of ample offers.

    The area's own bids are replaced by an up and a down offer of PROBE_MW per period at ``bus``.
    """
    probe = probe or make_scheme("CS_B", lin, market)
    h = inst.horizon
    keep = lin.locate(inst.book.bus)[0] != area
    per = np.repeat(np.arange(h), 2)
    d = np.tile([1, -1], h)
    book = _with_rows(inst.book, keep, bus, d, per, np.full(2 * h, PROBE_MW), np.full(2 * h, 1.0),
                      np.full(2 * h, -1))
    out = probe.clear(replace(inst, book=book), evaluate=False)
    rec = next(r for r in out.records if r.name == f"local_{area}")
    if not rec.result.ok:
        raise ConfigError(f"the probe of area {area}'s need failed to clear ({rec.result.status})")
    mine = rec.bids >= int(keep.sum())                 # the probe rows follow the kept rows
    j = rec.bids[mine] - int(keep.sum())
    need = np.zeros(h)
    np.add.at(need, per[j], d[j] * rec.result.x_mw[mine])
    return np.where(np.abs(need) > NEED_TOL_MW, need, 0.0)


@dataclass(frozen=True)
class LocalInstance:
    """One instance with the area's bids replaced by ``n`` local providers (and the DSO fallback)."""

    inst: MarketInstance
    area_of_bid: np.ndarray      # (n_bids,) −1 = T
    local_need_mw: np.ndarray    # (n_areas, H) signed; only the sweep's area is non-zero
    provider: np.ndarray         # (n_bids,) bool: real providers (all but the DSO fallback)
    strategic: np.ndarray        # (n_bids,) bool: provider 0's rows
    fallback: np.ndarray         # (n_bids,) bool: the DSO fallback rows
    cost_eur_per_mwh: float      # provider 0's true cost
    area: int

    def with_markup(self, markup_eur_per_mwh: float, cap: float) -> MarketInstance:
        """The instance with provider 0 bidding cost + markup (at most the cap); others unchanged."""
        price = self.inst.book.price_eur_per_mwh.copy()
        price[self.strategic] = min(self.cost_eur_per_mwh + markup_eur_per_mwh, cap)
        return replace(self.inst, book=self.inst.book.with_values(price_eur_per_mwh=price))


def local_instance(lin: LinearTD, inst: MarketInstance, area: int, bus: int, need_mw: np.ndarray, n: int,
                   lm: LocalMarketConfig) -> LocalInstance:
    """Replace the area's bids by providers 0 … n − 1 of ``lm`` (truthful) at ``bus``, per period."""
    if not 1 <= n <= lm.max_competitors:
        raise ConfigError(f"n_competitors: must be in 1..{lm.max_competitors} (got {n})")
    h = inst.horizon
    book = inst.book
    keep = lin.locate(book.bus)[0] != area
    s = np.sign(need_mw).astype(int)
    d_t = np.where(s == 0, -1, s)
    n_abs = np.abs(need_mw)
    shares, costs = lm.provider_shares()[:n], lm.provider_costs()[:n]
    unit0 = int(book.unit.max(initial=-1)) + 1
    per = np.repeat(np.arange(h), n)                   # periods outermost, then providers
    who = np.tile(np.arange(n), h)
    qty = lm.liquidity * shares[who] * n_abs[per]
    price = costs[who]
    unit = unit0 + who
    direction = d_t[per]
    fb = lm.reservation_price_eur_per_mwh
    if fb is not None:                                 # DSO fallback: covers the whole need at R
        per = np.r_[per, np.arange(h)]
        qty = np.r_[qty, n_abs]
        price = np.r_[price, np.full(h, fb)]
        unit = np.r_[unit, np.full(h, -1)]
        direction = np.r_[direction, d_t]
    new = _with_rows(book, keep, bus, direction, per, qty, price, unit)
    k0 = int(keep.sum())
    n_new = len(new) - k0
    # provider of each row: −2 kept (T / other areas), 0 … n − 1 local providers, −1 the fallback
    role = np.r_[np.full(k0, -2), who, np.full(n_new - n * h, -1)]
    fallback, strategic = role == -1, role == 0
    area_of_bid = np.r_[lin.locate(book.bus)[0][keep], np.full(n_new, area)]
    local_need = np.zeros((len(lin.feeders), h))
    local_need[area] = np.where(s != 0, need_mw, 0.0)
    return LocalInstance(replace(inst, book=new), area_of_bid, local_need, ~fallback, strategic, fallback,
                         float(costs[0]), area)


# ------------------------------------------------------------------------ best response
@dataclass(frozen=True)
class BestResponse:
    """Provider 0's best markup against truthful rivals on a set of instances."""

    markup_eur_per_mwh: float
    grid_eur_per_mwh: np.ndarray     # markups searched (ascending)
    profit_eur: np.ndarray           # provider 0's profit at each grid point, Σ over instances
    outcomes: tuple[ClearingOutcome, ...]   # clearings at the best markup
    truthful: tuple[ClearingOutcome, ...]   # clearings at markup 0


def markup_grid(lm: LocalMarketConfig, cap: float, n: int) -> np.ndarray:
    """Markups searched: ``markup_points`` evenly in [0, cap − cost], rivals' costs (−0.01), R − cost."""
    c0 = float(lm.provider_costs()[0])
    top = cap - c0
    pts = [np.linspace(0.0, top, lm.markup_points)]
    rivals = lm.provider_costs()[1:n] - c0 - RIVAL_UNDERCUT_EUR_PER_MWH
    pts.append(rivals[rivals > 0])
    if lm.reservation_price_eur_per_mwh is not None:
        r = lm.reservation_price_eur_per_mwh - c0
        pts.append(np.array([r - RIVAL_UNDERCUT_EUR_PER_MWH, r]))
    g = np.unique(np.concatenate(pts))
    return g[(g >= 0) & (g <= top)]


def clear_all(scheme: Scheme, instances: Sequence[MarketInstance]) -> tuple[ClearingOutcome, ...]:
    return tuple(scheme.clear(i, evaluate=False) for i in instances)


def strategic_profit(locals_: Sequence[LocalInstance], outcomes: Sequence[ClearingOutcome]) -> float:
    """Provider 0's profit (payments − true cost) over all periods and instances [EUR]."""
    return float(sum((o.payment_eur - o.true_cost_eur)[li.strategic].sum()
                     for li, o in zip(locals_, outcomes, strict=True)))


def best_response(scheme: Scheme, locals_: Sequence[LocalInstance], grid: np.ndarray, cap: float,
                  rel_tol: float = 1e-7) -> BestResponse:
    """Grid search of provider 0's markup (same markup on every offer), rivals truthful."""
    grid = np.asarray(grid, float)
    profits = np.zeros(len(grid))
    outs: list[tuple[ClearingOutcome, ...]] = []
    for k, m in enumerate(grid):
        o = clear_all(scheme, [li.with_markup(m, cap) for li in locals_])
        profits[k] = strategic_profit(locals_, o)
        outs.append(o)
    best = int(np.flatnonzero(profits >= profits.max() - rel_tol * max(1.0, abs(profits.max())))[0])
    truthful = outs[0] if grid[0] == 0 else clear_all(scheme, [li.inst for li in locals_])
    return BestResponse(float(grid[best]), grid, profits, outs[best], truthful)


# ------------------------------------------------------------------------ the sweep
def _summary_row(scheme: str, bidding: str, n: int, markup: float, locals_: Sequence[LocalInstance],
                 outcomes: Sequence[ClearingOutcome], truthful: Sequence[ClearingOutcome]) -> dict[str, Any]:
    """One sweep.csv row: local-market indicators averaged over (step, period) samples with a need."""
    cols: dict[str, list[np.ndarray]] = {k: [] for k in (
        "hhi_offered", "hhi_activated", "psi", "rsi", "lerner", "price_eur_per_mwh",
        "truthful_price_eur_per_mwh", "uplift_eur_per_mwh", "need_mw", "offered_mw", "activated_mw")}
    g_price, g_lerner = [], []
    local_pay = fb_cost = market = true = slack = 0.0
    failed = 0
    for li, o, t in zip(locals_, outcomes, truthful, strict=True):
        ind = outcome_indicators(li.inst, o, li.area_of_bid, t, li.local_need_mw, li.provider)
        loc, glo = ind[f"local_{li.area}"], ind["global"]
        has = loc.direction != 0
        for k, col in cols.items():
            col.append(getattr(loc, k)[has])
        g_price.append(glo.price_eur_per_mwh[has])
        g_lerner.append(glo.lerner[has])
        book = li.inst.book
        local_rows = li.provider & (li.area_of_bid == li.area)
        local_pay += float(o.payment_eur[local_rows].sum())
        fb_cost += float(DT_H * (book.true_cost_eur_per_mwh * o.activated_mw)[li.fallback].sum())
        market += o.market_cost_eur
        true += float(o.true_cost_eur.sum())
        slack += o.slack_mw
        failed += o.status != "optimal"
    cat = {k: np.concatenate(v) for k, v in cols.items()}

    def mean(a: np.ndarray) -> float:
        a = a[np.isfinite(a)]
        return float(a.mean()) if len(a) else float("nan")

    return {
        "scheme": scheme, "bidding": bidding, "n_competitors": n, "markup_eur_mwh": markup,
        "hhi": mean(cat["hhi_offered"]), "hhi_activated": mean(cat["hhi_activated"]),
        "psi": mean(cat["psi"]), "rsi": mean(cat["rsi"]), "lerner": mean(cat["lerner"]),
        "price_eur_mwh": mean(cat["price_eur_per_mwh"]),
        "truthful_price_eur_mwh": mean(cat["truthful_price_eur_per_mwh"]),
        "uplift_eur_mwh": mean(cat["uplift_eur_per_mwh"]), "need_mw": mean(cat["need_mw"]),
        "offered_mw": mean(cat["offered_mw"]), "activated_mw": mean(cat["activated_mw"]),
        "global_price_eur_mwh": mean(np.concatenate(g_price)), "global_lerner": mean(np.concatenate(g_lerner)),
        "local_payment_eur": local_pay, "fallback_cost_eur": fb_cost, "market_cost_eur": market,
        "true_cost_eur": true, "strategic_profit_eur": strategic_profit(locals_, outcomes), "slack_mw": slack,
        "samples": len(cat["need_mw"]), "failed_clearings": failed,
    }


def run_sweep(lin: LinearTD, market: MarketConfig, instances: Sequence[MarketInstance], lm: LocalMarketConfig,
              schemes: Sequence[str], area: int = 0, bus: int | None = None,
              max_competitors: int | None = None, progress=None) -> pd.DataFrame:
    """Sweep n = 1 … max_competitors under truthful and strategic bidding, per scheme → one row each.

    ``instances`` are truthful instances of the full system (the area's own bids are replaced).
    """
    import pandas as pd

    if not instances:
        raise ConfigError("steps: the sweep needs at least one market instance")
    check_price_cap(market, lm, instances)
    n_max = lm.max_competitors if max_competitors is None else max_competitors
    if not 1 <= n_max <= lm.max_competitors:
        raise ConfigError(f"max_competitors: must be in 1..{lm.max_competitors} (got {n_max})")
    bus = farthest_bus(lin, area) if bus is None else int(bus)
    if lin.bus_area.get(bus, None) != area:
        raise ConfigError(f"bus: {bus} is not a bus of distribution area {area}")
    probe = make_scheme("CS_B", lin, market)
    needs = [probe_local_need(lin, market, i, area, bus, probe) for i in instances]
    if not any(np.abs(nd).max() > NEED_TOL_MW for nd in needs):
        raise ConfigError("steps/start_step_of_day: no congestion in the area in this window, so the DSO needs "
                          "nothing; pick a sunnier data.start_day, a later start_step_of_day or a larger pv_scale")
    cap = market.price_cap_eur_per_mwh
    built = {s: make_scheme(s, lin, market) for s in schemes}
    rows = []
    for n in range(1, n_max + 1):
        locals_ = [local_instance(lin, i, area, bus, nd, n, lm) for i, nd in zip(instances, needs, strict=True)]
        grid = markup_grid(lm, cap, n)
        for name, scheme in built.items():
            br = best_response(scheme, locals_, grid, cap)
            rows.append(_summary_row(name, "truthful", n, 0.0, locals_, br.truthful, br.truthful))
            rows.append(_summary_row(name, "strategic", n, br.markup_eur_per_mwh, locals_, br.outcomes, br.truthful))
            if progress is not None:
                progress(name, n)
    return pd.DataFrame(rows, columns=list(SWEEP_COLUMNS))


def sweep_instances(system: TDSystem, cfg: ScenarioConfig, lm: LocalMarketConfig, steps: int,
                    seed: int) -> list[MarketInstance]:
    """``steps`` consecutive truthful instances of the rolling loop from ``start_step_of_day``."""
    from smartnet_gym.simulation.compare import episode_start
    from smartnet_gym.simulation.loop import RollingLoop

    start = episode_start(cfg) + lm.start_step_of_day
    last = start + steps + cfg.market.horizon_periods - 1
    if last > system.profiles.n_steps:
        raise ConfigError(f"steps: {steps} steps from day {cfg.data.start_day} step {lm.start_step_of_day} "
                          f"need profile step {last}, but the profiles have {system.profiles.n_steps}")
    loop = RollingLoop(system, cfg, physics="linear")
    loop.reset(start, steps, np.random.default_rng(seed))
    out = []
    while not loop.done:
        out.append(loop.instance())
        loop.step()
    return out


def resolve_area(system: TDSystem, name: str | None) -> int:
    """Index of the area called ``name`` (default: the first)."""
    names = [a.name for a in system.areas]
    if name is None:
        return 0
    if name not in names:
        raise UnknownNameError(did_you_mean(name, names, "area"))
    return names.index(name)


# ------------------------------------------------------------------------ figure
def plot_market_power(df: pd.DataFrame, path: str | Path, title: str = "") -> None:
    """Local price, Lerner index, concentration and local cost vs the number of competitors."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
    schemes = list(dict.fromkeys(df["scheme"]))
    for (scheme, bidding), d in df.groupby(["scheme", "bidding"], sort=False):
        k = schemes.index(scheme)
        # one colour per scheme, solid = strategic; earlier schemes wider so equal curves stay visible
        kw = {"color": f"C{k}", "ls": "-" if bidding == "strategic" else "--", "lw": 1.2 + 2.0 * (len(schemes) - 1 - k),
              "marker": "o" if bidding == "strategic" else "x", "ms": 4, "label": f"{scheme} {bidding}", "alpha": 0.8}
        ax[0, 0].plot(d["n_competitors"], d["price_eur_mwh"], **kw)
        ax[0, 1].plot(d["n_competitors"], d["lerner"], **kw)
        ax[1, 1].plot(d["n_competitors"], d["local_payment_eur"] + d["fallback_cost_eur"], **kw)
    one = df[(df["scheme"] == df["scheme"].iloc[0]) & (df["bidding"] == "truthful")]
    ax[1, 0].plot(one["n_competitors"], one["hhi"], "-o", color="k", label="HHI of offers", ms=4)
    ax[1, 0].set_ylabel("HHI [0..10,000]")
    r = ax[1, 0].twinx()
    r.plot(one["n_competitors"], one["rsi"], "-s", color="tab:red", label="RSI", ms=4)
    r.axhline(1.0, color="tab:red", lw=0.8, ls=":")
    piv = one[one["psi"] > 0.5]
    r.plot(piv["n_competitors"], piv["rsi"], "o", mfc="none", mec="tab:red", ms=10, label="pivotal (PSI = 1)")
    r.set_ylabel("RSI [-]", color="tab:red")
    r.legend(fontsize=7, loc="center right")
    ax[0, 0].set_ylabel("local price [EUR/MWh]")
    ax[0, 1].set_ylabel("Lerner index (p − p_truthful)/p [-]")
    ax[1, 1].set_ylabel("DSO's local cost [EUR]")
    for a in ax.flat:
        a.grid(alpha=0.3)
    for a in ax[1]:
        a.set_xlabel("competitors in the local market n")
    ax[0, 0].legend(fontsize=7)
    ax[1, 0].legend(fontsize=7, loc="upper center")
    fig.suptitle(f"Market power in the local market{' — ' + title if title else ''}")
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)
