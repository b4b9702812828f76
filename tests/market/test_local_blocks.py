"""The DSOs' local programs solved as one block-diagonal program equal each DSO clearing alone.

CS_B and CS_C clear every area's local market in one solver call; the truth is the same stage
run for one area at a time (``areas=(a,)``), each on its own program. Per area, the merged
record must cost the same, activate the same net MW per period, pay at the same prices where a
bid is activated, and CS_B's forwarded limits must be the same.
"""

from __future__ import annotations

import numpy as np
import pytest
from random_instances import random_case

from smartnet_gym.config import MarketConfig
from smartnet_gym.market.schemes import make_scheme
from smartnet_gym.market.stages import (
    ClearingState,
    ForwardLimits,
    LocalClearing,
    NetworkResponse,
    bid_areas,
    dso_blocks,
)

LP = MarketConfig(qp_epsilon=0.0, backend="highs")


def _alone(lin, inst, areas, balance):
    """Each area cleared by its own one-area stage: {area: record}."""
    out = {}
    for a in areas:
        state = ClearingState.start(inst, LP)
        LocalClearing(lin, LP, "highs", (a,), balance).run(inst, state, NetworkResponse(lin))
        (rec,) = state.records
        out[a] = rec
    return out


@pytest.mark.parametrize("balance", [False, True])
@pytest.mark.parametrize("seed", range(12))
def test_merged_local_clearing_equals_each_dso_alone(seed, balance):
    case = random_case(500 + seed, stress=0.9)
    lin, inst = case.lin, case.inst
    areas = tuple(f.area for f in lin.feeders)
    state = ClearingState.start(inst, LP)
    merged = LocalClearing(lin, LP, "highs", areas, balance)
    merged.run(inst, state, NetworkResponse(lin))
    assert [r.name for r in state.records] == [f"local_{a}" + ("_balance" if balance else "") for a in areas]
    whole = state.records[0].program.last_vectors
    assert whole is not None
    total = sum(r.result.objective_eur for r in state.records)
    alone = _alone(lin, inst, areas, balance)
    area = bid_areas(lin, inst.book)
    h = inst.horizon
    for rec in state.records:
        a = int(rec.name.split("_")[1])
        ref = alone[a]
        assert rec.result.ok and ref.result.ok
        np.testing.assert_array_equal(rec.bids, ref.bids)
        assert np.all(area[rec.bids] == a)
        assert rec.result.objective_eur == pytest.approx(ref.result.objective_eur, rel=1e-6, abs=1e-6)
        net, net_ref = np.zeros(h), np.zeros(h)
        book = inst.book
        np.add.at(net, book.period[rec.bids], book.direction[rec.bids] * rec.result.x_mw)
        np.add.at(net_ref, book.period[ref.bids], book.direction[ref.bids] * ref.result.x_mw)
        np.testing.assert_allclose(net, net_ref, atol=1e-6)
        np.testing.assert_allclose(rec.result.balance_slack_mw, ref.result.balance_slack_mw, atol=1e-6)
        assert rec.result.flow_slack_mw == pytest.approx(ref.result.flow_slack_mw, abs=1e-6)
        assert rec.result.voltage_slack_pu2 == pytest.approx(ref.result.voltage_slack_pu2, abs=1e-9)
        if balance:   # the local balance price is the marginal cost of the area's own need
            np.testing.assert_allclose(rec.result.uniform_price, ref.result.uniform_price, rtol=1e-6, atol=1e-6)
    # the parts add up to the merged program's optimum (at the bids' own prices: without the tie-break)
    prog = state.records[0].program
    idx = np.flatnonzero(np.isin(area, areas))
    x = np.zeros(len(idx))
    for rec in state.records:
        x[np.searchsorted(idx, rec.bids)] = rec.result.x_mw
    res_total = prog.backend.solve(*whole).objective_eur - prog.tie_cost @ x
    assert total == pytest.approx(res_total, rel=1e-9, abs=1e-9)


def test_merged_forward_limits_equal_each_dso_alone():
    moved = 0
    for seed in range(8):
        case = random_case(700 + seed, stress=0.9)
        lin, inst = case.lin, case.inst
        areas = tuple(f.area for f in lin.feeders)
        state = ClearingState.start(inst, LP)
        ForwardLimits(lin, LP, "highs", areas).run(inst, state, NetworkResponse(lin))
        for a in areas:
            one = ClearingState.start(inst, LP)
            ForwardLimits(lin, LP, "highs", (a,)).run(inst, one, NetworkResponse(lin))
            np.testing.assert_allclose(state.limits[a][0], one.limits[a][0], atol=1e-6)
            np.testing.assert_allclose(state.limits[a][1], one.limits[a][1], atol=1e-6)
            moved += np.abs(np.r_[one.limits[a][0], one.limits[a][1]]).max() > 1e-3
    assert moved >= 8, "too few areas with room to move: the comparison would be vacuous"


@pytest.mark.parametrize("scheme", ["CS_B", "CS_C"])
def test_all_dsos_share_one_local_program(scheme):
    """The point of the merge: one local program for every DSO, then the TSO's."""
    case = random_case(3, stress=0.9)
    lin, inst = case.lin, case.inst
    out = make_scheme(scheme, lin, LP).clear(inst, evaluate=False)
    programs = {id(r.program) for r in out.records}
    assert len(programs) == 2
    assert len(out.records) == len(lin.feeders) + 1


def test_cvxpy_reference_path_keeps_one_program_per_dso():
    """OSQP would converge at the pace of the hardest block, so the reference path does not merge."""
    lin = random_case(3).lin
    n = len(lin.feeders)
    assert dso_blocks(lin, "highs") == dso_blocks(lin, "highs-full") == [tuple(f.area for f in lin.feeders)]
    assert dso_blocks(lin, "cvxpy") == [(f.area,) for f in lin.feeders]
    b = make_scheme("CS_B", lin, MarketConfig(qp_epsilon=0.0, backend="cvxpy"))
    assert len(b.stages) == 2 * n + 1
