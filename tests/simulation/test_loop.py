"""Rolling loop and CBA: accounting identities, determinism, failure handling (toy system)."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from smartnet_gym.cba.accounts import COST_COMPONENTS, summarize
from smartnet_gym.config import SCHEMES, load_scenario
from smartnet_gym.grid.build import build_system
from smartnet_gym.market.program import DT_H
from smartnet_gym.simulation.compare import episode_start, run_compare, run_scheme
from smartnet_gym.simulation.loop import RollingLoop

STEPS = 12


@pytest.fixture(scope="module")
def toy():
    cfg = load_scenario("toy")
    return cfg, build_system(cfg)


def _run(toy, scheme, physics="linear", seed=0, steps=STEPS, start_offset=44):
    cfg, system = toy
    loop = RollingLoop(system, cfg, scheme=scheme, physics=physics)
    loop.reset(episode_start(cfg) + start_offset, steps, np.random.default_rng(seed))
    return [loop.step() for _ in range(steps)]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_cost_components_add_up_and_energy_closes(toy, scheme):
    for o in _run(toy, scheme):
        a = o.account
        assert a["total_cost_eur"] == pytest.approx(sum(a[k] for k in COST_COMPONENTS), abs=1e-9)
        # scheduled + activations + aFRR + unwanted = realised imbalance (energy, MWh)
        closed = a["activation_net_mwh"] + a["afrr_signed_mwh"] + a["unwanted_net_mwh"]
        assert closed == pytest.approx(a["imbalance_signed_mwh"], abs=1e-6)
        assert a["afrr_energy_mwh"] == pytest.approx(abs(a["afrr_signed_mwh"]), abs=1e-12)
        assert a["afrr_cost_eur"] == pytest.approx(a["afrr_energy_mwh"] * a["afrr_price_eur_per_mwh"])
        # payer split covers the whole market cost
        dso = sum(v for k, v in a.items() if k.startswith("dso") and k.endswith("_market_cost_eur"))
        assert a["market_cost_tso_eur"] + dso == pytest.approx(a["market_cost_eur"], abs=1e-6)
        assert a["bidders_profit_eur"] == pytest.approx(a["market_cost_eur"] - a["bidders_true_cost_eur"])


@pytest.mark.parametrize("settlement", ["pay_as_clear", "pay_as_bid"])
def test_payments_are_prices_times_quantities(toy, settlement):
    cfg, system = toy
    cfg = load_scenario(cfg, {"market": {"settlement": settlement}})
    loop = RollingLoop(system, cfg, scheme="CS_D", physics="linear")
    loop.reset(episode_start(cfg) + 48, 4, np.random.default_rng(1))
    for _ in range(4):
        inst = loop.instance()
        out = loop.scheme.clear(inst, evaluate=False)
        rec = out.records[0]
        b = inst.book
        cap = cfg.market.price_cap_eur_per_mwh
        if settlement == "pay_as_bid":
            expect = DT_H * b.price_eur_per_mwh * out.activated_mw
        else:
            expect = DT_H * b.direction * np.clip(rec.result.bid_price, -cap, cap) * out.activated_mw
        np.testing.assert_allclose(out.payment_eur, expect, atol=1e-9)
        if settlement == "pay_as_clear":   # truthful bids clear at or above their cost (no loss)
            act = out.activated_mw > 1e-6
            assert (out.payment_eur[act] >= DT_H * b.price_eur_per_mwh[act] * out.activated_mw[act] - 1e-6).all()
        loop.step(outcome=out)


def test_same_seed_identical_different_seed_differs(toy):
    cfg, system = toy
    a = run_compare(system, cfg, ["CS_A", "CS_D"], 6, seed=3, physics="linear", show_progress=False)[1]
    b = run_compare(system, cfg, ["CS_A", "CS_D"], 6, seed=3, physics="linear", show_progress=False)[1]
    c = run_compare(system, cfg, ["CS_A", "CS_D"], 6, seed=4, physics="linear", show_progress=False)[1]
    assert a.to_csv(index=False) == b.to_csv(index=False)
    assert a.to_csv(index=False) != c.to_csv(index=False)


def test_ac_physics_runs_and_is_close_to_linear(toy):
    ac = pd.DataFrame([o.account for o in _run(toy, "CS_D", physics="ac", steps=6)])
    lin = pd.DataFrame([o.account for o in _run(toy, "CS_D", physics="linear", steps=6)])
    assert (ac["pf_failures"] == 0).all()
    # same market decisions at the first step (same forecasts and linearisation point)
    assert ac["market_cost_eur"].iloc[0] == pytest.approx(lin["market_cost_eur"].iloc[0], rel=1e-9)
    assert np.isfinite(ac["total_cost_eur"]).all()


def test_failed_clearing_is_priced_not_raised(toy, monkeypatch):
    from smartnet_gym.market.screening import ScreenedBackend
    from smartnet_gym.market.solvers import HighsBackend, Solution

    def broken(self, c, lb, ub, lo, hi):
        return Solution("failed: injected", float("nan"), np.zeros(self.m.n_col), np.zeros(self.m.n_row), 0.0)

    monkeypatch.setattr(HighsBackend, "solve", broken)
    monkeypatch.setattr(ScreenedBackend, "solve", broken)
    outs = _run(toy, "CS_D", steps=3)
    for o in outs:
        a = o.account
        assert a["clearing_failures"] == 1.0
        assert a["market_cost_eur"] == 0.0
        # the whole realised imbalance goes to aFRR (and unwanted measures), priced
        assert a["afrr_signed_mwh"] + a["unwanted_net_mwh"] == pytest.approx(a["imbalance_signed_mwh"], abs=1e-9)
        assert a["afrr_cost_eur"] > 0


def test_summary_has_contract_columns(toy):
    cfg, system = toy
    steps, summary, _ = run_compare(system, cfg, list(SCHEMES), 3, seed=0, physics="linear", show_progress=False)
    for col in ("scheme", "total_cost_eur", "market_cost_eur", "afrr_cost_eur", "unwanted_cost_eur",
                "ict_cost_eur", "imbalance_mwh", "d_violations", "t_violations", "curtailed_mwh",
                "clearing_failures"):
        assert col in summary.columns
    assert list(summary["scheme"]) == list(SCHEMES)
    pd.testing.assert_frame_equal(summary, summarize(steps))


def test_horizon_past_profiles_is_rejected(toy):
    cfg, system = toy
    loop = RollingLoop(system, cfg, scheme="CS_A", physics="linear")
    with pytest.raises(ValueError, match="start_step"):
        loop.reset(system.profiles.n_steps - 2, 4, np.random.default_rng(0))


@pytest.mark.slow
def test_fast_and_explicit_paths_give_the_same_day(default_system, default_config):
    """End to end on the default system: with the tie-break the realised steps (costs, aFRR,
    violations) do not depend on the solver path, although equal-price DER bids abound."""
    steps = {}
    for backend in ("highs", "highs-full"):
        cfg = default_config.model_copy(update={"market": default_config.market.model_copy(update={"backend": backend})})
        steps[backend] = run_compare(default_system, cfg, ["CS_B", "CS_C", "CS_D"], 8, seed=0, physics="linear",
                                     show_progress=False)[0]
    a, b = steps["highs"], steps["highs-full"]
    num = [c for c in a.select_dtypes("number").columns if c != "solve_ms"]   # wall-clock time
    np.testing.assert_allclose(a[num].to_numpy(float), b[num].to_numpy(float), rtol=1e-9, atol=1e-6)


@pytest.mark.slow
def test_an_episode_does_not_depend_on_what_ran_before_on_the_same_system():
    """The physical layer writes set-points and OLTC taps into its net: each loop runs on its own
    copy, so a scheme's day is the same alone or after another scheme's day on the shared system."""
    cfg = load_scenario("italy-like", {"data": {"start_day": 201}})
    system = build_system(cfg)
    alone = run_scheme(copy.deepcopy(system), cfg, "CS_B", 96, 0, "ac").drop(columns="solve_ms")
    run_scheme(system, cfg, "CS_A", 96, 0, "ac")
    after = run_scheme(system, cfg, "CS_B", 96, 0, "ac").drop(columns="solve_ms")
    pd.testing.assert_frame_equal(alone, after, check_exact=True)
