"""CBA account: who pays what (hand-computed and against the plain add.at formulation), the
memoised per-layout data, and the account row's columns (a contract)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from smartnet_gym.cba.accounts import COST_COMPONENTS, split_payments
from smartnet_gym.market.bids import BidBook
from smartnet_gym.market.program import DT_H
from smartnet_gym.simulation.loop import RollingLoop
from smartnet_gym.simulation.model_check import MODEL_COLUMNS


def _record(name, bids, payment, x=None, uniform=None, ok=True):
    result = SimpleNamespace(ok=ok, x_mw=np.zeros(len(bids)) if x is None else np.asarray(x, float),
                             uniform_price=np.zeros((0, 2)) if uniform is None else np.asarray(uniform, float))
    return SimpleNamespace(name=name, bids=np.asarray(bids), payment_eur=payment, result=result)


def _reference(inst, out, delivered, n_areas, area_of_bid):
    """split_payments as first written: per record, np.add.at, np.nan_to_num."""
    book = inst.book
    pay = np.zeros(n_areas + 1)
    for rec in out.records:
        idx = rec.bids
        if rec.payment_eur is None or not rec.result.ok or not len(idx):
            continue
        share = np.divide(delivered[idx], out.activated_mw[idx], out=np.zeros(len(idx)),
                          where=out.activated_mw[idx] > 1e-12) * (book.period[idx] == 0)
        p = rec.payment_eur * share
        areas = area_of_bid[idx]
        if rec.name.startswith(("local_", "dso_")):
            np.add.at(pay, 1 + areas, p)
        elif rec.name.startswith("joint"):
            res = rec.result
            lam = res.uniform_price[0, book.period[idx]] if res.uniform_price.shape[0] else 0.0
            congestion = np.where(areas >= 0, p - DT_H * book.direction[idx] * np.nan_to_num(lam)
                                  * res.x_mw * share, 0.0)
            np.add.at(pay, 1 + areas[areas >= 0], congestion[areas >= 0])
            pay[0] += p.sum() - congestion.sum()
        else:
            pay[0] += p.sum()
    return pay


# six bids: T up, area 0 down, area 1 up, area 0 up, a period-1 bid, a bid not activated
PERIOD = [0, 0, 0, 0, 1, 0]
DIRECTION = [1, -1, 1, 1, 1, 1]
AREA = np.array([-1, 0, 1, 0, 0, -1])
X = np.array([2.0, 1.0, 4.0, 2.0, 3.0, 0.0])
DELIVERED = np.array([2.0, 0.5, 4.0, 1.0, 0.0, 0.0])      # shares 1, ½, 1, ½, (period 1), (nothing)
BID_PRICE = np.array([50.0, 40.0, 70.0, 60.0, 55.0, 50.0])


def _joint(uniform):
    book = BidBook.from_arrays(bus=[0] * 6, direction=DIRECTION, period=PERIOD, qty_mw=[10.0] * 6,
                               price_eur_per_mwh=[0.0] * 6)
    payment = DT_H * np.asarray(DIRECTION) * BID_PRICE * X      # pay-as-clear at the bid's price
    rec = _record("joint", np.arange(6), payment, X, [uniform])
    return SimpleNamespace(book=book), SimpleNamespace(activated_mw=X, records=(rec,))


def test_joint_clearing_splits_uniform_price_and_congestion_by_hand():
    inst, out = _joint([50.0, 45.0])
    # paid (× share): T 25; area 0: −5 and 15; area 1: 70. Each DSO pays its bids' difference to
    # the uniform price 50 (Δt · s · 50 · x · share): area 0: −5 − (−6.25) = 1.25 and 15 − 12.5 = 2.5;
    # area 1: 70 − 50 = 20. The TSO the rest: 25 − 6.25 + 12.5 + 50
    pay = split_payments(inst, out, DELIVERED, 2, AREA)
    np.testing.assert_allclose(pay, [81.25, 3.75, 20.0], rtol=1e-12)
    assert pay.sum() == pytest.approx(25 - 5 + 70 + 15)
    # no uniform price (NaN): the DSOs pay their bids in full, the TSO its own
    pay = split_payments(inst, *_joint([np.nan, np.nan])[1:], DELIVERED, 2, AREA)
    np.testing.assert_allclose(pay, [25.0, 10.0, 70.0], rtol=1e-12)


def test_stage_records_are_paid_by_their_operator_by_hand():
    book = BidBook.from_arrays(bus=[0] * 6, direction=DIRECTION, period=PERIOD, qty_mw=[10.0] * 6,
                               price_eur_per_mwh=[0.0] * 6)
    records = (_record("local_0", [1, 3], np.array([-10.0, 30.0])), _record("local_1", [2], np.array([70.0])),
               _record("tso", [0, 4, 5], np.array([25.0, 40.0, 0.0])),
               _record("tso", [0], np.array([1e6]), ok=False),           # failed: not paid
               _record("local_0", [1], None))                            # no payment
    out = SimpleNamespace(activated_mw=X, records=records)
    pay = split_payments(SimpleNamespace(book=book), out, DELIVERED, 2, AREA)
    np.testing.assert_allclose(pay, [25.0, -5.0 + 15.0, 70.0], rtol=1e-12)


def _random_case(rng, n=60, n_areas=3, horizon=3):
    book = BidBook.from_arrays(bus=[0] * n, direction=rng.choice([-1, 1], n), period=rng.integers(0, horizon, n),
                               qty_mw=rng.uniform(0, 5, n), price_eur_per_mwh=[0.0] * n)
    area = rng.integers(-1, n_areas, n)
    x = np.where(rng.random(n) < 0.8, rng.uniform(0, 5, n), 0.0)
    delivered = np.where(book.period == 0, x * rng.choice([0.0, 0.3, 1.0], n), 0.0)
    uniform = rng.uniform(-80, 120, (1, horizon))
    if rng.random() < 0.3:
        uniform[0, rng.integers(horizon)] = rng.choice([np.nan, np.inf, -np.inf])
    joint = _record(rng.choice(["joint", "joint_welfare"]), np.arange(n), rng.normal(0, 30, n), x, uniform)
    some = np.sort(rng.choice(n, n // 2, replace=False))
    records = [joint] if rng.random() < 0.5 else []
    for a in range(n_areas):   # local stages (twice for one area: a DSO paid by two records)
        k = some[area[some] == a]
        records += [_record(f"local_{a}", k, rng.normal(0, 30, len(k)))] * (1 + (a == 1))
    records += [_record("tso", some[area[some] < 0], rng.normal(0, 30, (area[some] < 0).sum())),
                _record("dso_0", some[area[some] == 0], rng.normal(0, 30, (area[some] == 0).sum()))]
    rng.shuffle(records)
    return SimpleNamespace(book=book), SimpleNamespace(activated_mw=x, records=tuple(records)), delivered, area


@pytest.mark.parametrize("seed", range(25))
def test_split_payments_equals_the_plain_formulation_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    inst, out, delivered, area = _random_case(rng)
    with np.errstate(all="ignore"):     # infinite uniform prices overflow alike in both
        for _ in range(2):       # the second call reuses the memoised layout
            assert split_payments(inst, out, delivered, 3, area).tobytes() == \
                _reference(inst, out, delivered, 3, area).tobytes()


def _overwrite(arr: np.ndarray, i: int, value: float) -> None:
    """Write into a book's read-only array, as code that lifted the flag would (the memo must notice)."""
    arr.flags.writeable = True
    arr[i] = value
    arr.flags.writeable = False


def test_layout_changed_in_place_is_not_served_from_the_memo():
    inst, out = _joint([50.0, 45.0])
    area = AREA.copy()
    split_payments(inst, out, DELIVERED, 2, area)
    area[1] = 1                     # the same array objects, new contents
    _overwrite(inst.book.period, 0, 1)
    assert split_payments(inst, out, DELIVERED, 2, area).tobytes() == \
        _reference(inst, out, DELIVERED, 2, area).tobytes()


#: the account row's columns before the per-market and per-DSO ones (users script against them)
ROW_HEAD = ["step", "need_forecast_mw", "need_real_mw", "market_cost_eur", "market_cost_tso_eur",
            "bidders_true_cost_eur", "bidders_profit_eur", "activation_mwh", "activation_net_mwh",
            "afrr_energy_mwh", "afrr_signed_mwh", "afrr_price_eur_per_mwh", "afrr_cost_eur", "imbalance_mwh",
            "imbalance_signed_mwh", "unwanted_cost_eur", "unwanted_energy_mwh", "unwanted_net_mwh",
            "unwanted_cost_tso_eur", "unresolved_cost_eur", "unresolved_cost_tso_eur", "unresolved_voltage_pu_h",
            "unresolved_loading_pct_h", "d_violations", "t_violations", "max_voltage_dev_pu", "max_loading_pct",
            "curtailed_mwh", "ict_cost_eur", "clearing_failures", "pf_failures", "slack_mw",
            "uniform_price_eur_per_mwh", "solve_ms"]
CONCENTRATION = ["hhi_offered", "hhi_activated", "psi", "rsi"]


@pytest.mark.parametrize("scheme", ["CS_B", "CS_D", "CS_E"])
def test_account_row_columns_and_values(toy_system, toy_config, scheme):
    loop = RollingLoop(toy_system, toy_config, scheme=scheme)
    loop.reset(44, 3, np.random.default_rng(0))
    n = loop.n_areas
    columns = (ROW_HEAD + CONCENTRATION + [f"local_{a}_{k}" for a in range(n) for k in CONCENTRATION]
               + ["total_cost_eur", "tso_cost_eur"]
               + [f"dso{a}_{k}" for a in range(n) for k in ("market_cost_eur", "unwanted_cost_eur", "violations",
                                                            "unresolved_cost_eur", "unresolved_voltage_pu_h",
                                                            "unresolved_loading_pct_h")]
               + ["welfare_eur"] + list(MODEL_COLUMNS) + ["ac_reclears"])
    for _ in range(3):
        res = loop.step()
        row = res.account
        assert list(row) == columns
        assert all(type(v) is float for v in row.values())
        pay = split_payments(res.instance, res.clearing, res.delivered_mw, n, loop.bid_areas(res.instance.book))
        assert [row["market_cost_tso_eur"]] + [row[f"dso{a}_market_cost_eur"] for a in range(n)] == pay.tolist()
        assert row["total_cost_eur"] == sum(row[k] for k in COST_COMPONENTS)
        assert row["tso_cost_eur"] == (row["market_cost_tso_eur"] + row["afrr_cost_eur"] + row["unwanted_cost_tso_eur"]
                                       + row["unresolved_cost_tso_eur"])
        assert np.isnan(row["welfare_eur"]) == (scheme != "CS_E")
