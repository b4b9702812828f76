"""Shared clearing stages; every scheme is a sequence of these (docs/model.md#the-schemes).

A stage reads the :class:`MarketInstance` (bids, base network state, needs) and updates the
:class:`ClearingState` (activations, payments, remaining quantities, shifted base state).
Each stage builds its :class:`ClearingProgram` once per bid layout and then only re-solves.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
from scipy.sparse.linalg import splu

from smartnet_gym.config import MarketConfig
from smartnet_gym.grid.linear import BaseState, LinearTD
from smartnet_gym.market.bids import BidBook, BuyBook, StorageState
from smartnet_gym.market.clearing import ClearingProgram, ProgramResult
from smartnet_gym.market.program import DT_H, ProgramSpec

T = -1  # "area" of transmission bids


@dataclass(frozen=True)
class MarketInstance:
    """Everything one clearing needs, for all H periods of the horizon."""

    book: BidBook
    base: BaseState
    need_mw: np.ndarray          # (H,) system imbalance to cover, + = shortage (needs up)
    area_need_mw: np.ndarray     # (n_areas, H) part of need_mw that arises inside each area
    buy: BuyBook = field(default_factory=BuyBook.empty)   # CS_E buy bids
    forced: BidBook | None = None   # forced measures the clearing may plan (unit FORCED_UNIT), if any

    @property
    def horizon(self) -> int:
        return len(self.need_mw)

    def with_forced_options(self) -> MarketInstance:
        """The instance the stages clear: the bids followed by the forced measures, if any. The
        same object each time (kept on the instance), so a program asked for it again — the
        yardstick pricing an optimum and a policy of one step — reuses its filled vectors."""
        if self.forced is None or not len(self.forced):
            return self
        return self._joined

    @cached_property
    def _joined(self) -> MarketInstance:
        return replace(self, book=self.book.joined(self.forced), forced=None)


@dataclass
class StageRecord:
    """What one stage did (kept for reporting and tests)."""

    name: str
    result: ProgramResult
    bids: np.ndarray             # indices (into the full book) of the bids this stage saw
    program: ClearingProgram | None = None   # the program solved (for export and inspection)
    payment_eur: np.ndarray | None = None    # (len(bids),) what this stage pays each of its bids


@dataclass
class ClearingState:
    """Mutable state folded through the stages of one clearing."""

    activated_mw: np.ndarray
    payment_eur: np.ndarray
    remaining_mw: np.ndarray
    shifted_base: BaseState              # base state after the activations shifted in so far
    limits: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    records: list[StageRecord] = field(default_factory=list)
    served_buy_mw: np.ndarray = field(default_factory=lambda: np.zeros(0))
    settlement: str = "pay_as_clear"
    price_cap_eur_per_mwh: float = np.inf
    pending: list[tuple[NetworkResponse, BidBook, np.ndarray]] = field(default_factory=list)

    @property
    def base(self) -> BaseState:
        """Base state after every activation booked so far; shifted on demand, so the network
        response of the last stage's activations, which no stage reads, is never computed."""
        for response, book, x in self.pending:
            self.shifted_base = response.shift(self.shifted_base, book, x)
        self.pending.clear()
        return self.shifted_base

    @staticmethod
    def start(inst: MarketInstance, cfg: MarketConfig) -> ClearingState:
        n = len(inst.book)
        return ClearingState(np.zeros(n), np.zeros(n), inst.book.qty_mw.copy(), inst.base,
                             served_buy_mw=np.zeros(len(inst.buy)), settlement=cfg.settlement,
                             price_cap_eur_per_mwh=cfg.price_cap_eur_per_mwh)


class NetworkResponse:
    """Linear network response to bid activations, to shift the base state between stages."""

    def __init__(self, lin: LinearTD):
        self.lin = lin
        dc = lin.dc
        self.free = ~dc.fixed
        b = dc.susceptance_matrix()[self.free][:, self.free].tocsc()
        self.lu = splu(b) if b.shape[0] else None
        self.bf = dc.flow_matrix()[:, self.free].tocsr()
        self.feeders = {f.area: f for f in lin.feeders}
        self.root = {}
        self.path = {}
        for f in lin.feeders:
            # P = −C⁻¹ p  (flows from injections); Δw = −2 M⁻¹ r∘P  (sparse triangular solves)
            self.path[f.area] = (splu(f.incidence().tocsc()), splu(f.voltage_matrix().tocsc()))
            self.root[f.area] = f.root_of_bus()

    def shift(self, base: BaseState, book: BidBook, x: np.ndarray) -> BaseState:
        """Base state after activations ``x`` of ``book`` (all periods)."""
        h = base.horizon
        area, pos = self.lin.locate(book.bus)
        inj = book.direction * x
        if not inj.any():                # nothing moved: the same state (keeps what is memoised on it)
            return base
        dc = self.lin.dc
        per = book.period
        t = area == T
        pt = period_sums(pos[t], per[t], inj[t], dc.n_bus, h)
        d_p, d_w = list(base.d_p_mw), list(base.d_w_pu2)
        for i, f in enumerate(self.lin.feeders):
            k = area == f.area
            if not k.any() or not inj[k].any():
                continue
            pd = period_sums(pos[k], per[k], inj[k], f.n_bus, h)
            pt += period_sums(self.root[f.area][pos[k]], per[k], inj[k], dc.n_bus, h)
            lu_c, lu_m = self.path[f.area]
            dp = lu_c.solve(pd)                      # C ΔP = Δp
            dw = lu_m.solve(-2 * f.r_pu[:, None] * dp)
            d_p[i] = base.d_p_mw[i] + dp.T
            d_w[i] = base.d_w_pu2[i] + dw.T
        t_flow = base.t_flow_mw
        if self.lu is not None and pt.any():
            theta = self.lu.solve(pt[self.free])
            t_flow = base.t_flow_mw + (self.bf @ theta).T
        return replace(base, t_flow_mw=t_flow, d_p_mw=tuple(d_p), d_w_pu2=tuple(d_w))


def period_sums(index: np.ndarray, period: np.ndarray, value: np.ndarray, n: int, h: int) -> np.ndarray:
    """(n, h) sums of ``value`` by (index, period): per bus, area or tree and period."""
    out = np.bincount(index * h + period, weights=value, minlength=n * h)
    return out.reshape(n, h).astype(float, copy=False)


class Stage:
    """Base of all stages: a program cache keyed by the bid layout it clears."""

    name = "stage"

    def __init__(self, lin: LinearTD, cfg: MarketConfig, backend: str):
        self.lin, self.cfg, self.backend = lin, cfg, backend
        self._programs: dict[tuple, ClearingProgram] = {}

    def reset(self) -> None:
        """Cold solvers for a new episode: programs that can reset do, the others are dropped."""
        for key, prog in list(self._programs.items()):
            if not prog.reset():
                del self._programs[key]

    def program(self, book: BidBook, spec: ProgramSpec, horizon: int, buy: BuyBook | None = None,
                tag: str = "", cfg: MarketConfig | None = None, backend: str | None = None) -> ClearingProgram:
        key = (tag, horizon, book.layout_key(), None if buy is None else buy.direction.tobytes()
               + buy.period.tobytes())
        prog = self._programs.get(key)
        if prog is None:
            if len(self._programs) > 8:   # layouts changing every step: keep memory bounded
                self._programs.clear()
            prog = ClearingProgram(self.lin, book, spec, horizon, cfg or self.cfg, backend or self.backend,
                                   buy_layout=buy)
            self._programs[key] = prog
        return prog

    def run(self, inst: MarketInstance, state: ClearingState, response: NetworkResponse) -> None:
        raise NotImplementedError


def apply_stage(state: ClearingState, inst: MarketInstance, idx: np.ndarray, res: ProgramResult, name: str,
                response: NetworkResponse, program: ClearingProgram | None = None) -> None:
    """Book a stage's activations (:func:`book_stage`) and queue the base-state shift they cause."""
    book_stage(state, inst, idx, res, name, program)
    queue_shift(state, inst, response, idx, res.x_mw)


def book_stage(state: ClearingState, inst: MarketInstance, idx: np.ndarray, res: ProgramResult, name: str,
               program: ClearingProgram | None = None) -> None:
    """Record a stage's activations: payments at its prices, remaining quantities."""
    pay = _settle(state, inst.book, idx, res.x_mw, res.bid_price)
    state.records.append(StageRecord(name, res, idx, program, pay))


def _settle(state: ClearingState, book: BidBook, idx: np.ndarray, x: np.ndarray, bid_price: np.ndarray,
            group: np.ndarray | None = None) -> np.ndarray:
    """Add activations ``x`` of bids ``idx`` to the state and pay them; returns the payments.

    Pay-as-clear pays each MWh the locational price, but never more than the highest offer the
    stage activated in the same direction and period (within ``group``: a local market's area).
    A market short of offers has locational prices set by its slack penalties or forced measures;
    those are removed and paid as unwanted measures, so providers are paid what offers set, not
    VoLL or a penalty: forced-measure rows are paid nothing here and set no price."""
    at = slice(None) if len(idx) == len(book) else idx     # a joint stage sees every bid: no gathers
    state.activated_mw[at] += x
    state.remaining_mw[at] = np.maximum(state.remaining_mw[at] - x, 0.0)
    offer = book.price_eur_per_mwh[at]
    forced = book.forced_rows[at]
    if forced.any():
        x = np.where(forced, 0.0, x)
    if state.settlement == "pay_as_bid":
        pay = DT_H * offer * x
    else:   # pay-as-clear at the locational price where the bid injects, within ± the price cap (NaN: 0)
        cap = state.price_cap_eur_per_mwh
        price = np.minimum(np.maximum(bid_price, -cap), cap)   # = np.clip, without its dispatch
        price[np.isnan(price)] = 0.0
        unit = book.direction[at] * price
        pay = DT_H * np.minimum(unit, highest_activated_offer(offer, book.direction[at], book.period[at], x,
                                                             group)) * x
    state.payment_eur[at] += pay
    return pay


def highest_activated_offer(offer: np.ndarray, direction: np.ndarray, period: np.ndarray, x: np.ndarray,
                            group: np.ndarray | None = None) -> np.ndarray:
    """(n,) the highest offer price among the activated bids (x > 1e-6 MW) sharing each bid's
    direction, period and group; +inf where none is activated."""
    g = np.zeros(len(x), np.int64) if group is None else np.asarray(group, np.int64) - int(np.min(group, initial=0))
    key = (g * (int(period.max(initial=0)) + 1) + period) * 2 + (direction > 0)
    top = np.full(int(key.max(initial=0)) + 1, -np.inf)
    on = x > 1e-6
    np.maximum.at(top, key[on], offer[on])
    out = top[key]
    out[~np.isfinite(out)] = np.inf
    return out


def queue_shift(state: ClearingState, inst: MarketInstance, response: NetworkResponse, idx: np.ndarray,
                x: np.ndarray) -> None:
    """Queue the network response of activations ``x`` of bids ``idx`` (applied when read)."""
    full_x = np.zeros(len(inst.book))
    full_x[idx] = x
    state.pending.append((response, inst.book, full_x))


def remaining_book(book: BidBook, idx: np.ndarray, state: ClearingState, horizon: int) -> BidBook:
    """The bids ``idx`` with what is left of them, and the battery energy earlier stages used."""
    if len(idx) == len(book):            # every bid (a joint stage): no copy
        sub = book
    else:
        sub = book.subset(idx)
    st = book.storage_state
    if not len(st):
        return sub.with_values(qty_mw=state.remaining_mw[idx])
    k = np.flatnonzero(book.storage >= 0)
    used = period_sums(book.storage[k], book.period[k], DT_H * book.direction[k] * state.activated_mw[k],
                       len(st), horizon)
    return replace(sub, qty_mw=state.remaining_mw[idx],
                   storage_state=StorageState(st.energy_mwh, st.soc_mwh, np.cumsum(used, axis=1)))


def _net(book: BidBook, idx: np.ndarray, x: np.ndarray, h: int) -> np.ndarray:
    out = np.zeros(h)
    np.add.at(out, book.period[idx], book.direction[idx] * x)
    return out


def bid_areas(lin: LinearTD, book: BidBook) -> np.ndarray:
    return lin.locate(book.bus)[0]


def in_areas(area: np.ndarray, areas: tuple[int, ...]) -> np.ndarray:
    """Positions of the bids whose area is one of ``areas`` (a table lookup; ``np.isin`` sorts)."""
    member = np.zeros(max(max(areas, default=T), int(area.max(initial=T))) + 2, bool)
    member[np.asarray(areas, int) + 1] = True
    return np.flatnonzero(member[area + 1])


class Prequalify(Stage):
    """CS_A option: the DSO blocks D bids of areas whose forecast base state violates D limits."""

    name = "prequalify"

    def run(self, inst, state, response):
        area = bid_areas(self.lin, inst.book)
        for i, f in enumerate(self.lin.feeders):
            w = inst.base.d_w_pu2[i]
            p = np.abs(inst.base.d_p_mw[i])
            bad = ((w > f.v_max_pu ** 2) | (w < f.v_min_pu ** 2)).any() or (p > f.rating_mva).any()
            if bad:
                state.remaining_mw[area == f.area] = 0.0


def dso_blocks(lin: LinearTD, backend: str) -> list[tuple[int, ...]]:
    """The DSOs' areas as the stages group them into programs: all in one block-diagonal program
    on the HiGHS paths (one solver call); one program per DSO on the CVXPY reference path, where
    OSQP's ADMM would run at the pace of the hardest block (3× slower merged, measured)."""
    areas = tuple(f.area for f in lin.feeders)
    return [areas] if backend.startswith("highs") else [(a,) for a in areas]


class LocalClearing(Stage):
    """Every DSO clears its own area on its own grid: congestion only, or also local balance (CS_C).

    The areas' programs are independent, so they are solved as one block-diagonal program (one
    solver call instead of one per DSO) and the answer is split back: one record ``local_<a>``
    (``local_<a>_balance``) per area, exactly as if each DSO had cleared alone (tested). A solver
    failure of the merged program fails every area's record (each is then priced downstream).
    """

    def __init__(self, lin, cfg, backend, areas: tuple[int, ...], balance: bool):
        super().__init__(lin, cfg, backend)
        self.areas, self.balance = tuple(areas), balance
        self.name = "local" + ("_balance" if balance else "")

    def spec(self) -> ProgramSpec:
        return ProgramSpec(False, self.areas, tuple((a,) for a in self.areas) if self.balance else ())

    def run(self, inst, state, response):
        area = bid_areas(self.lin, inst.book)
        idx = in_areas(area, self.areas)
        sub = remaining_book(inst.book, idx, state, inst.horizon)
        prog = self.program(sub, self.spec(), inst.horizon)
        needs = inst.area_need_mw[list(self.areas)] if self.balance else np.zeros((0, inst.horizon))
        res = prog.solve(sub, state.base, needs)
        suffix = "_balance" if self.balance else ""
        sub_area = area[idx]
        pay = _settle(state, inst.book, idx, res.x_mw, res.bid_price, sub_area)   # once for all areas, then per DSO
        for a, part in zip(self.areas, prog.area_parts(res, sub_area)):
            k = sub_area == a
            state.records.append(StageRecord(f"local_{a}{suffix}", part, idx[k], prog, pay[k]))
        queue_shift(state, inst, response, idx, res.x_mw)


class ForwardLimits(Stage):
    """CS_B: each DSO computes how much net up/down of its remaining bids its grid can take.

    Two solves of the local programs (all areas in one block-diagonal program, as in
    :class:`LocalClearing`): maximise, then minimise, each area's net activation Σ s·x with a
    unit reward, under the penalised D limits (penalties ≫ 1 EUR/MWh, so limits bind first).
    The TSO may then activate forwarded D bids only within these aggregate limits.
    """

    def __init__(self, lin, cfg, backend, areas: tuple[int, ...]):
        super().__init__(lin, cfg, backend)
        self.areas = tuple(areas)
        self.name = "limits"

    def run(self, inst, state, response):
        area = bid_areas(self.lin, inst.book)
        idx = in_areas(area, self.areas)
        idx = idx[~inst.book.forced_rows[idx]]     # forced measures are no flexibility to forward
        h = inst.horizon
        if not len(idx):
            state.limits.update({a: (np.zeros(h), np.zeros(h)) for a in self.areas})
            return
        sub = remaining_book(inst.book, idx, state, inst.horizon)
        s = sub.direction.astype(float)
        slot_of_area = np.zeros(max(self.areas) + 1, int)
        slot_of_area[list(self.areas)] = np.arange(len(self.areas))
        slot = slot_of_area[area[idx]]
        bounds = []
        for sign in (1.0, -1.0):   # maximise net up, then net down; one program each (hot starts)
            prog = self.program(sub, ProgramSpec(False, self.areas, ()), h, tag=f"{sign:+}")
            x = prog.activations(sub.with_values(price_eur_per_mwh=-sign * s), state.base, np.zeros((0, h)))
            bounds.append(period_sums(slot, sub.period, s * x, len(self.areas), h) if x is not None
                          else np.zeros((len(self.areas), h)))
        for j, a in enumerate(self.areas):
            state.limits[a] = (np.minimum(bounds[1][j], 0.0), np.maximum(bounds[0][j], 0.0))


class TsoClearing(Stage):
    """The TSO clears balance (and T congestion) with T bids and, if allowed, D bids at interfaces."""

    def __init__(self, lin, cfg, backend, d_access: bool, use_limits: bool, need: str):
        super().__init__(lin, cfg, backend)
        self.d_access, self.use_limits, self.need = d_access, use_limits, need
        self.name = "tso"

    def run(self, inst, state, response):
        area = bid_areas(self.lin, inst.book)
        h = inst.horizon
        idx = np.flatnonzero((area == T) | self.d_access)
        sub = remaining_book(inst.book, idx, state, inst.horizon)
        limit_areas = tuple(sorted(state.limits)) if self.use_limits else ()
        groups = ((T, *range(len(self.lin.feeders))),)
        prog = self.program(sub, ProgramSpec(True, (), groups, limit_areas), h, tag=str(limit_areas))
        if self.need == "residual":   # total need minus what earlier stages already moved
            bids = np.flatnonzero(~inst.book.forced_rows)       # forced measures are outside the balance
            need = inst.need_mw - _net(inst.book, bids, state.activated_mw[bids], h)
        else:                          # "transmission": only the imbalance arising at T level
            need = inst.need_mw - inst.area_need_mw.sum(axis=0)
        limits = None
        if limit_areas:
            limits = (np.stack([state.limits[a][0] for a in limit_areas]),
                      np.stack([state.limits[a][1] for a in limit_areas]))
        res = prog.solve(sub, state.base, need[None, :], limits)
        apply_stage(state, inst, idx, res, self.name, response, prog)


class JointClearing(Stage):
    """One program over transmission and every distribution area (CS_D centralized, CS_E)."""

    def __init__(self, lin, cfg, backend, with_buyers: bool = False):
        super().__init__(lin, cfg, backend)
        self.with_buyers = with_buyers
        self.name = "joint" + ("_welfare" if with_buyers else "")

    def spec(self) -> ProgramSpec:
        areas = tuple(f.area for f in self.lin.feeders)
        return ProgramSpec(True, areas, ((T, *areas),))

    def run(self, inst, state, response):
        idx = np.arange(len(inst.book))
        sub = remaining_book(inst.book, idx, state, inst.horizon)
        h = inst.horizon
        buy = inst.buy if self.with_buyers else None
        prog = self.program(sub, self.spec(), h, buy=buy)
        # with buyers the balance row only matches sellers to served buyers: the rest of the
        # imbalance is left to aFRR (priced in the loop), so the fixed need is zero
        need = np.zeros((1, h)) if self.with_buyers else inst.need_mw[None, :]
        res = prog.solve(sub, state.base, need, buy=buy)
        if self.with_buyers:
            state.served_buy_mw = res.y_mw
        apply_stage(state, inst, idx, res, self.name, response, prog)


def evaluation_stage(lin: LinearTD, cfg: MarketConfig) -> JointClearing:
    """The common yardstick: the joint LP, used with activations fixed."""
    return JointClearing(lin, cfg.model_copy(update={"qp_epsilon": 0.0}), "highs")


def evaluate_cost(stage: JointClearing, inst: MarketInstance, x: np.ndarray) -> tuple[float, ProgramResult]:
    """Cost of activations ``x`` of the bids in the full linear T&D model with the common slack
    penalties; forced measures the instance offers are cleared at their best around ``x``.

    With forced measures, ``x`` is first evaluated with none of them: where it violates no limit,
    that is their best (they cost VoLL and only relieve limits), and no LP is solved."""
    full = inst.with_forced_options()
    prog = stage.program(full.book, stage.spec(), inst.horizon)
    x = np.minimum(x, inst.book.qty_mw)
    if full is inst:
        res = prog.solve(inst.book, inst.base, inst.need_mw[None, :], fix_x=x)
        return res.objective_eur, res
    res = prog.solve(full.book, inst.base, inst.need_mw[None, :], fix_x=np.concatenate((x, np.zeros(len(inst.forced)))))
    if not (res.ok and res.flow_slack_mw == 0.0 and res.voltage_slack_pu2 == 0.0):
        res = prog.solve(full.book, inst.base, inst.need_mw[None, :], pin=(np.arange(len(x)), x))
    return res.objective_eur, res


__all__ = ["ClearingState", "ForwardLimits", "JointClearing", "LocalClearing", "MarketInstance", "NetworkResponse",
           "Prequalify", "Stage", "StageRecord", "TsoClearing", "dso_blocks", "evaluate_cost", "evaluation_stage",
           "period_sums"]
