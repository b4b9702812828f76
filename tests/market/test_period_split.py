"""Per-period structure of the program: what decentralized CS_D's per-period cuts rely on.

The column periods (``ProgramMatrices.col_period``) are checked against the matrix itself: every
row other than a battery's state of charge touches columns of one period only. The cost split by
area and period must add up to each area's objective, and pinning bids must clear the rest with
those activations fixed (pinning all of them is the ``fix_x`` evaluation).
"""

from __future__ import annotations

import numpy as np
import pytest
from random_instances import d_buses, random_case, random_instance, random_linear_td

from smartnet_gym.config import MarketConfig
from smartnet_gym.market.clearing import ClearingProgram
from smartnet_gym.market.program import ProgramSpec, build_matrices
from smartnet_gym.market.stages import T, bid_areas

LP = MarketConfig(qp_epsilon=0.0, backend="highs")


def _local_case(seed: int):
    """A random case with D batteries and the DSOs' block-diagonal program over it."""
    rng = np.random.default_rng(seed)
    lin = random_linear_td(rng)
    inst = random_instance(rng, lin, n_storage=2, storage_buses=d_buses(lin))
    area = bid_areas(lin, inst.book)
    keep = area != T
    book = inst.book.subset(keep)
    areas = tuple(f.area for f in lin.feeders)
    spec = ProgramSpec(False, areas, tuple((a,) for a in areas))
    needs = np.stack([inst.area_need_mw[a] for a in areas])
    return lin, inst, book, area[keep], spec, needs


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("joint", [True, False])
def test_every_row_but_a_batterys_lies_in_one_period(seed, joint):
    case = random_case(900 + seed, n_storage=2)
    lin, book = case.lin, case.inst.book
    areas = tuple(f.area for f in lin.feeders)
    spec = ProgramSpec(True, areas, ((T, *areas),)) if joint else ProgramSpec(False, areas, ())
    m = build_matrices(lin, book, spec, case.inst.horizon, LP)
    assert len(m.col_period) == m.n_col
    assert ((m.col_period >= 0) & (m.col_period < m.horizon)).all()
    a = m.a.tocsr()
    storage = m.rows.get("storage", slice(0, 0))
    checked = 0
    for r in range(m.n_row):
        if storage.start <= r < storage.stop:
            continue
        cols = a.indices[a.indptr[r]:a.indptr[r + 1]]
        if len(cols):
            assert len(np.unique(m.col_period[cols])) == 1, (r, m.col_period[cols])
            checked += 1
    assert checked > 0.9 * m.n_row - (storage.stop - storage.start)
    # the bids' own periods, and each slack column next to the rows it relaxes
    np.testing.assert_array_equal(m.col_period[m.x], book.period)


@pytest.mark.parametrize("seed", range(8))
def test_area_period_costs_add_up_to_each_areas_objective(seed):
    lin, inst, book, area, spec, needs = _local_case(40 + seed)
    prog = ClearingProgram(lin, book, spec, inst.horizon, LP)
    res = prog.solve(book, inst.base, needs)
    assert res.ok
    split = prog.area_period_costs(res)
    parts = prog.area_parts(res, area)
    for a, part in zip(spec.areas, parts):
        assert split[a + 1].sum() == pytest.approx(part.objective_eur, rel=1e-9, abs=1e-9)
    assert split.sum() == pytest.approx(res.objective_eur, rel=1e-9, abs=1e-9)
    # skipping the batteries removes exactly their cost
    s = np.flatnonzero(book.storage >= 0)
    skipped = prog.area_period_costs(res, s)
    battery = 0.25 * float(book.price_eur_per_mwh[s] @ res.x_mw[s])
    assert split.sum() - skipped.sum() == pytest.approx(battery, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("seed", range(8))
def test_pinned_bids_keep_their_activation_and_pinning_all_is_the_evaluation(seed):
    lin, inst, book, _area, spec, needs = _local_case(60 + seed)
    prog = ClearingProgram(lin, book, spec, inst.horizon, LP)
    free = prog.solve(book, inst.base, needs)
    s = np.flatnonzero(book.storage >= 0)
    pinned_mw = 0.5 * free.x_mw[s]          # feasible: half of an optimal battery schedule
    res = prog.solve(book, inst.base, needs, pin=(s, pinned_mw))
    assert res.ok
    np.testing.assert_allclose(res.x_mw[s], pinned_mw, atol=1e-9)
    assert res.objective_eur >= free.objective_eur - 1e-7 * max(1.0, abs(free.objective_eur))
    everything = np.arange(len(book))
    pin_all = prog.solve(book, inst.base, needs, pin=(everything, res.x_mw))
    fixed = prog.solve(book, inst.base, needs, fix_x=res.x_mw)
    assert pin_all.objective_eur == pytest.approx(fixed.objective_eur, rel=1e-7, abs=1e-7)
    assert pin_all.objective_eur == pytest.approx(res.objective_eur, rel=1e-7, abs=1e-7)
