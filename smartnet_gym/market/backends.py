"""``make_backend``: a solver backend by name, over the plain HiGHS/CVXPY backends and the screened fast path."""

from __future__ import annotations

from smartnet_gym.market.program import ProgramMatrices
from smartnet_gym.market.screening import ScreenedBackend, screenable
from smartnet_gym.market.solvers import Backend, CvxpyBackend, HighsBackend


def make_backend(m: ProgramMatrices, name: str) -> Backend:
    """Backend by name: 'highs' (fast path: network limits screened, see ``screening.py``),
    'highs-full' (HiGHS on the explicit program) or 'cvxpy' (the CVXPY+OSQP reference)."""
    if name == "highs":
        return ScreenedBackend(m) if screenable(m) else HighsBackend(m)
    if name == "highs-full":
        return HighsBackend(m)
    if name == "cvxpy":
        return CvxpyBackend(m)
    raise ValueError(f"unknown backend {name!r}; allowed: 'highs', 'highs-full', 'cvxpy'")
