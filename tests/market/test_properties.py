"""Properties of every scheme over random bid books on the handmade network (hypothesis).

For any book, base state and need: clearing never raises, the status is optimal, 0 ≤ activation ≤
offered quantity, net activation + residual imbalance = need, and the balance holds up to the
reported slack. Checked for the LP (ε = 0, the default) and a QP (ε = 0.01) configuration.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from handmade import flat_base, three_bus_td
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartnet_gym.config import SCHEMES, MarketConfig
from smartnet_gym.market.bids import BidBook, BuyBook
from smartnet_gym.market.program import DT_H
from smartnet_gym.market.schemes import make_scheme
from smartnet_gym.market.stages import MarketInstance

BUSES = (0, 1, 2, 10, 11)
CONFIGS = {
    "lp": MarketConfig(qp_epsilon=0.0, backend="highs"),
    "qp": MarketConfig(qp_epsilon=0.01, backend="highs"),
}
LIN = three_bus_td(line_rating_mw=40.0, feeder_rating_mva=25.0)

finite = dict(allow_nan=False, allow_infinity=False)


@st.composite
def instances(draw, with_buyers: bool = False):
    h = draw(st.integers(1, 3))
    n = draw(st.integers(0, 12))
    bus = draw(st.lists(st.sampled_from(BUSES), min_size=n, max_size=n))
    direction = draw(st.lists(st.sampled_from((-1, 1)), min_size=n, max_size=n))
    period = draw(st.lists(st.integers(0, h - 1), min_size=n, max_size=n))
    qty = draw(st.lists(st.floats(0.0, 60.0, **finite), min_size=n, max_size=n))
    price = draw(st.lists(st.floats(0.0, 1000.0, **finite), min_size=n, max_size=n))
    book = BidBook.from_arrays(
        bus=np.array(bus, int),
        direction=np.array(direction, int),
        period=np.array(period, int),
        qty_mw=np.array(qty, float),
        price_eur_per_mwh=np.array(price, float),
    )
    need = np.array(draw(st.lists(st.floats(-80.0, 80.0, **finite), min_size=h, max_size=h)))
    area_share = draw(st.floats(-1.0, 1.0, **finite))
    v = draw(st.sampled_from((0.94, 0.97, 1.0, 1.03, 1.049, 1.06)))
    base = flat_base(LIN, h, v)
    t_flow = np.array(
        draw(st.lists(st.floats(-50.0, 50.0, **finite), min_size=3 * h, max_size=3 * h))
    ).reshape(h, 3)
    d_p = np.array(
        draw(st.lists(st.floats(-30.0, 30.0, **finite), min_size=2 * h, max_size=2 * h))
    ).reshape(h, 2)
    base = replace(base, t_flow_mw=t_flow, d_p_mw=(d_p,))
    buy = BuyBook.empty()
    if with_buyers:
        m = draw(st.integers(0, 4))
        buy = BuyBook(
            buyer=tuple(f"BRP{i}" for i in range(m)),
            direction=np.array(
                draw(st.lists(st.sampled_from((-1, 1)), min_size=m, max_size=m)), int
            ),
            period=np.array(draw(st.lists(st.integers(0, h - 1), min_size=m, max_size=m)), int),
            qty_mw=np.array(draw(st.lists(st.floats(0.0, 40.0, **finite), min_size=m, max_size=m))),
            wtp_eur_per_mwh=np.array(
                draw(st.lists(st.floats(0.0, 500.0, **finite), min_size=m, max_size=m))
            ),
        )
    return MarketInstance(book, base, need, np.round(area_share * need, 6)[None, :], buy=buy)


def net_activation(inst: MarketInstance, x: np.ndarray) -> np.ndarray:
    net = np.zeros(inst.horizon)
    np.add.at(net, inst.book.period, inst.book.direction * x)
    return net


def check_outcome(name: str, inst: MarketInstance, out) -> None:
    book = inst.book
    # slacks keep every instance feasible, so a clearing that is not optimal is a failure
    assert out.status == "optimal", out.status
    x = out.activated_mw
    assert x.shape == (len(book),) and np.isfinite(x).all()
    assert (x >= 0).all()
    assert (x <= book.qty_mw + 1e-7).all(), (x - book.qty_mw).max()
    net = net_activation(inst, x)
    np.testing.assert_allclose(net + out.residual_imbalance_mw, inst.need_mw, atol=1e-9)
    assert np.isfinite(out.payment_eur).all()
    np.testing.assert_allclose(
        out.true_cost_eur, DT_H * book.true_cost_eur_per_mwh * x, rtol=1e-12, atol=1e-12
    )
    if name == "CS_E":
        # welfare clearing: sellers' net activation = buyers' net served quantity, up to the slack
        served = np.zeros(inst.horizon)
        np.add.at(served, inst.buy.period, inst.buy.direction * out.served_buy_mw)
        assert (out.served_buy_mw >= 0).all() and (
            out.served_buy_mw <= inst.buy.qty_mw + 1e-7
        ).all()
        assert np.abs(net - served).sum() <= out.balance_slack_mw + 1e-6
    else:
        # every stage balances up to its slack, so Σ_t |need − net| ≤ Σ |slacks|
        assert np.abs(out.residual_imbalance_mw).sum() <= out.balance_slack_mw + 1e-6 * (
            1 + np.abs(inst.need_mw).sum()
        )
    # the common yardstick exists for any activations (no batteries here)
    assert np.isfinite(out.evaluated_cost_eur)


SCHEMES_NO_E = [s for s in SCHEMES if s != "CS_E"]


@pytest.mark.parametrize("cfg_name", list(CONFIGS))
@pytest.mark.parametrize("name", SCHEMES_NO_E)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inst=instances())
def test_scheme_invariants(name, cfg_name, inst):
    out = make_scheme(name, LIN, CONFIGS[cfg_name]).clear(inst)
    check_outcome(name, inst, out)


@pytest.mark.parametrize("cfg_name", list(CONFIGS))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inst=instances(with_buyers=True))
def test_cs_e_invariants(cfg_name, inst):
    out = make_scheme("CS_E", LIN, CONFIGS[cfg_name]).clear(inst)
    check_outcome("CS_E", inst, out)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inst=instances())
def test_decentralized_invariants(inst):
    cfg = CONFIGS["lp"].model_copy(update={"variant": "decentralized"})
    out = make_scheme("CS_D", LIN, cfg).clear(inst)
    check_outcome("CS_D", inst, out)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inst=instances())
def test_cs_d_lp_never_worse_than_other_schemes(inst):
    """The yardstick ordering (CS_D cheapest) over arbitrary books on the handmade network (LP variant)."""
    cfg = CONFIGS["lp"]
    d = make_scheme("CS_D", LIN, cfg).clear(inst)
    assert d.status == "optimal"
    for name in ("CS_A", "CS_B", "CS_C"):
        e = make_scheme(name, LIN, cfg).clear(inst).evaluated_cost_eur
        assert d.evaluated_cost_eur <= e + 1e-6 * max(1.0, abs(e)), (name, d.evaluated_cost_eur, e)
