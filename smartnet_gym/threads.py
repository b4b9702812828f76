"""BLAS threads: one per process unless the user says otherwise.

The hot path is many small vector and sparse operations. OpenBLAS splits even a 15,000-element
dot product over all cores, and when the cores are busy (SubprocVecEnv workers, a learner, other
jobs) each such call waits for a sleeping thread: one dot product was measured at 7.5 ms with
2 threads on a loaded 2-core machine against 0.007 ms with 1. Set ``SMARTNET_GYM_BLAS_THREADS``
to another count, or to 0 to leave the BLAS pools as they are.
"""

from __future__ import annotations

import os

ENV_VAR = "SMARTNET_GYM_BLAS_THREADS"
_applied: int | None = None


def limit_blas_threads() -> int | None:
    """Limit the BLAS thread pools of this process (once; returns the limit, None if left alone)."""
    global _applied
    raw = os.environ.get(ENV_VAR, "1")
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"{ENV_VAR}: must be an integer >= 0 (got {raw!r})") from None
    if n < 0:
        raise ValueError(f"{ENV_VAR}: must be an integer >= 0 (got {n})")
    if n == 0:
        return None
    if _applied != n:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n, user_api="blas")
        _applied = n
    return n
