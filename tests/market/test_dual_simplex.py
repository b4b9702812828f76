"""The dense bounded dual simplex against SciPy's HiGHS on random LPs of the fast path's shape.

Few rows (equalities and ranges), many boxed columns, penalised slack columns with no upper
bound; costs re-drawn between solves (hot start). Checked: the optimal cost (1e-7 relative),
an optimal primal–dual pair (bounds, reduced-cost signs, complementary row duals), that rows
added and dropped again leave the same LP, and that infeasible or unbounded LPs fail with a
status instead of an answer.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from smartnet_gym.market.dual_simplex import DualSimplex, SimplexResult


def random_lp(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A feasible LP: boxed columns, and a +/− slack column per row at a high price."""
    m, n = int(rng.integers(1, 12)), int(rng.integers(5, 200))
    a = rng.normal(size=(m, n)) * (rng.random((m, n)) < 0.5)
    slack = np.kron(np.eye(m), [1.0, -1.0])
    a = np.hstack([a, slack])
    c = np.r_[rng.normal(size=n) * 10, np.full(2 * m, 1e3)]
    lb, ub = np.zeros(n + 2 * m), np.r_[rng.random(n) * 5, np.full(2 * m, np.inf)]
    lo = rng.normal(size=m) * 3
    hi = lo + rng.random(m) * 4 * (rng.random(m) < 0.6)       # ~40 % equalities
    return a, c, lb, ub, lo, hi


def reference(a, c, lb, ub, lo, hi) -> float:
    res = linprog(c, A_ub=np.vstack([a, -a]), b_ub=np.r_[hi, -lo], bounds=list(zip(lb, ub)), method="highs")
    assert res.status == 0
    return float(res.fun)


def assert_optimal_pair(a, c, lb, ub, lo, hi, res: SimplexResult) -> None:
    x, y = res.x, res.row_dual
    ax = a @ x
    assert (x >= lb - 1e-9).all() and (x <= ub + 1e-9).all()
    assert (ax >= lo - 1e-8).all() and (ax <= hi + 1e-8).all()
    d = c - a.T @ y
    tol = 1e-7 * (1.0 + np.abs(c).max())
    inside = (x > lb + 1e-9) & (x < ub - 1e-9)
    assert np.abs(d[inside]).max(initial=0.0) < tol
    assert (d[(x <= lb + 1e-9) & (ub > lb)] > -tol).all() and (d[(x >= ub - 1e-9) & (ub > lb)] < tol).all()
    slack_row = (ax > lo + 1e-8) & (ax < hi - 1e-8)
    assert np.abs(y[slack_row]).max(initial=0.0) < tol
    assert (y[(ax <= lo + 1e-8) & (lo < hi)] > -tol).all() and (y[(ax >= hi - 1e-8) & (lo < hi)] < tol).all()
    assert abs(c @ x - res.objective) <= 1e-9 * (1.0 + abs(res.objective))


@pytest.mark.parametrize("seed", range(60))
def test_cost_and_optimality_against_highs_with_hot_starts(seed):
    rng = np.random.default_rng(seed)
    a, c, lb, ub, lo, hi = random_lp(rng)
    lp = DualSimplex(a)
    for _ in range(4):                                        # same LP, new costs and bounds
        cc = c * np.where(c < 1e3, 1.0 + 0.2 * rng.normal(size=len(c)), 1.0)
        uu = np.where(np.isfinite(ub), ub * rng.uniform(0.5, 1.5, len(ub)), np.inf)
        res = lp.solve(cc, lb, uu, lo, hi)
        assert res.ok, res.status
        ref = reference(a, cc, lb, uu, lo, hi)
        assert abs(res.objective - ref) <= 1e-7 * (1.0 + abs(ref))
        assert_optimal_pair(a, cc, lb, uu, lo, hi, res)


@pytest.mark.parametrize("seed", range(20))
def test_rows_added_then_dropped_leave_the_same_lp(seed):
    rng = np.random.default_rng(100 + seed)
    a, c, lb, ub, lo, hi = random_lp(rng)
    m, n = a.shape
    lp = DualSimplex(a)
    base = lp.solve(c, lb, ub, lo, hi)
    extra = rng.normal(size=(3, n))
    rows = np.hstack([extra, np.zeros((3, 2))])               # with a slack pair for the first row
    rows[0, n:] = [1.0, -1.0]
    lp.extend(rows, 2)
    v = extra @ base.x
    c2, lb2, ub2 = np.r_[c, 1e3, 1e3], np.r_[lb, 0.0, 0.0], np.r_[ub, np.inf, np.inf]
    # row 0 cuts the old optimum off (its slack pair keeps it feasible), rows 1–2 leave a band around it
    lo2 = np.r_[lo, v[0] - 1.0 - rng.random(), v[1:] - 1.0]
    hi2 = np.r_[hi, v[0] - 0.5, v[1:] + 1.0]
    tight = lp.solve(c2, lb2, ub2, lo2, hi2)
    assert tight.ok
    ref = reference(np.vstack([np.hstack([a, np.zeros((m, 2))]), rows]), c2, lb2, ub2, lo2, hi2)
    assert abs(tight.objective - ref) <= 1e-7 * (1.0 + abs(ref))
    # relax the new rows so their logicals turn basic, then drop them and their slack columns
    loose = lp.solve(c2, lb2, ub2, np.r_[lo, v - 1e3], np.r_[hi, v + 1e3])
    assert loose.ok and abs(loose.objective - base.objective) <= 1e-7 * (1.0 + abs(base.objective))
    assert lp.drop(np.arange(m, m + 3), np.array([n, n + 1]))
    again = lp.solve(c, lb, ub, lo, hi)
    assert again.ok and again.iterations == 0                 # the kept basis is still optimal
    np.testing.assert_allclose(again.x, base.x, atol=1e-9)


@pytest.mark.parametrize("seed", range(10))
def test_sparse_views_follow_every_change_of_the_lp(seed):
    """Rows and columns added (kept incrementally), inserted or dropped: the kernel's CSR and CSC
    arrays stay those of the dense matrix, and solves from the changed LP match HiGHS."""
    rng = np.random.default_rng(300 + seed)
    a, c, lb, ub, lo, hi = random_lp(rng)
    m, n = a.shape
    lp = DualSimplex(a)
    lp.solve(c, lb, ub, lo, hi)

    def assert_views():
        (ptr, idx, val), (cptr, cidx, cval) = lp.sparse()
        dense = np.zeros(lp.shape)
        dense[np.repeat(np.arange(lp.shape[0]), np.diff(ptr)), idx] = val
        np.testing.assert_array_equal(dense, lp.a)
        dense_t = np.zeros(lp.shape[::-1])
        dense_t[np.repeat(np.arange(lp.shape[1]), np.diff(cptr)), cidx] = cval
        np.testing.assert_array_equal(dense_t.T, lp.a)

    rows = np.hstack([rng.normal(size=(2, n)) * (rng.random((2, n)) < 0.5), np.kron(np.eye(2), [1.0, -1.0])])
    lp.extend(rows, 4)
    assert_views()
    cols = rng.normal(size=(m + 2, 3)) * (rng.random((m + 2, 3)) < 0.5)
    lp.insert(n, cols)
    assert_views()
    full = np.vstack([np.hstack([a[:, :n], cols[:m], a[:, n:], np.zeros((m, 4))]),
                      np.hstack([rows[:, :n], cols[m:], rows[:, n:]])])
    np.testing.assert_array_equal(full, lp.a)
    c2 = np.r_[c[:n], rng.normal(size=3) * 10, c[n:], np.full(4, 1e3)]
    lb2, ub2 = np.r_[lb[:n], np.zeros(3), lb[n:], np.zeros(4)], np.r_[ub[:n], np.full(3, 2.0), ub[n:], np.full(4, np.inf)]
    lo2, hi2 = np.r_[lo, -1.0, -1.0], np.r_[hi, 1.0, 1.0]
    res = lp.solve(c2, lb2, ub2, lo2, hi2)
    assert res.ok
    ref = reference(full, c2, lb2, ub2, lo2, hi2)
    assert abs(res.objective - ref) <= 1e-7 * (1.0 + abs(ref))


def test_a_row_with_a_nonbasic_logical_is_not_dropped():
    a = np.array([[1.0, 1.0]])
    lp = DualSimplex(a)
    res = lp.solve(np.array([1.0, 2.0]), np.zeros(2), np.full(2, 5.0), np.array([3.0]), np.array([3.0]))
    assert res.ok and res.objective == pytest.approx(3.0)
    assert not lp.drop(np.array([0]), np.zeros(0, int))
    assert lp.shape == (1, 2)


def test_infeasible_and_unbounded_lps_fail_with_a_status():
    a = np.array([[1.0, 1.0]])
    lp = DualSimplex(a)
    res = lp.solve(np.ones(2), np.zeros(2), np.ones(2), np.array([5.0]), np.array([5.0]))   # x1 + x2 = 5 > 2
    assert not res.ok and "infeasible" in res.status
    res = lp.solve(np.array([-1.0, 1.0]), np.zeros(2), np.array([np.inf, 1.0]), np.array([-np.inf]), np.array([np.inf]))
    assert not res.ok and "infinite bound" in res.status


def test_a_row_closed_only_by_every_column_at_its_bound_is_feasible():
    """0.1 + 0.7 < 0.8 in floating point: a row short by a rounding error is not an infeasible LP."""
    lp = DualSimplex(np.array([[1.0, 1.0]]))
    rhs = np.array([0.8])
    res = lp.solve(np.array([1.0, 2.0]), np.zeros(2), np.array([0.1, 0.7]), rhs, rhs)
    assert res.ok, res.status
    np.testing.assert_allclose(res.x, [0.1, 0.7])
