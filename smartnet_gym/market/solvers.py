"""Backends that solve a :class:`ProgramMatrices` built once: HiGHS (fast path) and CVXPY+OSQP.

Both return row duals in one convention, ``dual[i] = ∂ optimal objective / ∂ rhs_i`` (EUR per
MW or per pu² of the row), so that prices do not depend on the backend. A backend never
raises on a failed solve: it returns a status, and the caller prices the failure.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from smartnet_gym.market.program import ProgramMatrices

OK_STATUSES = ("optimal",)


@dataclass(frozen=True)
class Solution:
    """Raw solver answer in program coordinates."""

    status: str               # "optimal" | "optimal_inaccurate" | "failed: <reason>"
    objective_eur: float      # cᵀz + ½ zᵀQz at the returned point
    z: np.ndarray
    row_dual: np.ndarray      # ∂ objective / ∂ row rhs
    solve_ms: float

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES


class Backend(Protocol):
    def solve(self, c: np.ndarray, lb: np.ndarray, ub: np.ndarray, lo: np.ndarray,
              hi: np.ndarray) -> Solution: ...

    def evaluate(self, c: np.ndarray, lb: np.ndarray, ub: np.ndarray, lo: np.ndarray,
                 hi: np.ndarray) -> Solution:
        """The program with its bid and buy columns fixed (``lb == ub``): a solve, unless the
        backend knows a cheaper way (the screened backend needs no solver)."""
        ...


@contextlib.contextmanager
def _silenced_stdout():
    """HiGHS prints a banner to fd 1 when constructed; keep stdout clean for --json output."""
    try:
        fd = os.dup(1)
    except OSError:
        yield
        return
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        try:
            yield
        finally:
            os.dup2(fd, 1)
            os.close(fd)


def new_highs():
    """A silent HiGHS instance with tight tolerances and the safety limits every clearing uses."""
    import highspy

    with _silenced_stdout():
        h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("primal_feasibility_tolerance", 1e-9)
    h.setOptionValue("dual_feasibility_tolerance", 1e-9)
    # safety nets: a clearing must never hang an episode; a stopped solve is a failed status
    # (HiGHS's QP solver was seen cycling without end on a few random instances)
    h.setOptionValue("time_limit", 30.0)
    h.setOptionValue("qp_iteration_limit", 20_000)
    return h


def highs_lp(a: sp.spmatrix, cost: np.ndarray, col_lb: np.ndarray, col_ub: np.ndarray,
             row_lo: np.ndarray, row_hi: np.ndarray):
    """A ``highspy.HighsLp`` of ``min cost·z  s.t.  row_lo ≤ a z ≤ row_hi, col_lb ≤ z ≤ col_ub``."""
    import highspy

    a = sp.csc_matrix(a)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = a.shape[1], a.shape[0]
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = cost, col_lb, col_ub
    lp.row_lower_, lp.row_upper_ = row_lo, row_hi
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = a.indptr.astype(np.int32)
    lp.a_matrix_.index_ = a.indices.astype(np.int32)
    lp.a_matrix_.value_ = a.data
    return lp


class SentValues:
    """The costs and bounds HiGHS holds, so that a solve sends only the entries that changed.

    (``highspy.kHighsInf`` is ``inf``: bounds go to HiGHS as they are.)
    """

    def __init__(self) -> None:
        self._last: dict[str, tuple[np.ndarray, ...]] = {}

    def forget(self) -> None:
        """After a model change or a failed solve: the next :meth:`send` sends everything."""
        self._last.clear()

    def extend(self, key: str, *arrays: np.ndarray) -> None:
        """Rows or columns added to the model with these values: they count as sent."""
        last = self._last.get(key)
        if last is not None:
            self._last[key] = tuple(np.r_[a, b] for a, b in zip(last, arrays, strict=True))

    def _changed(self, key: str, *arrays: np.ndarray) -> np.ndarray:
        """Indices where any of ``arrays`` differs from what was sent under ``key``."""
        last = self._last.get(key)
        self._last[key] = tuple(a.copy() for a in arrays)
        if last is None:
            return np.arange(len(arrays[0]), dtype=np.int32)
        diff = np.zeros(len(arrays[0]), bool)
        for a, b in zip(arrays, last, strict=True):
            diff |= a != b
        return np.flatnonzero(diff).astype(np.int32)

    def send(self, h, c: np.ndarray, lb: np.ndarray, ub: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        """Column costs and bounds and row bounds of one solve into the HiGHS instance ``h``."""
        k = self._changed("cost", c)
        if len(k):
            h.changeColsCost(len(k), k, c[k])
        k = self._changed("cols", lb, ub)
        if len(k):
            h.changeColsBounds(len(k), k, lb[k], ub[k])
        k = self._changed("rows", lo, hi)
        if len(k):
            h.changeRowsBounds(len(k), k, lo[k], hi[k])


def _objective(m: ProgramMatrices, c: np.ndarray, z: np.ndarray) -> float:
    return float(c @ z + 0.5 * (m.quad * z * z).sum())


class HighsBackend:
    """HiGHS with the model passed once; each solve only changes costs and bounds (hot start).

    The LP (ε = 0) uses dual simplex from the previous basis; with ε > 0 HiGHS's QP solver runs.
    """

    def __init__(self, m: ProgramMatrices):
        import highspy

        self.m = m
        self.h = h = new_highs()
        model = highspy.HighsModel()
        model.lp_ = highs_lp(m.a, m.cost, m.col_lb, m.col_ub, m.row_lo, m.row_hi)
        self.qp = bool((m.quad > 0).any())
        if self.qp:
            q = sp.diags(m.quad).tocsc()
            model.hessian_.dim_ = m.n_col
            model.hessian_.format_ = highspy.HessianFormat.kTriangular
            model.hessian_.start_ = q.indptr.astype(np.int32)
            model.hessian_.index_ = q.indices.astype(np.int32)
            model.hessian_.value_ = q.data
        h.passModel(model)
        self._optimal = highspy.HighsModelStatus.kOptimal
        self._fallback: CvxpyBackend | None = None
        self.sent = SentValues()

    def write_mps(self, path: str) -> None:
        """Write the program currently loaded (with the last solve's values) as MPS."""
        self.h.writeModel(path)

    def solve(self, c, lb, ub, lo, hi) -> Solution:
        h = self.h
        t0 = time.perf_counter()
        self.sent.send(h, c, lb, ub, lo, hi)
        h.run()
        status = h.getModelStatus()
        ms = (time.perf_counter() - t0) * 1e3
        if status != self._optimal:
            h.clearSolver()  # a failed basis must not poison the next hot start
            self.sent.forget()
            if self.qp:      # HiGHS's QP solver fails on a few % of these programs: use the reference
                if self._fallback is None:
                    self._fallback = CvxpyBackend(self.m)
                sol = self._fallback.solve(c, lb, ub, lo, hi)
                return Solution(sol.status, sol.objective_eur, sol.z, sol.row_dual, ms + sol.solve_ms)
            return Solution(f"failed: {h.modelStatusToString(status)}", float("nan"),
                            np.zeros(self.m.n_col), np.zeros(self.m.n_row), ms)
        sol = h.getSolution()
        z = np.asarray(sol.col_value)
        dual = np.asarray(sol.row_dual) if self.m.n_row else np.zeros(0)
        # HiGHS's own objective also covers columns added after the build (Benders η)
        return Solution("optimal", float(h.getObjectiveValue()), z, dual, ms)

    evaluate = solve   # fixed bid columns: the same solve


class CvxpyBackend:
    """The readable reference: a CVXPY problem with Parameters (DPP), compiled once, solved by OSQP.

    OSQP is tuned for these LP-like programs: CVXPY's defaults (eps 1e-5, 10k iterations, no
    polishing on warm starts) stop early and can be several % off, so we ask
    for tight tolerances, many iterations and polishing, which makes the active set exact, and
    accept only status "optimal".
    """

    # Attempts in order. Polishing (an exact solve on the guessed active set) is what makes the
    # answer exact, so a loose ADMM tolerance that lets polishing start early works best on these
    # LP-like programs; a tighter run follows, and Clarabel (interior point, same CVXPY problem)
    # is the last resort. The solver that produced the answer is kept in ``last_solver``.
    # Iterations are capped (an iteration costs ~1 ms at 1,000 bids on the default system):
    # when OSQP has not polished by then it will not, and Clarabel takes 0.3–0.5 s.
    OSQP_ATTEMPTS = (
        ("OSQP", dict(eps_abs=1e-3, eps_rel=1e-3, max_iter=4_000, polishing=True, polish_refine_iter=10)),
        ("OSQP", dict(eps_abs=1e-5, eps_rel=1e-5, max_iter=4_000, polishing=True, polish_refine_iter=20)),
        ("CLARABEL", dict()),
    )

    def __init__(self, m: ProgramMatrices, solver: str = "OSQP"):
        import cvxpy as cp

        self.m = m
        self.cp = cp
        self.solver = solver
        self.last_solver = solver
        n = m.n_col
        self.eq_rows = np.flatnonzero(~m.row_range)
        self.in_rows = np.flatnonzero(m.row_range)
        self.z = cp.Variable(n, name="z")
        self.c = cp.Parameter(n, name="cost_eur")
        # bounds as parameters: finite lower bounds (x, y, slacks) and finite upper bounds (x, y)
        self.lb_cols = m.bounded
        self.ub_cols = np.r_[np.arange(m.x.start, m.x.stop), np.arange(m.y.start, m.y.stop)]
        self.lb = cp.Parameter(len(self.lb_cols), name="lower_bound")
        self.ub = cp.Parameter(len(self.ub_cols), name="upper_bound")
        self.b_eq = cp.Parameter(len(self.eq_rows), name="rhs_eq")
        self.b_lo = cp.Parameter(len(self.in_rows), name="rhs_lo")
        self.b_hi = cp.Parameter(len(self.in_rows), name="rhs_hi")
        a = m.a.tocsr()
        cons = []
        if len(self.eq_rows):
            self.c_eq = a[self.eq_rows] @ self.z == self.b_eq
            cons.append(self.c_eq)
        if len(self.in_rows):
            a_in = a[self.in_rows]
            self.c_lo = a_in @ self.z >= self.b_lo
            self.c_hi = a_in @ self.z <= self.b_hi
            cons += [self.c_lo, self.c_hi]
        cons += [self.z[self.lb_cols] >= self.lb, self.z[self.ub_cols] <= self.ub]
        obj = self.c @ self.z
        qidx = np.flatnonzero(m.quad > 0)
        if len(qidx):
            obj = obj + 0.5 * cp.sum(cp.multiply(m.quad[qidx], cp.square(self.z[qidx])))
        self.prob = cp.Problem(cp.Minimize(obj), cons)
        assert self.prob.is_dpp(), "clearing program must be DPP to be compiled once"

    def solve(self, c, lb, ub, lo, hi) -> Solution:
        m = self.m
        self.c.value = c
        self.lb.value = lb[self.lb_cols]
        self.ub.value = np.maximum(ub[self.ub_cols], lb[self.ub_cols])
        if len(self.eq_rows):
            self.b_eq.value = lo[self.eq_rows]
        if len(self.in_rows):
            self.b_lo.value = lo[self.in_rows]
            self.b_hi.value = hi[self.in_rows]
        t0 = time.perf_counter()
        status = "failed: not run"
        attempts = self.OSQP_ATTEMPTS if self.solver == "OSQP" else ((self.solver, {}),)
        for solver, kwargs in attempts:
            self.last_solver = solver
            try:
                with warnings.catch_warnings():  # "may be inaccurate" is read from the status
                    warnings.simplefilter("ignore")
                    self.prob.solve(solver=solver, warm_start=True, **kwargs)
                status = self.prob.status
            except Exception as e:  # noqa: BLE001 - solver errors become a status, never a crash
                status = f"failed: {type(e).__name__}: {e}"
                continue
            if status == "optimal" and solver == "OSQP":
                info = getattr(self.prob.solver_stats.extra_stats, "info", None)
                gap = abs(getattr(info, "duality_gap", 0.0)) / max(1.0, abs(getattr(info, "obj_val", 1.0)))
                if getattr(info, "status_polish", 1) != 1 and gap > 1e-6:
                    status = "optimal_inaccurate"  # converged to eps, not polished, gap too wide
            if status == "optimal":
                break
        ms = (time.perf_counter() - t0) * 1e3
        if status != "optimal" or self.z.value is None:
            z = np.zeros(m.n_col) if self.z.value is None else np.asarray(self.z.value)
            st = status if status.startswith("failed") or status == "optimal_inaccurate" else f"failed: {status}"
            return Solution(st, float("nan"), z, np.zeros(m.n_row), ms)
        z = np.asarray(self.z.value)
        dual = np.zeros(m.n_row)
        # CVXPY: Lagrangian f + νᵀ(Az − b) for ==, λ ≥ 0 for ≥/≤ ⇒ ∂f*/∂b = −ν (==), +λ_lo, −λ_hi
        if len(self.eq_rows):
            dual[self.eq_rows] = -np.asarray(self.c_eq.dual_value)
        if len(self.in_rows):
            dual[self.in_rows] = np.asarray(self.c_lo.dual_value) - np.asarray(self.c_hi.dual_value)
        return Solution("optimal", _objective(m, c, z), z, dual, ms)

    evaluate = solve   # fixed bid columns: the same solve
