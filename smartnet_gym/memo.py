"""Values derived from numpy arrays that the hot path hands on by identity.

The books of one bid layout share their layout arrays (``BidBook.with_values``), so what depends
on the layout alone (a program key, a subset's rows, the CBA's index arrays) is kept by the
arrays' identity and reused while their bytes are unchanged (one memcmp per array; none for a
read-only array that owns its memory, as books' arrays are): a new or changed array builds it again.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")


class ArrayMemo(Generic[T]):
    """Values built from arrays, kept by the arrays' identity and checked against their bytes."""

    def __init__(self, max_entries: int):
        self.max_entries = max_entries
        self._entries: dict[tuple, tuple[tuple[np.ndarray, ...], tuple[bytes, ...], T]] = {}

    def get(self, arrays: tuple[np.ndarray, ...], build: Callable[[], T], extra: tuple[Hashable, ...] = ()) -> T:
        """``build()`` for ``arrays`` (and the hashable ``extra``, part of the key by value), or
        the value built the last time for the same arrays with the same bytes."""
        key = (*map(id, arrays), *extra)
        data = tuple(b"" if _sealed(a) else a.tobytes() for a in arrays)
        hit = self._entries.get(key)
        if hit is not None and hit[1] == data:
            return hit[2]
        if len(self._entries) >= self.max_entries:     # layouts changing every call: keep memory bounded
            self._entries.clear()
        value = build()
        self._entries[key] = (arrays, data, value)      # the arrays are held, so their ids are not reused
        return value


def _sealed(a: np.ndarray) -> bool:
    """An array no one can write without first making it writeable again: read-only and owning its
    memory (a read-only view's base may still be written). Its bytes need no comparison."""
    return not a.flags.writeable and a.base is None
