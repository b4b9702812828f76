"""The linear T&D model evaluated for injection changes: T flows, D flows and D squared voltages.

:func:`base_state` returns point + linear increments for other injections,
:func:`activation_response` the increments alone. Both run one numba kernel over structures
built once per model and cached (the LU factors of the reduced susceptance matrix, solved by the
sweeps of :mod:`smartnet_gym.numerics.sparse_lu`; the D trees as one parent array): every env
step evaluates the model twice, and the dozen small sparse products it replaces cost ~0.1 ms a
call (H = 4 on the default 845-bus system: ~0.025 ms now).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numba
import numpy as np

from smartnet_gym.grid.linear import BaseState, LinearTD
from smartnet_gym.grid.operating_point import LinearizationPoint
from smartnet_gym.numerics.sparse_lu import lu_factors, lu_sweeps

__all__ = ["LinearIncrement", "Sensitivity", "activation_response", "base_state", "sensitivity"]


@dataclass(frozen=True)
class LinearIncrement:
    """Linear response to an injection change (same layout as :class:`~smartnet_gym.grid.linear.BaseState`, increments only).

    Arrays carry a leading axis when the injection change did (H operating points).
    """

    t_flow_mw: np.ndarray
    d_p_mw: tuple[np.ndarray, ...]
    d_q_mvar: tuple[np.ndarray, ...]
    d_w_pu2: tuple[np.ndarray, ...]


class Sensitivity:
    """A bus injection change → T flows, D flows and D squared voltages, by one numba kernel.

    Each bus's change lands on its node: a T node, or a D node that passes it on to the T root of
    its tree (D is lossless). T: one solve with the LU factors of the reduced susceptance matrix
    (Δθ at the free nodes, 0 at the fixed ones), then ``Δf = b (Δθ_from − Δθ_to)``. D:
    ΔP = −(subtree sum of Δp), then Δw_j = Δw_parent(j) − 2 (r_j ΔP_j + x_j ΔQ_j) from the tree tops
    down, plus the point's root voltage coupling.
    """

    def __init__(self, lin: LinearTD) -> None:
        n = len(lin.net_bus)
        if n == 0:
            raise ValueError("LinearTD.net_bus is empty; build the model with build_linear_td")
        self.n_bus = n
        dc = lin.dc
        col_of = {int(b): i for i, b in enumerate(lin.net_bus)}
        # T root and top D bus (tree head) of every D position
        d_root, d_top = [], []
        for f in lin.feeders:
            top = np.arange(f.n_bus)
            for k in range(f.n_bus):
                j = k
                while f.parent[j] >= 0:
                    j = f.parent[j]
                top[k] = j
            d_top.append(top)
            d_root.append(f.root_t[top] if f.n_bus else np.zeros(0, np.int64))
        self.d_top = d_top
        self.d_root_all = np.concatenate(d_root) if d_root else np.zeros(0, np.int64)
        self.roots = np.unique(self.d_root_all)
        self.d_root_idx = np.searchsorted(self.roots, self.d_root_all)
        self.offsets = [0]
        for f in lin.feeders:
            self.offsets.append(self.offsets[-1] + f.n_bus)
        self.n_t, self.n_d = dc.n_bus, self.offsets[-1]
        self._areas = [slice(s, e) for s, e in zip(self.offsets[:-1], self.offsets[1:], strict=True)]
        # node of each net bus: T position, or n_t + D position over all areas; -1 outside the model
        cols = np.array([col_of[b] for b in lin.bus_area], dtype=np.int64)
        area = np.array(list(lin.bus_area.values()), dtype=np.int64)
        pos = np.array([lin.bus_pos[b] for b in lin.bus_area], dtype=np.int64)
        self.node_of = np.full(n, -1, dtype=np.int64)
        self.node_of[cols] = pos + np.where(area < 0, 0, self.n_t + np.asarray(self.offsets)[np.maximum(area, 0)])
        # T: LU factors of B_free (Pr B Pc = L U, sorted CSC columns) and the branch ends
        self.free = np.flatnonzero(~dc.fixed)
        self.factors = lu_factors(dc.susceptance_matrix()[self.free][:, self.free].tocsc())
        self.branch = (dc.branch_from.astype(np.int64), dc.branch_to.astype(np.int64),
                       dc.branch_b_mw.astype(np.float64))
        # D forest over all areas: global parents, an order with parents first, tree tops' T roots
        parent = [np.where(f.parent >= 0, f.parent + off, -1)
                  for f, off in zip(lin.feeders, self.offsets[:-1], strict=True)]
        self.parent = np.concatenate(parent).astype(np.int64) if parent else np.zeros(0, np.int64)
        depth = np.zeros(self.n_d, dtype=np.int64)
        for j in range(self.n_d):
            a = self.parent[j]
            while a >= 0:
                depth[j] += 1
                a = self.parent[a]
        self.order = np.argsort(depth, kind="stable").astype(np.int64)
        self.tops = np.flatnonzero(self.parent < 0)
        self.top_t = self.d_root_all[self.tops]
        self.r = np.concatenate([f.r_pu for f in lin.feeders]).astype(np.float64) if lin.feeders else np.zeros(0)
        self.x = np.concatenate([f.x_pu for f in lin.feeders]).astype(np.float64) if lin.feeders else np.zeros(0)
        # increments alone (activation_response): zero base values, the model's root coupling
        zero_d = np.zeros(self.n_d)
        self._zero_base = (np.zeros(n), np.zeros(n), np.zeros(dc.n_branch), zero_d, zero_d, zero_d)
        rc = lin.root_coupling
        self._model_coupling = (
            self._coupling(rc.roots, rc.dw_dp, rc.dw_dq, rc.top_scale, "LinearTD.root_coupling")
            if rc is not None and self.n_d else (False, np.zeros((0, dc.n_bus)), np.zeros((0, dc.n_bus)), zero_d))
        self._points: list[tuple[LinearizationPoint, tuple, tuple]] = []

    def _coupling(self, roots: np.ndarray, dw_dp: np.ndarray, dw_dq: np.ndarray,
                  scales: tuple[np.ndarray, ...], owner: str) -> tuple:
        """Root coupling (roots, d(V²)/dP, d(V²)/dQ, per-area scales) as the kernel reads it;
        ValueError naming ``owner`` if it was computed for another model."""
        out = (True, *(np.ascontiguousarray(a, dtype=np.float64) for a in (dw_dp, dw_dq)),
               np.ascontiguousarray(np.concatenate(scales), dtype=np.float64) if scales else np.zeros(0))
        if (not np.array_equal(roots, self.roots) or out[1].shape != (len(self.roots), self.n_t)
                or out[2].shape != out[1].shape or len(out[3]) != self.n_d):
            raise ValueError(f"{owner} was computed for another model")
        return out

    def _point_arrays(self, point: LinearizationPoint) -> tuple[tuple, tuple]:
        """The point's base values and root coupling as the kernel reads them, checked against the model.

        Per-area arrays are concatenated; the last few points are kept (a point is immutable and
        each serves several calls)."""
        for pt, base, coupling in self._points:
            if pt is point:
                return base, coupling

        def c(a: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(a, dtype=np.float64)

        def cat(parts: tuple[np.ndarray, ...]) -> np.ndarray:
            return c(np.concatenate(parts)) if parts else np.zeros(0)

        base = (c(point.inj_p_mw), c(point.inj_q_mvar), c(point.t_flow_mw), cat(point.d_p_mw),
                cat(point.d_q_mvar), cat(point.d_w_pu2))
        if tuple(len(a) for a in base) != (self.n_bus, self.n_bus, len(self.branch[0]), *(self.n_d,) * 3):
            raise ValueError("the point was taken for another model (sizes of its injections or flows differ)")
        coupling = self._model_coupling
        if point.has_voltage_coupling and len(self.d_root_all):
            coupling = self._coupling(point.root_t, point.root_dw_dp, point.root_dw_dq, point.d_root_scale,
                                      "the point's voltage coupling")
        self._points = [(point, base, coupling), *self._points[:3]]
        return base, coupling

    def apply(self, p: np.ndarray, q: np.ndarray | None, point: LinearizationPoint | None = None,
              around_point: bool = False) -> tuple[np.ndarray, ...]:
        """p, q (H, n_bus) → T flows (H, n_br), P, Q, w (H, Σ n_d); q None: no reactive change.

        ``around_point``: p, q are injections and the result is the point plus the increments
        (:func:`base_state`); else they are changes and the result the increments alone. The feeder
        roots move as the point's own coupling says if it has one, else as the model's
        (``LinearTD.root_coupling``; held where that is None)."""
        base, coupling = self._zero_base, self._model_coupling
        if point is not None and (around_point or point.has_voltage_coupling):
            point_base, coupling = self._point_arrays(point)
            if around_point:
                base = point_base
        return _linear_state(p, p if q is None else q, q is not None, *base, self.node_of, self.n_t,
                             *self.factors, self.free, *self.branch, self.parent, self.order, self.tops,
                             self.top_t, self.r, self.x, *coupling, self.d_root_idx)

    def split(self, arr: np.ndarray) -> tuple[np.ndarray, ...]:
        """Per-area parts of an array over all D positions (last axis)."""
        return tuple([arr[..., s] for s in self._areas])


@numba.njit(cache=True)
def _linear_state(p, q, has_q, p0, q0, t0, dp0, dq0, dw0, node_of, n_t, l_ptr, l_idx, l_val,
                  u_ptr, u_idx, u_val, perm_r, perm_c, free, br_from, br_to, br_b, parent, order, tops,
                  top_t, r, x, coupled, dw_dp, dw_dq, scale, root_idx):
    """Base values (t0, dp0, dq0, dw0) + the linear increments of each row of p − p0, q − q0.

    Node arrays are (H, n); loops over the periods run innermost where the index arithmetic of a
    node or factor entry is shared (tree sweeps, LU), outermost where the rows are contiguous."""
    n_h, n_bus = p.shape
    n_d = len(parent)
    n_br = len(br_from)
    n_r = dw_dp.shape[0]
    n_f = len(free)
    xp = np.zeros((n_h, n_t + n_d))     # injection change per node: T nodes, then D nodes
    xq = np.zeros((n_h, n_t + n_d))
    for h in range(n_h):
        for b in range(n_bus):
            nd = node_of[b]
            if nd >= 0:
                xp[h, nd] += p[h, b] - p0[b]
                if has_q:
                    xq[h, nd] += q[h, b] - q0[b]
    sp_ = xp[:, n_t:]                   # D: summed over the subtree below
    sq = xq[:, n_t:]
    for m in range(n_d - 1, -1, -1):    # children before parents
        j = order[m]
        a = parent[j]
        if a >= 0:
            for h in range(n_h):
                sp_[h, a] += sp_[h, j]
                sq[h, a] += sq[h, j]
    for m in range(len(tops)):          # a tree's whole change reaches T at its root
        j, t = tops[m], top_t[m]
        for h in range(n_h):
            xp[h, t] += sp_[h, j]
            xq[h, t] += sq[h, j]
    # T: B_free Δθ = Δp_free with Pr B Pc = L U: z[perm_r] = Δp, L y = z, U w = y, Δθ = w[perm_c]
    z = np.empty((n_f, n_h))
    for j in range(n_f):
        for h in range(n_h):
            z[perm_r[j], h] = xp[h, free[j]]
    lu_sweeps(z, l_ptr, l_idx, l_val, u_ptr, u_idx, u_val)
    theta = np.zeros((n_h, n_t))        # fixed nodes: Δθ = 0
    for h in range(n_h):
        for i in range(n_f):
            theta[h, free[i]] = z[perm_c[i], h]
    t_out = np.empty((n_h, n_br))
    for h in range(n_h):
        for i in range(n_br):
            b = br_b[i]
            t_out[h, i] = t0[i] + (b * theta[h, br_from[i]] - b * theta[h, br_to[i]])
    w_root = np.zeros((n_h, n_r))       # the roots' Δw from the T injection changes (coupled)
    for h in range(n_h):
        for k in range(n_r):
            acc_p = 0.0
            acc_q = 0.0
            for t in range(n_t):
                acc_p += dw_dp[k, t] * xp[h, t]
                acc_q += dw_dq[k, t] * xq[h, t]
            w_root[h, k] = acc_p + acc_q
    u = np.empty((n_h, n_d))            # Σ_path (r ΔP + x ΔQ): parents before children
    for m in range(n_d):
        j = order[m]
        a = parent[j]
        rj, xj = r[j], x[j]
        for h in range(n_h):
            drop = rj * -sp_[h, j] + xj * -sq[h, j]
            u[h, j] = drop if a < 0 else u[h, a] + drop
    p_out = np.empty((n_h, n_d))
    q_out = np.empty((n_h, n_d))
    w_out = np.empty((n_h, n_d))
    for h in range(n_h):
        for j in range(n_d):
            dw = -2.0 * u[h, j]
            if coupled:
                dw += scale[j] * w_root[h, root_idx[j]]
            p_out[h, j] = dp0[j] + -sp_[h, j]
            q_out[h, j] = dq0[j] + -sq[h, j]
            w_out[h, j] = dw0[j] + dw
    return t_out, p_out, q_out, w_out



_CACHE: dict[int, Sensitivity] = {}


def sensitivity(lin: LinearTD) -> Sensitivity:
    """The :class:`Sensitivity` of ``lin``, built once per model and kept while ``lin`` lives."""
    key = id(lin)
    s = _CACHE.get(key)
    if s is None:
        s = Sensitivity(lin)
        _CACHE[key] = s
        weakref.finalize(lin, _CACHE.pop, key, None)
    return s


def _as_2d(name: str, arr: np.ndarray, n: int) -> tuple[np.ndarray, bool]:
    """``arr`` as a finite (H, n) float array, and whether it was one vector; ValueError otherwise."""
    a = np.asarray(arr, dtype=np.float64)
    one = a.ndim == 1
    a = a.reshape(1, -1) if one else a
    if a.ndim != 2 or a.shape[1] != n:
        raise ValueError(f"{name} must have shape (n_bus,) or (H, n_bus) with n_bus = {n} "
                         f"(net.bus order), got {np.shape(arr)}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    return np.ascontiguousarray(a), one


def activation_response(lin: LinearTD, dp_bus: np.ndarray, dq_bus: np.ndarray | None = None,
                        point: LinearizationPoint | None = None) -> LinearIncrement:
    """Linear change of T flows, D flows and D squared voltages for an injection change.

    :param dp_bus: (n_bus,) or (H, n_bus) active injection change [MW] in net.bus.index order
        (generation / up activation positive).
    :param dq_bus: same shape, reactive injection change [Mvar]; None = 0.
    :param point: with a point that carries voltage coupling, the feeder roots move with the
        T voltages as at that point; without one, as ``lin.root_coupling`` says (the clearing
        programs' model), and where that is None, Δw at a T root is 0.
    """
    s = sensitivity(lin)
    dp, one = _as_2d("dp_bus", dp_bus, s.n_bus)
    dq = _as_2d("dq_bus", dq_bus, s.n_bus)[0] if dq_bus is not None else None
    if dq is not None and dq.shape != dp.shape:
        raise ValueError(f"dq_bus has shape {dq.shape}, dp_bus {dp.shape}")
    t, p, q, w = s.apply(dp, dq, point)
    if one:
        t, p, q, w = t[0], p[0], q[0], w[0]
    return LinearIncrement(t_flow_mw=t, d_p_mw=s.split(p), d_q_mvar=s.split(q), d_w_pu2=s.split(w))


def base_state(lin: LinearTD, point: LinearizationPoint, inj_p_mw: np.ndarray,
               inj_q_mvar: np.ndarray | None = None) -> BaseState:
    """Flows and squared voltages at H operating points: point + linear increments.

    :param inj_p_mw: (H, n_bus) active injections [MW] (net.bus.index order, :func:`~smartnet_gym.grid.bus_vectors.bus_vector`).
    :param inj_q_mvar: (H, n_bus) reactive injections [Mvar]; None = those of the point.
    """
    s = sensitivity(lin)
    p, _ = _as_2d("inj_p_mw", inj_p_mw, s.n_bus)
    q = None
    if inj_q_mvar is not None:
        q, _ = _as_2d("inj_q_mvar", inj_q_mvar, s.n_bus)
        if q.shape != p.shape:
            raise ValueError(f"inj_q_mvar has shape {q.shape}, inj_p_mw {p.shape}")
    t, dp, dq, dw = s.apply(p, q, point, around_point=True)
    return BaseState(t_flow_mw=t, d_p_mw=s.split(dp), d_q_mvar=s.split(dq), d_w_pu2=s.split(dw))
