"""Forced measures as options of the clearing (``market.forced_measures``), on the handmade
3-bus triangle + 2-bus feeder (tests/market/handmade.py) and on the toy scenario.

Hand facts (see test_hand_cases): an injection p at bus 11 moves w_11 by 0.010 p, one at bus 10
moves it by 0.002 p [pu²]; VoLL 3,000 EUR/MWh; Δt = 0.25 h. Base w_11 = 1.12, 0.0175 pu² above
v_max² = 1.1025. Bids: down at D bus 10 at price p (20 MW), up at T bus 1 at 40 EUR/MWh (100 MW,
it balances the down); forced option: curtail 10 MW of generation at bus 11 at VoLL, outside the
balance (its imbalance is left to aFRR). Removing the excess takes 8.75 MW of the bus-10 bid,
(p + 40)/0.002 EUR per pu²·h, or 1.75 MW curtailed at bus 11, 3,000/0.010 = 300,000 EUR per pu²·h:
the bid wins below p = 560 EUR/MWh.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from handmade import flat_base, three_bus_td

from smartnet_gym.config import MarketConfig, load_scenario
from smartnet_gym.grid.build import build_system
from smartnet_gym.market.bids import FORCED_UNIT, BidBook
from smartnet_gym.market.schemes import make_scheme
from smartnet_gym.market.stages import MarketInstance
from smartnet_gym.simulation.compare import run_scheme

LP = MarketConfig(qp_epsilon=0.0, backend="highs")


def instance(p_eur: float, forced: bool) -> tuple:
    lin = three_bus_td()
    book = BidBook.from_arrays(bus=[10, 1], direction=[-1, 1], period=[0, 0], qty_mw=[20.0, 100.0],
                               price_eur_per_mwh=[p_eur, 40.0])
    base = flat_base(lin, 1)
    base = replace(base, d_w_pu2=(np.array([[1.0, 1.12]]),))
    options = BidBook.from_arrays(bus=[11], direction=[-1], period=[0], qty_mw=[10.0], price_eur_per_mwh=[3000.0],
                                  unit=[FORCED_UNIT]) if forced else None
    return lin, MarketInstance(book, base, np.array([0.0]), np.zeros((1, 1)), forced=options)


@pytest.mark.parametrize("backend", ["highs", "highs-full"])
@pytest.mark.parametrize(("p_eur", "bid_mw", "forced_mw", "cost_eur"), [
    (600.0, 0.0, 1.75, 0.25 * 3000 * 1.75),       # the bid is dearer per pu²: curtail at bus 11
    (500.0, 8.75, 0.0, 0.25 * 540 * 8.75),        # the bid is cheaper: no forced measure
])
def test_the_clearing_removes_a_violation_by_the_cheaper_of_flexibility_and_forced_measures(
        backend, p_eur, bid_mw, forced_mw, cost_eur):
    lin, inst = instance(p_eur, forced=True)
    for scale in (0.01, 0.1, 1.0, 10.0, 100.0):    # the slack is a last resort at every scale
        cfg = LP.model_copy(update={"penalty_scale": scale, "backend": backend})
        out = make_scheme("CS_D", lin, cfg).clear(inst)
        assert out.status == "optimal"
        np.testing.assert_allclose(out.activated_mw, [bid_mw, bid_mw], atol=1e-7)
        np.testing.assert_allclose(out.forced_mw, [forced_mw], atol=1e-7)
        assert out.voltage_slack_pu2 == pytest.approx(0.0, abs=1e-9)
        assert out.objective_eur == pytest.approx(cost_eur, rel=1e-9)
        assert out.evaluated_cost_eur == pytest.approx(cost_eur, rel=1e-9)   # the yardstick plans them too
        np.testing.assert_allclose(out.residual_imbalance_mw, [0.0], atol=1e-7)   # the bids' balance
        # providers are paid what the offers set (the T bid's 40 EUR/MWh), the forced measure nothing
        assert out.payment_eur[1] == pytest.approx(0.25 * 40.0 * bid_mw, rel=1e-7)
        assert out.market_cost_eur == pytest.approx(out.payment_eur.sum())
        assert all(len(r.result.x_mw) == len(r.bids) and (r.bids < 2).all() for r in out.records)


def test_without_forced_options_the_penalty_scale_decides_whether_the_violation_is_removed():
    """The slack then stands for the forced measures: at 0.1 × its value (30,000 EUR per pu²·h)
    the market keeps the excess instead of paying 270,000 for the bid; at 1× it buys the bid."""
    lin, inst = instance(500.0, forced=False)
    low = make_scheme("CS_D", lin, LP.model_copy(update={"penalty_scale": 0.1})).clear(inst)
    full = make_scheme("CS_D", lin, LP).clear(inst)
    np.testing.assert_allclose(low.activated_mw, [0.0, 0.0], atol=1e-7)
    assert low.voltage_slack_pu2 == pytest.approx(0.0175, rel=1e-9)
    np.testing.assert_allclose(full.activated_mw, [8.75, 8.75], atol=1e-7)
    assert len(full.forced_mw) == 0


@pytest.fixture(scope="module")
def congested_toy():
    """The toy scenario with a tight voltage band: D congestion every day."""
    return {"grid": {"v_max_pu": 1.02, "v_min_pu": 0.98}}


def _day(over: dict, scheme: str):
    cfg = load_scenario("toy", over)
    steps = run_scheme(build_system(cfg), cfg, scheme, 96, 0, "linear")
    return steps[["total_cost_eur", "market_cost_eur", "unwanted_cost_eur"]].sum().to_numpy()


@pytest.mark.parametrize("scheme", ["CS_B", "CS_D"])
def test_a_day_does_not_depend_on_the_penalty_scale_with_forced_options(congested_toy, scheme):
    totals = [_day({**congested_toy, "market": {"penalty_scale": s, "forced_measures": True}}, scheme)
              for s in (0.1, 1.0, 10.0)]
    assert totals[1][2] > 0                              # forced measures were needed
    np.testing.assert_allclose(totals[0], totals[1], rtol=1e-6)
    np.testing.assert_allclose(totals[2], totals[1], rtol=1e-6)
    # without the options the slack stands for them and 0.1 × its value changes the market's day
    plain = [_day({**congested_toy, "market": {"penalty_scale": s, "forced_measures": False}}, scheme)
             for s in (0.1, 1.0)]
    assert abs(plain[0][1] - plain[1][1]) > 1e-3 * plain[1][1]


def test_the_decomposition_refuses_forced_options_by_name():
    with pytest.raises(ValueError, match="forced_measures.*decentralized"):
        load_scenario("toy", {"market": {"forced_measures": True, "variant": "decentralized"}})
    # a hand-made instance with options, cleared by the decomposition: refused, not mis-cleared
    lin = three_bus_td()
    book = BidBook.from_arrays(bus=[1], direction=[1], period=[0], qty_mw=[10.0], price_eur_per_mwh=[50.0])
    options = BidBook.from_arrays(bus=[1], direction=[-1], period=[0], qty_mw=[5.0], price_eur_per_mwh=[3000.0],
                                  unit=[FORCED_UNIT])
    inst = MarketInstance(book, flat_base(lin, 1), np.array([5.0]), np.zeros((1, 1)), forced=options)
    scheme = make_scheme("CS_D", lin, LP.model_copy(update={"variant": "decentralized"}))
    with pytest.raises(ValueError, match="MarketInstance.forced.*decentralized"):
        scheme.clear(inst)
    assert scheme.clear(replace(inst, forced=None)).status == "optimal"


def test_imbalance_behind_a_congested_line_is_left_to_afrr_not_covered_with_forced_measures():
    """Need 30 MW up, the only bid at bus 1 (50 EUR/MWh) and line 0→1 limited to 15 MW:
    flow(0→1) = −2/3 p ⇒ p ≤ 22.5 MW. Curtailing generation at bus 1 would make room for more of
    the bid, MW for MW (3,050 EUR/MWh the pair), which covers imbalance on paper only: the market
    leaves the 7.5 MW to aFRR at the balance price (2,000 EUR/MWh) instead."""
    lin = three_bus_td()
    lin = replace(lin, dc=replace(lin.dc, rating_mw=np.array([15.0, np.inf, np.inf])))
    book = BidBook.from_arrays(bus=[1], direction=[1], period=[0], qty_mw=[100.0], price_eur_per_mwh=[50.0])
    options = BidBook.from_arrays(bus=[1], direction=[-1], period=[0], qty_mw=[50.0], price_eur_per_mwh=[3000.0],
                                  unit=[FORCED_UNIT])
    inst = MarketInstance(book, flat_base(lin, 1), np.array([30.0]), np.zeros((1, 1)), forced=options)
    out = make_scheme("CS_D", lin, LP).clear(inst)
    np.testing.assert_allclose(out.activated_mw, [22.5], atol=1e-7)
    np.testing.assert_allclose(out.forced_mw, [0.0], atol=1e-7)
    np.testing.assert_allclose(out.residual_imbalance_mw, [7.5], atol=1e-7)
    assert out.objective_eur == pytest.approx(0.25 * (50 * 22.5 + 2000 * 7.5), rel=1e-9)


def test_a_balance_price_above_voll_is_refused_with_forced_options():
    with pytest.raises(ValueError, match="balance_penalty_eur_per_mwh.*below"):
        load_scenario("toy", {"market": {"forced_measures": True, "balance_penalty_eur_per_mwh": 3000.0}})


def test_forced_options_default_to_the_caller_and_never_in_the_decomposition():
    from smartnet_gym.config import MarketConfig
    assert MarketConfig().uses_forced_options() and not MarketConfig().uses_forced_options(False)
    assert MarketConfig(forced_measures=True).uses_forced_options(False)
    assert not MarketConfig(variant="decentralized").uses_forced_options()
    assert not MarketConfig(forced_measures=False).uses_forced_options()
