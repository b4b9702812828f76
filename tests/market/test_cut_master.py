"""Decentralized CS_D's Benders master in bid space (``cut_master.py``) against the explicit master.

The bid-space master must give the same clearing as HiGHS on the explicit TSO program with the
same cuts: the same activations, the same payments (its nodal prices come back from the line
limits' duals) and the same Benders rounds, on congested random instances with D batteries;
and it must actually screen line limits there.
"""

from __future__ import annotations

import numpy as np
import pytest
from random_instances import d_buses, random_instance, random_linear_td, revalue

from smartnet_gym.config import MarketConfig
from smartnet_gym.market import decomposition
from smartnet_gym.market.cut_master import CutMasterBackend
from smartnet_gym.market.schemes import make_scheme

DEC = MarketConfig(qp_epsilon=0.0, backend="highs", variant="decentralized", balance_penalty_eur_per_mwh=1e5)


class _NeverScreened:
    """Stands in for ScreenedBackend in ``isinstance``: every master goes to the explicit program."""


def _clearings(monkeypatch, explicit: bool):
    if explicit:
        monkeypatch.setattr(decomposition, "ScreenedBackend", _NeverScreened)
    out, screened_limits = [], 0
    for seed in range(8):
        rng = np.random.default_rng(6000 + seed)
        lin = random_linear_td(rng)
        inst = random_instance(rng, lin, stress=0.9, n_storage=2, storage_buses=d_buses(lin))
        sch = make_scheme("CS_D", lin, DEC)
        stage = sch.stages[0]
        for _ in range(3):
            res = sch.clear(inst, evaluate=False)
            out.append((res.status, res.activated_mw, res.payment_eur, res.objective_eur, stage.rounds))
            for prog in stage._programs.values():
                if isinstance(prog.backend, CutMasterBackend):
                    screened_limits += len(prog.backend.active)
            inst = revalue(rng, lin, inst, stress=0.9)
    monkeypatch.undo()
    return out, screened_limits


def test_bid_space_master_clears_like_the_explicit_master(monkeypatch):
    fast, screened = _clearings(monkeypatch, explicit=False)
    ref, none = _clearings(monkeypatch, explicit=True)
    assert screened > 0, "no line limit bound in a master: the test would not exercise screening"
    assert none == 0
    for (st, x, pay, obj, rounds), (st_r, x_r, pay_r, obj_r, rounds_r) in zip(fast, ref, strict=True):
        assert st == st_r == "optimal"
        np.testing.assert_allclose(x, x_r, atol=1e-6)
        np.testing.assert_allclose(pay, pay_r, rtol=1e-6, atol=1e-5)
        assert obj == pytest.approx(obj_r, rel=1e-7, abs=1e-7)
        assert abs(rounds - rounds_r) <= 1


def test_merit_order_start_needs_one_round_exactly_when_no_d_limit_binds():
    """The master starts from the DSOs' merit orders without their limits, i.e. CS_A's view of the D
    bids: where CS_A's optimum already costs what CS_D's does (no D limit binds), decentralized
    CS_D stops after round 1; where D limits bind (CS_A cheaper), cuts are needed. Both reach CS_D."""
    lp = DEC.model_copy(update={"variant": "centralized"})
    seen = {True: 0, False: 0}
    for seed in range(24):
        rng = np.random.default_rng(7100 + seed)
        lin = random_linear_td(rng)
        inst = random_instance(rng, lin, stress=(0.0, 0.5, 1.0)[seed % 3], n_storage=0)
        a = make_scheme("CS_A", lin, lp).clear(inst, evaluate=False)
        c = make_scheme("CS_D", lin, lp).clear(inst, evaluate=False)
        dec = make_scheme("CS_D", lin, DEC)
        d = dec.clear(inst, evaluate=False)
        assert d.objective_eur == pytest.approx(c.objective_eur, rel=1e-7, abs=1e-7)
        unbound = abs(a.objective_eur - c.objective_eur) <= 1e-7 * max(1.0, abs(c.objective_eur))
        assert (dec.stages[0].rounds == 1) == unbound, (seed, dec.stages[0].rounds, a.objective_eur, c.objective_eur)
        seen[unbound] += 1
    assert seen[True] and seen[False], seen


def test_decentralized_qp_variant_matches_centralized_qp():
    """With the quadratic regularisation the DSOs' programs are QPs and the master stays an LP
    (its D bids' linear cost is then still a lower bound of each DSO's cost): the disaggregated
    activations cost what centralized CS_D's QP clearing does, in the full model, to 1e-5."""
    for seed in range(10):
        rng = np.random.default_rng(9000 + seed)
        lin = random_linear_td(rng)
        inst = random_instance(rng, lin, stress=0.6, n_storage=1, storage_buses=d_buses(lin))
        cfg = DEC.model_copy(update={"qp_epsilon": 0.01, "variant": "centralized"})
        c = make_scheme("CS_D", lin, cfg).clear(inst)
        d = make_scheme("CS_D", lin, cfg.model_copy(update={"variant": "decentralized"})).clear(inst)
        assert d.status == "optimal"
        assert d.evaluated_cost_eur == pytest.approx(c.evaluated_cost_eur, rel=1e-5, abs=1e-5), seed
