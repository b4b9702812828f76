"""AC sensitivity of the feeder roots' squared voltages to transmission injections.

FeederModel keeps Δw = 0 at its T root. With the OLTCs fixed, that is the largest error source:
a 100 MW T activation next to a substation moves the HV voltage by up to 0.014 pu, and the whole
feeder with it. The AC sensitivity of each feeder root's squared voltage to T injections
(``root_dw_dp``/``root_dw_dq``, from the Jacobian of a power flow) is therefore taken once from
the system's base power flow into ``LinearTD.root_coupling`` (what base states, activation
responses and the forced measures' program use), and a point read by ``point_from_net`` may
carry its own (then used for that point instead).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from smartnet_gym.grid.linear import LinearTD
from smartnet_gym.grid.sensitivity import Sensitivity

__all__ = ["jacobian_lu", "root_voltage_sensitivity"]


def jacobian_lu(it: dict) -> spla.SuperLU:
    """LU of the power-flow Jacobian of pandapower's last run (its own, else rebuilt at the solution).

    Rows P at pv+pq, Q at pq; columns θ at pv+pq, |V| at pq (pandapower's layout).
    """
    v = it["V"]
    pv, pq = np.asarray(it["pv"], dtype=np.int64), np.asarray(it["pq"], dtype=np.int64)
    pvpq = np.r_[pv, pq]
    jac = it.get("J")
    if jac is None or jac.shape != (len(pvpq) + len(pq),) * 2:
        from pandapower.pypower.dSbus_dV import dSbus_dV

        d_vm, d_va = dSbus_dV(it["Ybus"], v)
        full = sp.bmat([[sp.csr_matrix(d_va).real, sp.csr_matrix(d_vm).real],
                        [sp.csr_matrix(d_va).imag, sp.csr_matrix(d_vm).imag]]).tocsr()
        n0 = len(v)
        jac = full[np.r_[pvpq, n0 + pq]][:, np.r_[pvpq, n0 + pq]]
    return spla.splu(sp.csc_matrix(jac))


def root_voltage_sensitivity(lu: spla.SuperLU, v: np.ndarray, pv: np.ndarray, pq: np.ndarray,
                             base_mva: float, t_int: np.ndarray, lin: LinearTD,
                             s: Sensitivity) -> tuple[np.ndarray, np.ndarray]:
    """(n_r, n_t) d(V²)/dP and d(V²)/dQ of the feeder roots from the LU of an AC Jacobian.

    ``lu`` factors the Jacobian in pandapower's layout (:func:`jacobian_lu`) at voltages ``v`` of
    the internal case, ``t_int`` the internal bus of each T-model bus. One transposed solve per
    root: a row of J⁻¹ is the sensitivity of that root's |V| to every injection.
    """
    pvpq = np.r_[pv, pq]
    n = len(v)
    p_row = np.full(n, -1, dtype=np.int64)
    p_row[pvpq] = np.arange(len(pvpq))
    q_row = np.full(n, -1, dtype=np.int64)
    q_row[pq] = len(pvpq) + np.arange(len(pq))
    r_int = t_int[s.roots]
    n_r, n_t = len(s.roots), lin.dc.n_bus
    dw_dp = np.zeros((n_r, n_t))
    dw_dq = np.zeros((n_r, n_t))
    sel = np.flatnonzero(q_row[r_int] >= 0)           # PV/slack roots keep their voltage
    if len(sel) == 0:
        return dw_dp, dw_dq
    e = np.zeros((len(pvpq) + len(pq), len(sel)))
    e[q_row[r_int[sel]], np.arange(len(sel))] = 1.0
    rows = lu.solve(e, trans="T")                       # rows of J⁻¹: d|V_root| / dS
    scale = 2.0 * np.abs(v[r_int[sel]]) / base_mva      # d(V²) = 2 V dV; pu → MW
    jp = np.flatnonzero(p_row[t_int] >= 0)
    jq = np.flatnonzero(q_row[t_int] >= 0)
    dw_dp[np.ix_(sel, jp)] = (rows[p_row[t_int[jp]]] * scale).T
    dw_dq[np.ix_(sel, jq)] = (rows[q_row[t_int[jq]]] * scale).T
    dw_dp[:, lin.dc.fixed] = 0.0
    dw_dq[:, lin.dc.fixed] = 0.0
    return dw_dp, dw_dq
