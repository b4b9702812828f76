"""binding_concentration (the CBA's per-step market power): a hand-computed case, the general
indicators' period 0 bit for bit on random books, and its memoised layout."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from smartnet_gym.cba.market_power import binding_concentration, outcome_indicators
from smartnet_gym.market.bids import BidBook

FIELDS = ("hhi_offered", "hhi_activated", "psi", "rsi")


def hand_case():
    """Period 0: T up offers of units 0 (4 + 2) and 1 (3); area 0: up offers of units 1 (3) and 2 (2),
    a down offer of unit 3 (5); area 1: an up offer of unit 4 (6). A period-1 offer of unit 1 (100)."""
    book = BidBook.from_arrays(bus=[0] * 8, direction=[1, 1, 1, 1, 1, -1, 1, 1],
                               period=[0, 0, 0, 0, 0, 0, 0, 1], qty_mw=[4.0, 2.0, 3.0, 3.0, 2.0, 5.0, 6.0, 100.0],
                               price_eur_per_mwh=[0.0] * 8, unit=[0, 0, 1, 1, 2, 3, 4, 1])
    area = np.array([-1, -1, -1, 0, 0, 0, 1, 0])
    act = np.array([4.0, 0.0, 0.0, 3.0, 0.0, 1.0, 2.0, 50.0])
    return book, area, act


def test_global_and_local_markets_by_hand():
    book, area, act = hand_case()
    # needs: system 7 up; area 0: 4 up, area 1: 1 down, area 2 (no bids): 2 up
    c = binding_concentration(book, act, [7.0, 1.0], area, np.array([[4.0, 0.0], [-1.0, 0.0], [2.0, 0.0]]))
    assert set(c) == set(FIELDS) and all(c[k].shape == (4,) for k in FIELDS)
    # global, up: units 0: 6, 1: 6, 2: 2, 4: 6 (the down offer of unit 3 does not count)
    assert c["hhi_offered"][0] == pytest.approx(1e4 * (3 * 36 + 4) / 20 ** 2, rel=1e-12)
    assert c["hhi_activated"][0] == pytest.approx(1e4 * (16 + 9 + 4) / 9 ** 2, rel=1e-12)
    assert c["rsi"][0] == pytest.approx((20 - 6) / 7) and c["psi"][0] == 0.0
    # area 0, up: units 1: 3, 2: 2 → pivotal; only unit 1 activated
    assert c["hhi_offered"][1] == pytest.approx(1e4 * 13 / 25) and c["hhi_activated"][1] == 1e4
    assert c["rsi"][1] == pytest.approx(0.5) and c["psi"][1] == 1.0
    # area 1 needs down, has no down offer; area 2 has no bids: no HHI, no residual supply
    for j in (2, 3):
        assert np.isnan(c["hhi_offered"][j]) and np.isnan(c["hhi_activated"][j])
        assert c["rsi"][j] == 0.0 and c["psi"][j] == 1.0
    # no system need: the global market has no direction
    c = binding_concentration(book, act, [0.0, 1.0], area, np.array([[4.0], [-1.0], [2.0]]))
    assert all(np.isnan(c[k][0]) for k in FIELDS)


def _general(book, act, need, area, local_need):
    """The same figures from the general per-period indicators (period 0)."""
    inst = SimpleNamespace(book=book, need_mw=need, horizon=len(need))
    out = SimpleNamespace(activated_mw=act, payment_eur=np.zeros(len(book)),
                          uniform_price_eur_per_mwh=np.zeros(len(need)))
    ind = outcome_indicators(inst, out, area, local_need_mw=local_need, horizon=1)
    return {k: np.array([getattr(m, k)[0] for m in ind.values()]) for k in FIELDS}


@pytest.mark.parametrize("seed", range(20))
def test_equals_the_general_indicators_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    n, h, n_areas = 150, 3, 4
    book = BidBook.from_arrays(bus=[0] * n, direction=rng.choice([-1, 1], n), period=rng.integers(0, h, n),
                               qty_mw=rng.uniform(0, 5, n) * (rng.random(n) < 0.9),
                               price_eur_per_mwh=[0.0] * n, unit=rng.integers(0, 40, n) * 3)
    area = rng.integers(-1, n_areas, n)
    act = np.where(rng.random(n) < 0.5, rng.uniform(0, 1, n) * book.qty_mw, 0.0)
    need = rng.normal(0, 10, h) * (rng.random() < 0.8)
    local = rng.normal(0, 3, (n_areas, h)) * (rng.random((n_areas, 1)) < 0.7)
    for _ in range(2):       # the second call reuses the memoised layout
        lean = binding_concentration(book, act, need, area, local)
        general = _general(book, act, need, area, local)
        for k in FIELDS:
            assert lean[k].tobytes() == general[k].tobytes(), k


def _overwrite(arr: np.ndarray, i: int, value: float) -> None:
    """Write into a book's read-only array, as code that lifted the flag would (the memo must notice)."""
    arr.flags.writeable = True
    arr[i] = value
    arr.flags.writeable = False


def test_layout_changed_in_place_is_not_served_from_the_memo():
    book, area, act = hand_case()
    need, local = [7.0, 1.0], np.array([[4.0, 0.0], [-1.0, 0.0]])
    binding_concentration(book, act, need, area, local)
    area[3] = 1                     # the same array objects, new contents
    _overwrite(book.unit, 4, 0)
    _overwrite(book.direction, 5, 1)
    lean = binding_concentration(book, act, need, area, local)
    general = _general(book, act, np.array(need), area, local)
    for k in FIELDS:
        np.testing.assert_array_equal(lean[k], general[k], err_msg=k)


def test_bids_in_an_area_without_a_local_need_are_an_error():
    book, area, act = hand_case()
    with pytest.raises(IndexError):
        binding_concentration(book, act, [7.0], area, np.zeros((1, 1)))
