"""aFRR energy price: the merit order of what the market left, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from smartnet_gym.cba.afrr import afrr_price
from smartnet_gym.config import load_scenario
from smartnet_gym.market.bids import BidBook


@pytest.fixture
def book() -> BidBook:
    """Up offers at 50, 70, 90 EUR/MWh (10 MW each) in period 0, one at 10 in period 1, a down offer at 5."""
    return BidBook.from_arrays(bus=np.zeros(5, np.int64), direction=np.array([1, 1, 1, 1, -1]),
                               period=np.array([0, 0, 0, 1, 0]), qty_mw=np.full(5, 10.0),
                               price_eur_per_mwh=np.array([70.0, 50.0, 90.0, 10.0, 5.0]))


def test_merit_order_of_the_offers_left(book):
    cfg = load_scenario("toy", {"simulation": {"afrr_premium_eur_per_mwh": 30.0, "afrr_floor_eur_per_mwh": 0.0}})
    none = np.zeros(5)
    assert afrr_price(cfg, book, none, 5.0) == 50.0 + 30.0          # the cheapest up offer covers 5 MW
    assert afrr_price(cfg, book, none, 15.0) == 70.0 + 30.0         # the second covers MW 10..20
    assert afrr_price(cfg, book, none, 30.0) == 90.0 + 30.0
    assert afrr_price(cfg, book, none, 31.0) == cfg.market.price_cap_eur_per_mwh + 30.0   # beyond the offers
    used = np.array([0.0, 10.0, 0.0, 0.0, 0.0])                     # the market took the 50 EUR offer
    assert afrr_price(cfg, book, used, 5.0) == 70.0 + 30.0
    assert afrr_price(cfg, book, none, -3.0) == 5.0 + 30.0          # a surplus: down offers
    floor = load_scenario("toy", {"simulation": {"afrr_floor_eur_per_mwh": 200.0}})
    assert afrr_price(floor, book, none, 5.0) == 200.0
