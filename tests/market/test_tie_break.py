"""Equal-price bids: the clearing picks the same activations whichever path or grouping solves it.

Books with only a few distinct prices have many optimal vertices. The tie-break (a cost
perturbation of at most ``TIE_EUR_PER_MWH`` per bid, fixed by the bid's identity) makes the
optimum unique, so the fast path, the explicit program and the DSOs cleared one by one or
together must return the same activations, and the reported costs stay those of the bids'
own prices.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from random_instances import random_case

from smartnet_gym.config import SCHEMES, MarketConfig
from smartnet_gym.market.bids import tie_break
from smartnet_gym.market.clearing import TIE_EUR_PER_MWH
from smartnet_gym.market.program import DT_H
from smartnet_gym.market.schemes import make_scheme
from smartnet_gym.market.schemes.base import Scheme
from smartnet_gym.market.stages import LocalClearing, TsoClearing


def _tied(seed: int, stress: float = 0.9):
    """A random case whose prices are all one of three values: ties everywhere."""
    case = random_case(seed, stress=stress)
    price = np.random.default_rng(seed).choice([20.0, 50.0, 80.0], len(case.inst.book))
    return case.lin, replace(case.inst, book=case.inst.book.with_values(price_eur_per_mwh=price))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_fast_and_explicit_paths_activate_the_same_bids(scheme):
    differing_without = 0
    for seed in range(10):
        lin, inst = _tied(4000 + seed)
        outs = [make_scheme(scheme, lin, MarketConfig(qp_epsilon=0.0, backend=b)).clear(inst, evaluate=False)
                for b in ("highs", "highs-full")]
        assert outs[0].status == outs[1].status == "optimal"
        np.testing.assert_allclose(outs[0].activated_mw, outs[1].activated_mw, atol=1e-6)
        np.testing.assert_allclose(outs[0].payment_eur, outs[1].payment_eur, atol=1e-5)
        differing_without += _differs_without_tie_break(lin, inst, scheme)
    if scheme in ("CS_A", "CS_D", "CS_E"):   # the test can fail: without it the paths do differ
        assert differing_without > 0


def _differs_without_tie_break(lin, inst, scheme) -> bool:
    from smartnet_gym.market import clearing

    saved = clearing.TIE_EUR_PER_MWH
    clearing.TIE_EUR_PER_MWH = 0.0
    try:
        xs = [make_scheme(scheme, lin, MarketConfig(qp_epsilon=0.0, backend=b)).clear(inst, evaluate=False)
              .activated_mw for b in ("highs", "highs-full")]
    finally:
        clearing.TIE_EUR_PER_MWH = saved
    return bool(np.abs(xs[0] - xs[1]).max() > 1e-6)


def test_dsos_cleared_together_or_one_by_one_activate_the_same_bids():
    cfg = MarketConfig(qp_epsilon=0.0, backend="highs")
    for seed in range(10):
        lin, inst = _tied(5000 + seed)
        areas = tuple(f.area for f in lin.feeders)
        one_by_one = Scheme("CS_C", "centralized", [LocalClearing(lin, cfg, "highs", (a,), True) for a in areas]
                            + [TsoClearing(lin, cfg, "highs", d_access=False, use_limits=False,
                                           need="transmission")], lin, cfg)
        a = one_by_one.clear(inst, evaluate=False)
        b = make_scheme("CS_C", lin, cfg).clear(inst, evaluate=False)
        np.testing.assert_allclose(a.activated_mw, b.activated_mw, atol=1e-6)
        assert a.objective_eur == pytest.approx(b.objective_eur, rel=1e-9, abs=1e-9)


def test_reported_cost_is_at_the_bids_own_prices():
    """The objective leaves the perturbation out: Σ Δt·price·x plus the slack penalties, exactly."""
    lin, inst = _tied(7, stress=0.0)
    out = make_scheme("CS_D", lin, MarketConfig(qp_epsilon=0.0, backend="highs")).clear(inst, evaluate=False)
    (rec,) = out.records
    bids = float(DT_H * inst.book.price_eur_per_mwh @ out.activated_mw)
    penalties = rec.result.objective_eur - bids
    vectors = rec.program.last_vectors
    z = rec.result.z
    slack_cost = float(vectors[0] @ z) - float(vectors[0][rec.program.m.x] @ z[rec.program.m.x])
    assert penalties == pytest.approx(slack_cost, abs=1e-7)
    tie = tie_break(inst.book)
    assert ((tie >= 0) & (tie < 1)).all() and len(np.unique(tie)) == len(tie)
    assert TIE_EUR_PER_MWH * DT_H < 1e-6
