"""AC power flow on pandapower's cached internal case: the per-step fast path of the physical layer.

A full ``runpp`` stays the source of truth; :class:`FastAC` is built right after one and keeps its
internal case (``net._ppc["internal"]``: Ybus, Yf, Yt, branch ends, ref/pv/pq buses, baseMVA, Sbus,
V) and pandapower's element → internal bus/branch lookups. A step then only changes load and sgen
set-points, so the step's Sbus is the cached one plus the set-point changes mapped onto internal
buses (in-service elements times their ``scaling``; buses fused by closed switches share one
internal bus, out-of-service buses drop out). Everything else that injects (external grids,
voltage-controlled gens, storage, shunts and equivalents) is as in the cached run, so it is
already in that Sbus. A Newton–Raphson in polar form, warm-started from the previous solution,
solves it with the Jacobian assembled from fixed sparsity index maps and one ``splu`` per
iteration that needs one (chord steps on the last Jacobian factored otherwise) — no pandas,
no pandapower call. The results come out as the
:class:`~smartnet_gym.grid.operating_point.LinearizationPoint` that ``point_from_net(…,
voltage_coupling=False)`` reads after a ``runpp`` (same flows, voltages and injections).

It covers nets with constant-power loads, lines and 2-winding trafos, and without SVC/TCSC/SSC/VSC
elements, DC buses, distributed slack or enforced Q limits; it raises ``ValueError`` otherwise.
A tap move changes only the moved trafos' branch admittances: :class:`TapTable` holds them for
every tap position (computed once by pandapower's own trafo model and ``branch_vectors``), and
:meth:`FastAC.set_taps` adds the differences to the cached Ybus and branch-end rows in place.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from pandapower.build_branch import _calc_branch_values_from_trafo_df
from pandapower.pypower import idx_brch
from pandapower.pypower.makeYbus import branch_vectors

from smartnet_gym.grid.bus_vectors import bus_aggregation, bus_injections
from smartnet_gym.grid.linear import LinearTD
from smartnet_gym.grid.operating_point import LinearizationPoint
from smartnet_gym.grid.point_from_ac import make_point, point_reader

if TYPE_CHECKING:
    from pandapower.auxiliary import pandapowerNet

__all__ = ["FastAC", "TapTable"]

_F_BUS, _T_BUS = 0, 1          # pypower branch columns
_CHORD_RATE = 0.1              # refactor the Jacobian when a step shrinks the mismatch less than this
_CHORD_STEPS = 3               # steps in all, per allowed Newton step


def _check_supported(net: pandapowerNet, it: dict) -> None:
    """Raise ValueError if the cached case holds something this solver does not model."""
    for key in ("svc", "tcsc", "ssc", "vsc"):
        if len(it.get(key, ())):
            raise ValueError(f"FastAC does not model {key} elements; use plain pandapower")
    if len(net._ppc.get("bus_dc", ())):
        raise ValueError("FastAC does not model DC buses; use plain pandapower")
    opt = net._options
    for flag in ("distributed_slack", "enforce_q_lims", "tdpf"):
        if opt.get(flag):
            raise ValueError(f"FastAC does not support the runpp option {flag}; use plain pandapower")
    load = net.load
    on = load["in_service"].to_numpy(bool)
    for col in (c for c in load.columns if c.startswith("const_") and c.endswith("_percent")):
        if np.any(load[col].to_numpy(float)[on] != 0):
            raise ValueError(f"FastAC needs constant-power loads (load.{col} is set); use plain pandapower")


def _slots(m: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Positions in ``m.data`` of the stored entries (rows[i], cols[i]); ValueError if one is not stored once."""
    out = np.empty(len(rows), dtype=np.int64)
    for i, (r, c) in enumerate(zip(rows, cols, strict=True)):
        hit = np.flatnonzero(m.indices[m.indptr[r]:m.indptr[r + 1]] == c)
        if len(hit) != 1:
            raise ValueError(f"entry ({r}, {c}) is not stored once in the sparse matrix")
        out[i] = m.indptr[r] + hit[0]
    return out


class TapTable:
    """Branch admittances (Yff, Yft, Ytf, Ytt) of each tapped in-service 2-winding trafo at each integer tap position.

    Built after a ``runpp`` with pandapower's own trafo parameters (tap side, step, neutral, changer
    type, trafo model, dependency tables) and pypower's ``branch_vectors``, so a tap move needs
    neither pandas nor pandapower. Rows are trafo table positions; positions span tap_min..tap_max.
    """

    def __init__(self, net: pandapowerNet):
        tr = net.trafo
        lo = np.ceil(tr["tap_min"].to_numpy(float))
        hi = np.floor(tr["tap_max"].to_numpy(float))
        ok = (tr["in_service"].to_numpy(bool) & np.isfinite(tr["tap_pos"].to_numpy(float))
              & np.isfinite(tr["tap_step_percent"].to_numpy(float)) & np.isfinite(lo) & np.isfinite(hi) & (hi >= lo))
        self.rows = np.flatnonzero(ok)
        self.lo = lo[self.rows]
        self.n_pos = (hi[self.rows] - self.lo + 1).astype(np.int64)
        self.start = np.r_[0, np.cumsum(self.n_pos)[:-1]].astype(np.int64)
        rep = np.repeat(self.rows, self.n_pos)
        df = tr.iloc[rep].reset_index(drop=True)
        df["tap_pos"] = np.repeat(self.lo, self.n_pos) + (np.arange(len(rep)) - np.repeat(self.start, self.n_pos))
        f0 = net._pd2ppc_lookups["branch"]["trafo"][0]
        self.ppc_row = f0 + self.rows
        br = np.array(net._ppc["branch"][f0 + rep], dtype=complex)
        cols = (idx_brch.BR_R, idx_brch.BR_X, idx_brch.BR_G, idx_brch.BR_B, idx_brch.BR_G_ASYM,
                idx_brch.BR_B_ASYM, idx_brch.TAP, idx_brch.SHIFT)
        if len(rep):
            for col, val in zip(cols, _calc_branch_values_from_trafo_df(net, net._ppc, df), strict=True):
                br[:, col] = val
        ytt, yff, yft, ytf = branch_vectors(br, len(br))
        self.y = np.column_stack([yff, yft, ytf, ytt])

    def index(self, k: np.ndarray, tap_pos: np.ndarray) -> np.ndarray:
        """Rows of ``y`` for table trafos ``k`` at ``tap_pos``; -1 where the position is not in the table."""
        off = tap_pos - self.lo[k]
        ok = (off == np.rint(off)) & (off >= 0) & (off < self.n_pos[k])
        return np.where(ok, self.start[k] + np.where(ok, off, 0).astype(np.int64), -1)


class FastAC:
    """Warm-started Newton–Raphson on the internal case of the last full ``runpp`` of ``net``.

    ``load_rows``/``sgen_rows``/``flex_rows`` are the table positions the physical layer writes
    (load p and q, sgen p, unit sgen p); their values in ``net`` are those of the cached run.
    ``taps`` (built on the same net) lets :meth:`set_taps` move its trafos without a ``runpp``;
    ``tap_pos`` are the trafo tap positions of the cached run (default: those in ``net``).
    """

    def __init__(self, net: pandapowerNet, lin: LinearTD, load_rows: np.ndarray, sgen_rows: np.ndarray,
                 flex_rows: np.ndarray, taps: TapTable | None = None, tap_pos: np.ndarray | None = None):
        it = net._ppc["internal"]
        _check_supported(net, it)
        if np.intersect1d(sgen_rows, flex_rows).size:
            raise ValueError("sgen_rows and flex_rows overlap; each sgen must be written once")
        self.lin = lin
        self.tol = float(net._options["tolerance_mva"])
        self.max_it = int(net._options["max_iteration"])
        self.base = float(np.real(it["baseMVA"]))
        self.ybus = sp.csr_matrix(it["Ybus"], dtype=complex)
        self.ybus.sum_duplicates()
        self.v = np.array(it["V"], dtype=complex)
        self.sbus0 = np.array(it["Sbus"], dtype=complex)
        n_int = len(self.v)
        self.pv = np.asarray(it["pv"], dtype=np.int64)
        self.pq = np.asarray(it["pq"], dtype=np.int64)
        self.pvpq = np.r_[self.pv, self.pq]
        self._jacobian_pattern(n_int)
        lu = self._factor(self.v)
        if lu is None:
            raise ValueError("the Jacobian of the cached power flow is singular")
        self.lu = lu

        # set-point changes → net-bus injections (bus_injections layout) → internal buses
        n_bus = len(net.bus)
        bus_pos = net.bus.index

        def agg(table: str, rows: np.ndarray, sign: float) -> sp.csr_matrix:
            df = net[table]
            w = sign * df["in_service"].to_numpy(float)[rows] * df["scaling"].to_numpy(float)[rows]
            return bus_aggregation(net, df["bus"].to_numpy()[rows], w)

        self.m_p = sp.hstack([agg("load", load_rows, -1.0), agg("sgen", sgen_rows, 1.0),
                              agg("sgen", flex_rows, 1.0)]).tocsr()
        self.m_q = agg("load", load_rows, -1.0)
        self.x0 = np.concatenate([net.load["p_mw"].to_numpy(float)[load_rows],
                                  net.sgen["p_mw"].to_numpy(float)[sgen_rows],
                                  net.sgen["p_mw"].to_numpy(float)[flex_rows]])
        self.q0 = net.load["q_mvar"].to_numpy(float)[load_rows]
        self._set = (np.zeros(len(self.x0)), np.zeros(len(self.q0)))    # set-point changes of the last solve
        self.inj_p0, self.inj_q0 = bus_injections(net)
        lookup = np.asarray(net._pd2ppc_lookups["bus"])
        self.net_int = lookup[bus_pos.to_numpy(dtype=np.int64)].astype(np.int64)
        valid = (self.net_int >= 0) & (self.net_int < n_int)
        self.net_int[~valid] = n_int                    # out of the case: reads NaN below
        c = sp.csr_matrix((np.ones(int(valid.sum())), (self.net_int[valid], np.flatnonzero(valid))),
                          shape=(n_int, n_bus))
        self.a_p = (c @ self.m_p / self.base).tocsr()
        self.a_q = (c @ self.m_q / self.base).tocsr()

        # outputs: the branch ends and buses point_from_net reads, as internal rows
        reader = point_reader(net, lin)
        in_case = np.asarray(it["branch_is"], dtype=bool)
        ppci_row = np.where(in_case, np.cumsum(in_case) - 1, -1)
        br = it["branch"]
        ends: list[tuple[int, bool]] = []              # (internal branch row, from side?)
        t_sel = np.zeros(lin.dc.n_branch, dtype=np.int64)
        for kind, _col, m, rows in reader.t_parts:
            start = net._pd2ppc_lookups["branch"][kind][0]
            t_sel[m] = len(ends) + np.arange(len(m))
            ends += [(int(ppci_row[start + r]), True) for r in rows]
        g_rows, g_cols = [], []
        off = 0
        self.d_offsets = [0]
        for f, parts in zip(lin.feeders, reader.d_parts, strict=True):
            for kind, side, ks, rows in parts:
                start = net._pd2ppc_lookups["branch"][kind][0]
                g_rows.append(off + ks)
                g_cols.append(len(ends) + np.arange(len(ks)))
                ends += [(int(ppci_row[start + r]), side in ("from", "hv")) for r in rows]
            off += f.n_bus
            self.d_offsets.append(off)
        rows_e = np.array([r for r, _ in ends], dtype=np.int64)
        if (rows_e < 0).any():
            raise ValueError("a branch of the linear model is out of service in the power flow case")
        from_e = np.array([s for _, s in ends], dtype=bool)
        self.y_ends = sp.csr_matrix(sp.vstack([sp.csr_matrix(it["Yf"])[rows_e[from_e]],
                                               sp.csr_matrix(it["Yt"])[rows_e[~from_e]]]))
        order = np.r_[np.flatnonzero(from_e), np.flatnonzero(~from_e)]   # ends → rows of y_ends
        at = np.empty(len(ends), dtype=np.int64)
        at[order] = np.arange(len(ends))
        self.end_bus = np.r_[np.real(br[rows_e[from_e], _F_BUS]), np.real(br[rows_e[~from_e], _T_BUS])].astype(np.int64)
        self.t_sel = at[t_sel]
        gr = np.concatenate(g_rows) if g_rows else np.zeros(0, np.int64)
        gc = at[np.concatenate(g_cols)] if g_cols else np.zeros(0, np.int64)
        self.g = sp.csr_matrix((np.ones(len(gr)), (gr, gc)), shape=(off, len(ends)))
        self.d_int = self.net_int[np.concatenate(reader.d_bus_rows)] if lin.feeders else np.zeros(0, np.int64)
        self.t_int = lookup[lin.dc.bus].astype(np.int64)
        self.w_t_int = self.net_int[reader.t_bus_rows]
        if tap_pos is None:
            tap_pos = net.trafo["tap_pos"].to_numpy(float)
        self._tap_slots(it, taps, np.array(tap_pos, dtype=float), ppci_row, rows_e, from_e, order)

    def _tap_slots(self, it: dict, taps: TapTable | None, tap_pos: np.ndarray, ppci_row: np.ndarray,
                   rows_e: np.ndarray, from_e: np.ndarray, order: np.ndarray) -> None:
        """Where each movable trafo sits in Ybus and y_ends data, and its current tap table row.

        Movable: in the table, in the case, at a tabled position. Raises ValueError if the table's
        admittances at ``tap_pos`` differ from the cached Yf/Yt (another net, or not the run's taps).
        """
        self.table = taps
        self.tap_pos = tap_pos
        if taps is None:
            self.tap_rows = np.zeros(0, np.int64)
            return
        br = ppci_row[taps.ppc_row]
        k = np.arange(len(taps.rows))
        cur = taps.index(k, self.tap_pos[taps.rows])
        keep = (br >= 0) & (cur >= 0)
        self.tap_rows, self.tap_k, self.tap_cur, br = taps.rows[keep], k[keep], cur[keep], br[keep]
        if not len(br):
            return
        f = np.real(it["branch"][br, _F_BUS]).astype(np.int64)
        t = np.real(it["branch"][br, _T_BUS]).astype(np.int64)
        yf, yt = sp.csr_matrix(it["Yf"]), sp.csr_matrix(it["Yt"])
        cached = np.column_stack([np.asarray(m[br, c]).ravel() for m, c in ((yf, f), (yf, t), (yt, f), (yt, t))])
        if not np.allclose(taps.y[self.tap_cur], cached, rtol=1e-12, atol=0.0):
            raise ValueError("the tap table at these tap positions does not match the cached case")
        self.y_slot = np.column_stack([_slots(self.ybus, f, f), _slots(self.ybus, f, t),
                                       _slots(self.ybus, t, f), _slots(self.ybus, t, t)])
        # branch ends of movable trafos: y_ends row → (tap index, data slots of the f and t columns)
        at_tap = np.full(len(it["branch"]), -1, dtype=np.int64)
        at_tap[br] = np.arange(len(br))
        e_tap = at_tap[rows_e[order]]                    # y_ends row i is end order[i]
        hit = np.flatnonzero(e_tap >= 0)
        self.e_tap, self.e_from = e_tap[hit], from_e[order][hit]
        ef, et = f[self.e_tap], t[self.e_tap]
        self.e_slot = np.column_stack([_slots(self.y_ends, hit, ef), _slots(self.y_ends, hit, et)])

    def snapshot(self) -> tuple:
        """The state solves change (admittances, taps, voltages, Jacobian factors), for :meth:`restore`."""
        cur = self.tap_cur.copy() if len(self.tap_rows) else None
        return (self.ybus.data.copy(), self.y_ends.data.copy(), cur, self.tap_pos.copy(), self.v.copy(), self.lu)

    def restore(self, state: tuple) -> None:
        """Back to a :meth:`snapshot`, in place: what runs next does not depend on what ran in between
        (tap patches add differences, and Newton starts from the last solution)."""
        ybus, ends, cur, tap_pos, v, lu = state
        self.ybus.data[:] = ybus          # in place: the Jacobian maps hold this array
        self.y_ends.data[:] = ends
        if cur is not None:
            self.tap_cur = cur.copy()
        self.tap_pos, self.v, self.lu = tap_pos.copy(), v.copy(), lu

    def set_taps(self, tap_pos: np.ndarray) -> bool:
        """Move the cached case to these trafo tap positions (net.trafo order) by patching Ybus and the branch ends.

        Returns False, the case unchanged, if a moved trafo is not movable (see :meth:`_tap_slots`);
        the caller then needs a full ``runpp``. The next :meth:`solve` starts from the old solution.
        """
        tap_pos = np.asarray(tap_pos, dtype=float)
        moved = np.flatnonzero((tap_pos != self.tap_pos) & ~(np.isnan(tap_pos) & np.isnan(self.tap_pos)))
        if not len(moved):
            return True
        sel = np.searchsorted(self.tap_rows, moved)
        if (sel >= len(self.tap_rows)).any() or not np.array_equal(self.tap_rows[sel], moved):
            return False
        new = self.table.index(self.tap_k[sel], tap_pos[moved])
        if (new < 0).any():
            return False
        d = self.table.y[new] - self.table.y[self.tap_cur[sel]]         # (moved, [ff, ft, tf, tt])
        np.add.at(self.ybus.data, self.y_slot[sel].ravel(), d.ravel())
        where = np.full(len(self.tap_rows), -1, dtype=np.int64)
        where[sel] = np.arange(len(sel))
        e = np.flatnonzero(where[self.e_tap] >= 0)
        j = where[self.e_tap[e]]
        d_end = np.where(self.e_from[e, None], d[j, :2], d[j, 2:])
        np.add.at(self.y_ends.data, self.e_slot[e].ravel(), d_end.ravel())
        self.tap_cur[sel] = new
        self.tap_pos = tap_pos.copy()
        return True

    def _jacobian_pattern(self, n: int) -> None:
        """Index maps from dS/dθ, dS/d|V| entries to the CSC data of J (pandapower's layout)."""
        y = self.ybus                                   # canonical CSR; y_v is its data, patched by set_taps
        self.y_r = np.repeat(np.arange(n, dtype=np.int64), np.diff(y.indptr))
        self.y_c, self.y_v = y.indices.astype(np.int64), y.data
        er = np.r_[self.y_r, np.arange(n)]              # Ybus entries, then the extra diagonal terms
        ec = np.r_[self.y_c, np.arange(n)]
        n_pvpq = len(self.pvpq)
        p_row = np.full(n, -1, dtype=np.int64)
        p_row[self.pvpq] = np.arange(n_pvpq)
        q_row = np.full(n, -1, dtype=np.int64)
        q_row[self.pq] = n_pvpq + np.arange(len(self.pq))
        blocks = [(p_row, p_row), (p_row, q_row), (q_row, p_row), (q_row, q_row)]
        self.j_src = []
        jr, jc = [], []
        for rmap, cmap in blocks:
            e = np.flatnonzero((rmap[er] >= 0) & (cmap[ec] >= 0))
            self.j_src.append(e)
            jr.append(rmap[er[e]])
            jc.append(cmap[ec[e]])
        self.n_j = n_pvpq + len(self.pq)
        keys = np.concatenate(jc) * self.n_j + np.concatenate(jr)
        uniq, self.j_slot = np.unique(keys, return_inverse=True)
        self.j_indices = (uniq % self.n_j).astype(np.int32)
        self.j_indptr = np.searchsorted(uniq // self.n_j, np.arange(self.n_j + 1)).astype(np.int32)

    def _jacobian(self, v: np.ndarray) -> sp.csc_matrix:
        """The power-flow Jacobian at ``v`` (rows P at pv+pq, Q at pq; columns θ at pv+pq, |V| at pq)."""
        ibus = self.ybus @ v
        vn = v / np.abs(v)
        vr = v[self.y_r]
        d_va = np.concatenate([-1j * vr * np.conj(self.y_v * v[self.y_c]), 1j * v * np.conj(ibus)])
        d_vm = np.concatenate([vr * np.conj(self.y_v * vn[self.y_c]), np.conj(ibus) * vn])
        s11, s12, s21, s22 = self.j_src
        vals = np.concatenate([d_va.real[s11], d_vm.real[s12], d_va.imag[s21], d_vm.imag[s22]])
        data = np.bincount(self.j_slot, weights=vals, minlength=len(self.j_indices))
        return sp.csc_matrix((data, self.j_indices, self.j_indptr), shape=(self.n_j, self.n_j))

    def _factor(self, v: np.ndarray) -> spla.SuperLU | None:
        """LU of the Jacobian at ``v``; None if it is singular."""
        try:
            return spla.splu(self._jacobian(v), permc_spec="MMD_AT_PLUS_A")
        except RuntimeError:
            return None

    def newton(self, sbus: np.ndarray, tol: float) -> tuple[np.ndarray, spla.SuperLU] | None:
        """Voltages solving ``sbus`` to a mismatch below ``tol`` [pu] from the previous solution, and the
        LU last stepped with; None if not converged.

        Steps reuse the Jacobian of the previous solution (a chord step costs one solve) and
        refactor only when the mismatch shrinks by less than ``_CHORD_RATE`` (a Newton step). It
        fails after more than ``max_iteration`` Newton steps (pandapower's limit) or
        ``_CHORD_STEPS`` times as many steps in all.
        """
        v = self.v
        vm, va = np.abs(v), np.angle(v)
        n_pvpq = len(self.pvpq)
        lu, prev, n_newton = self.lu, np.inf, 0
        last = _CHORD_STEPS * self.max_it
        for k in range(last + 1):
            mis = v * np.conj(self.ybus @ v) - sbus
            f = np.concatenate([mis.real[self.pvpq], mis.imag[self.pq]])
            norm = np.max(np.abs(f), initial=0.0)
            if norm < tol:
                return v, lu
            if not np.isfinite(norm) or k == last:
                return None
            if norm > _CHORD_RATE * prev:
                n_newton += 1
                lu = self._factor(v) if n_newton <= self.max_it else None
                if lu is None:
                    return None
            prev = norm
            dx = lu.solve(-f)
            va[self.pvpq] += dx[:n_pvpq]
            vm[self.pq] += dx[n_pvpq:]
            v = vm * np.exp(1j * va)
        return None

    def voltages(self, load_p: np.ndarray, load_q: np.ndarray, sgen_p: np.ndarray,
                 unit_p: np.ndarray, tol: float | None = None) -> np.ndarray | None:
        """Solve set-points (table-row order of the constructor): |V| per net bus (NaN off the case); None if NR fails.

        The solution becomes the next solve's start, which steps with the last Jacobian this
        one factored. ``tol``: mismatch [pu] to stop at (default: the cached run's ``tolerance_mva``).
        """
        dx = np.concatenate([load_p, sgen_p, unit_p]) - self.x0
        dq = np.asarray(load_q, dtype=float) - self.q0
        sbus = self.sbus0 + self.a_p @ dx + 1j * (self.a_q @ dq)
        res = self.newton(sbus, self.tol if tol is None else tol)
        if res is None:
            return None
        self.v, self.lu = res
        self._set = (dx, dq)
        return np.append(np.abs(self.v), np.nan)[self.net_int]

    def point(self) -> LinearizationPoint:
        """The linearisation point at the last :meth:`voltages` solution, as ``point_from_net(…,
        voltage_coupling=False)`` reads it after a ``runpp`` (the roots' voltage sensitivities are
        the model's, ``LinearTD.root_coupling``)."""
        v = self.v
        dx, dq = self._set
        s_end = v[self.end_bus] * np.conj(self.y_ends @ v) * self.base
        t_flow = s_end.real[self.t_sel]
        s_d = self.g @ s_end
        vm = np.append(np.abs(v), np.nan)
        w_d = vm[self.d_int] ** 2
        parts = [slice(a, b) for a, b in itertools.pairwise(self.d_offsets)]
        return make_point(self.lin, t_flow, [s_d.real[p] for p in parts], [s_d.imag[p] for p in parts],
                          [w_d[p] for p in parts], vm[self.w_t_int] ** 2,
                          self.inj_p0 + self.m_p @ dx, self.inj_q0 + self.m_q @ dq)

    def solve(self, load_p: np.ndarray, load_q: np.ndarray, sgen_p: np.ndarray,
              unit_p: np.ndarray) -> tuple[LinearizationPoint, np.ndarray] | None:
        """Set-points (table-row order of the constructor) → (point, |V| per net bus); None if NR fails."""
        vm = self.voltages(load_p, load_q, sgen_p, unit_p)
        return None if vm is None else (self.point(), vm)

    def probe(self, load_p: np.ndarray, load_q: np.ndarray, sgen_p: np.ndarray,
              unit_p: np.ndarray) -> LinearizationPoint | None:
        """:meth:`solve` as a what-if: the next solve starts from where it would have without this one
        (a check of a dispatch leaves no trace on the results that follow); None if NR fails."""
        keep = self.v, self.lu, self._set
        try:
            vm = self.voltages(load_p, load_q, sgen_p, unit_p)
            return None if vm is None else self.point()
        finally:
            self.v, self.lu, self._set = keep
