"""Market-power indicators and the local-market sweep: textbook values and analytic best responses.

Hand-built market (tests/market/handmade.py): a 3-bus T triangle and a 2-bus feeder (area 0,
buses 10 → 11). An injection p at bus 11 changes its squared voltage by 0.010 p [pu²/MW]; with
the base w_11 = 1.1025 + 0.01 · N the DSO needs N MW of down activation (curtailment) at bus 11.
Its reservation value is the voltage penalty 3e5 EUR/(pu²·h) × 0.010 = 3,000 EUR/MWh > the
1,000 EUR/MWh price cap: an inelastic need. T offers (100 MW up @ 80, down @ 20 at bus 1)
rebalance the system.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "market"))
from handmade import flat_base, three_bus_td

from smartnet_gym.cba.market_power import (
    binding_concentration,
    hhi,
    lerner_index,
    market_indicators,
    outcome_indicators,
    paid_price,
    pivotal_supplier,
    price_uplift,
    residual_supply_index,
    uniform_price_in_need_direction,
)
from smartnet_gym.config import MarketConfig
from smartnet_gym.errors import ConfigError
from smartnet_gym.experiments.market_power import (
    best_response,
    check_price_cap,
    local_instance,
    local_market_config,
    markup_grid,
    probe_local_need,
    run_sweep,
)
from smartnet_gym.market.bids import BidBook
from smartnet_gym.market.clearing import TIE_EUR_PER_MWH
from smartnet_gym.market.schemes import make_scheme
from smartnet_gym.market.stages import MarketInstance
from smartnet_gym.market_power_cli import add_market_power_parser, cmd_market_power

LP = MarketConfig(qp_epsilon=0.0, backend="highs")
CAP = LP.price_cap_eur_per_mwh
COST = 50.0
NEEDS = np.array([2.0, 3.0])   # DSO's down need at bus 11 in periods 0, 1 [MW]


# ------------------------------------------------------------------------ textbook indicators
@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 10])
def test_hhi_of_n_equal_shares(n):
    # two rows per provider (summed first), equal totals
    provider = np.repeat(np.arange(n), 2)
    assert hhi(np.full(2 * n, 1.5), provider) == pytest.approx(10_000 / n)


def test_hhi_unequal_and_empty():
    assert hhi([5.0, 3.0, 2.0], [7, 8, 9]) == pytest.approx(10_000 * (0.25 + 0.09 + 0.04))   # 3,800
    assert hhi([4.0, 1.0, 3.0, 2.0], [1, 2, 1, 2]) == pytest.approx(10_000 * (0.7 ** 2 + 0.3 ** 2))
    assert np.isnan(hhi([0.0, 0.0], [1, 2]))


def test_psi_rsi_scalar():
    offer, who = [6.0, 3.0, 2.0], [0, 1, 2]
    # need 10: without the largest (6) only 5 remain → pivotal, RSI = 5 / 10
    assert residual_supply_index(offer, who, 10.0) == pytest.approx(0.5)
    assert pivotal_supplier(offer, who, 10.0) == 1.0
    # need 4: 5 ≥ 4 → not pivotal, RSI = 1.25; a signed (down) need counts by its size
    assert residual_supply_index(offer, who, -4.0) == pytest.approx(1.25)
    assert pivotal_supplier(offer, who, 4.0) == 0.0
    assert pivotal_supplier(offer, who, 5.0) == 0.0          # exactly enough: not pivotal
    assert np.isnan(pivotal_supplier(offer, who, 0.0))


def constructed_book() -> BidBook:
    """Period 0: up offers A 4+2, B 3, C 2 and a down offer D 50; period 1: down offers A 1, B 1."""
    return BidBook.from_arrays(
        bus=[0] * 7, direction=[1, 1, 1, 1, -1, -1, -1], period=[0, 0, 0, 0, 0, 1, 1],
        qty_mw=[4.0, 2.0, 3.0, 2.0, 50.0, 1.0, 1.0], price_eur_per_mwh=[10.0] * 7,
        unit=[0, 0, 1, 2, 3, 0, 1])


def test_market_indicators_on_a_constructed_book():
    book = constructed_book()
    x = np.array([4.0, 0.0, 3.0, 0.0, 0.0, 0.5, 0.5])
    ind = market_indicators(book, x, need_mw=[7.0, -1.5], price_eur_per_mwh=[120.0, 80.0],
                            truthful_price_eur_per_mwh=[100.0, 80.0])
    # period 0, need 7 up: offers A 6, B 3, C 2 (the down offer of D does not count)
    np.testing.assert_allclose(ind.offered_mw, [11.0, 2.0])
    np.testing.assert_allclose(ind.direction, [1, -1])
    np.testing.assert_allclose(ind.rsi, [(11 - 6) / 7, (2 - 1) / 1.5])
    np.testing.assert_allclose(ind.psi, [1.0, 1.0])
    np.testing.assert_allclose(ind.hhi_offered, [10_000 * (36 + 9 + 4) / 121, 5_000])
    np.testing.assert_allclose(ind.hhi_activated, [10_000 * (16 + 9) / 49, 5_000])
    np.testing.assert_allclose(ind.lerner, [20 / 120, 0.0])
    np.testing.assert_allclose(ind.uplift_eur_per_mwh, [20.0, 0.0])
    # need 4 up: 5 MW remain without A → not pivotal
    ind = market_indicators(book, x, need_mw=[4.0, 0.0])
    assert ind.psi[0] == 0.0 and ind.rsi[0] == pytest.approx(1.25)
    assert np.isnan(ind.psi[1]) and np.isnan(ind.hhi_offered[1])   # no need, no direction
    # a market is a subset of rows: providers B and C alone
    ind = market_indicators(book, x, need_mw=[4.0, 0.0], mask=np.isin(book.unit, [1, 2]))
    assert ind.hhi_offered[0] == pytest.approx(10_000 * (0.36 + 0.16))
    assert ind.rsi[0] == pytest.approx(2 / 4) and ind.psi[0] == 1.0


def test_lerner_and_uplift():
    np.testing.assert_allclose(lerner_index([100.0, 50.0], [100.0, 50.0]), [0.0, 0.0])   # truthful
    np.testing.assert_allclose(lerner_index(1000.0, 50.0), [0.95])
    np.testing.assert_allclose(lerner_index([0.0], [0.0]), [0.0])          # guarded: both zero
    assert np.isnan(lerner_index([0.0], [30.0])[0])                        # guarded: p = 0 only
    np.testing.assert_allclose(price_uplift([120.0, 80.0], [100.0, 80.0]), [20.0, 0.0])


def test_prices_in_the_need_direction():
    book = constructed_book()
    x = np.array([4.0, 0.0, 3.0, 0.0, 0.0, 1.0, 0.0])
    pay = 0.25 * np.array([4 * 100.0, 0, 3 * 100.0, 0, 0, 1 * 60.0, 0])
    np.testing.assert_allclose(paid_price(book, x, pay, [7.0, -1.0]), [100.0, 60.0])
    assert np.isnan(paid_price(book, x, pay, [-7.0, 0.0])).all()   # nothing activated down in t = 0
    np.testing.assert_allclose(uniform_price_in_need_direction([100.0, -60.0], [7.0, -1.0]), [100.0, 60.0])


# ------------------------------------------------------------------------ the hand-built local market
@pytest.fixture(scope="module")
def hand():
    """Two periods; the DSO needs NEEDS MW down at bus 11; T offers up/down at bus 1; system need 0."""
    lin = three_bus_td()
    base = flat_base(lin, 2)
    w = np.array([[1.10, 1.1025 + 0.01 * NEEDS[0]], [1.10, 1.1025 + 0.01 * NEEDS[1]]])
    base = replace(base, d_w_pu2=(w,))
    book = BidBook.from_arrays(bus=[1, 1, 1, 1, 11, 11], direction=[1, -1, 1, -1, -1, -1],
                               period=[0, 0, 1, 1, 0, 1], qty_mw=[100.0, 100.0, 100.0, 100.0, 9.0, 9.0],
                               price_eur_per_mwh=[80.0, 20.0, 80.0, 20.0, 30.0, 30.0], unit=[0, 0, 0, 0, 1, 1])
    inst = MarketInstance(book, base, np.zeros(2), np.zeros((1, 2)))
    return lin, inst


def test_probe_reveals_the_dsos_need(hand):
    lin, inst = hand
    np.testing.assert_allclose(probe_local_need(lin, LP, inst, 0, 11), -NEEDS, atol=1e-7)


def test_lone_pivotal_provider_bids_the_cap(hand):
    """Inelastic need, one provider: profit rises monotonically in its price up to the cap."""
    lin, inst = hand
    lm = local_market_config(max_competitors=1, liquidity=1.5, markup_points=21)
    li = local_instance(lin, inst, 0, 11, -NEEDS, 1, lm)
    for name in ("CS_B", "CS_D"):
        grid = markup_grid(lm, CAP, 1)
        br = best_response(make_scheme(name, lin, LP), [li], grid, CAP)
        assert grid[0] == 0.0 and grid[-1] == pytest.approx(CAP - COST)
        assert (np.diff(br.profit_eur) > 0).all(), name
        assert br.markup_eur_per_mwh == pytest.approx(CAP - COST)
        # it sells the whole need at the cap in both periods: 0.25 h · (2 + 3) MW · 950 EUR/MWh
        assert br.profit_eur[-1] == pytest.approx(0.25 * NEEDS.sum() * (CAP - COST), rel=1e-6)
        # truthful: paid its cost, up to the tie-break perturbation of prices (≤ TIE_EUR_PER_MWH)
        assert br.profit_eur[0] == pytest.approx(0.0, abs=0.25 * NEEDS.sum() * TIE_EUR_PER_MWH)


def test_elastic_need_caps_the_markup_at_the_reservation_price(hand):
    lin, inst = hand
    lm = local_market_config(max_competitors=1, liquidity=1.5, reservation_price_eur_per_mwh=400.0)
    li = local_instance(lin, inst, 0, 11, -NEEDS, 1, lm)
    br = best_response(make_scheme("CS_B", lin, LP), [li], markup_grid(lm, CAP, 1), CAP)
    assert br.markup_eur_per_mwh == pytest.approx(400.0 - COST, abs=0.02)
    assert br.profit_eur.max() == pytest.approx(0.25 * NEEDS.sum() * (400.0 - COST), rel=1e-3)


@pytest.fixture(scope="module")
def sweep(hand):
    """Defaults: provider 0 offers 0.4 · 3 = 1.2 × the need, rivals 0.45 × each; equal costs."""
    lin, inst = hand
    return run_sweep(lin, LP, [inst], local_market_config(), ["CS_B", "CS_D"], area=0, bus=11)


def test_sweep_matches_the_analytic_answers(sweep):
    df = sweep
    assert len(df) == 2 * 2 * 5 and (df["failed_clearings"] == 0).all()
    for (_scheme, bidding), d in df.groupby(["scheme", "bidding"]):
        d = d.sort_values("n_competitors")
        np.testing.assert_allclose(d["rsi"], [0.0, 0.45, 0.9, 1.35, 1.8], atol=1e-9)
        np.testing.assert_allclose(d["psi"], [1, 1, 1, 0, 0])
        shares = [np.r_[0.4, np.full(k - 1, 0.15)] for k in range(1, 6)]
        np.testing.assert_allclose(d["hhi"], [10_000 * ((s / s.sum()) ** 2).sum() for s in shares])
        np.testing.assert_allclose(d["need_mw"], NEEDS.mean())
        if bidding == "truthful":
            np.testing.assert_allclose(d["lerner"], 0.0, atol=1e-9)
            np.testing.assert_allclose(d["price_eur_mwh"], COST, rtol=1e-7)
        else:   # pivotal → the cap; not pivotal → Bertrand, back to its cost
            np.testing.assert_allclose(d["markup_eur_mwh"], [CAP - COST] * 3 + [0.0] * 2)
            np.testing.assert_allclose(d["price_eur_mwh"], [CAP] * 3 + [COST] * 2, rtol=1e-7)
            np.testing.assert_allclose(d["lerner"], [(CAP - COST) / CAP] * 3 + [0.0] * 2, atol=1e-9)


def test_markup_falls_with_more_truthful_competitors(hand):
    """Equal shares, costs 50, 55, 60 …: the best markup is non-increasing in n and falls from the cap."""
    lin, inst = hand
    lm = local_market_config(max_competitors=4, shares=(0.25,) * 4, liquidity=4.4, cost_step_eur_per_mwh=5.0,
                             markup_points=11)
    df = run_sweep(lin, LP, [inst], lm, ["CS_B"], area=0, bus=11)
    d = df[df["bidding"] == "strategic"].sort_values("n_competitors")
    m = d["markup_eur_mwh"].to_numpy()
    assert m[0] == pytest.approx(CAP - COST)
    assert (np.diff(m) <= 1e-9).all() and m[-1] < m[0]
    # n = 2: one rival with 1.1 × the need at 55: undercut it (just below 55); n ≥ 3: the same
    np.testing.assert_allclose(m[1:], 5.0 - 0.01)
    np.testing.assert_allclose(d["hhi"], [10_000 / n for n in range(1, 5)])
    np.testing.assert_allclose(df[df["bidding"] == "truthful"]["lerner"], 0.0, atol=1e-9)


def test_outcome_indicators_global_and_local(hand):
    lin, inst = hand
    lm = local_market_config(max_competitors=2, shares=(0.7, 0.3), liquidity=2.0)   # 1.4 and 0.6 × the need
    li = local_instance(lin, inst, 0, 11, -NEEDS, 2, lm)
    scheme = make_scheme("CS_B", lin, LP)
    truthful = scheme.clear(li.inst, evaluate=False)
    strategic = scheme.clear(li.with_markup(CAP - COST, CAP), evaluate=False)
    ind = outcome_indicators(li.inst, strategic, li.area_of_bid, truthful, li.local_need_mw)
    assert set(ind) == {"global", "local_0"}
    loc = ind["local_0"]
    np.testing.assert_allclose(loc.need_mw, NEEDS)
    np.testing.assert_allclose(loc.direction, [-1, -1])
    np.testing.assert_allclose(loc.price_eur_per_mwh, CAP, rtol=1e-7)
    np.testing.assert_allclose(loc.truthful_price_eur_per_mwh, COST, rtol=1e-7)
    np.testing.assert_allclose(loc.lerner, (CAP - COST) / CAP, rtol=1e-7)
    np.testing.assert_allclose(loc.uplift_eur_per_mwh, CAP - COST, rtol=1e-7)
    assert np.isnan(ind["global"].psi).all()   # system need 0: the global market has no need
    # without an explicit need, CS_B's local stage reveals it
    rev = outcome_indicators(li.inst, truthful, li.area_of_bid, truthful)["local_0"]
    np.testing.assert_allclose(rev.need_mw, NEEDS, atol=1e-7)
    np.testing.assert_allclose(rev.lerner, 0.0, atol=1e-9)
    # the first period alone (as the CBA asks for) is the first column of the full answer
    first = outcome_indicators(li.inst, strategic, li.area_of_bid, truthful, li.local_need_mw, horizon=1)
    for name, full in ind.items():
        for field in ("need_mw", "offered_mw", "activated_mw", "hhi_offered", "hhi_activated", "psi", "rsi",
                      "price_eur_per_mwh", "lerner"):
            np.testing.assert_array_equal(getattr(first[name], field), getattr(full, field)[:1], err_msg=field)


# ------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(("fields", "named"), [
    ({"max_competitors": 0}, "max_competitors"),
    ({"max_competitors": 3, "shares": (0.5, 0.3, 0.1)}, "shares"),
    ({"max_competitors": 3, "shares": (0.5, 0.5)}, "shares"),
    ({"max_competitors": 2, "shares": (1.2, -0.2)}, "shares"),
    ({"liquidity": 0.0}, "liquidity"),
    ({"reservation_price_eur_per_mwh": 40.0}, "reservation_price_eur_per_mwh"),
    ({"strategic_share": 1.0}, "strategic_share"),
    ({"unknown_knob": 1}, "unknown_knob"),
])
def test_bad_knobs_name_the_field(fields, named):
    with pytest.raises(ConfigError, match=named):
        local_market_config(**fields)


def test_cap_below_costs_names_the_field(hand):
    lin, inst = hand
    with pytest.raises(ConfigError, match="price_cap_eur_per_mwh"):
        check_price_cap(LP.model_copy(update={"price_cap_eur_per_mwh": 45.0}), local_market_config())
    with pytest.raises(ConfigError, match="price_cap_eur_per_mwh"):   # a truthful T bid costs 80
        run_sweep(lin, LP.model_copy(update={"price_cap_eur_per_mwh": 60.0}), [inst], local_market_config(),
                  ["CS_B"], area=0, bus=11)
    with pytest.raises(ConfigError, match="max_competitors"):
        run_sweep(lin, LP, [inst], local_market_config(), ["CS_B"], area=0, bus=11, max_competitors=0)


# ------------------------------------------------------------------------ the command
def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_market_power_parser(p.add_subparsers(dest="command"))
    return p.parse_args(["market-power", *argv])


@pytest.mark.parametrize(("argv", "named"), [
    (["--max-competitors", "0"], "max_competitors"),
    (["--shares", "0.5,0.2", "--max-competitors", "2"], "shares"),
    (["--shares", "0.5,x"], "shares"),
    (["--cost", "2000"], "price_cap_eur_per_mwh"),
    (["--steps", "0"], "steps"),
])
def test_cli_bad_input(tmp_path, argv, named):
    with pytest.raises(ConfigError, match=named):
        cmd_market_power(parse("--out", str(tmp_path / "o"), *argv))
    assert not (tmp_path / "o").exists()


def test_cli_writes_sweep_and_figure(tmp_path, capsys):
    out = tmp_path / "mp"
    args = parse("--scenario", "local-market", "--out", str(out), "--steps", "1", "--max-competitors", "2",
                 "--markup-points", "3", "--no-progress")
    assert cmd_market_power(args) == 0
    import pandas as pd

    df = pd.read_csv(out / "sweep.csv")
    for col in ("scheme", "bidding", "n_competitors", "hhi", "psi", "rsi", "lerner", "price_eur_mwh",
                "local_payment_eur", "market_cost_eur", "strategic_profit_eur"):
        assert col in df.columns
    assert set(df["scheme"]) == {"CS_B", "CS_D"} and set(df["bidding"]) == {"truthful", "strategic"}
    assert (out / "market_power.png").stat().st_size > 1000 and (out / "run.json").exists()
    # 2 providers, shares 0.4 / 0.6, liquidity 3: the rival alone offers 1.8 × the need → not pivotal
    s = df[df["bidding"] == "strategic"].set_index(["scheme", "n_competitors"])
    assert s.loc[("CS_B", 1), "markup_eur_mwh"] == pytest.approx(CAP - COST)
    assert s.loc[("CS_B", 2), "psi"] == 0.0 and s.loc[("CS_B", 2), "markup_eur_mwh"] == 0.0
    with pytest.raises(ConfigError, match="not empty"):
        cmd_market_power(args)


def test_binding_concentration_is_outcome_indicators_first_period(hand):
    """The CBA's lean per-step figures equal the general indicators' period 0, on a real clearing."""
    lin, inst = hand
    lm = local_market_config(max_competitors=2, shares=(0.7, 0.3), liquidity=2.0)
    li = local_instance(lin, inst, 0, 11, -NEEDS, 2, lm)
    out = make_scheme("CS_B", lin, LP).clear(li.with_markup(CAP - COST, CAP), evaluate=False)
    for local_need in (li.local_need_mw, -li.local_need_mw, np.zeros_like(li.local_need_mw)):
        for need in (li.inst.need_mw, np.full_like(li.inst.need_mw, 3.0)):
            inst2 = replace(li.inst, need_mw=need)
            full = outcome_indicators(inst2, out, li.area_of_bid, local_need_mw=local_need, horizon=1)
            lean = binding_concentration(inst2.book, out.activated_mw, need, li.area_of_bid, local_need)
            for k, v in lean.items():
                np.testing.assert_array_equal(v, [getattr(full[name], k)[0] for name in full], err_msg=k)
