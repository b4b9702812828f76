"""The fast path (bid-space LP, network limits screened) against the explicit program.

For every program every scheme builds on random congested instances, the screened answer must
(1) cost what HiGHS finds on the explicit program (1e-6 relative) and (2) be an optimal
primal–dual pair *of the explicit program*: its full z is feasible there and its row duals
satisfy dual feasibility and complementary slackness. (2) is what makes the prices exact: the
nodal duals are reconstructed, not solved for, so they are checked against the KKT conditions.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from random_instances import all_buses, random_instance, random_linear_td, revalue

from smartnet_gym.config import SCHEMES, MarketConfig
from smartnet_gym.market import screening
from smartnet_gym.market.bids import FORCED_UNIT, BidBook
from smartnet_gym.market.dual_simplex import SimplexResult
from smartnet_gym.market.program import ProgramMatrices
from smartnet_gym.market.schemes import make_scheme
from smartnet_gym.market.screening import ScreenedBackend, screenable
from smartnet_gym.market.solvers import HighsBackend, Solution
from smartnet_gym.market.stages import MarketInstance, evaluate_cost, evaluation_stage

LP = MarketConfig(qp_epsilon=0.0, backend="highs")
TOL = 1e-6


def assert_kkt(m: ProgramMatrices, vectors: tuple, sol: Solution) -> None:
    """(z, row duals) optimal for the explicit LP: primal and dual feasible, complementary."""
    c, lb, ub, lo, hi = vectors
    z, y = sol.z, sol.row_dual
    scale = 1.0 + np.abs(z).max()
    az = m.a @ z
    assert (az >= lo - TOL * scale).all() and (az <= hi + TOL * scale).all(), "row infeasible"
    assert (z >= lb - TOL * scale).all() and (z <= ub + TOL * scale).all(), "bound infeasible"
    d = c - m.a.T @ y                      # reduced costs with y = ∂ objective / ∂ rhs
    dtol = 1e-6 * (1.0 + np.abs(c).max() + np.abs(y).max())
    at_lb = np.isfinite(lb) & (z <= lb + 1e-7 * scale)
    at_ub = np.isfinite(ub) & (z >= ub - 1e-7 * scale)
    free = ~at_lb & ~at_ub
    assert np.abs(d[free]).max(initial=0.0) < dtol, "reduced cost of a column between its bounds"
    assert (d[at_lb & ~at_ub] > -dtol).all() and (d[at_ub & ~at_lb] < dtol).all(), "wrong-signed reduced cost"
    rng_rows = m.row_range
    inside = rng_rows & (az > lo + 1e-7 * scale) & (az < hi - 1e-7 * scale)
    assert np.abs(y[inside]).max(initial=0.0) < dtol, "dual of a slack row"
    at_lo = rng_rows & ~inside & (az <= lo + 1e-7 * scale) & (lo < hi)
    at_hi = rng_rows & ~inside & (az >= hi - 1e-7 * scale) & (lo < hi)
    assert (y[at_lo & ~at_hi] > -dtol).all() and (y[at_hi & ~at_lo] < dtol).all(), "wrong-signed row dual"
    assert abs(c @ z - sol.objective_eur) <= 1e-6 * (1.0 + abs(sol.objective_eur))


def _programs(out):
    return [r.program for r in out.records if r.program is not None and r.program.last_vectors is not None]


def _screened_programs(out):
    """The programs of ``out`` the fast path solved."""
    return [p for p in _programs(out) if isinstance(p.backend, ScreenedBackend)]


def assert_explicit_optimum(prog) -> Solution:
    """Re-solve ``prog``'s last values on its backend: HiGHS's optimum of the explicit program, and
    a KKT pair of it."""
    sol = prog.backend.solve(*prog.last_vectors)
    ref = HighsBackend(prog.m).solve(*prog.last_vectors)
    assert sol.ok and ref.ok
    assert abs(sol.objective_eur - ref.objective_eur) <= 1e-6 * (1.0 + abs(ref.objective_eur))
    assert_kkt(prog.m, prog.last_vectors, sol)
    return sol


@pytest.mark.parametrize("idle_solves", [screening.IDLE_SOLVES, 1])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_screened_is_optimal_for_the_explicit_program(scheme, idle_solves, monkeypatch):
    """Also with limit rows retired after one slack solve (rows leave and come back)."""
    monkeypatch.setattr(screening, "IDLE_SOLVES", idle_solves)
    screened_rows = 0
    for seed in range(12):
        rng = np.random.default_rng(1000 + seed)
        lin = random_linear_td(rng)
        inst = random_instance(rng, lin, stress=0.9)
        sch = make_scheme(scheme, lin, LP)
        for _ in range(3):                      # same layout: the screened model is reused
            out = sch.clear(inst, evaluate=False)
            for prog in _programs(out):
                if not isinstance(prog.backend, ScreenedBackend):
                    assert not screenable(prog.m)
                    continue
                assert_explicit_optimum(prog)
                assert prog.backend.fallbacks == 0, "the dual simplex handed a solve to HiGHS"
                screened_rows += len(prog.backend.active)
            inst = revalue(rng, lin, inst, stress=0.9)
    if scheme != "CS_C":        # CS_C's TSO stage models no limits the stress reaches on every net
        assert screened_rows > 0, "no limit ever bound: the test would not exercise screening"


def test_failed_screened_solve_falls_back_to_the_explicit_program(monkeypatch):
    """A non-optimal bid-space LP is not trusted: the explicit program answers instead."""
    rng = np.random.default_rng(7)
    lin = random_linear_td(rng)
    inst = random_instance(rng, lin, stress=0.9)
    out = make_scheme("CS_D", lin, LP).clear(inst, evaluate=False)
    prog = _programs(out)[-1]
    backend = prog.backend
    assert isinstance(backend, ScreenedBackend)
    fallbacks = backend.fallbacks
    monkeypatch.setattr(backend.lp, "solve", lambda *a: SimplexResult("failed: broken", np.zeros(0),
                                                                       np.zeros(0), float("nan"), 0))
    sol = backend.solve(*prog.last_vectors)
    ref = HighsBackend(prog.m).solve(*prog.last_vectors)
    assert sol.ok and abs(sol.objective_eur - ref.objective_eur) <= 1e-6 * (1.0 + abs(ref.objective_eur))
    assert backend.fallbacks == fallbacks + 1


@pytest.mark.parametrize("seed", range(40))
def test_fixed_activation_evaluation_equals_the_solver(seed):
    """With every activation fixed, the solver-free evaluation costs what HiGHS finds (or fails with it)."""
    rng = np.random.default_rng(2000 + seed)
    lin = random_linear_td(rng)
    inst = random_instance(rng, lin, stress=0.9)
    stage = evaluation_stage(lin, LP)
    prog = stage.program(inst.book, stage.spec(), inst.horizon)
    assert isinstance(prog.backend, ScreenedBackend)
    x = rng.uniform(0.0, 1.0, len(inst.book)) * inst.book.qty_mw * (rng.random(len(inst.book)) < 0.6)
    res = prog.solve(inst.book, inst.base, inst.need_mw[None, :], fix_x=x)
    ref = HighsBackend(prog.m).solve(*prog.last_vectors)
    assert res.ok == ref.ok, (res.status, ref.status)
    if ref.ok:
        assert abs(res.objective_eur - ref.objective_eur) <= 1e-7 * (1.0 + abs(ref.objective_eur))
        np.testing.assert_allclose(res.x_mw, x, atol=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_a_program_asked_in_turn_answers_as_a_fresh_one(seed):
    """The filled vectors are kept for the same book, base and needs: evaluations and solves in
    turn, with the inputs changing or not, answer as a program built for each call does."""
    rng = np.random.default_rng(2100 + seed)
    lin = random_linear_td(rng)
    inst = random_instance(rng, lin, stress=0.9)
    stage = evaluation_stage(lin, LP)
    prog = stage.program(inst.book, stage.spec(), inst.horizon)
    need = inst.need_mw[None, :]
    other = inst.book.with_values(qty_mw=inst.book.qty_mw * rng.uniform(0.5, 1.0, len(inst.book)))
    x1, x2 = (rng.uniform(0.0, 1.0, len(inst.book)) * other.qty_mw for _ in range(2))
    calls = [(inst.book, need, x1), (inst.book, need, x2), (inst.book, need.copy(), None), (inst.book, 0.5 * need, x1),
             (other, 0.5 * need, None), (other, 0.5 * need, x2), (inst.book, need, x2)]
    for book, needs, x in calls:
        res = prog.solve(book, inst.base, needs, fix_x=x)
        fresh = type(prog)(lin, book, stage.spec(), inst.horizon, stage.cfg, stage.backend).solve(
            book, inst.base, needs, fix_x=x)
        assert res.ok == fresh.ok
        if fresh.ok:
            assert abs(res.objective_eur - fresh.objective_eur) <= 1e-7 * (1.0 + abs(fresh.objective_eur))
            np.testing.assert_allclose(res.x_mw, fresh.x_mw, atol=1e-7)


def test_a_solve_past_the_row_cap_is_answered_by_the_explicit_program(monkeypatch):
    """More binding limits than MAX_LP_ROWS: HiGHS on the explicit program, counted, same optimum."""
    monkeypatch.setattr(screening, "MAX_LP_ROWS", 1)
    oversized = 0
    for seed in range(6):
        rng = np.random.default_rng(1000 + seed)
        lin = random_linear_td(rng)
        inst = random_instance(rng, lin, stress=0.9)
        out = make_scheme("CS_D", lin, LP).clear(inst, evaluate=False)
        prog = _programs(out)[-1]
        sol = prog.backend.solve(*prog.last_vectors)
        ref = HighsBackend(prog.m).solve(*prog.last_vectors)
        assert sol.ok and abs(sol.objective_eur - ref.objective_eur) <= 1e-6 * (1.0 + abs(ref.objective_eur))
        assert prog.backend.fallbacks == 0
        oversized += prog.backend.oversized
    assert oversized > 0, "no solve needed a limit row: the test would not exercise the cap"


@pytest.mark.parametrize("scheme", ["CS_D", "CS_A", "CS_B"])
def test_limits_folded_into_costs_give_the_explicit_optimum(scheme, monkeypatch):
    """With little room in the LP, violated limits are priced as linear costs (folded); the answer
    is still the explicit program's optimum and a KKT pair of it, also when the layout is re-solved
    and folded rows are unfolded again."""
    folded = 0
    for cap, seed in [(cap, seed) for cap in (6, 12, 24) for seed in range(10)]:
        monkeypatch.setattr(screening, "MAX_LP_ROWS", cap)
        rng = np.random.default_rng(4000 + seed)
        lin = random_linear_td(rng)
        inst = random_instance(rng, lin, stress=0.9)
        sch = make_scheme(scheme, lin, LP)
        for _ in range(3):
            out = sch.clear(inst, evaluate=False)
            for prog in _screened_programs(out):
                backend = prog.backend
                before = (backend.oversized, backend.fallbacks)
                assert_explicit_optimum(prog)
                if (backend.oversized, backend.fallbacks) == before:   # the bid-space LP answered
                    folded += len(backend.folded)
            inst = revalue(rng, lin, inst, stress=0.9)
    assert folded > 0, "no limit was ever folded: the test would not exercise folding"


@pytest.mark.parametrize("scheme", ["CS_D", "CS_B", "CS_D_dec"])
def test_a_reset_scheme_replays_like_a_new_one(scheme):
    """``Scheme.reset`` keeps the programs but not their solver state: after other clearings, the
    same sequence of instances clears bit-identically to a new scheme's."""
    rng = np.random.default_rng(5000)
    lin = random_linear_td(rng)
    insts = [random_instance(rng, lin, stress=0.9)]
    for _ in range(3):
        insts.append(revalue(rng, lin, insts[-1], stress=0.9))
    name, cfg = (scheme, LP) if scheme != "CS_D_dec" else ("CS_D", LP.model_copy(update={"variant": "decentralized"}))

    def run(sch):
        return [(o.activated_mw, o.payment_eur, o.objective_eur) for o in (sch.clear(i, evaluate=False) for i in insts)]

    used = make_scheme(name, lin, cfg)
    run(used)
    for inst in insts[::-1]:       # another history
        used.clear(revalue(rng, lin, inst, stress=0.9), evaluate=False)
    used.reset()
    fresh = run(make_scheme(name, lin, cfg))
    again = run(used)
    for (xa, pa, oa), (xb, pb, ob) in zip(fresh, again, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(pa, pb)
        assert oa == ob or (np.isnan(oa) and np.isnan(ob))


def test_nothing_activated_is_taken_only_when_it_is_the_optimum():
    """CS_B's congestion-only local market: on a grid without violations zero is the answer with no
    simplex solve (rounds 0), and HiGHS and the KKT conditions agree; with violations it is not taken."""
    shortcut = solved = 0
    for seed in range(16):
        rng = np.random.default_rng(3000 + seed)
        lin = random_linear_td(rng)
        inst = random_instance(rng, lin, stress=0.9 if seed % 2 else 0.0)
        out = make_scheme("CS_B", lin, LP).clear(inst, evaluate=False)
        local = next(r.program for r in out.records if r.name.startswith("local_"))
        backend = local.backend
        assert isinstance(backend, ScreenedBackend)
        sol = assert_explicit_optimum(local)
        zero_ok = backend._zero_is_optimal(*local.last_vectors)
        assert (backend.rounds == 0) == zero_ok
        if zero_ok:
            shortcut += 1
            assert sol.objective_eur == 0.0 and not sol.z.any()
        else:
            solved += 1
            assert HighsBackend(local.m).solve(*local.last_vectors).objective_eur > 0.0
    assert shortcut and solved, (shortcut, solved)


def _with_forced(rng: np.random.Generator, lin, inst: MarketInstance) -> MarketInstance:
    """``inst`` with forced-measure options at every bus, period and direction (random room, VoLL)."""
    buses, h = all_buses(lin), inst.horizon
    n = 2 * len(buses) * h
    forced = BidBook.from_arrays(
        bus=np.tile(np.r_[buses, buses], h), direction=np.tile(np.r_[np.ones(len(buses)), -np.ones(len(buses))], h),
        period=np.repeat(np.arange(h), 2 * len(buses)), qty_mw=rng.uniform(0.0, 10.0, n),
        price_eur_per_mwh=np.full(n, 3000.0), unit=np.full(n, FORCED_UNIT))
    return replace(inst, forced=forced)


@pytest.mark.parametrize("idle_solves", [screening.IDLE_SOLVES, 1])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_forced_options_priced_in_give_the_explicit_optimum(scheme, idle_solves, monkeypatch):
    """Options join the bid-space LP only at a negative reduced cost (and leave when idle): the
    answer must still be HiGHS's optimum of the explicit program with every option, and options
    must be used somewhere, or the test would not exercise their entry."""
    monkeypatch.setattr(screening, "IDLE_SOLVES", idle_solves)
    used = 0.0
    for seed in range(10):
        rng = np.random.default_rng(2000 + seed)
        lin = random_linear_td(rng)
        inst = _with_forced(rng, lin, random_instance(rng, lin, stress=0.9))
        sch = make_scheme(scheme, lin, LP)
        for _ in range(3):
            out = sch.clear(inst, evaluate=False)
            for prog in _screened_programs(out):
                sol = assert_explicit_optimum(prog)
                assert prog.backend.fallbacks == 0, "the dual simplex handed a solve to HiGHS"
                used += sol.z[prog.m.forced_cols].sum()
            inst = _with_forced(rng, lin, revalue(rng, lin, inst, stress=0.9))
    if scheme != "CS_C":
        assert used > 0, "no option was ever worth its price: the test would not exercise their entry"


def test_evaluation_with_forced_options_skips_the_lp_only_where_they_are_idle(monkeypatch):
    """The yardstick of fixed activations with forced measures: evaluated without them where no
    limit is violated, else an LP; both give the LP's cost with the bids pinned (both cases occur)."""
    lp_solves = []
    solve = ScreenedBackend.solve
    monkeypatch.setattr(ScreenedBackend, "solve", lambda self, *a: lp_solves.append(1) or solve(self, *a))
    shortcut = solved = 0
    for seed in range(12):
        rng = np.random.default_rng(6000 + seed)
        lin = random_linear_td(rng)
        inst = _with_forced(rng, lin, random_instance(rng, lin, n_storage=0, stress=0.9 if seed % 2 else 0.0))
        stage = evaluation_stage(lin, LP)
        full = inst.with_forced_options()
        x = inst.book.qty_mw * rng.uniform(0.0, 1.0 if seed % 2 else 0.01, len(inst.book))
        prog = stage.program(full.book, stage.spec(), inst.horizon)
        before = len(lp_solves)
        cost = evaluate_cost(stage, inst, x)[0]
        lps = len(lp_solves) - before
        pinned = prog.solve(full.book, inst.base, inst.need_mw[None, :], pin=(np.arange(len(x)), x))
        assert pinned.ok
        assert_explicit_optimum(prog)         # the pinned LP is HiGHS's optimum of the explicit program
        assert abs(cost - pinned.objective_eur) <= 1e-7 * (1.0 + abs(pinned.objective_eur))
        shortcut += not lps
        solved += bool(lps)
    assert shortcut and solved, (shortcut, solved)
