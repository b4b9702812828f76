"""The rolling loop: forecast → bids → clear → physics → aFRR → unwanted measures → CBA.

Every 15 minutes the scheme clears the horizon τ..τ+H−1; only the first period is binding.
Reality then differs from the forecast; the physical layer shows what the activations did, aFRR
covers the residual imbalance and unwanted measures remove the violations that remain. Each step
returns a :class:`StepOutcome` whose ``account`` is the CBA row of that step.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np

from smartnet_gym.cba.accounts import step_account
from smartnet_gym.config import ScenarioConfig
from smartnet_gym.data.forecasts import Forecaster, Snapshot
from smartnet_gym.grid.linear import BaseState
from smartnet_gym.grid.sensitivity import activation_response, base_state
from smartnet_gym.grid.system import TDSystem
from smartnet_gym.market.bidders import CURTAILABLE, available_mw, book_layout, truthful_book
from smartnet_gym.market.bids import BidBook, BuyBook
from smartnet_gym.market.program import DT_H
from smartnet_gym.market.schemes import ClearingOutcome, make_scheme
from smartnet_gym.market.stages import MarketInstance
from smartnet_gym.simulation.model_check import MODEL_COLUMNS, ModelCheck
from smartnet_gym.simulation.physics import (
    Oltc,
    PhysicalLayer,
    PhysicalState,
    ViolationCheck,
    Violations,
)
from smartnet_gym.simulation.unwanted import ForcedOptions, UnwantedMeasures, UnwantedOutcome
from smartnet_gym.threads import limit_blas_threads


@dataclass(frozen=True)
class StepOutcome:
    """Everything that happened in one market step."""

    step: int
    instance: MarketInstance
    clearing: ClearingOutcome
    delivered_mw: np.ndarray       # (n_bids,) delivered activation of each first-period bid (:meth:`RollingLoop.delivered`)
    unit_mw: np.ndarray            # delivered net activation per unit (UnitTable order)
    physical: PhysicalState
    violations: Violations
    unwanted: UnwantedOutcome | None
    account: dict[str, float]      # the CBA row of this step


class RollingLoop:
    """One scheme on one T&D system; :meth:`reset` starts an episode, :meth:`step` advances 15 min."""

    def __init__(self, system: TDSystem, cfg: ScenarioConfig, scheme: str | None = None,
                 physics: str | None = None, backend: str | None = None, forced_options: bool = True):
        """``forced_options``: whether the clearing holds forced measures as options where
        ``market.forced_measures`` leaves it open (None)."""
        limit_blas_threads()
        # the loop's own copy of the grid: the physical layer writes set-points and tap positions
        # into its net, so loops sharing a system (compare's schemes, a study worker's cells) would
        # otherwise start from each other's last state
        system = dataclasses.replace(system, net=copy.deepcopy(system.net))
        self.system, self.cfg = system, cfg
        m = cfg.market
        self.horizon = m.horizon_periods
        self.scheme = make_scheme(scheme or m.scheme, system.linear, m, backend)
        self.layout = book_layout(system.units, self.horizon)
        self.forecaster = Forecaster(system.profiles, cfg.data.forecast, self.horizon)
        oltc = Oltc(system, cfg.grid.mv_oltc_setpoint_pu, cfg.grid.ehv_oltc_setpoint_pu)
        self.physics = PhysicalLayer(system, physics or cfg.simulation.physics, oltc, cfg.simulation.fast_ac)
        self.unwanted = UnwantedMeasures(system, m, cfg.simulation.voll_eur_per_mwh)
        self.forced = (ForcedOptions(system, self.horizon, cfg.simulation.voll_eur_per_mwh)
                       if m.uses_forced_options(forced_options) else None)
        sim = cfg.simulation
        self.violations = ViolationCheck(system, sim.loading_tolerance_pct, sim.voltage_tolerance_pu)
        self.model_check = ModelCheck(self.violations)
        lin = system.linear
        n_areas = len(system.areas)
        self.load_area = np.array([lin.bus_area.get(int(b), -1) for b in system.load_bus])
        self.sgen_area = np.array([lin.bus_area.get(int(b), -1) for b in system.sgen_bus])
        brp_rng = np.random.default_rng(cfg.seed + 7919)
        self.load_brp = brp_rng.integers(0, m.brp_count, len(system.load_bus))
        self.sgen_brp = brp_rng.integers(0, m.brp_count, len(system.sgen_bus))
        self.n_areas = n_areas
        # net injection (sgens − loads) of the system, each area and each BRP: one product per outlook
        self._group_load = _membership(self.load_area, self.load_brp, n_areas, m.brp_count)
        self._group_sgen = _membership(self.sgen_area, self.sgen_brp, n_areas, m.brp_count)
        self._layout_area = lin.locate(self.layout.bus)[0]   # area of each layout row (−1 = transmission)
        self._first = book_layout(system.units, 1)   # the layout's first-period rows (periods outermost)
        self._first_storage = np.flatnonzero(self._first.storage >= 0)
        self._curtailable = np.isin(system.units.kind, CURTAILABLE)   # per unit
        self.storage_units = self.layout.storage_units
        self.soc_mwh = np.zeros(len(self.storage_units))
        self.t = self.start = self.end = 0
        self._instance: MarketInstance | None = None
        self._truthful: BidBook | None = None
        self._scheduled: tuple[int, np.ndarray] | None = None

    # ------------------------------------------------------------------ episode
    def reset(self, start_step: int, n_steps: int, rng: np.random.Generator) -> None:
        """Start an episode of ``n_steps`` market steps at profile step ``start_step``."""
        n_prof = self.system.profiles.n_steps
        if n_steps < 1:
            raise ValueError(f"n_steps must be >= 1 (got {n_steps})")
        if start_step < 0 or start_step + n_steps + self.horizon - 1 > n_prof:
            raise ValueError(f"start_step {start_step} + n_steps {n_steps} + horizon {self.horizon} - 1 "
                             f"exceeds the {n_prof} profile steps (allowed start_step: 0..."
                             f"{n_prof - n_steps - self.horizon + 1})")
        self.forecaster.reset(start_step, n_steps, rng)
        u = self.system.units
        self.soc_mwh = (u.soc0 * u.energy_mwh)[self.storage_units].astype(float)
        act = self.forecaster.actual(start_step)
        self.physics.relinearize(act.load_p, act.load_q, act.sgen_p, key=start_step)
        self.t, self.start, self.end = start_step, start_step, start_step + n_steps
        self._instance = None
        self._scheduled = None

    @property
    def done(self) -> bool:
        return self.t >= self.end

    # ------------------------------------------------------------------ market instance
    def _group_injection(self, load_p: np.ndarray, sgen_p: np.ndarray) -> np.ndarray:
        """(1 + n_areas + n_brp, H) net injection (sgens − loads) of the system, each area, each BRP."""
        return self._group_sgen @ sgen_p.T - self._group_load @ load_p.T

    def _scheduled_injection(self) -> np.ndarray:
        """:meth:`_group_injection` of the current step's day-ahead schedule (computed once per step)."""
        if self._scheduled is None or self._scheduled[0] != self.t:
            sch = self.forecaster.schedule(self.t)
            self._scheduled = (self.t, self._group_injection(sch.load_p, sch.sgen_p))
        return self._scheduled[1]

    def bid_areas(self, book: BidBook) -> np.ndarray:
        """Area of each bid of ``book`` (−1 = transmission); the layout's own without a lookup."""
        if np.array_equal(book.bus, self.layout.bus):
            return self._layout_area
        return self.system.linear.locate(book.bus)[0]

    def instance(self, book: BidBook | None = None) -> MarketInstance:
        """The clearing instance of the current step (cached); ``book`` replaces the truthful bids."""
        if self._instance is None:
            self._follow_the_day()
            self._outlook = self.forecaster.forecast(self.t)
            self._instance = self.instance_for(self._outlook)
            self._truthful = self._instance.book
        if book is None:
            return self._instance
        return dataclasses.replace(self._instance, book=book)

    def _follow_the_day(self) -> None:
        """Linear physics: every ``simulation.relinearize_every_steps`` steps a new linearisation point,
        AC at this step's realised values with the OLTCs settled (as at the episode start), so the
        linear state does not drift from the grid over the day (AC physics takes every step's)."""
        k = self.cfg.simulation.relinearize_every_steps
        if self.physics.mode != "linear" or not k or self.t == self.start or (self.t - self.start) % k:
            return
        act = self.forecaster.actual(self.t)
        self.physics.relinearize(act.load_p, act.load_q, act.sgen_p, key=self.t)

    def instance_for(self, outlook: Snapshot) -> MarketInstance:
        """The current step's instance for an outlook (H, n) of load/RES — the forecast in the loop,
        the actual values for a perfect-foresight baseline — with the truthful book."""
        p, q = self.physics.inj.injections(outlook.load_p, outlook.load_q, outlook.sgen_p)
        base = base_state(self.system.linear, self.physics.point, p, q)
        # (1 + n_areas + n_brp, H): + = shortage vs schedule
        dev = self._scheduled_injection() - self._group_injection(outlook.load_p, outlook.sgen_p)
        book = truthful_book(self.layout, outlook.load_p, outlook.sgen_p, self.cfg.flex.load_flex_share,
                             self.soc_mwh)
        n_a = self.n_areas
        forced = None
        if self.forced is not None:
            forced = self.forced.book(outlook.load_p, outlook.sgen_p)
        return MarketInstance(book, base, dev[0], dev[1:1 + n_a], self._buy_book(dev[1 + n_a:]), forced)

    @property
    def truthful_book(self) -> BidBook:
        self.instance()
        return self._truthful

    def _buy_book(self, imb: np.ndarray) -> BuyBook:
        """CS_E: each BRP buys up (its shortage ``imb``, (n_brp, H)) and down (its surplus) per period, at its WTP."""
        m = self.cfg.market
        if self.scheme.name != "CS_E":
            return BuyBook.empty()
        names = tuple(f"BRP{k + 1}" for k in range(m.brp_count) for _ in range(self.horizon) for _ in (1, -1))
        direction = np.tile([1, -1], m.brp_count * self.horizon)
        period = np.tile(np.repeat(np.arange(self.horizon), 2), m.brp_count)
        qty = np.stack([np.maximum(imb, 0), np.maximum(-imb, 0)], axis=-1).reshape(-1)
        return BuyBook(names, direction, period, qty, np.full(len(qty), m.brp_wtp_eur_per_mwh))

    # ------------------------------------------------------------------ one step
    def delivered(self, book: BidBook, activated_mw: np.ndarray, act: Snapshot) -> np.ndarray:
        """Per book row, the first-period activation really delivered; later periods are not delivered.

        On the layout's rows, curtailment and demand response cannot exceed what is actually there
        (``act``: the realised values); batteries and generators deliver what was activated, as
        does every row of a book with another layout.
        """
        if not self._is_layout(book):
            return np.where(book.period == 0, activated_mw, 0.0)
        n1 = len(self._first)
        out = np.zeros(len(book))
        real = available_mw(self._first, act.load_p[None], act.sgen_p[None], self.cfg.flex.load_flex_share)
        out[:n1] = np.minimum(activated_mw[:n1], real)
        out[self._first_storage] = activated_mw[self._first_storage]
        return out

    def _is_layout(self, book: BidBook) -> bool:
        """Whether ``book``'s rows are the layout's (same unit, direction and period per row; the
        truthful book and those derived from it share the layout's arrays, so mostly no compare)."""
        lay = self.layout
        return all(a is b or (len(a) == len(b) and np.array_equal(a, b))
                   for a, b in ((book.unit, lay.unit), (book.period, lay.period), (book.direction, lay.direction)))

    def _unit_mw(self, book: BidBook, delivered: np.ndarray) -> np.ndarray:
        """Net activation per unit (UnitTable order) of the first-period rows ``delivered`` of ``book``."""
        return np.bincount(book.unit, weights=book.direction * delivered, minlength=len(self.system.units))

    def _ac_checked(self, inst: MarketInstance, out: ClearingOutcome) -> tuple[MarketInstance, ClearingOutcome, int]:
        """AC physics: check the cleared dispatch of the delivered period with a power flow at the
        forecast, as an operator would before delivery. Where the violated elements it finds differ
        from the clearing model's, the period's base state is moved by the difference (flows and
        voltages the linear model got wrong around its point) and the market cleared again, at most
        ``simulation.ac_check_rounds`` times. Returns the instance and outcome delivered and the
        number of re-clearings."""
        rounds = self.cfg.simulation.ac_check_rounds if self.physics.mode == "ac" else 0
        if not rounds:
            return inst, out, 0
        fc = self._outlook
        first = Snapshot(fc.load_p[0], fc.load_q[0], fc.sgen_p[0])
        n = 0
        for _ in range(rounds):
            unit_mw = self._unit_mw(inst.book, self.delivered(inst.book, out.activated_mw, first))
            seen = self.physics.probe(first.load_p, first.load_q, first.sgen_p, unit_mw)
            if seen is None:
                break
            modelled = self.predicted_state(inst, unit_mw)
            if np.array_equal(self.violations.flags(seen)[0], self.violations.flags(modelled)[0]):
                break
            inst = dataclasses.replace(inst, base=inst.base.first_period_moved(seen, modelled))
            out = self.scheme.clear(inst, evaluate=False)
            n += 1
        return inst, out, n

    def predicted_state(self, inst: MarketInstance, unit_mw: np.ndarray) -> BaseState:
        """What the clearings' linear model predicts for the delivered period: the instance's base
        state of its first period plus the response to the delivered activations ``unit_mw``, the
        feeder roots moving as the model's root coupling says."""
        return inst.base.first_period(activation_response(self.system.linear, self.physics.inj.unit @ unit_mw))

    def step(self, book: BidBook | None = None, outcome: ClearingOutcome | None = None) -> StepOutcome:
        """Clear (or take the operator's ``outcome``), deliver the first period, settle, account."""
        if self.done:
            raise RuntimeError("episode is over; call reset()")
        inst = forecast = self.instance(book)
        reclears = 0
        if outcome is not None:
            out = outcome
        else:
            inst, out, reclears = self._ac_checked(inst, self.scheme.clear(inst, evaluate=False))
        act = self.forecaster.actual(self.t)
        units = self.system.units
        delivered = self.delivered(inst.book, out.activated_mw, act)
        unit_mw = self._unit_mw(inst.book, delivered)
        predicted = self.predicted_state(forecast, unit_mw) if self.physics.mode == "ac" else None
        phys = self.physics.run(act.load_p, act.load_q, act.sgen_p, unit_mw)
        viol = self.violations(phys.state)
        unw = None
        if viol.d_total + viol.t_loading > 0:
            pos = self.physics.inj
            unw = self.unwanted.run(phys.state, pos.load @ act.load_p, pos.sgen @ act.sgen_p)
        # storage state of charge follows the delivered energy
        if len(self.storage_units):
            self.soc_mwh = np.clip(self.soc_mwh - DT_H * unit_mw[self.storage_units], 0.0,
                                   units.energy_mwh[self.storage_units])
        need_real = float(self._scheduled_injection()[0, 0] - (act.sgen_p.sum() - act.load_p.sum()))
        curtail = self._curtailable[inst.book.unit] & (inst.book.direction < 0)
        account = step_account(
            inst, out, cfg=self.cfg, scheme=self.scheme.name, step=self.t, n_areas=self.n_areas,
            area_of_bid=self.bid_areas(inst.book), delivered=delivered, unit_mw=unit_mw,
            need_real_mw=need_real, curtailed_market_mwh=float(DT_H * delivered[curtail].sum()),
            violations=viol, unwanted=unw, physical=phys)
        account.update(self.model_check(predicted, phys.state, forecast.base.first_period()) if predicted is not None
                       else _NO_MODEL_CHECK)
        account["ac_reclears"] = float(reclears)
        res = StepOutcome(self.t, inst, out, delivered, unit_mw, phys, viol, unw, account)
        self.t += 1
        self._instance = None
        return res


_NO_MODEL_CHECK = dict.fromkeys(MODEL_COLUMNS, float("nan"))


def _membership(area: np.ndarray, brp: np.ndarray, n_areas: int, n_brp: int) -> np.ndarray:
    """(1 + n_areas + n_brp, n_elements) 0/1 rows: every element, those of each area, of each BRP."""
    out = np.zeros((1 + n_areas + n_brp, len(area)))
    cols = np.arange(len(area))
    out[0] = 1.0
    inside = area >= 0
    out[1 + area[inside], cols[inside]] = 1.0
    out[1 + n_areas + brp, cols] = 1.0
    return out
