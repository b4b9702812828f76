"""FastLU (SuperLU's factors, numba sweeps) solves A x = b and Aᵀ X = B: checked by the residual, on matrices
that need row pivoting and on the network block of a screened clearing program."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from random_instances import random_instance, random_linear_td

from smartnet_gym.config import MarketConfig
from smartnet_gym.market.schemes import make_scheme
from smartnet_gym.market.screening import ScreenedBackend
from smartnet_gym.market.sparse_lu import FastLU


@pytest.mark.parametrize("seed", range(10))
def test_random_sparse_systems(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 300))
    a = sp.random(n, n, density=min(1.0, 4.0 / n), random_state=seed, format="csc")
    perm = rng.permutation(n)
    a = a + sp.csc_matrix((rng.uniform(1.0, 2.0, n), (perm, np.arange(n))), shape=(n, n))  # zero diagonals: pivoting
    b = rng.normal(size=n)
    lu = FastLU(a)
    x = lu.solve(b)
    assert np.abs(a @ x - b).max() <= 1e-9 * (1.0 + np.abs(b).max())
    bb = rng.normal(size=(n, 3))
    xt = lu.solve_t(bb)
    assert np.abs(a.T @ xt - bb).max() <= 1e-9 * (1.0 + np.abs(bb).max())


def test_network_block_of_a_clearing_program():
    rng = np.random.default_rng(3)
    lin = random_linear_td(rng)
    out = make_scheme("CS_D", lin, MarketConfig(qp_epsilon=0.0, backend="highs")).clear(
        random_instance(rng, lin, stress=0.9), evaluate=False)
    backend = next(r.program.backend for r in out.records
                   if r.program is not None and isinstance(r.program.backend, ScreenedBackend))
    a = backend.m.a.tocsr()[backend.node][:, backend.net_cols]
    b = rng.normal(size=a.shape[0])
    x = backend.lu.solve(b)
    assert np.abs(a @ x - b).max() <= 1e-9 * (1.0 + np.abs(b).max())
