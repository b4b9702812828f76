"""Hand-computed clearings on the handmade 3-bus triangle + 2-bus feeder (tests/market/handmade.py).

Network facts used below (derived in the comments, and checked independently in
test_independent_lp.test_reference_sensitivities_by_hand):
- T: buses 0 (slack), 1, 2; branches 0→1, 1→2, 0→2 of equal susceptance. An injection p at
  bus 1 flows 2/3 p on 1→0 and 1/3 p on 1→2→0: flow(0→1) = −2/3 p. An injection q at bus 2
  gives flow(0→1) = −1/3 q.
- D: bus 10 fed from T bus 2 (r = 0.001), bus 11 fed from bus 10 (r = 0.004). An injection p at
  bus 11 changes both feeder flows by −p and the squared voltages by Δw_10 = 2·0.001·p =
  0.002 p, Δw_11 = 0.002 p + 2·0.004 p = 0.010 p [pu²]; an injection at bus 10 gives Δw_10 =
  Δw_11 = 0.002 p. D injections enter T at bus 2.
- Δt = 0.25 h; default penalties: balance 2000 EUR/MWh, network 3000 EUR/MWh, voltage
  3e5 EUR/(pu²·h). Limits: v ∈ [0.95, 1.05] → w ∈ [0.9025, 1.1025].
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from handmade import flat_base, three_bus_td

from smartnet_gym.config import MarketConfig
from smartnet_gym.market.bids import BidBook, StorageState
from smartnet_gym.market.penalties import branch_relief_sensitivity, transmission_flow_penalty
from smartnet_gym.market.schemes import make_scheme
from smartnet_gym.market.stages import (
    MarketInstance,
    evaluate_cost,
    evaluation_stage,
    highest_activated_offer,
)

LP = MarketConfig(qp_epsilon=0.0, backend="highs")
REL = 1e-9


def clear(name, lin, inst, cfg=LP):
    out = make_scheme(name, lin, cfg).clear(inst)
    assert out.status == "optimal", (name, out.status)
    return out


def expect(name, lin, inst, x, evaluated_eur, cfg=LP):
    """Clear with scheme ``name``: activations ``x`` and evaluated (common yardstick) cost."""
    out = clear(name, lin, inst, cfg)
    np.testing.assert_allclose(out.activated_mw, x, atol=1e-7)
    assert out.evaluated_cost_eur == pytest.approx(evaluated_eur, rel=REL), name
    return out


def bids(bus, direction, qty, price, **kw) -> BidBook:
    """A one-period book (all bids in period 0)."""
    return BidBook.from_arrays(
        bus=bus,
        direction=direction,
        period=[0] * len(bus),
        qty_mw=qty,
        price_eur_per_mwh=price,
        **kw,
    )


def base_with(lin, v_pu=1.0, w=None, p=None):
    """Flat base (H = 1) with the feeder's squared voltages ``w`` and flows ``p`` overridden."""
    b = flat_base(lin, 1, v_pu)
    return replace(
        b,
        d_w_pu2=(np.array([w]),) if w is not None else b.d_w_pu2,
        d_p_mw=(np.array([p]),) if p is not None else b.d_p_mw,
    )


# --------------------------------------------------------------------------------------------
# 1. merit order behind a congested transmission line
# --------------------------------------------------------------------------------------------
@pytest.fixture
def congested_t():
    """Line 0→1 limited to 15 MW, others unlimited; need 30 MW up.

    Bids (up): p at bus 1 @ 50, q at bus 2 @ 80, r at bus 0 (slack) @ 120, 100 MW each.
    |flow(0→1)| = 2/3 p + 1/3 q ≤ 15 with q = N − p − r  ⇒  p ≤ 45 − N + r.
    Cost/Δt = 50p + 80q + 120r = 80N − 30p + 40r = 110N − 1350 + 10r at p = 45 − N + r
    ⇒ r = 0, p = 15, q = 15; cost = 0.25·(50·15 + 80·15) = 0.25·1950 = 487.5 EUR.
    Marginal cost of need: d(110N − 1350)/dN = 110 EUR/MWh (one more MW needs −1 at bus 1,
    +2 at bus 2: −50 + 160). Locational prices: bus 1 = 50, bus 2 = 80 (both partly activated),
    bus 0 = 110 (< 120, so the slack-bus bid stays out of the merit order).
    """
    lin = three_bus_td()
    lin = replace(lin, dc=replace(lin.dc, rating_mw=np.array([15.0, np.inf, np.inf])))
    book = bids([1, 2, 0], [1, 1, 1], [100.0, 100.0, 100.0], [50.0, 80.0, 120.0])
    inst = MarketInstance(book, flat_base(lin, 1), np.array([30.0]), np.zeros((1, 1)))
    return lin, inst


def test_merit_order_with_line_limit(congested_t):
    lin, inst = congested_t
    out = clear("CS_D", lin, inst)
    np.testing.assert_allclose(out.activated_mw, [15.0, 15.0, 0.0], atol=1e-7)
    assert out.objective_eur == pytest.approx(487.5, rel=REL)
    assert out.evaluated_cost_eur == pytest.approx(487.5, rel=REL)
    assert out.uniform_price_eur_per_mwh[0] == pytest.approx(110.0, rel=1e-7)
    np.testing.assert_allclose(out.records[0].result.bid_price, [50.0, 80.0, 110.0], rtol=1e-7)
    # pay-as-clear: 0.25·50·15 = 187.5 and 0.25·80·15 = 300
    np.testing.assert_allclose(out.payment_eur, [187.5, 300.0, 0.0], atol=1e-6)
    assert out.network_slack_mw == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(out.residual_imbalance_mw, [0.0], atol=1e-9)
    # only T bids: every scheme sees the same transmission problem
    for name in ("CS_A", "CS_B", "CS_C"):
        o = clear(name, lin, inst)
        assert o.evaluated_cost_eur == pytest.approx(487.5, rel=REL), name
        np.testing.assert_allclose(o.activated_mw, [15.0, 15.0, 0.0], atol=1e-7)


def test_merit_order_without_line_limit(congested_t):
    """Same bids, line unlimited: all 30 MW from bus 1 at 50: 0.25·50·30 = 375 EUR, price 50."""
    lin, inst = congested_t
    lin = replace(lin, dc=replace(lin.dc, rating_mw=np.full(3, np.inf)))
    out = clear("CS_D", lin, inst)
    np.testing.assert_allclose(out.activated_mw, [30.0, 0.0, 0.0], atol=1e-7)
    assert out.objective_eur == pytest.approx(375.0, rel=REL)
    assert out.uniform_price_eur_per_mwh[0] == pytest.approx(50.0, rel=1e-7)


def test_pay_as_bid_on_congested_line(congested_t):
    """Pay-as-bid: payments are the asked prices: 0.25·50·15 = 187.5, 0.25·80·15 = 300."""
    lin, inst = congested_t
    out = clear("CS_D", lin, inst, LP.model_copy(update={"settlement": "pay_as_bid"}))
    np.testing.assert_allclose(out.payment_eur, [187.5, 300.0, 0.0], atol=1e-6)


# --------------------------------------------------------------------------------------------
# 2. distribution congestion that only D-aware schemes resolve
# --------------------------------------------------------------------------------------------
def test_over_voltage_only_d_aware_schemes_resolve():
    """Base w_11 = 1.0025 (0.1 pu² below the limit 1.1025); need 30 MW up.

    Bids: D bus 11 up 40 MW @ 30, T bus 1 up 40 MW @ 60 (lines 100 MW: never binding).
    CS_D: Δw_11 = 0.01 p ≤ 0.1 ⇒ p = 10 at bus 11, 20 at bus 1:
          0.25·(30·10 + 60·20) = 375 EUR; uniform price 60 (T bid marginal).
    CS_A: ignores D: 30 MW at bus 11 for 0.25·30·30 = 225 EUR; in the common yardstick
          Δw_11 = 0.3 ⇒ 0.2 pu² over ⇒ + 0.25·3e5·0.2 = 15,000 EUR ⇒ 15,225 EUR.
    CS_B: no congestion in the base, so no local buy; the DSO forwards at most +10 MW
          (the voltage headroom) and the TSO clears as CS_D: 375 EUR.
    CS_C: area need 0 and no TSO access to D: 30 MW at bus 1: 0.25·60·30 = 450 EUR.
    """
    lin = three_bus_td()
    book = bids([11, 1], [1, 1], [40.0, 40.0], [30.0, 60.0])
    inst = MarketInstance(book, base_with(lin, w=[1.0, 1.0025]), np.array([30.0]), np.zeros((1, 1)))
    d = clear("CS_D", lin, inst)
    np.testing.assert_allclose(d.activated_mw, [10.0, 20.0], atol=1e-7)
    assert d.objective_eur == pytest.approx(375.0, rel=REL)
    assert d.evaluated_cost_eur == pytest.approx(375.0, rel=REL)
    assert d.uniform_price_eur_per_mwh[0] == pytest.approx(60.0, rel=1e-7)
    assert d.voltage_slack_pu2 == pytest.approx(0.0, abs=1e-12)

    # CS_A's market cost looks cheaper, but its activations violate the D limit
    a = expect("CS_A", lin, inst, [30.0, 0.0], 15_225.0)
    assert a.objective_eur == pytest.approx(225.0, rel=REL)
    _, res = evaluate_cost(evaluation_stage(lin, LP), inst, a.activated_mw)
    assert res.voltage_slack_pu2 == pytest.approx(0.2, rel=1e-9)
    expect("CS_B", lin, inst, [10.0, 20.0], 375.0)
    expect("CS_C", lin, inst, [0.0, 30.0], 450.0)


def test_feeder_flow_limit_only_d_aware_schemes_resolve():
    """Feeder branch 10 imports 45 MW (limit 50), base v = 1.04 pu; need −15 MW (surplus).

    Bids (down): D bus 11 20 MW @ 5, T bus 1 20 MW @ 20.
    Down d at bus 11 raises the import of both branches by d: 45 + d ≤ 50 ⇒ d ≤ 5.
    (Voltage: Δw_11 = −0.01 d ≥ 0.9025 − 1.0816 holds for d ≤ 17.9.)
    CS_D: 5 at bus 11, 10 at bus 1: 0.25·(5·5 + 20·10) = 56.25 EUR.
    CS_A: 15 at bus 11: 0.25·5·15 = 18.75 EUR market cost; 10 MW over the limit:
          + 0.25·3000·10 = 7,500 ⇒ 7,518.75 EUR in the common yardstick.
    CS_B: local limits allow −5 MW net: = CS_D, 56.25 EUR.
    """
    lin = three_bus_td()
    book = bids([11, 1], [-1, -1], [20.0, 20.0], [5.0, 20.0])
    inst = MarketInstance(
        book, base_with(lin, 1.04, p=[45.0, 0.0]), np.array([-15.0]), np.zeros((1, 1))
    )
    expect("CS_D", lin, inst, [5.0, 10.0], 56.25)
    a = expect("CS_A", lin, inst, [15.0, 0.0], 7_518.75)
    assert a.objective_eur == pytest.approx(18.75, rel=REL)
    expect("CS_B", lin, inst, [5.0, 10.0], 56.25)


# --------------------------------------------------------------------------------------------
# 3. CS_B's sequential loss
# --------------------------------------------------------------------------------------------
def test_cs_b_sequential_clearing_costs_more_than_cs_d():
    """Over-voltage at bus 11 (w = 1.1125, 0.01 pu² over) and a global shortage of 20 MW.

    Bids: down at bus 10 @ 1 and down at bus 11 @ 10 (100 MW each), up at T bus 1 @ 50 (200 MW).
    Lines 1000 MW, feeder 50 MVA: never binding. Relief: 0.002 d10 + 0.010 d11 ≥ 0.01.
    CS_B, stage 1 (DSO, congestion only): relief costs 1/0.002 = 500 EUR/pu² via bus 10 vs
      10/0.01 = 1000 via bus 11 ⇒ d10 = 5 MW, 0.25·1·5 = 1.25 EUR. It cannot see that each MW
      down must be replaced by TSO up at 50: the TSO now needs 20 + 5 = 25 MW: 0.25·50·25 =
      312.5 EUR. Total 313.75 EUR (no violation left).
    CS_D nets the relief against the shortage: u = 20 + d10 + d11, so relief costs
      (1+50)/0.002 = 25,500 vs (10+50)/0.01 = 6,000 EUR/pu² ⇒ d11 = 1, u = 21:
      0.25·(10·1 + 50·21) = 265 EUR.
    CS_A ignores the over-voltage: u = 20 for 250 EUR + 0.25·3e5·0.01 = 750 ⇒ 1,000 EUR.
    CS_C: the DSO must balance its area (area need 0): down d creates an area imbalance priced
      2000 EUR/MWh, so relief via bus 11 costs (10+2000)/0.01 = 201,000 < 3e5 EUR/pu² (via bus 10:
      (1+2000)/0.002 > 3e5): d11 = 1 with a 1 MW balance slack: 0.25·(10 + 2000) = 502.5 EUR;
      the TSO covers its 20 MW: 250 EUR. Total 752.5 EUR, 1 MW left short.
    """
    lin = three_bus_td(line_rating_mw=1000.0)
    book = bids([10, 11, 1], [-1, -1, 1], [100.0, 100.0, 200.0], [1.0, 10.0, 50.0])
    inst = MarketInstance(
        book, base_with(lin, w=[1.05, 1.1125]), np.array([20.0]), np.zeros((1, 1))
    )
    b = expect("CS_B", lin, inst, [5.0, 0.0, 25.0], 313.75)
    assert b.records[0].name == "local_0"
    np.testing.assert_allclose(b.records[0].result.x_mw, [5.0, 0.0], atol=1e-7)
    assert b.objective_eur == pytest.approx(313.75, rel=REL)

    d = expect("CS_D", lin, inst, [0.0, 1.0, 21.0], 265.0)
    assert d.evaluated_cost_eur < b.evaluated_cost_eur

    expect("CS_A", lin, inst, [0.0, 0.0, 20.0], 1000.0)

    c = expect("CS_C", lin, inst, [0.0, 1.0, 20.0], 752.5)
    assert c.objective_eur == pytest.approx(752.5, rel=REL)
    np.testing.assert_allclose(c.residual_imbalance_mw, [1.0], atol=1e-7)


# --------------------------------------------------------------------------------------------
# 4. CS_C: local market infeasible without slacks, priced not crashed
# --------------------------------------------------------------------------------------------
def test_cs_c_area_need_beyond_local_offers_is_priced():
    """Need 30 MW, all of it inside the area; local offers only 10 MW up @ 40 at bus 11.

    (Δw_11 = 0.01·10 = 0.1 ≤ 0.1025 of headroom from w = 1: no voltage issue.)
    CS_C: the DSO activates 10 MW and leaves 20 MW of balance slack at 2000 EUR/MWh:
          0.25·(40·10 + 2000·20) = 10,100 EUR, its uniform price is the penalty (2000);
          the TSO's own need is 30 − 30 = 0. Residual imbalance 20 MW.
    CS_D: 10 at bus 11 + 20 from the T bid @ 50: 0.25·(400 + 1000) = 350 EUR.
    Pay-as-clear: the local price at bus 11 is the penalty, 2000 EUR/MWh, but a short market
    pays no more than the highest offer it activated: 0.25·40·10 = 100 EUR (as pay-as-bid).
    """
    lin = three_bus_td()
    book = bids([11, 1], [1, 1], [10.0, 100.0], [40.0, 50.0])
    inst = MarketInstance(book, flat_base(lin, 1), np.array([30.0]), np.array([[30.0]]))
    c = clear("CS_C", lin, inst)
    assert c.status == "optimal" and c.failed_stages == 0
    np.testing.assert_allclose(c.activated_mw, [10.0, 0.0], atol=1e-7)
    assert c.balance_slack_mw == pytest.approx(20.0, rel=1e-9)
    np.testing.assert_allclose(c.records[0].result.balance_slack_mw, [[20.0]], rtol=1e-9)
    np.testing.assert_allclose(c.residual_imbalance_mw, [20.0], rtol=1e-9)
    assert c.objective_eur == pytest.approx(10_100.0, rel=REL)
    assert c.evaluated_cost_eur == pytest.approx(10_100.0, rel=REL)
    assert c.records[0].result.uniform_price[0, 0] == pytest.approx(2000.0, rel=1e-9)
    assert c.records[0].result.bid_price[0] == pytest.approx(2000.0, rel=1e-9)
    np.testing.assert_allclose(c.payment_eur, [100.0, 0.0], atol=1e-6)
    pab = clear("CS_C", lin, inst, LP.model_copy(update={"settlement": "pay_as_bid"}))
    np.testing.assert_allclose(pab.payment_eur, [100.0, 0.0], atol=1e-6)
    d = clear("CS_D", lin, inst)
    assert d.evaluated_cost_eur == pytest.approx(350.0, rel=REL)


def test_a_short_market_pays_its_highest_activated_offer():
    """As above with two local offers at bus 11, 6 MW @ 40 and 4 MW @ 60: both are activated and
    the market is still 20 MW short. Its locational price is the penalty (2000); each MWh is paid
    the highest activated offer, 60: 0.25·60·6 = 90 and 0.25·60·4 = 60 EUR."""
    lin = three_bus_td()
    book = bids([11, 11, 1], [1, 1, 1], [6.0, 4.0, 100.0], [40.0, 60.0, 50.0])
    inst = MarketInstance(book, flat_base(lin, 1), np.array([30.0]), np.array([[30.0]]))
    c = clear("CS_C", lin, inst)
    np.testing.assert_allclose(c.activated_mw, [6.0, 4.0, 0.0], atol=1e-7)
    assert c.records[0].result.bid_price[0] == pytest.approx(2000.0, rel=1e-9)
    np.testing.assert_allclose(c.payment_eur, [90.0, 60.0, 0.0], atol=1e-6)


def test_highest_activated_offer_per_direction_period_and_group():
    offer = np.array([40.0, 60.0, 90.0, 10.0, 30.0, 70.0])
    direction = np.array([1, 1, 1, -1, 1, 1])
    period = np.array([0, 0, 0, 0, 1, 0])
    x = np.array([1.0, 2.0, 0.0, 3.0, 1.0, 1.0])      # the 90 offer is not activated
    group = np.array([0, 0, 0, 0, 0, 1])
    np.testing.assert_allclose(highest_activated_offer(offer, direction, period, x, group),
                               [60.0, 60.0, 60.0, 10.0, 30.0, 70.0])
    none = highest_activated_offer(offer, direction, period, np.zeros(6))
    assert np.isinf(none).all()


def test_a_meshed_branch_is_valued_through_its_best_ptdf():
    """Triangle of equal lines, slack at bus 0: 1 MW at bus 1 flows 2/3 on 1-0 and 1/3 round
    1-2-0 (and symmetrically at bus 2), so forced measures move lines 0-1, 1-2, 0-2 by at most
    2/3, 1/3, 2/3 MW per MW: their overloads are worth VoLL × 3/2, 3, 3/2 per MW·h."""
    dc = three_bus_td().dc
    np.testing.assert_allclose(branch_relief_sensitivity(dc), [2 / 3, 1 / 3, 2 / 3], rtol=1e-12)
    m = MarketConfig(network_penalty_eur_per_mwh=3000.0)
    np.testing.assert_allclose(transmission_flow_penalty(dc, m), [4500.0, 9000.0, 4500.0], rtol=1e-12)
    np.testing.assert_allclose(transmission_flow_penalty(dc, m.model_copy(update={"penalty_scale": 0.1})),
                               [450.0, 900.0, 450.0], rtol=1e-12)


def test_flow_reliability_margin_keeps_part_of_the_rating_free():
    """Lines of 30 MW, need 45 MW, T offers at bus 1 @ 10 and bus 2 @ 50. 1 MW at bus 1 flows 2/3
    on line 0-1 and 1/3 round 1-2-0, at bus 2 the mirror image. Without a margin bus 1 covers all
    (|f_01| = 2/3·45 = 30); with 10 % kept free (27 MW): 2/3 x + 1/3 y ≤ 27, x + y = 45 → x = 36, y = 9."""
    lin = three_bus_td(line_rating_mw=30.0)
    book = bids([1, 2], [1, 1], [100.0, 100.0], [10.0, 50.0])
    inst = MarketInstance(book, flat_base(lin, 1), np.array([45.0]), np.zeros((1, 1)))
    np.testing.assert_allclose(clear("CS_A", lin, inst).activated_mw, [45.0, 0.0], atol=1e-7)
    margin = LP.model_copy(update={"flow_reliability_margin_pct": 10.0})
    np.testing.assert_allclose(clear("CS_A", lin, inst, margin).activated_mw, [36.0, 9.0], atol=1e-7)


# --------------------------------------------------------------------------------------------
# batteries across sequential stages
# --------------------------------------------------------------------------------------------
def test_cs_b_battery_used_twice():
    """Feeder branch 10 imports 55 MW (limit 50); battery at bus 11: 10 MW up @ 10, SoC 1.25/2.5 MWh
    (so at most 1.25/0.25 = 5 MW for one period); T bus 1 up 100 MW @ 50; need 10 MW.

    Correct CS_B: the DSO discharges 5 MW for the congestion (0.25·10·5 = 12.5 EUR), the battery is
    then empty, the TSO buys the other 5 MW at bus 1 (62.5 EUR): 75 EUR (= CS_D here).
    """
    lin = three_bus_td()
    book = bids(
        [11, 1],
        [1, 1],
        [10.0, 100.0],
        [10.0, 50.0],
        storage=[0, -1],
        storage_state=StorageState(np.array([2.5]), np.array([1.25])),
    )
    inst = MarketInstance(book, base_with(lin, p=[55.0, 0.0]), np.array([10.0]), np.zeros((1, 1)))
    expect("CS_D", lin, inst, [5.0, 5.0], 75.0)
    b = make_scheme("CS_B", lin, LP).clear(inst)
    np.testing.assert_allclose(b.activated_mw, [5.0, 5.0], atol=1e-7)
    assert b.evaluated_cost_eur == pytest.approx(75.0, rel=REL)
