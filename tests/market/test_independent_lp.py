"""CS_D (joint LP) vs an independent formulation solved by scipy's linprog.

The reference below is written from the docstrings of ``grid/linear.py`` only; it
does not import ``smartnet_gym.market.program`` (nor clearing/solvers). It deliberately uses a
*different* formulation from the market code: instead of explicit angle / branch-flow /
squared-voltage variables it eliminates the network with sensitivities computed here:

- transmission: my own susceptance matrix from the branch list, PTDF = Bf_free B_ff⁻¹
  (fixed buses absorb the imbalance); a D bid injects at the T bus its tree hangs off
  (LinDistFlow is lossless);
- distribution: ΔP_k = −Σ_{j downstream of k, incl. k} p_j (flows positive downstream) and
  Δw_i = −2 Σ_{k on the path root→i} r_k ΔP_k (ΔQ = 0: bids are active power), plus, where the
  model carries ``root_coupling``, the tree root's own change times its factor at i:
  scale_i · Σ_t dw_dp[root, t] Δp_t over the T-bus injections Δp_t;
- soft limits |f0+Δf| ≤ F, |P0+ΔP| ≤ √(S²−Q0²), v_min² ≤ w0+Δw ≤ v_max², one slack per side,
  priced Δt·network_penalty [EUR/MW per period] (over max |PTDF| of the branch for T lines),
  Δt·voltage_penalty [EUR/(pu²·h)·h];
- balance Σ s·x + b⁺ − b⁻ = need per period, b± priced Δt·balance_penalty;
- storage: SoC_t = soc − Δt Σ_{τ≤t} s·x ∈ [0, E] (hard; x = 0 is always feasible).

The network is small, so dense sensitivities are fine here (the market code must not use them).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytest
import scipy.sparse as sp
from handmade import flat_base, three_bus_td
from random_instances import (
    assemble,
    d_buses,
    random_case,
    random_instance,
    random_linear_td,
    revalue,
)
from scipy.optimize import linprog

from smartnet_gym.config import MarketConfig
from smartnet_gym.grid.linear import LinearTD
from smartnet_gym.market.bids import BidBook, StorageState
from smartnet_gym.market.schemes import make_scheme
from smartnet_gym.market.stages import MarketInstance

DT = 0.25  # h: Δt = 15 min
LP = MarketConfig(qp_epsilon=0.0, backend="highs")


# --------------------------------------------------------------------------------------------
# the independent reference
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RefResult:
    status: int
    objective_eur: float
    x_mw: np.ndarray
    balance_slack_mw: np.ndarray  # (H,) b⁺ − b⁻
    message: str = ""


def _ptdf(lin: LinearTD) -> tuple[np.ndarray, np.ndarray]:
    """(PTDF n_br × n_t with zero columns at fixed buses, free mask)."""
    dc = lin.dc
    n, m = len(dc.bus), len(dc.branch_from)
    bmat = np.zeros((n, n))
    bf = np.zeros((m, n))
    for k in range(m):
        i, j, b = int(dc.branch_from[k]), int(dc.branch_to[k]), float(dc.branch_b_mw[k])
        bmat[i, i] += b
        bmat[j, j] += b
        bmat[i, j] -= b
        bmat[j, i] -= b
        bf[k, i] += b
        bf[k, j] -= b
    free = ~np.asarray(dc.fixed, bool)
    ptdf = np.zeros((m, n))
    if free.any():
        ptdf[:, free] = bf[:, free] @ np.linalg.inv(bmat[np.ix_(free, free)])
    return ptdf, free


def _path_matrix(parent: np.ndarray) -> np.ndarray:
    """U (n_d × n_d): U[k, j] = 1 if branch k (feeding bus k) is on the path from bus j up."""
    n = len(parent)
    u = np.zeros((n, n))
    for j in range(n):
        k = j
        while k >= 0:
            u[k, j] = 1.0
            k = int(parent[k])
    return u


def _sensitivities(lin: LinearTD, bus: np.ndarray, direction: np.ndarray, root_coupling: bool = False):
    """Per unit of activation of each bid: Δf (n_br × n), and per area ΔP and Δw (n_d × n)."""
    ptdf, _ = _ptdf(lin)
    t_pos = {int(b): i for i, b in enumerate(lin.dc.bus)}
    n = len(bus)
    s = np.asarray(direction, float)
    inj_t = np.zeros((lin.dc.n_bus, n))  # T-bus injection of each bid
    g_p, g_w = [], []
    for f in lin.feeders:
        u = _path_matrix(np.asarray(f.parent))
        d_pos = {int(b): k for k, b in enumerate(f.bus)}
        inj_d = np.zeros((f.n_bus, n))
        for b in range(n):
            if int(bus[b]) in d_pos:
                j = d_pos[int(bus[b])]
                inj_d[j, b] = s[b]
                root = int(
                    np.flatnonzero((u[:, j] > 0) & (f.parent < 0))[0]
                )  # top branch of j's path
                inj_t[int(f.root_t[root]), b] += s[b]
        dp = -u @ inj_d  # ΔP_k = −Σ_{j below k} p_j
        g_p.append(dp)
        g_w.append(-2.0 * u.T @ (f.r_pu[:, None] * dp))  # Δw_i = −2 Σ_{k ∈ path(i)} r_k ΔP_k
    for b in range(n):
        if int(bus[b]) in t_pos:
            inj_t[t_pos[int(bus[b])], b] += s[b]
    rc = lin.root_coupling if root_coupling else None
    if rc is not None:      # a tree follows its root's voltage: Δw_i += scale_i · dw_dp[root(i)] · Δp_T
        dw_root = rc.dw_dp @ inj_t                         # (n_roots, n) per bid
        row = {int(t): k for k, t in enumerate(rc.roots)}
        for a, f in enumerate(lin.feeders):
            u = _path_matrix(np.asarray(f.parent))
            for i in range(f.n_bus):
                top = int(np.flatnonzero((u[:, i] > 0) & (f.parent < 0))[0])
                g_w[a][i] += rc.top_scale[a][i] * dw_root[row[int(f.root_t[top])]]
    return ptdf @ inj_t, g_p, g_w


def _soft_rows(lin: LinearTD, inst: MarketInstance, cfg: MarketConfig, per: np.ndarray, sens):
    """Soft limit rows g·x ≤ limit (one slack each): (rows, limits, slack prices [EUR/unit])."""
    g_t, g_p, g_w = sens
    rows, limits, prices = [], [], []

    def soft(g_row: np.ndarray, limit: float, penalty: float, t: int) -> None:
        rows.append(np.where(per == t, g_row, 0.0))  # only period-t bids act in period t
        limits.append(limit)
        prices.append(penalty)

    # violations are worth what forced measures pay to remove them: the basis (VoLL by default) per MW
    # of D flow, over the branch's largest |PTDF| per MW of T flow, and at D bus k the basis over
    # 2 Σ r on its path from the root (plus its root's own rise) per pu² of w
    basis = cfg.network_penalty_eur_per_mwh or 3000.0
    pen_f = DT * basis * min(cfg.penalty_scale, 1.0)
    pen_t = pen_f / np.maximum(np.abs(_ptdf(lin)[0]).max(axis=1), 1e-3)

    rc = lin.root_coupling

    def pen_v_of(a: int, f, k: int) -> float:
        path_r, j, top = 0.0, k, k
        while j >= 0:
            path_r += f.r_pu[j]
            top, j = j, f.parent[j]
        rise = 0.0      # 1 MW at k also raises its tree root's voltage, carried down to k
        if rc is not None:
            root = int(f.root_t[top])
            rise = max(rc.top_scale[a][k] * rc.dw_dp[list(rc.roots).index(root), root], 0.0)
        removal = basis / (2 * path_r + rise)
        flat = cfg.voltage_penalty_eur_per_pu2h
        return DT * (min(flat * cfg.penalty_scale, removal) if flat else removal * min(cfg.penalty_scale, 1.0))
    dc, base = lin.dc, inst.base
    for t in range(inst.horizon):
        for k in np.flatnonzero(np.isfinite(dc.rating_mw)):
            f0, fmax = base.t_flow_mw[t, k], dc.rating_mw[k]
            soft(g_t[k], fmax - f0, pen_t[k], t)  # f0 + Δf ≤ F
            soft(-g_t[k], fmax + f0, pen_t[k], t)  # −(f0 + Δf) ≤ F
        for a, f in enumerate(lin.feeders):
            for k in np.flatnonzero(np.isfinite(f.rating_mva)):
                q0, p0 = base.d_q_mvar[a][t, k], base.d_p_mw[a][t, k]
                pmax = np.sqrt(max(f.rating_mva[k] ** 2 - q0**2, 0.0))  # ΔQ = 0: |P| ≤ √(S²−Q0²)
                soft(g_p[a][k], pmax - p0, pen_f, t)
                soft(-g_p[a][k], pmax + p0, pen_f, t)
            for k in range(f.n_bus):
                w0 = base.d_w_pu2[a][t, k]
                pen_v = pen_v_of(a, f, k)
                soft(g_w[a][k], f.v_max_pu[k] ** 2 - w0, pen_v, t)
                soft(-g_w[a][k], w0 - f.v_min_pu[k] ** 2, pen_v, t)
    return rows, limits, prices


def _storage_rows(book: BidBook, s: np.ndarray, per: np.ndarray, h: int, tol: float):
    """Hard SoC rows: Δt Σ_{τ≤t} s·x ≤ soc and −Δt Σ_{τ≤t} s·x ≤ E − soc (each + tol)."""
    rows, rhs = [], []
    st = book.storage_state
    own = np.r_[book.storage, np.full(len(s) - len(book), -1)]
    for j in range(len(st)):
        for t in range(h):
            row = np.where((own == j) & (per <= t), DT * s, 0.0)
            rows += [row, -row]
            rhs += [st.soc_mwh[j] + tol, st.energy_mwh[j] - st.soc_mwh[j] + tol]
    return rows, rhs


def reference_lp(
    lin: LinearTD,
    inst: MarketInstance,
    cfg: MarketConfig,
    fix_x: np.ndarray | None = None,
    extra: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
    storage_tol_mwh: float = 0.0,
    root_coupling: bool = False,
) -> RefResult:
    """Solve the joint (CS_D) LP of ``inst`` with linprog/HiGHS.

    ``fix_x``: evaluate these activations (only slacks free). ``extra``: additional fixed
    injections (bus, direction, period, MW) that count in the balance and the network, used
    for finite differences of locational prices. ``storage_tol_mwh`` widens the (hard) SoC
    rows, to evaluate activations from a solver with a feasibility tolerance (OSQP).
    ``root_coupling``: the feeder roots move with the T injections (``lin.root_coupling``), as in
    the forced measures' program.
    """
    book, h = inst.book, inst.horizon
    bus, s, per = book.bus, book.direction.astype(float), book.period
    n_x = len(book)
    if extra is not None:
        bus = np.r_[bus, extra[0]]
        s = np.r_[s, np.asarray(extra[1], float)]
        per = np.r_[per, extra[2]]
    n_all = len(bus)
    soft_rows, soft_rhs, soft_price = _soft_rows(lin, inst, cfg, per, _sensitivities(lin, bus, s, root_coupling))
    hard_rows, hard_rhs = _storage_rows(book, s, per, h, storage_tol_mwh)
    n_soft = len(soft_rows)

    # columns: x (n_all; the extra ones fixed), b⁺ (h), b⁻ (h), one slack per soft row
    c = np.r_[
        DT * book.price_eur_per_mwh,
        np.zeros(n_all - n_x),
        np.full(2 * h, DT * cfg.balance_penalty_eur_per_mwh),
        soft_price,
    ]
    lb = np.zeros(n_all + 2 * h + n_soft)
    ub = np.r_[book.qty_mw, np.zeros(n_all - n_x), np.full(2 * h + n_soft, np.inf)]
    if extra is not None:
        lb[n_x:n_all] = ub[n_x:n_all] = extra[3]
    if fix_x is not None:
        lb[:n_x] = ub[:n_x] = fix_x
    blocks = []
    if n_soft:
        x_part = sp.csr_matrix(np.array(soft_rows))
        blocks.append(sp.hstack([x_part, sp.csr_matrix((n_soft, 2 * h)), -sp.identity(n_soft)]))
    if hard_rows:
        x_part = sp.csr_matrix(np.array(hard_rows))
        blocks.append(sp.hstack([x_part, sp.csr_matrix((len(hard_rows), 2 * h + n_soft))]))
    # balance per period: Σ s·x + b⁺ − b⁻ = need
    bal_x = sp.csr_matrix((s, (per, np.arange(n_all))), shape=(h, n_all))
    eye = sp.identity(h)
    a_eq = sp.hstack([bal_x, eye, -eye, sp.csr_matrix((h, n_soft))], format="csr")
    res = linprog(
        c,
        A_ub=sp.vstack(blocks, format="csr") if blocks else None,
        b_ub=np.r_[soft_rhs, hard_rhs] if blocks else None,
        A_eq=a_eq,
        b_eq=np.asarray(inst.need_mw, float),
        bounds=np.c_[lb, ub],
        method="highs",
        options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10},
    )
    if res.status != 0:
        return RefResult(res.status, np.nan, np.zeros(n_x), np.full(h, np.nan), res.message)
    z = res.x
    return RefResult(
        0, float(res.fun), z[:n_x], z[n_all : n_all + h] - z[n_all + h : n_all + 2 * h]
    )


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def rel_close(a: float, b: float, rtol: float = 1e-6) -> bool:
    return abs(a - b) <= rtol * max(1.0, abs(a), abs(b))


def _instances(n_nets: int, per_net: int, seed0: int, **kw):
    """(tag, lin, inst): n_nets random networks (seeds seed0..), per_net value sets of one layout.

    The value sets of one network share the bid layout, so a scheme built for the first one
    re-solves its cached programs (hot start) for the others.
    """
    for k in range(n_nets):
        rng = np.random.default_rng(seed0 + k)
        lin = random_linear_td(rng)
        inst = random_instance(
            rng, lin, **{key: (v(lin) if callable(v) else v) for key, v in kw.items()}
        )
        for j in range(per_net):
            yield (seed0 + k, j), lin, inst
            inst = revalue(rng, lin, inst)


def handmade_lin() -> LinearTD:
    lin = three_bus_td(line_rating_mw=30.0, feeder_rating_mva=20.0)
    return assemble(lin.dc, lin.feeders)  # same model (buses 0, 1, 2 / 10, 11) with net_bus filled


def _handmade_instances(n: int, seed: int, storage_buses=None):
    rng = np.random.default_rng(seed)
    lin = handmade_lin()
    inst = random_instance(rng, lin, horizon=3, n_bids=15, n_storage=1, storage_buses=storage_buses)
    for j in range(n):
        yield ("handmade", seed, j), lin, inst
        inst = revalue(rng, lin, inst)


def _check_against_reference(lin, inst, scheme, tag, rtol=1e-6, x_rtol=1e-6):
    """Objective within ``rtol`` of the reference; activations evaluated there within ``x_rtol``."""
    out = scheme.clear(inst, evaluate=False)
    ref = reference_lp(lin, inst, LP)
    assert ref.status == 0, (tag, ref.message)
    assert out.status == "optimal", (tag, out.status)
    assert rel_close(out.objective_eur, ref.objective_eur, rtol), (
        tag,
        out.objective_eur,
        ref.objective_eur,
    )
    # the market's activations are optimal in the reference model too
    fixed = reference_lp(
        lin, inst, LP, fix_x=np.clip(out.activated_mw, 0.0, inst.book.qty_mw), storage_tol_mwh=1e-6
    )
    assert fixed.status == 0, (tag, fixed.message)
    assert rel_close(fixed.objective_eur, ref.objective_eur, x_rtol), (
        tag,
        fixed.objective_eur,
        ref.objective_eur,
    )
    return out, ref


# --------------------------------------------------------------------------------------------
# sanity of the reference itself (so that agreement means something)
# --------------------------------------------------------------------------------------------
def test_reference_merit_order_by_hand():
    """Two T bids, unlimited lines: the 30 MW need is met by the 50 EUR bid: 0.25·50·30 = 375."""
    lin = three_bus_td(line_rating_mw=1e6)
    book = BidBook.from_arrays(
        bus=[1, 2], direction=[1, 1], period=[0, 0], qty_mw=[100, 100], price_eur_per_mwh=[50, 80]
    )
    inst = MarketInstance(book, flat_base(lin, 1), np.array([30.0]), np.zeros((1, 1)))
    ref = reference_lp(lin, inst, LP)
    assert ref.status == 0
    assert ref.objective_eur == pytest.approx(375.0, rel=1e-12)
    np.testing.assert_allclose(ref.x_mw, [30.0, 0.0], atol=1e-9)


def test_reference_sensitivities_by_hand():
    """Triangle of equal lines, slack 0: 1 MW at bus 1 flows 2/3 directly to 0 and 1/3 via 2.

    Branches (0→1, 1→2, 0→2): flows (−2/3, +1/3, −1/3). 1 MW injected at D bus 11 (behind T
    bus 2): both feeder branches carry −1 MW, Δw_10 = 2·0.001 = 0.002, Δw_11 = 0.002 + 2·0.004
    = 0.010 pu², and T flows as an injection at bus 2: (−1/3, −1/3, −2/3).
    """
    lin = three_bus_td()
    g_t, g_p, g_w = _sensitivities(lin, np.array([1, 11]), np.array([1, 1]))
    np.testing.assert_allclose(g_t[:, 0], [-2 / 3, 1 / 3, -1 / 3], atol=1e-12)
    np.testing.assert_allclose(g_p[0][:, 1], [-1.0, -1.0])
    np.testing.assert_allclose(g_w[0][:, 1], [0.002, 0.010])
    np.testing.assert_allclose(g_t[:, 1], [-1 / 3, -1 / 3, -2 / 3], atol=1e-12)


def test_case_generator_is_deterministic():
    a, b = random_case(3), random_case(3)
    np.testing.assert_array_equal(a.inst.book.qty_mw, b.inst.book.qty_mw)
    np.testing.assert_array_equal(a.lin.dc.branch_b_mw, b.lin.dc.branch_b_mw)
    np.testing.assert_array_equal(a.lin.feeders[0].parent, b.lin.feeders[0].parent)


# --------------------------------------------------------------------------------------------
# CS_D (LP) = reference (to 1e-6 relative)
# --------------------------------------------------------------------------------------------
def test_cs_d_highs_equals_reference_on_random_instances():
    """230 instances: 50 random networks × 4 value sets + 3 × 10 handmade ones (with a battery)."""
    n = 0
    cases = [
        *_instances(50, 4, 10_000),
        *_handmade_instances(10, 7),
        *_handmade_instances(10, 8, [11]),
        *_handmade_instances(10, 9, [1]),
    ]
    for tag, lin, inst in cases:
        if tag[-1] == 0:  # one scheme per layout: later value sets re-solve the cached program
            scheme = make_scheme("CS_D", lin, LP)
        _check_against_reference(lin, inst, scheme, tag)
        n += 1
    assert n >= 200


# the CVXPY instances: 4 layouts × 4 value sets, small (8 bids, H = 2): a failed OSQP solve costs
# ~1 s of iterations, so this set is kept small
CVXPY_CASES = dict(n_nets=4, per_net=4, seed0=20_000, n_bids=8, horizon=2)


def test_cs_d_cvxpy_equals_reference_when_it_solves():
    """CVXPY+OSQP (LP variant): every answer it calls "optimal" is the reference optimum (1e-6).

    Non-optimal statuses are reported as failed clearings (no activation, need left open); that
    they are frequent is covered by test_cs_d_cvxpy_solves_every_instance (Clarabel fallback).
    """
    cfg = MarketConfig(qp_epsilon=0.0, backend="cvxpy")
    solved = 0
    for tag, lin, inst in _instances(**CVXPY_CASES):
        if tag[1] == 0:
            scheme = make_scheme("CS_D", lin, cfg)
        out = scheme.clear(inst, evaluate=False)
        if out.status != "optimal":
            assert out.status.startswith("failed") or out.status == "optimal_inaccurate", out.status
            assert not out.activated_mw.any()
            np.testing.assert_allclose(out.residual_imbalance_mw, inst.need_mw)
            continue
        # objective 1e-6; OSQP's accepted unpolished points (gap ≤ 1e-6) are ~1e-5 off in x
        _check_against_reference(lin, inst, scheme, tag, x_rtol=1e-5)
        solved += 1
    assert solved >= 4


def test_cs_d_cvxpy_solves_every_instance():
    cfg = MarketConfig(qp_epsilon=0.0, backend="cvxpy")
    for tag, lin, inst in _instances(**CVXPY_CASES):
        if tag[1] == 0:
            scheme = make_scheme("CS_D", lin, cfg)
        out = scheme.clear(inst, evaluate=False)
        assert out.status == "optimal", (tag, out.status)


def test_toy_preset_linear_model(request):
    """The toy preset's linear model (SimBench-based), when the builder and preset exist."""
    pytest.importorskip("smartnet_gym.grid.toy_system")
    try:
        system = request.getfixturevalue("toy_system")
    except pytest.FixtureLookupError:
        build = pytest.importorskip("smartnet_gym.grid.build")
        from smartnet_gym.config import load_scenario

        system = build.build_system(load_scenario("toy"))
    lin = system.linear
    rng = np.random.default_rng(5)
    scheme = make_scheme("CS_D", lin, LP)
    inst = random_instance(rng, lin, horizon=4, n_bids=40, n_storage=1)
    for j in range(6):
        _check_against_reference(lin, inst, scheme, ("toy", j))
        inst = revalue(rng, lin, inst)


def test_program_with_root_coupling_equals_reference(request):
    """The joint program with the feeder roots moving (``ProgramSpec.root_coupling``, the forced
    measures' program) against the reference with the same coupling, on the toy preset."""
    from smartnet_gym.market.clearing import ClearingProgram
    from smartnet_gym.market.program import ProgramSpec

    system = request.getfixturevalue("toy_system")
    lin = system.linear
    assert lin.root_coupling is not None
    rng = np.random.default_rng(11)
    inst = random_instance(rng, lin, horizon=4, n_bids=40, n_storage=1)
    areas = tuple(f.area for f in lin.feeders)
    coupled = ClearingProgram(lin, inst.book, ProgramSpec(True, areas, ((-1, *areas),), root_coupling=True), 4, LP)
    held = ClearingProgram(lin, inst.book, ProgramSpec(True, areas, ((-1, *areas),)), 4, LP)
    differ = 0
    for j in range(6):
        out = coupled.solve(inst.book, inst.base, inst.need_mw[None, :])
        ref = reference_lp(lin, inst, LP, root_coupling=True)
        assert out.ok and ref.status == 0, (j, out.status, ref.message)
        assert rel_close(out.objective_eur, ref.objective_eur), (j, out.objective_eur, ref.objective_eur)
        differ += not rel_close(held.solve(inst.book, inst.base, inst.need_mw[None, :]).objective_eur,
                                out.objective_eur)
        inst = revalue(rng, lin, inst)
    assert differ          # the coupling does change some of these clearings


# --------------------------------------------------------------------------------------------
# QP variant
# --------------------------------------------------------------------------------------------
QP_EPS = 1e-4


def test_qp_variant_close_to_lp():
    """ε‖x‖² with ε = 1e-4 EUR/(MW²h): LP* ≤ QP* ≤ LP* + εΔtΣqty², and so does the QP's x in the LP.

    Proof: x_LP is feasible in the QP, so QP* ≤ LP* + εΔt‖x_LP‖² ≤ LP* + εΔtΣqty²; and
    QP* ≥ cᵀx_QP ≥ LP*. With ≤ 30 MW per bid the tolerance is ≤ 0.0225 EUR per bid.
    """
    qp = MarketConfig(qp_epsilon=QP_EPS, backend="highs")
    solved = 0
    for tag, lin, inst in _instances(20, 2, 30_000):
        out = make_scheme("CS_D", lin, qp).clear(inst, evaluate=False)
        if out.status != "optimal":
            continue  # see test_qp_variant_solves_every_instance
        ref = reference_lp(lin, inst, LP)
        bound = QP_EPS * DT * float((inst.book.qty_mw**2).sum())
        tol = 1e-6 * max(1.0, abs(ref.objective_eur))
        assert ref.objective_eur - tol <= out.objective_eur <= ref.objective_eur + bound + tol, (
            tag,
            out.objective_eur,
            ref.objective_eur,
            bound,
        )
        linear = reference_lp(lin, inst, LP, fix_x=np.clip(out.activated_mw, 0.0, inst.book.qty_mw))
        assert ref.objective_eur - tol <= linear.objective_eur <= ref.objective_eur + bound + tol, (
            tag
        )
        solved += 1
    assert solved >= 30


def test_qp_variant_solves_every_instance():
    for eps in (QP_EPS, 0.01):
        cfg = MarketConfig(qp_epsilon=eps, backend="highs")
        for tag, lin, inst in _instances(20, 1, 30_000):
            out = make_scheme("CS_D", lin, cfg).clear(inst, evaluate=False)
            assert out.status == "optimal", (eps, tag, out.status)


# --------------------------------------------------------------------------------------------
# CS_D decentralized = centralized
# --------------------------------------------------------------------------------------------
DEC = MarketConfig(qp_epsilon=0.0, backend="highs", variant="decentralized")
# a balance penalty above every marginal network/voltage penalty of these instances (network
# 3000 EUR/MWh; voltage ≤ 3e5 EUR/(pu²h) × 2Σr ≤ 0.072 pu²/MW ≈ 21,600 EUR/MWh); the default penalties are tested too (the DSO exchange penalty is raised inside the decomposition)
HIGH_BAL = 1e5


def _dec_vs_cen(cases, lp_cfg):
    dec_cfg = lp_cfg.model_copy(update={"variant": "decentralized"})
    for tag, lin, inst in cases:
        if tag[-1] == 0:
            cen = make_scheme("CS_D", lin, lp_cfg)
            dec = make_scheme("CS_D", lin, dec_cfg)
        c = cen.clear(inst)
        d = dec.clear(inst)
        assert d.status == "optimal", (tag, d.status)
        assert rel_close(d.objective_eur, c.objective_eur), (tag, d.objective_eur, c.objective_eur)
        # the disaggregated activations cost the same in the full model
        assert rel_close(d.evaluated_cost_eur, c.evaluated_cost_eur), (
            tag,
            d.evaluated_cost_eur,
            c.evaluated_cost_eur,
        )
        np.testing.assert_allclose(d.residual_imbalance_mw, c.residual_imbalance_mw, atol=1e-6)


def test_decentralized_equals_centralized():
    """Random networks (batteries only in D) + handmade with a D battery: same cost (1e-6).

    With the balance penalty raised to HIGH_BAL.
    """
    cfg = LP.model_copy(update={"balance_penalty_eur_per_mwh": HIGH_BAL})
    _dec_vs_cen(
        [*_instances(30, 2, 40_000, storage_buses=d_buses), *_handmade_instances(6, 3, [11])], cfg
    )


def test_decentralized_equals_centralized_default_penalties():
    _dec_vs_cen(_instances(30, 2, 40_000, storage_buses=d_buses), LP)


def test_decentralized_respects_transmission_battery():
    """Battery at T bus 1 (SoC 1 MWh) offers 10 MW up @ 10 EUR; need 10 MW; a 50 EUR bid at bus 2.

    SoC allows Δt·x ≤ 1 MWh → x ≤ 4 MW; the rest, 6 MW, at 50 EUR: 0.25·(10·4 + 50·6) = 85 EUR.
    """
    lin = three_bus_td(line_rating_mw=1e3)
    book = BidBook.from_arrays(
        bus=[1, 2],
        direction=[1, 1],
        period=[0, 0],
        qty_mw=[10.0, 20.0],
        price_eur_per_mwh=[10.0, 50.0],
        storage=[0, -1],
        storage_state=StorageState(np.array([2.0]), np.array([1.0])),
    )
    inst = MarketInstance(book, flat_base(lin, 1), np.array([10.0]), np.zeros((1, 1)))
    c = make_scheme("CS_D", lin, LP).clear(inst)
    assert c.objective_eur == pytest.approx(85.0, rel=1e-9)
    np.testing.assert_allclose(c.activated_mw, [4.0, 6.0], atol=1e-7)
    d = make_scheme("CS_D", lin, DEC).clear(inst)
    np.testing.assert_allclose(d.activated_mw, [4.0, 6.0], atol=1e-7)
    assert d.objective_eur == pytest.approx(85.0, rel=1e-9)


# --------------------------------------------------------------------------------------------
# CS_D is the cheapest in the common yardstick
# --------------------------------------------------------------------------------------------
def test_cs_d_cheapest_in_common_yardstick():
    """On 50 instances without batteries: CS_D's evaluated cost ≤ CS_A, CS_B, CS_C (+1e-6 relative).

    (Batteries: see test_hand_cases.test_cs_b_battery_used_twice.)
    """
    n = 0
    for tag, lin, inst in _instances(25, 2, 50_000, n_storage=0):
        if tag[1] == 0:
            schemes = {k: make_scheme(k, lin, LP) for k in ("CS_A", "CS_B", "CS_C", "CS_D")}
        outs = {k: s.clear(inst) for k, s in schemes.items()}
        d = outs["CS_D"].evaluated_cost_eur
        # CS_D's evaluated cost is its own objective (same program, x fixed)
        assert rel_close(d, outs["CS_D"].objective_eur), (tag, d, outs["CS_D"].objective_eur)
        for k in ("CS_A", "CS_B", "CS_C"):
            e = outs[k].evaluated_cost_eur
            assert outs[k].status == "optimal" and np.isfinite(e), (tag, k, outs[k].status)
            assert d <= e + 1e-6 * max(1.0, abs(e)), (tag, k, d, e)
            if tag[1] == 0:  # the yardstick is the reference model with x fixed
                ref = reference_lp(
                    lin, inst, LP, fix_x=np.clip(outs[k].activated_mw, 0, inst.book.qty_mw)
                )
                assert rel_close(ref.objective_eur, e), (tag, k, ref.objective_eur, e)
        n += 1
    assert n >= 50


# --------------------------------------------------------------------------------------------
# prices and settlement
# --------------------------------------------------------------------------------------------
def _one_sided(cost, delta):
    """(right, left) difference quotients of ``cost`` at 0 [EUR per unit / Δt = EUR/MWh]."""
    c0, cp, cm = cost(0.0), cost(delta), cost(-delta)
    return (cp - c0) / (delta * DT), (c0 - cm) / (delta * DT)


def _smooth(right, left):
    return abs(right - left) <= 1e-5 * max(1.0, abs(right))


def test_uniform_price_is_marginal_cost_of_need():
    """Balance dual / Δt = ∂ cost* / ∂ need_t [EUR/MWh] wherever the optimum is differentiable."""
    checked = 0
    for tag, lin, inst in _instances(20, 1, 60_000):
        out = make_scheme("CS_D", lin, LP).clear(inst, evaluate=False)
        for t in range(inst.horizon):

            def cost(d, t=t, lin=lin, inst=inst):
                need = inst.need_mw.copy()
                need[t] += d
                return reference_lp(lin, replace(inst, need_mw=need), LP).objective_eur

            right, left = _one_sided(cost, 1e-3)
            if not _smooth(right, left):
                continue  # kink: the dual is only a subgradient here
            price = out.uniform_price_eur_per_mwh[t]
            assert price == pytest.approx(right, rel=1e-5, abs=1e-4), (tag, t)
            checked += 1
    assert checked >= 20


def test_locational_price_is_marginal_value_of_injection():
    """bid_price [EUR/MWh injected at the bid's bus] = −∂ cost* / ∂(fixed injection there) / Δt."""
    checked = 0
    for tag, lin, inst in _instances(12, 1, 70_000):
        out = make_scheme("CS_D", lin, LP).clear(inst, evaluate=False)
        res = out.records[0].result
        b = inst.book
        for i in range(min(len(b), 4)):

            def cost(d, i=i, b=b, lin=lin, inst=inst):
                extra = ([b.bus[i]], [1], [b.period[i]], [d])
                return reference_lp(lin, inst, LP, extra=extra).objective_eur

            right, left = _one_sided(cost, 1e-3)
            if not _smooth(right, left):
                continue
            assert res.bid_price[i] == pytest.approx(-right, rel=1e-5, abs=1e-4), (tag, i)
            checked += 1
    assert checked >= 20


def test_pay_as_clear_and_pay_as_bid_settlement():
    """Pay-as-clear: Δt·min(direction·clip(bid_price, ±cap), highest offer activated in the bid's
    direction and period)·x; pay-as-bid: Δt·price·x."""
    cap = LP.price_cap_eur_per_mwh
    capped = 0
    for tag, lin, inst in _instances(10, 1, 80_000):
        out = make_scheme("CS_D", lin, LP).clear(inst, evaluate=False)
        res = out.records[0].result
        b = inst.book
        x = out.activated_mw
        paid_price = np.clip(res.bid_price, -cap, cap)
        top = np.array([max((b.price_eur_per_mwh[j] for j in range(len(b)) if x[j] > 1e-6
                             and b.direction[j] == b.direction[i] and b.period[j] == b.period[i]),
                            default=np.inf) for i in range(len(b))])
        np.testing.assert_allclose(
            out.payment_eur, DT * np.minimum(b.direction * paid_price, top) * x, rtol=1e-12, atol=1e-9
        )
        capped += int(((np.abs(res.bid_price) > cap) & (x > 1e-6)).sum())
        np.testing.assert_allclose(out.records[0].payment_eur, out.payment_eur, rtol=1e-12)
        np.testing.assert_allclose(out.true_cost_eur, DT * b.true_cost_eur_per_mwh * x, rtol=1e-12)
        # marginal pricing: a partly activated bid's locational price is exactly its price, a
        # fully activated one's at least its price, an unused one's at most (batteries excluded:
        # their SoC duals are part of their price)
        lmp = b.direction * res.bid_price
        plain = b.storage < 0
        q = b.qty_mw
        part = plain & (x > 1e-6) & (x < q - 1e-6)
        np.testing.assert_allclose(lmp[part], b.price_eur_per_mwh[part], rtol=1e-6, atol=1e-5)
        full = plain & (x >= q - 1e-6) & (q > 1e-6)
        assert (lmp[full] >= b.price_eur_per_mwh[full] - 1e-5).all(), tag
        unused = plain & (x <= 1e-6) & (q > 1e-6)
        assert (lmp[unused] <= b.price_eur_per_mwh[unused] + 1e-5).all(), tag
        # pay-as-clear (capped) is individually rational for truthful bidders (prices ≤ cap)
        floor = DT * b.price_eur_per_mwh[plain] * x[plain] - 1e-6
        assert (out.payment_eur[plain] >= floor).all(), tag
        pab = make_scheme("CS_D", lin, LP.model_copy(update={"settlement": "pay_as_bid"})).clear(
            inst, evaluate=False
        )
        np.testing.assert_allclose(
            pab.payment_eur, DT * b.price_eur_per_mwh * pab.activated_mw, rtol=1e-12, atol=1e-9
        )
    assert capped >= 1  # some instances price beyond the cap (a slack is marginal)
