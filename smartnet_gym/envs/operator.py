"""Operator environments: ``smartnet/Dispatch-v0`` (TSO/market operator picks activations) and
``smartnet/DSOLimits-v0`` (DSOs limit the distribution bids that reach the market)."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from smartnet_gym.config import ScenarioConfig
from smartnet_gym.envs.core import EpisodeCore, MarketEnv
from smartnet_gym.envs.spaces import pack, scaled, share, time_features, unit_box
from smartnet_gym.market.bids import BidBook
from smartnet_gym.market.manual import manual_outcome
from smartnet_gym.market.program import DT_H
from smartnet_gym.market.stages import MarketInstance

V_SCALE_PU = 0.1   # voltage features: (v − 1 pu) / 0.1 pu


class GridObservation:
    """What an operator sees before a clearing: needs, offers, batteries and the forecast grid state.

    | part | size | value | scale |
    |---|---|---|---|
    | need | H | system imbalance forecast per period (+ = shortage) | / Σ rated power of all units |
    | area needs | A·H | part of the need arising in each area (area-major) | / Σ rated power of the area's units |
    | offers (per bid) | 2N | offered quantity of every bid; then its price | / unit rated power; / price cap |
    | offers (per area) | 2·A·H | D quantity offered up, then down, per area and period | / Σ rated power of the area's units |
    | state of charge | S | every battery | 2·SoC/energy − 1 |
    | D voltage | 2·A·H | highest, then lowest forecast base-case voltage per area and period | (v − 1) / 0.1 pu |
    | D loading | A·H | highest forecast loading of a feeding branch per area and period | loading − 1 (0 = at the limit) |
    | T loading | H | highest forecast loading of a transmission branch | loading − 1 |
    | last prices | H | uniform price of the last clearing | / price cap |
    | time | 4 | sin, cos of time of day; sin, cos of day of year | — |

    "Base case" = the forecast without activations (``MarketInstance.base``). Clipped to [-1, 1].
    """

    def __init__(self, core: EpisodeCore, per_bid: bool):
        loop = core.loop
        sys = loop.system
        u, lay = sys.units, loop.layout
        self.core, self.per_bid, self.need_scale_mw = core, per_bid, core.need_scale_mw
        self.horizon, self.n_bids, self.n_storage = loop.horizon, len(lay), len(loop.storage_units)
        self.cap = loop.cfg.market.price_cap_eur_per_mwh
        self.n_areas = len(sys.areas)
        self.row_area = u.area[lay.unit]
        self.row_rated = np.maximum(u.p_rated_mw[lay.unit], 1e-9)
        self.area_rated = np.array([max(u.p_rated_mw[u.area == a].sum(), 1e-9) for a in range(self.n_areas)])
        self.energy = np.maximum(u.energy_mwh[loop.storage_units], 1e-9)
        # feeders side by side (the base state's per-feeder arrays joined along the node axis):
        # where each nonempty feeder starts, and the flow-limited feeding branches
        feeders = sys.linear.feeders
        width = np.array([f.n_bus for f in feeders], dtype=np.int64)
        start = (np.cumsum(width) - width).astype(np.int64)
        area = np.array([f.area for f in feeders], dtype=np.int64)
        self._v_area, self._v_start = area[width > 0], start[width > 0]
        lim = [np.isfinite(f.rating_mva) & (f.rating_mva > 0) for f in feeders]
        n_lim = np.array([k.sum() for k in lim], dtype=np.int64)
        self._lim_cols = np.concatenate([np.zeros(0, np.int64)] + [start[i] + np.flatnonzero(k)
                                                                   for i, k in enumerate(lim)]).astype(np.int64)
        self._lim_rating = np.concatenate([np.zeros(0)] + [f.rating_mva[k] for f, k in zip(feeders, lim)])
        self._lim_area = area[n_lim > 0]
        self._lim_start = np.r_[0, np.cumsum(n_lim[n_lim > 0])[:-1]].astype(np.int64)
        dc = sys.linear.dc
        self.t_limited = np.isfinite(dc.rating_mw) & (dc.rating_mw > 0)
        self.t_rating = dc.rating_mw[self.t_limited]

    @property
    def dim(self) -> int:
        h, a = self.horizon, self.n_areas
        offers = 2 * self.n_bids if self.per_bid else 2 * a * h
        return h + a * h + offers + self.n_storage + 3 * a * h + h + h + 4

    def _grid(self, inst: MarketInstance) -> list[np.ndarray]:
        h, a = self.horizon, self.n_areas
        vmax, vmin, load = np.zeros((a, h)), np.zeros((a, h)), np.full((a, h), -1.0)
        base = inst.base
        if len(self._v_start):
            v = np.sqrt(np.maximum(np.concatenate(base.d_w_pu2, axis=1), 0.0))
            vmax[self._v_area] = np.maximum.reduceat(v, self._v_start, axis=1).T
            vmin[self._v_area] = np.minimum.reduceat(v, self._v_start, axis=1).T
        if len(self._lim_cols):
            flow = np.abs(np.concatenate(base.d_p_mw, axis=1)[:, self._lim_cols]) / self._lim_rating
            load[self._lim_area] = np.maximum.reduceat(flow, self._lim_start, axis=1).T - 1.0
        t_load = np.full(h, -1.0)
        if self.t_limited.any():
            t_load = (np.abs(base.t_flow_mw[:, self.t_limited]) / self.t_rating).max(axis=1) - 1.0
        return [(vmax - 1.0) / V_SCALE_PU, (vmin - 1.0) / V_SCALE_PU, load, t_load]

    def _offers(self, book: BidBook) -> list[np.ndarray]:
        if self.per_bid:
            return [book.qty_mw / self.row_rated, scaled(book.price_eur_per_mwh, self.cap)]
        h = self.horizon
        off = np.zeros((2, self.n_areas, h))
        d = self.row_area >= 0
        np.add.at(off, ((book.direction[d] < 0).astype(int), self.row_area[d], book.period[d]), book.qty_mw[d])
        return [off / self.area_rated[None, :, None]]

    def observe(self, inst: MarketInstance, last_prices: np.ndarray) -> np.ndarray:
        loop = self.core.loop
        return pack(scaled(inst.need_mw, self.need_scale_mw), scaled(inst.area_need_mw, self.area_rated[:, None]),
                    *self._offers(inst.book), 2.0 * loop.soc_mwh / self.energy - 1.0, *self._grid(inst),
                    scaled(last_prices, self.cap), time_features(loop.t if not loop.done else loop.t - 1))


def storage_feasible(book: BidBook, x: np.ndarray) -> np.ndarray:
    """``x`` with battery activations reduced so the state of charge stays in [0, energy] each period.

    Period by period, an excess discharge (up) or charge (down) is removed pro rata from that
    battery's bids in that direction; the clearing program imposes the same bounds. All
    batteries in one numba pass per period (the state of charge carries over).
    """
    x = np.array(x, dtype=float)
    rows = np.flatnonzero(book.storage >= 0)
    if not len(rows):
        return x
    st = book.storage_state
    _storage_feasible(x, rows, book.storage[rows].astype(np.int64), book.period[rows].astype(np.int64),
                      book.direction[rows] > 0, np.array(st.soc_mwh, dtype=float),
                      np.asarray(st.energy_mwh, dtype=float), DT_H)
    return x


@numba.njit(cache=True)
def _storage_feasible(x, rows, sid, per, up, soc, energy, dt):
    """:func:`storage_feasible` in place on ``x`` (``soc`` is advanced period by period)."""
    n = len(soc)
    for t in range(per.max() + 1):
        x_up, x_dn = np.zeros(n), np.zeros(n)
        for k in range(len(rows)):
            if per[k] == t:
                if up[k]:
                    x_up[sid[k]] += x[rows[k]]
                else:
                    x_dn[sid[k]] += x[rows[k]]
        f_up, f_dn = np.ones(n), np.ones(n)
        for b in range(n):
            net, hi, lo = x_up[b] - x_dn[b], soc[b] / dt, (soc[b] - energy[b]) / dt
            if net > hi and x_up[b] > 0:           # discharging below empty: cut the up bids
                f_up[b] = max(1.0 - (net - hi) / x_up[b], 0.0)
            elif net < lo and x_dn[b] > 0:         # charging above full: cut the down bids
                f_dn[b] = max(1.0 - (lo - net) / x_dn[b], 0.0)
        for k in range(len(rows)):
            if per[k] == t:
                x[rows[k]] *= f_up[sid[k]] if up[k] else f_dn[sid[k]]
        for b in range(n):
            soc[b] = min(max(soc[b] - dt * (f_up[b] * x_up[b] - f_dn[b] * x_dn[b]), 0.0), energy[b])


DISPATCH_ACTION_MODES = ("bid", "area")


def merit_order_fill(block: np.ndarray, price: np.ndarray, qty: np.ndarray, share_of_block: np.ndarray) -> np.ndarray:
    """(N,) activation of each bid when block b activates ``share_of_block[b]`` of its offered MW,
    cheapest bid first (ties in book order)."""
    order = np.lexsort((price, block))
    b, q = block[order], qty[order]
    cum = np.cumsum(q)
    n_blocks = len(share_of_block)
    total = np.bincount(b, q, n_blocks)
    before_block = np.r_[0.0, np.cumsum(total)][b]          # offered MW of the blocks sorted before
    target = share_of_block[b] * total[b]
    x_sorted = np.minimum(np.maximum(target - (cum - q - before_block), 0.0), q)
    x = np.empty_like(x_sorted)
    x[order] = x_sorted
    return x


class _OperatorEnv(MarketEnv):
    """Shared parts of the operator envs: grid observation, cost reward, CS_D yardstick."""

    def __init__(self, *, per_bid: bool, reward_scale_eur: float, **kwargs: Any):
        super().__init__(**kwargs)
        if not reward_scale_eur > 0:
            raise ValueError(f"reward_scale_eur: must be > 0 (got {reward_scale_eur})")
        self.reward_scale_eur = float(reward_scale_eur)
        self.obs_builder = GridObservation(self.core, per_bid)
        self.observation_space = unit_box(self.obs_builder.dim)

    def _observe(self, inst: MarketInstance) -> np.ndarray:
        return self.obs_builder.observe(inst, self._last_prices)

    def cs_d_optimum(self, inst: MarketInstance) -> tuple[np.ndarray, float]:
        """Activations of the CS_D joint clearing of ``inst`` and their yardstick cost [EUR]."""
        out = self.core.scheme("CS_D").clear(inst, evaluate=True)
        return out.activated_mw, float(out.evaluated_cost_eur)

    def evaluated_cost(self, inst: MarketInstance, x: np.ndarray) -> float:
        """Cost of activations ``x`` in the full linear T&D model (the common yardstick)."""
        return float(self.core.scheme("CS_D").evaluate(inst, x))


class DispatchEnv(_OperatorEnv):
    """The operator chooses the activation of every offered bid directly (no market clearing).

    ## Description
    An operator-side benchmark of the clearing problem of the rolling loop: every 15 minutes the agent
    sees the truthful offers of all flexibility providers, the imbalance forecast and the forecast
    grid state, and decides how much of each bid to activate for every period of the horizon.
    The decision is settled pay-as-bid (``market.manual.manual_outcome``) and booked to the TSO;
    only period 0 is delivered. The rolling loop then runs the physical layer, aFRR for the
    remaining imbalance and unwanted measures for remaining violations. The optimal decision
    (the CS_D joint clearing) is reported for comparison, so ``regret_eur`` ≥ 0 measures how far
    the agent is from the optimum on the common yardstick (the CS_D joint LP). ``scheme`` only selects
    the ICT-cost line and the label of the account (the agent replaces the clearing).

    ## Action Space
    ``action_mode="bid"`` (default): ``Box(-1, 1, (N,), float32)``, N = every bid of the book over
    the horizon (all units × offered directions × H periods, book order: period outermost; see
    ``action_labels``). ``action_mode="area"``: ``Box(-1, 1, (2H(A+1),), float32)``, one block per
    distribution area and the transmission grid (last) × direction (up, then down) × period
    (areas outermost): 40 entries on the default system instead of 2,024.

    | action_mode | Index | Meaning | Maps to |
    |---|---|---|---|
    | ``"bid"`` | k | activation of bid k | x_k = (a_k + 1)/2 · offered MW (a = −1: none, +1: all) |
    | ``"area"`` | b | activation of block b | (a_b + 1)/2 of the block's offered MW, its bids filled cheapest first (merit order) |

    Battery activations that would take the state of charge outside [0, energy] are reduced pro
    rata (``info["storage_reduced_mw"]``). Out-of-range entries are clipped and counted; NaN/inf
    raises ``ValueError`` naming the index.

    ## Observation Space
    ``Box(-1, 1, float32)``, see :class:`GridObservation`: need (H), area needs (A·H), offers —
    with ``action_mode="bid"`` the offered quantity (N) / unit rating and price (N) / cap of every
    bid, with ``"area"`` the D quantity offered up and down per area (2·A·H) —, SoC (S), D max/min
    voltage and D loading (3·A·H), T loading (H), last prices (H), time (4).

    ## Rewards
    ``reward = −(market_cost_eur + afrr_cost_eur + unwanted_cost_eur + unresolved_cost_eur) / reward_scale_eur``
    (the account's operator costs of the step, EUR; ICT cost is a constant and left out);
    default scale 1000 EUR.

    ## Info
    The common keys (every CBA column, ``clearing_status``, ``slack_mw``, ``prices_eur_per_mwh``
    (None: no clearing price), ``scheme``, ``physics``, ``clipped_actions``) plus:

    | key | unit | meaning |
    |---|---|---|
    | ``operator_cost_eur`` | EUR | market + aFRR + unwanted + unresolved cost (−reward × scale) |
    | ``policy_evaluated_cost_eur`` | EUR | ``Scheme.evaluate`` of the agent's activations (all periods) |
    | ``optimal_cost_eur`` | EUR | the same for the CS_D joint clearing (the optimum) |
    | ``regret_eur`` | EUR | policy − optimal (≥ 0 up to solver tolerance) |
    | ``storage_reduced_mw`` | MW | battery activation removed to respect the state of charge |

    ``regret_info=False`` leaves out the last four yardstick keys (saves two LP solves per step).

    ## Starting State
    As ``smartnet/Bidding-v0``: day ``data.start_day + d``, d ~ U{0..random_days−1}, at
    ``start_period``; ``reset(options={"start_step": k})`` fixes the start.

    ## Episode End
    Never terminates; truncated after ``episode_steps`` steps.

    ## Arguments
    | Parameter | Type | Default | Description |
    |---|---|---|---|
    | scenario | str or ScenarioConfig | "spain-like" | preset name or YAML path; other settings through a ScenarioConfig, e.g. `load_scenario("spain-like", {"simulation": {"fast_ac": False}})` |
    | scheme | str or None | None (scenario's) | CS_A … CS_E (label and ICT cost only) |
    | physics | str | "linear" | "linear" or "ac" (AC power flow: the fast Newton-Raphson, or pandapower's runpp with the scenario's `simulation.fast_ac: false`) |
    | episode_steps | int | 96 | steps per episode |
    | reward_scale_eur | float | 1000.0 | reward = −EUR / this |
    | regret_info | bool | True | report the CS_D optimum and the regret |
    | random_days | int | 28 | number of start days drawn from |
    | start_period | int or None | 0 | quarter-hour of the first step (None = random) |
    | action_mode | str | "bid" | "bid" or "area": one action per bid or per area × direction × period (Action Space) |
    | render_mode | str or None | None | ignored: nothing to render |

    >>> import gymnasium as gym, smartnet_gym
    >>> env = gym.make("smartnet/Dispatch-v0", scenario="toy", episode_steps=4, start_period=48)
    >>> env.action_space
    Box(-1.0, 1.0, (56,), float32)
    >>> obs, info = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> info["regret_eur"] >= -1e-6
    True

    ## Version History
    * v0: Initial version.
    """

    def __init__(self, scenario: str | ScenarioConfig = "spain-like", scheme: str | None = None,
                 physics: str = "linear", episode_steps: int = 96, reward_scale_eur: float = 1000.0,
                 regret_info: bool = True, random_days: int = 28, start_period: int | None = 0,
                 action_mode: str = "bid", render_mode: str | None = None):
        if action_mode not in DISPATCH_ACTION_MODES:
            raise ValueError(f"action_mode: must be one of {', '.join(DISPATCH_ACTION_MODES)} (got {action_mode!r})")
        per_bid = action_mode == "bid"
        super().__init__(per_bid=per_bid, reward_scale_eur=reward_scale_eur, scenario=scenario, scheme=scheme,
                         physics=physics, episode_steps=episode_steps, random_days=random_days,
                         start_period=start_period, render_mode=render_mode)
        self.regret_info, self.action_mode = bool(regret_info), action_mode
        lay, sys = self.loop.layout, self.loop.system
        names = sys.units.name
        if per_bid:
            self.action_space = unit_box(len(lay))
            self.action_labels = tuple(f"activate {names[u]} {'up' if d > 0 else 'down'} t+{t}"
                                       for u, d, t in zip(lay.unit, lay.direction, lay.period, strict=True))
            return
        # one block per (area, direction, period), transmission last: areas outermost, then up/down
        h, n_areas = self.loop.horizon, len(sys.areas)
        area = np.where(self.obs_builder.row_area >= 0, self.obs_builder.row_area, n_areas)
        self._block = ((area * 2 + (lay.direction < 0)) * h + lay.period).astype(np.int64)
        self._n_blocks = (n_areas + 1) * 2 * h
        self.action_space = unit_box(self._n_blocks)
        where = [a.name for a in sys.areas] + ["transmission"]
        self.action_labels = tuple(f"activate {where[a]} {d} t+{t}" for a in range(n_areas + 1)
                                   for d in ("up", "down") for t in range(h))

    def activations(self, book: BidBook, action: np.ndarray) -> np.ndarray:
        """(N,) MW per bid that a (clipped) action asks for, before the battery check: per bid
        (``action_mode="bid"``), or each block's share of its offered MW filled cheapest first."""
        if self.action_mode == "bid":
            return share(action) * book.qty_mw
        return merit_order_fill(self._block, book.price_eur_per_mwh, book.qty_mw, share(action))

    def _act(self, action: np.ndarray) -> tuple[Any, float, dict[str, Any]]:
        inst = self.loop.instance()
        raw = self.activations(inst.book, action)
        x = storage_feasible(inst.book, raw)
        res = self.loop.step(outcome=manual_outcome(inst, x, self.core.scheme_name))
        acc = res.account
        cost = float(acc["market_cost_eur"] + acc["afrr_cost_eur"] + acc["unwanted_cost_eur"]
                     + acc["unresolved_cost_eur"])
        info: dict[str, Any] = {"operator_cost_eur": cost, "storage_reduced_mw": float((raw - x).sum())}
        if self.regret_info:
            _, opt = self.cs_d_optimum(inst)
            pol = self.evaluated_cost(inst, x)
            info.update(optimal_cost_eur=opt, policy_evaluated_cost_eur=pol, regret_eur=pol - opt)
        return res, -cost / self.reward_scale_eur, info


class DSOLimitsEnv(_OperatorEnv):
    """Each DSO limits how much of its distribution bids may be offered to the market (CS_A/CS_B).

    ## Description
    In SmartNet's CS_A (centralized AS market, DSO prequalifies) and CS_B (local AS market,
    DSO forwards unused bids within limits), the DSO decides how much distribution flexibility
    may reach the market at its interface. Here one agent plays all DSOs: every 15 minutes it sets,
    per distribution area, the share of each D bid's offered quantity that may be activated
    (implemented by scaling those bids' quantities in the book before the scheme clears). Too
    little starves the market (expensive T units, aFRR); too much lets the TSO activate bids that
    congest the distribution grid (unwanted measures). The CS_D clearing of the unlimited book on
    the same step is reported as the bound.

    ## Action Space
    ``Box(-1, 1, (A,), float32)``, one entry per distribution area (``system.areas`` order).

    | Index | Meaning | Unit | Maps to |
    |---|---|---|---|
    | a | limit of area a | — | share s_a = (x + 1)/2 ∈ [0, 1] of every D bid's quantity in area a (all periods, both directions) |

    Out-of-range entries are clipped and counted; NaN/inf raises ``ValueError`` naming the index.

    ## Observation Space
    ``Box(-1, 1, float32)``, see :class:`GridObservation` (per-area offers): need (H), area needs
    (A·H), D quantity offered up and down per area (2·A·H), SoC (S), D max/min voltage and D
    loading (3·A·H), T loading (H), last prices (H), time (4).

    ## Rewards
    ``reward = −total_cost_eur / reward_scale_eur`` (the account's total system cost: market +
    aFRR + unwanted measures + unresolved violations + ICT), default scale 1000 EUR.

    ## Info
    The common keys (every CBA column, ``clearing_status``, ``slack_mw``, ``prices_eur_per_mwh``,
    ``scheme``, ``physics``, ``clipped_actions``) plus:

    | key | unit | meaning |
    |---|---|---|
    | ``limit_share`` | — | tuple of the A shares applied |
    | ``evaluated_cost_eur`` | EUR | ``Scheme.evaluate`` of the scheme's activations on the unlimited instance |
    | ``cs_d_evaluated_cost_eur`` | EUR | the same for the CS_D clearing of the unlimited (truthful) book: the bound |

    ``bound_info=False`` leaves out the last two (saves two LP solves per step). (A realised
    CS_D *total* cost of the step would need a second rolling loop; it is not reported.)

    ## Starting State
    As ``smartnet/Bidding-v0``.

    ## Episode End
    Never terminates; truncated after ``episode_steps`` steps.

    ## Arguments
    | Parameter | Type | Default | Description |
    |---|---|---|---|
    | scenario | str or ScenarioConfig | "spain-like" | preset name or YAML path; other settings through a ScenarioConfig, e.g. `load_scenario("spain-like", {"simulation": {"fast_ac": False}})` |
    | scheme | str | "CS_B" | CS_A or CS_B |
    | physics | str | "linear" | "linear" or "ac" (AC power flow: the fast Newton-Raphson, or pandapower's runpp with the scenario's `simulation.fast_ac: false`) |
    | episode_steps | int | 96 | steps per episode |
    | reward_scale_eur | float | 1000.0 | reward = −EUR / this |
    | bound_info | bool | True | report the evaluated costs and the CS_D bound |
    | random_days | int | 28 | number of start days drawn from |
    | start_period | int or None | 0 | quarter-hour of the first step (None = random) |
    | render_mode | str or None | None | ignored: nothing to render |

    >>> import gymnasium as gym, smartnet_gym
    >>> env = gym.make("smartnet/DSOLimits-v0", scenario="toy", scheme="CS_A", episode_steps=4)
    >>> env.action_space
    Box(-1.0, 1.0, (1,), float32)
    >>> obs, info = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step(np.ones(1, np.float32))
    >>> info["evaluated_cost_eur"] >= info["cs_d_evaluated_cost_eur"] - 1e-6
    True

    ## Version History
    * v0: Initial version.
    """

    def __init__(self, scenario: str | ScenarioConfig = "spain-like", scheme: str = "CS_B",
                 physics: str = "linear", episode_steps: int = 96, reward_scale_eur: float = 1000.0,
                 bound_info: bool = True, random_days: int = 28, start_period: int | None = 0,
                 render_mode: str | None = None):
        super().__init__(per_bid=False, reward_scale_eur=reward_scale_eur, scenario=scenario, scheme=scheme,
                         physics=physics, episode_steps=episode_steps, random_days=random_days,
                         start_period=start_period, render_mode=render_mode, allowed_schemes=("CS_A", "CS_B"))
        self.bound_info = bool(bound_info)
        self.action_space = unit_box(len(self.loop.system.areas))
        self.action_labels = tuple(f"limit {a.name}" for a in self.loop.system.areas)
        self._row_area = self.obs_builder.row_area

    def book(self, action: np.ndarray) -> BidBook:
        """The truthful book with each area's D quantities scaled by its (clipped) action's share."""
        truthful = self.loop.truthful_book
        s = np.r_[share(action), 1.0]               # index −1 (transmission) keeps its quantity
        return truthful.with_values(qty_mw=truthful.qty_mw * s[self._row_area])

    def _act(self, action: np.ndarray) -> tuple[Any, float, dict[str, Any]]:
        inst = self.loop.instance()
        res = self.loop.step(book=self.book(action))
        info: dict[str, Any] = {"limit_share": tuple(float(v) for v in share(action))}
        if self.bound_info:
            _, bound = self.cs_d_optimum(inst)
            info.update(evaluated_cost_eur=self.evaluated_cost(inst, res.clearing.activated_mw),
                        cs_d_evaluated_cost_eur=bound)
        return res, -float(res.account["total_cost_eur"]) / self.reward_scale_eur, info


__all__ = ["DSOLimitsEnv", "DispatchEnv", "GridObservation", "merit_order_fill", "storage_feasible"]
