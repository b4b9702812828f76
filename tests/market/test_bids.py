"""Bad input at the market boundary, unknown names, and solver failures that must not raise."""

from __future__ import annotations

import re

import numpy as np
import pytest
from handmade import flat_base, three_bus_td

from smartnet_gym.config import SCHEMES, MarketConfig
from smartnet_gym.errors import BidError, UnknownNameError
from smartnet_gym.market import solvers
from smartnet_gym.market.bids import BidBook, BuyBook, StorageState, validate_book
from smartnet_gym.market.schemes import make_scheme, normalize_scheme
from smartnet_gym.market.screening import ScreenedBackend
from smartnet_gym.market.stages import MarketInstance

KNOWN = {0: -1, 1: -1, 2: -1, 10: 0, 11: 0}
H = 2
CAP = 1000.0


def good_book(**over) -> BidBook:
    """Four valid bids; ``over`` replaces whole columns."""
    cols = dict(
        bus=[0, 1, 10, 11],
        direction=[1, -1, 1, -1],
        period=[0, 1, 0, 1],
        qty_mw=[5.0, 10.0, 0.0, 2.5],
        price_eur_per_mwh=[50.0, 0.0, 1000.0, 20.0],
    )
    cols.update(over)
    return BidBook.from_arrays(**cols)


def test_valid_book_passes():
    assert validate_book(good_book(), KNOWN, H, CAP) is None
    assert validate_book(good_book(), set(KNOWN), H, CAP) is None
    empty = BidBook.from_arrays(bus=[], direction=[], period=[], qty_mw=[], price_eur_per_mwh=[])
    assert validate_book(empty, KNOWN, H, CAP) is None


def _bad(col: str, value):
    """The good book with row 2 of column ``col`` replaced by ``value``."""
    arr = list(getattr(good_book(), col))
    arr[2] = value
    return good_book(**{col: arr})


BOOK_ARRAYS = ("unit", "bus", "direction", "period", "qty_mw", "price_eur_per_mwh", "true_cost_eur_per_mwh",
               "storage")


@pytest.mark.parametrize("derive", ["built", "with_values", "subset"])
@pytest.mark.parametrize("name", BOOK_ARRAYS)
def test_book_arrays_are_read_only(derive, name):
    book = good_book()
    book = {"built": book, "with_values": book.with_values(qty_mw=[1.0, 2.0, 3.0, 4.0], price_eur_per_mwh=[1.0] * 4),
            "subset": book.subset(np.array([True, False, True, True]))}[derive]
    with pytest.raises(ValueError, match="read-only"):
        getattr(book, name)[0] = 1


@pytest.mark.parametrize("name", ["direction", "period", "qty_mw", "wtp_eur_per_mwh"])
def test_buy_book_arrays_are_read_only(name):
    buy = BuyBook(("BRP0",), np.array([1]), np.array([0]), np.array([3.0]), np.array([100.0]))
    with pytest.raises(ValueError, match="read-only"):
        getattr(buy, name)[0] = 1


@pytest.mark.parametrize(
    ("col", "value"),
    [
        ("qty_mw", np.nan),
        ("qty_mw", np.inf),
        ("qty_mw", -np.inf),
        ("qty_mw", -0.1),
        ("price_eur_per_mwh", np.nan),
        ("price_eur_per_mwh", np.inf),
        ("price_eur_per_mwh", -1.0),
        ("price_eur_per_mwh", CAP + 0.01),
        ("bus", 99),
        ("period", H),
        ("period", -1),
        ("direction", 0),
        ("direction", 2),
        ("direction", -2),
    ],
)
def test_bad_value_names_row_and_field(col, value):
    with pytest.raises(BidError) as e:
        validate_book(_bad(col, value), KNOWN, H, CAP)
    msg = str(e.value)
    assert re.search(r"\brow 2\b", msg), msg
    assert col in msg, msg


def test_first_bad_row_is_named():
    book = good_book(qty_mw=[5.0, -1.0, 0.0, -2.0])
    with pytest.raises(BidError, match=r"row 1\b.*qty_mw"):
        validate_book(book, KNOWN, H, CAP)


def test_price_cap_is_named():
    with pytest.raises(BidError, match="1000"):
        validate_book(_bad("price_eur_per_mwh", 1500.0), KNOWN, H, CAP)


def test_true_cost_nan_rejected():
    book = good_book()
    bad = BidBook.from_arrays(
        bus=book.bus,
        direction=book.direction,
        period=book.period,
        qty_mw=book.qty_mw,
        price_eur_per_mwh=book.price_eur_per_mwh,
        true_cost_eur_per_mwh=[1.0, 2.0, np.nan, 3.0],
    )
    with pytest.raises(BidError, match=r"row 2\b.*true_cost_eur_per_mwh"):
        validate_book(bad, KNOWN, H, CAP)


def test_shape_mismatch_rejected():
    book = good_book()
    bad = BidBook(
        unit=book.unit,
        bus=book.bus[:3],
        direction=book.direction,
        period=book.period,
        qty_mw=book.qty_mw,
        price_eur_per_mwh=book.price_eur_per_mwh,
        true_cost_eur_per_mwh=book.true_cost_eur_per_mwh,
        storage=book.storage,
    )
    with pytest.raises(BidError, match="bus"):
        validate_book(bad, KNOWN, H, CAP)


def test_storage_references_checked():
    st = StorageState(np.array([2.0]), np.array([1.0]))
    with pytest.raises(BidError, match=r"row 3\b.*storage"):
        validate_book(good_book(storage=[-1, 0, -1, 1], storage_state=st), KNOWN, H, CAP)
    bad_soc = StorageState(np.array([2.0]), np.array([3.0]))
    with pytest.raises(BidError, match="soc"):
        validate_book(good_book(storage=[-1, 0, -1, -1], storage_state=bad_soc), KNOWN, H, CAP)
    assert validate_book(good_book(storage=[-1, 0, 0, -1], storage_state=st), KNOWN, H, CAP) is None


# --------------------------------------------------------------------------------------------
# unknown scheme names
# --------------------------------------------------------------------------------------------
def test_unknown_scheme_lists_allowed():
    lin = three_bus_td()
    with pytest.raises(UnknownNameError) as e:
        make_scheme("CS_X", lin, MarketConfig())
    msg = str(e.value)
    assert "CS_X" in msg
    for s in SCHEMES:
        assert s in msg, msg
    assert isinstance(e.value, KeyError)  # UnknownNameError is also a KeyError


def test_scheme_name_spellings():
    assert normalize_scheme("cs-d") == "CS_D"
    assert normalize_scheme(" cs_a ") == "CS_A"
    with pytest.raises(UnknownNameError, match="CS_B"):
        normalize_scheme("CSB")


# --------------------------------------------------------------------------------------------
# solver failures are statuses, never exceptions
# --------------------------------------------------------------------------------------------
def instance() -> tuple:
    lin = three_bus_td()
    book = BidBook.from_arrays(
        bus=[1, 2, 11, 10],
        direction=[1, -1, 1, -1],
        period=[0, 0, 1, 1],
        qty_mw=[30.0, 10.0, 5.0, 5.0],
        price_eur_per_mwh=[50.0, 10.0, 30.0, 5.0],
    )
    inst = MarketInstance(book, flat_base(lin, 2), np.array([20.0, -3.0]), np.array([[2.0, -1.0]]))
    return lin, inst


def _failed_solution(self, c, lb, ub, lo, hi):
    return solvers.Solution(
        "failed: injected for the test",
        float("nan"),
        np.zeros(self.m.n_col),
        np.zeros(self.m.n_row),
        0.0,
    )


SCHEME_VARIANTS = [(s, "centralized") for s in SCHEMES] + [("CS_D", "decentralized")]


@pytest.mark.parametrize(("name", "variant"), SCHEME_VARIANTS)
def test_failed_highs_solve_is_reported(monkeypatch, name, variant):
    monkeypatch.setattr(solvers.HighsBackend, "solve", _failed_solution)
    monkeypatch.setattr(ScreenedBackend, "solve", _failed_solution)
    monkeypatch.setattr(ScreenedBackend, "evaluate", _failed_solution)
    lin, inst = instance()
    out = make_scheme(
        name, lin, MarketConfig(qp_epsilon=0.0, backend="highs", variant=variant)
    ).clear(inst)
    assert out.status.startswith("failed"), out.status
    assert out.failed_stages >= 1
    assert not out.activated_mw.any()
    assert not out.payment_eur.any()
    np.testing.assert_allclose(out.residual_imbalance_mw, inst.need_mw)
    assert np.isnan(out.evaluated_cost_eur)  # the yardstick failed too: reported, not raised


@pytest.mark.parametrize("name", SCHEMES)
def test_cvxpy_exception_becomes_status(monkeypatch, name):
    import cvxpy as cp

    def boom(self, *a, **k):
        raise cp.error.SolverError("injected for the test")

    monkeypatch.setattr(cp.Problem, "solve", boom)
    lin, inst = instance()
    out = make_scheme(name, lin, MarketConfig(qp_epsilon=0.0, backend="cvxpy")).clear(
        inst, evaluate=False
    )
    assert out.status.startswith("failed"), out.status
    assert "injected" in out.status
    assert not out.activated_mw.any()
    np.testing.assert_allclose(out.residual_imbalance_mw, inst.need_mw)


def test_later_stage_failure_keeps_earlier_activations(monkeypatch):
    """CS_C: the DSO stage solves, the TSO stage fails: DSO activations stand, TSO need open."""
    lin, inst = instance()
    ok_out = make_scheme("CS_C", lin, MarketConfig(qp_epsilon=0.0)).clear(inst, evaluate=False)
    assert ok_out.status == "optimal"
    for backend in (solvers.HighsBackend, ScreenedBackend):
        real = backend.solve

        def fail_tso(self, c, lb, ub, lo, hi, real=real):
            if "t_node" in self.m.rows:  # only the TSO program models transmission
                return _failed_solution(self, c, lb, ub, lo, hi)
            return real(self, c, lb, ub, lo, hi)

        monkeypatch.setattr(backend, "solve", fail_tso)
    out = make_scheme("CS_C", lin, MarketConfig(qp_epsilon=0.0)).clear(inst, evaluate=False)
    assert out.status.startswith("failed") and out.failed_stages == 1
    local = np.isin(inst.book.bus, [10, 11])
    np.testing.assert_allclose(out.activated_mw[local], ok_out.activated_mw[local], atol=1e-9)
    assert not out.activated_mw[~local].any()
    net = np.zeros(2)
    np.add.at(net, inst.book.period, inst.book.direction * out.activated_mw)
    np.testing.assert_allclose(out.residual_imbalance_mw, inst.need_mw - net, atol=1e-9)


def test_locate_repeats_give_fresh_equal_answers():
    """``LinearTD.locate`` remembers the last bus array it located (the stages of one clearing ask
    for the same book): a repeat returns equal arrays that the caller may change freely, and a
    different array is located anew."""
    from handmade import three_bus_td

    lin = three_bus_td()
    buses = np.array(sorted(lin.bus_area))
    a1, p1 = lin.locate(buses)
    a1[:] = 99
    a2, p2 = lin.locate(buses.copy())
    assert not (a2 == 99).any()
    np.testing.assert_array_equal(p1, p2)
    a3, _ = lin.locate(buses[::-1])
    np.testing.assert_array_equal(a3, a2[::-1])


def test_subsets_of_one_layout_share_their_layout_arrays():
    """A subset is the rows ``mask`` selects; subsets of the books of one layout by the same mask
    share their layout arrays (and so their layout key), another mask or layout gives its own."""
    rng = np.random.default_rng(5)
    n = 12
    book = BidBook.from_arrays(bus=rng.integers(0, 5, n), direction=rng.choice([-1, 1], n), period=rng.integers(0, 3, n),
                               qty_mw=rng.uniform(0, 5, n), price_eur_per_mwh=rng.uniform(0, 90, n))
    other = book.with_values(qty_mw=rng.uniform(0, 5, n), price_eur_per_mwh=rng.uniform(0, 90, n))
    idx = np.flatnonzero(rng.random(n) < 0.6)
    a, b = book.subset(idx), other.subset(idx.copy())
    for name in ("unit", "bus", "direction", "period", "storage", "qty_mw", "price_eur_per_mwh", "true_cost_eur_per_mwh"):
        np.testing.assert_array_equal(getattr(a, name), getattr(book, name)[idx])
        np.testing.assert_array_equal(getattr(b, name), getattr(other, name)[idx])
    assert a.bus is b.bus and a.period is b.period and a.layout_key() is b.layout_key()
    c = book.subset(idx[:-1])
    assert len(c) == len(idx) - 1 and c.bus is not a.bus
    np.testing.assert_array_equal(book.subset(book.direction > 0).bus, book.bus[book.direction > 0])
