"""FastLU (SuperLU's factors, numba sweeps) solves A x = b and Aᵀ X = B: checked by the residual, on matrices
that need row pivoting, on H copies of one block (factorised once) and on the network block of a screened
clearing program (which is such copies, one per period)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from random_instances import random_instance, random_linear_td

from smartnet_gym.config import MarketConfig
from smartnet_gym.market.schemes import make_scheme
from smartnet_gym.market.screening import ScreenedBackend
from smartnet_gym.numerics.sparse_lu import FastLU, period_blocks


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


def _pivoting_block(rng, n):
    a = sp.random(n, n, density=min(1.0, 4.0 / n), random_state=int(rng.integers(1 << 30)), format="csr")
    return a + sp.csr_matrix((rng.uniform(1.0, 2.0, n), (rng.permutation(n), np.arange(n))), shape=(n, n))


@pytest.mark.parametrize("seed", range(6))
def test_copies_of_one_block_are_found_and_solved(seed):
    rng = np.random.default_rng(50 + seed)
    h, nb = int(rng.integers(2, 5)), int(rng.integers(2, 80))
    block = _pivoting_block(rng, nb)
    # the copies interleaved over rows and columns (row k of copy t at position π(k)·H + t), as
    # node-major program blocks are; the order within a copy is the same for every copy
    rp = (rng.permutation(nb)[None, :] * h + np.arange(h)[:, None]).reshape(-1)
    cp = (rng.permutation(nb)[None, :] * h + np.arange(h)[:, None]).reshape(-1)
    a = sp.lil_matrix((h * nb, h * nb))
    a[np.ix_(rp, cp)] = sp.block_diag([block] * h).toarray()
    col_period = np.repeat(np.arange(h), nb)[np.argsort(cp)]
    blocks = period_blocks(a, col_period)
    assert blocks is not None and blocks[0].shape == (h, nb)
    lu = FastLU(a, blocks)
    b = rng.normal(size=h * nb)
    assert np.abs(a @ lu.solve(b) - b).max() <= 1e-9 * (1.0 + np.abs(b).max())
    bb = rng.normal(size=(h * nb, 2))
    assert np.abs(a.T @ lu.solve_t(bb) - bb).max() <= 1e-9 * (1.0 + np.abs(bb).max())
    other = a.tolil()                                              # one copy differs: not H copies
    i, j = a.nonzero()
    other[i[0], j[0]] = a[i[0], j[0]] + 1.0
    assert period_blocks(other, col_period) is None
    assert period_blocks(a, np.zeros(h * nb, int)) is None           # one period


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
    assert backend.lu.factors[8].shape[0] == backend.m.horizon      # one factorised copy per period
