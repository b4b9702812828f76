"""Bid books as struct-of-arrays, with validation at the market boundary.

One row per bid: provider (unit), bus, direction (+1 up = more injection / less consumption,
-1 down), period of the horizon, quantity [MW] and price [EUR/MWh] — the price is what the
provider asks to be paid per MWh activated in that direction (≥ 0). Storage bids carry the
index of their battery so that the clearing links them across periods by state of charge.
Buy bids (CS_E) are a separate :class:`BuyBook`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from smartnet_gym.errors import BidError
from smartnet_gym.memo import ArrayMemo


@dataclass(frozen=True)
class StorageState:
    """Batteries referenced by a book: energy capacity and current energy [MWh].

    ``committed_mwh`` (n_storage, H), optional: energy already discharged (+) by earlier stages
    of the same clearing up to the end of each period, so that a later stage cannot use the
    same charge twice.
    """

    energy_mwh: np.ndarray
    soc_mwh: np.ndarray
    committed_mwh: np.ndarray | None = None

    @staticmethod
    def empty() -> StorageState:
        return StorageState(np.zeros(0), np.zeros(0))

    def __len__(self) -> int:
        return len(self.energy_mwh)


def tie_break(book: BidBook) -> np.ndarray:
    """A fixed pseudo-random number in [0, 1) per bid identity: (unit, bus, direction, period)
    and, for rows sharing those, their order in the book.

    It depends on the bid, not on the program that clears it (a sub-book keeps the order of
    its rows), so a tiny cost perturbation by it picks the same optimum among equal-price bids
    whichever stages, program grouping or solver path clear them.
    """
    key = (((book.unit.astype(np.uint64) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15))
           ^ (book.bus.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F))
           ^ ((book.period.astype(np.uint64) * np.uint64(2) + (book.direction > 0).astype(np.uint64))
              * np.uint64(0x165667B19E3779F9)))
    order = np.argsort(key, kind="stable")
    first = np.r_[True, key[order][1:] != key[order][:-1]] if len(key) else np.zeros(0, bool)
    start = np.maximum.accumulate(np.where(first, np.arange(len(key)), 0))
    occurrence = np.empty(len(key), np.uint64)
    occurrence[order] = (np.arange(len(key)) - start).astype(np.uint64)
    key += occurrence * np.uint64(0x94D049BB133111EB)
    key ^= key >> np.uint64(29)
    key *= np.uint64(0xBF58476D1CE4E5B9)
    key ^= key >> np.uint64(32)
    return (key >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _freeze(obj: object, names: tuple[str, ...]) -> None:
    """Make the arrays ``names`` of ``obj`` read-only: memos and programs are kept for their contents."""
    for name in names:
        getattr(obj, name).flags.writeable = False


_LAYOUT_KEYS: ArrayMemo[tuple[bytes, ...]] = ArrayMemo(17)     # layout keys of recent books
_SUBSETS: ArrayMemo[tuple[np.ndarray, ...]] = ArrayMemo(33)        # layout arrays of recent subsets
_JOINED: ArrayMemo[tuple[np.ndarray, ...]] = ArrayMemo(9)          # layout arrays of recent joined books

#: unit of the rows that stand for forced measures (load shedding, generation curtailment at VoLL)
#: where a clearing holds them as options; no provider, never paid by the market
FORCED_UNIT = -2


@dataclass(frozen=True)
class BidBook:
    """Sell bids of flexibility providers for one clearing (all periods of the horizon).

    Immutable, arrays included: they are made read-only here (derive a changed book with
    :meth:`with_values`), since layout keys and a program's filled vectors are kept for the book
    they were computed from. The arrays passed in are frozen, not copied."""

    unit: np.ndarray          # (n,) provider index (UnitTable row), -1 if synthetic
    bus: np.ndarray           # (n,) pandapower bus id
    direction: np.ndarray     # (n,) +1 up, -1 down
    period: np.ndarray        # (n,) 0..H-1
    qty_mw: np.ndarray        # (n,) offered quantity [MW]
    price_eur_per_mwh: np.ndarray  # (n,) asked price [EUR/MWh]
    true_cost_eur_per_mwh: np.ndarray  # (n,) provider's real cost (private, for the CBA)
    storage: np.ndarray       # (n,) index into ``storage_state`` or -1
    storage_state: StorageState = field(default_factory=StorageState.empty)

    def __post_init__(self) -> None:
        _freeze(self, ("unit", "bus", "direction", "period", "qty_mw", "price_eur_per_mwh",
                       "true_cost_eur_per_mwh", "storage"))

    def __len__(self) -> int:
        return len(self.qty_mw)

    @cached_property
    def forced_rows(self) -> np.ndarray:
        """(n,) which rows are forced-measure options (unit :data:`FORCED_UNIT`), not bids: the
        stages of one clearing all ask the same book, so it is computed once per book."""
        return self.unit == FORCED_UNIT

    def layout_key(self) -> tuple[bytes, ...]:
        """What a clearing program is built for: everything but quantities and prices.

        The books of one layout share its arrays (:meth:`with_values`), so the key is kept
        (:class:`~smartnet_gym.memo.ArrayMemo`) and the same bytes objects, with their hashes,
        come back: a program lookup hashes ~60 kB less."""
        arrays = (self.bus, self.direction, self.period, self.storage)
        energy = np.asarray(self.storage_state.energy_mwh).tobytes()     # a fresh array per book, a few bytes
        return _LAYOUT_KEYS.get(arrays, lambda: (*(a.tobytes() for a in arrays), energy), (energy,))

    def with_values(self, qty_mw: np.ndarray | None = None,
                    price_eur_per_mwh: np.ndarray | None = None) -> BidBook:
        """Same layout, new quantities and/or prices (what agents change between steps)."""
        return replace(self,
                       qty_mw=self.qty_mw if qty_mw is None else np.asarray(qty_mw, float),
                       price_eur_per_mwh=(self.price_eur_per_mwh if price_eur_per_mwh is None
                                          else np.asarray(price_eur_per_mwh, float)))

    def subset(self, mask: np.ndarray) -> BidBook:
        """The bids where ``mask`` is True, or at the positions ``mask`` lists, in book order
        (storage references kept).

        The subset's layout arrays (unit, bus, direction, period, storage) are kept for the
        layout and mask they were taken from, so the subsets of one layout share them as the
        books of one layout do (:meth:`layout_key` then needs no new key)."""
        mask = np.asarray(mask)
        layout = (self.unit, self.bus, self.direction, self.period, self.storage)
        picked = _SUBSETS.get(layout, lambda: tuple(a[mask] for a in layout), (mask.dtype.str, mask.tobytes()))
        unit, bus, direction, period, storage = picked
        return replace(self, unit=unit, bus=bus, direction=direction, period=period, qty_mw=self.qty_mw[mask],
                       price_eur_per_mwh=self.price_eur_per_mwh[mask],
                       true_cost_eur_per_mwh=self.true_cost_eur_per_mwh[mask], storage=storage)

    def joined(self, other: BidBook) -> BidBook:
        """This book's rows followed by ``other``'s (no storage rows in ``other``; this book's
        batteries). The joined layout arrays are kept for the two layouts, as :meth:`subset`'s."""
        names = ("unit", "bus", "direction", "period", "storage")
        arrays = tuple(getattr(b, n) for b in (self, other) for n in names)
        picked = _JOINED.get(arrays, lambda: tuple(np.concatenate([getattr(self, n), getattr(other, n)])
                                                   for n in names))
        unit, bus, direction, period, storage = picked
        return replace(self, unit=unit, bus=bus, direction=direction, period=period, storage=storage,
                       qty_mw=np.concatenate([self.qty_mw, other.qty_mw]),
                       price_eur_per_mwh=np.concatenate([self.price_eur_per_mwh, other.price_eur_per_mwh]),
                       true_cost_eur_per_mwh=np.concatenate([self.true_cost_eur_per_mwh,
                                                             other.true_cost_eur_per_mwh]))

    @staticmethod
    def from_arrays(bus, direction, period, qty_mw, price_eur_per_mwh, unit=None,
                    true_cost_eur_per_mwh=None, storage=None,
                    storage_state: StorageState | None = None) -> BidBook:
        """Build a book from array-likes, filling optional fields (true cost defaults to price)."""
        n = len(qty_mw)
        price = np.asarray(price_eur_per_mwh, float)
        return BidBook(
            unit=np.full(n, -1, int) if unit is None else np.asarray(unit, int),
            bus=np.asarray(bus, int), direction=np.asarray(direction, int),
            period=np.asarray(period, int), qty_mw=np.asarray(qty_mw, float), price_eur_per_mwh=price,
            true_cost_eur_per_mwh=price.copy() if true_cost_eur_per_mwh is None
            else np.asarray(true_cost_eur_per_mwh, float),
            storage=np.full(n, -1, int) if storage is None else np.asarray(storage, int),
            storage_state=storage_state or StorageState.empty())


@dataclass(frozen=True)
class BuyBook:
    """Buy bids (CS_E): a buyer wants ``qty_mw`` of flexibility in ``direction`` at most at ``wtp``.

    Immutable, arrays included (made read-only here, like :class:`BidBook`'s)."""

    buyer: tuple[str, ...]    # e.g. "BRP1"
    direction: np.ndarray     # (m,) +1 wants up activation, -1 wants down
    period: np.ndarray        # (m,)
    qty_mw: np.ndarray        # (m,)
    wtp_eur_per_mwh: np.ndarray  # (m,) willingness to pay

    def __post_init__(self) -> None:
        _freeze(self, ("direction", "period", "qty_mw", "wtp_eur_per_mwh"))

    def __len__(self) -> int:
        return len(self.qty_mw)

    @staticmethod
    def empty() -> BuyBook:
        z = np.zeros(0)
        return BuyBook((), z.astype(int), z.astype(int), z, z)


def _bad_rows(ok: np.ndarray) -> np.ndarray:
    return np.flatnonzero(~ok)


def validate_book(book: BidBook, known_buses: set[int] | dict[int, int], horizon: int,
                  price_cap_eur_per_mwh: float) -> None:
    """Raise :class:`BidError` naming the first bad row and field; return None if the book is valid."""
    n = len(book)
    for name in ("unit", "bus", "direction", "period", "qty_mw", "price_eur_per_mwh",
                 "true_cost_eur_per_mwh", "storage"):
        arr = getattr(book, name)
        if arr.shape != (n,):
            raise BidError(f"field {name!r} has shape {arr.shape}, expected ({n},) like qty_mw")

    def check(ok: np.ndarray, field_name: str, rule: str) -> None:
        bad = _bad_rows(ok)
        if len(bad):
            r = int(bad[0])
            raise BidError(f"bid row {r}: field {field_name!r} = {getattr(book, field_name)[r]!r} "
                           f"{rule} ({len(bad)} bad rows)")

    check(np.isfinite(book.qty_mw), "qty_mw", "must be finite")
    check(book.qty_mw >= 0, "qty_mw", "must be >= 0")
    check(np.isfinite(book.price_eur_per_mwh), "price_eur_per_mwh", "must be finite")
    check(book.price_eur_per_mwh >= 0, "price_eur_per_mwh", "must be >= 0")
    check(book.price_eur_per_mwh <= price_cap_eur_per_mwh, "price_eur_per_mwh",
          f"must be <= the price cap {price_cap_eur_per_mwh:g} EUR/MWh")
    check(np.isfinite(book.true_cost_eur_per_mwh), "true_cost_eur_per_mwh", "must be finite")
    check(np.isin(book.direction, (-1, 1)), "direction", "must be +1 (up) or -1 (down)")
    check((book.period >= 0) & (book.period < horizon), "period", f"must be in 0..{horizon - 1}")
    check(np.fromiter((int(b) in known_buses for b in book.bus), bool, n), "bus",
          "is not a bus of the T&D system")
    ns = len(book.storage_state)
    check((book.storage >= -1) & (book.storage < ns), "storage", f"must be -1 or in 0..{ns - 1}")
    st = book.storage_state
    if ns:
        bad = np.flatnonzero(~(np.isfinite(st.soc_mwh) & (st.soc_mwh >= -1e-9)
                               & (st.soc_mwh <= st.energy_mwh + 1e-9)))
        if len(bad):
            raise BidError(f"storage {int(bad[0])}: soc_mwh = {st.soc_mwh[bad[0]]} must be in "
                           f"[0, energy_mwh = {st.energy_mwh[bad[0]]}]")
