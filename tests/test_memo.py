"""ArrayMemo keeps a value for the same arrays with the same bytes, and builds it again otherwise."""

from __future__ import annotations

import numpy as np

from smartnet_gym.memo import ArrayMemo


def test_kept_for_the_same_arrays_rebuilt_when_they_change():
    memo: ArrayMemo[float] = ArrayMemo(4)
    a, b = np.arange(5.0), np.arange(3)
    calls = []

    def build() -> float:
        calls.append(1)
        return float(a.sum() + b.sum())

    assert memo.get((a, b), build) == 13.0 and memo.get((a, b), build) == 13.0 and len(calls) == 1
    a[0] = 10.0                                       # changed in place: its bytes differ
    assert memo.get((a, b), build) == 23.0 and len(calls) == 2
    assert memo.get((a.copy(), b), build) == 23.0 and len(calls) == 3       # an equal new array: a new key
    assert memo.get((a, b), build, ("x",)) == 23.0 and len(calls) == 4     # the extra key part counts
    assert memo.get((a, b), build) == 23.0 and len(calls) == 4


def test_entries_are_bounded():
    memo: ArrayMemo[int] = ArrayMemo(3)
    arrays = [np.full(2, float(i)) for i in range(10)]
    for i, x in enumerate(arrays):
        assert memo.get((x,), lambda i=i: i) == i
    assert len(memo._entries) <= 3


def test_a_read_only_view_is_still_compared_by_its_bytes():
    """Sealed arrays (read-only, owning their memory) are trusted; a read-only view is not, as its
    writable base can change it."""
    memo: ArrayMemo[float] = ArrayMemo(4)
    base = np.arange(4.0)
    view = base[:]
    view.flags.writeable = False
    sealed = np.arange(3.0)
    sealed.flags.writeable = False
    assert memo.get((view, sealed), lambda: float(view.sum())) == 6.0
    base[0] = 4.0                                     # the view's bytes change through its base
    assert memo.get((view, sealed), lambda: float(view.sum())) == 10.0
