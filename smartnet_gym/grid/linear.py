"""Linear network models in sparse explicit form: DC for transmission, LinDistFlow per radial area.

These are the constant structures the clearing programs are built from (docs/model.md). Units:
power in MW / Mvar, angles in rad, squared voltages in pu², impedances in pu on a 1 MVA base
(so that Δw = -2 (r ΔP + x ΔQ) with ΔP in MW). Flows are incremental around a linearisation
point taken from an AC power flow; base values per horizon period are given separately as
:class:`BaseState`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class DCModel:
    """Incremental DC model of the transmission grid: B_red Δθ = Δp, Δf = b (Δθ_from - Δθ_to).

    Buses with ``fixed`` True (the external grids) keep Δθ = 0 and absorb any imbalance.
    """

    bus: np.ndarray            # (n_t,) pandapower bus id represented by each T-model bus
    fixed: np.ndarray          # (n_t,) bool, θ fixed (slack buses)
    branch_from: np.ndarray    # (n_br,) T-model bus position
    branch_to: np.ndarray      # (n_br,) T-model bus position
    branch_b_mw: np.ndarray    # (n_br,) susceptance [MW/rad]
    rating_mw: np.ndarray      # (n_br,) flow limit [MW]; np.inf = unlimited
    branch_element: tuple[tuple[str, int], ...] = ()  # ("line"|"trafo", pandapower index)

    @property
    def n_bus(self) -> int:
        return len(self.bus)

    @property
    def n_branch(self) -> int:
        return len(self.branch_from)

    def flow_matrix(self) -> sp.csr_matrix:
        """Bf (n_br × n_t): Δf = Bf Δθ [MW]."""
        n = self.n_branch
        rows = np.r_[np.arange(n), np.arange(n)]
        cols = np.r_[self.branch_from, self.branch_to]
        vals = np.r_[self.branch_b_mw, -self.branch_b_mw]
        return sp.csr_matrix((vals, (rows, cols)), shape=(n, self.n_bus))

    def susceptance_matrix(self) -> sp.csr_matrix:
        """B (n_t × n_t) with Δp = B Δθ [MW]."""
        bf = self.flow_matrix()
        a = sp.csr_matrix((np.r_[np.ones(self.n_branch), -np.ones(self.n_branch)],
                           (np.r_[np.arange(self.n_branch), np.arange(self.n_branch)],
                            np.r_[self.branch_from, self.branch_to])), shape=(self.n_branch, self.n_bus))
        return (a.T @ bf).tocsr()


@dataclass(frozen=True)
class FeederModel:
    """LinDistFlow of one radial distribution area (a forest; each tree hangs off a T bus).

    Branch k feeds D bus k from its parent (``parent[k]`` ≥ 0, a D bus) or from the
    transmission bus ``root_t[k]`` (when ``parent[k] == -1``). Flows are positive downstream.
    Parallel substation transformers are already replaced by their equivalent.
        Σ_children ΔP_c − ΔP_k = Δp_k      (nodal balance at D bus k, injections positive)
        Δw_k = Δw_parent(k) − 2 (r_k ΔP_k + x_k ΔQ_k),  Δw at a T root = 0
    """

    area: int
    bus: np.ndarray            # (n_d,) pandapower bus id of each D bus
    parent: np.ndarray         # (n_d,) parent D position or -1 (fed from a T bus)
    root_t: np.ndarray         # (n_d,) T-model position of the feeding T bus, -1 if parent >= 0
    r_pu: np.ndarray           # (n_d,) series resistance of the feeding branch [pu, 1 MVA base]
    x_pu: np.ndarray           # (n_d,) series reactance of the feeding branch [pu, 1 MVA base]
    rating_mva: np.ndarray     # (n_d,) limit of the feeding branch [MVA]; np.inf = unlimited
    v_min_pu: np.ndarray       # (n_d,) lower voltage limit [pu]
    v_max_pu: np.ndarray       # (n_d,) upper voltage limit [pu]
    branch_element: tuple[tuple[str, int], ...] = ()  # ("line"|"trafo"|"trafo_eq", pandapower index)
    # all pandapower elements forming each feeding branch (several for a parallel equivalent;
    # "trafo_eq"/"line_eq" name the first of them); added by grid.linear_build
    branch_members: tuple[tuple[tuple[str, int], ...], ...] = ()

    @property
    def n_bus(self) -> int:
        return len(self.bus)

    def root_of_bus(self) -> np.ndarray:
        """(n_d,) T-model position of the bus feeding the tree each D bus belongs to."""
        root = np.where(self.parent < 0, self.root_t, -1)
        par = self.parent.copy()
        while (root < 0).any():   # pointer jumping: log(depth) rounds
            k = root < 0
            root[k] = root[par[k]]
            par[k] = par[par[k]]
        return root

    def incidence(self) -> sp.csr_matrix:
        """C (n_d × n_d): Δp = C ΔP, i.e. Σ_children ΔP − ΔP_own at each D bus."""
        n = self.n_bus
        child = np.flatnonzero(self.parent >= 0)
        rows = np.r_[np.arange(n), self.parent[child]]
        cols = np.r_[np.arange(n), child]
        vals = np.r_[-np.ones(n), np.ones(len(child))]
        return sp.csr_matrix((vals, (rows, cols)), shape=(n, n))

    def voltage_matrix(self) -> sp.csr_matrix:
        """M (n_d × n_d) with M Δw = -2 (r ΔP + x ΔQ): Δw_k − Δw_parent(k)."""
        n = self.n_bus
        child = np.flatnonzero(self.parent >= 0)
        rows = np.r_[np.arange(n), child]
        cols = np.r_[np.arange(n), self.parent[child]]
        vals = np.r_[np.ones(n), -np.ones(len(child))]
        return sp.csr_matrix((vals, (rows, cols)), shape=(n, n))


@dataclass(frozen=True)
class RootCoupling:
    """How activations move the voltage of the feeder roots (the T buses feeding the areas).

    ``Δw_root = dw_dp · Δp + dw_dq · Δq`` with the net injection changes at every T-model bus (a D
    injection reaches T at its tree's root); a root's Δw reaches the top D bus of each tree it
    feeds times ``top_scale`` (≈ 1/τ² of the substation transformer) and, from there, every bus
    below. Taken once from the AC Jacobian of the model's base power flow, so the clearing
    programs stay built once; ``LinearizationPoint`` carries the same quantities per point.
    """

    roots: np.ndarray                  # (n_r,) T-model positions feeding any feeder, sorted
    dw_dp: np.ndarray                  # (n_r, n_t) d(V²)/dP [pu²/MW]; 0 at fixed buses
    dw_dq: np.ndarray                  # (n_r, n_t) d(V²)/dQ [pu²/Mvar] (base states; bids are P only)
    top_scale: tuple[np.ndarray, ...]  # per area (n_d,): factor of the tree root's Δw at each D bus


@dataclass(frozen=True)
class LinearTD:
    """The linear T&D model: one DC transmission model and one LinDistFlow model per area."""

    dc: DCModel
    feeders: tuple[FeederModel, ...]
    # pandapower bus id -> (area, position): area -1 = transmission (position in dc.bus)
    bus_area: dict[int, int] = field(default_factory=dict)
    bus_pos: dict[int, int] = field(default_factory=dict)
    # pandapower bus ids in net.bus.index order: injection vectors given to grid.sensitivity
    # (base_state, activation_response) are indexed by position in this array
    net_bus: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # the feeder roots' voltages as activations move them; None: roots held (Δw = 0)
    root_coupling: RootCoupling | None = None

    def locate(self, buses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(area, position) of each pandapower bus id; raises KeyError naming an unknown bus."""
        buses = np.asarray(buses, dtype=np.int64)
        last = self.__dict__.get("_last_located")   # the stages of one clearing ask for the same book
        if last is not None and np.array_equal(last[0], buses):
            return last[1].copy(), last[2].copy()
        keys, area, pos = self._lookup()
        i = np.minimum(np.searchsorted(keys, buses), len(keys) - 1)
        bad = keys[i] != buses if len(keys) else np.ones(len(buses), bool)
        if bad.any():
            raise KeyError(f"bus {int(buses[np.flatnonzero(bad)[0]])} is not part of the linear T&D model")
        self.__dict__["_last_located"] = (buses.copy(), area[i], pos[i])
        return area[i], pos[i]

    def _lookup(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sorted bus ids with their area and position (built once; the maps never change)."""
        cached = self.__dict__.get("_lookup_arrays")
        if cached is None:
            keys = np.array(sorted(self.bus_area), dtype=np.int64)
            cached = (keys, np.array([self.bus_area[int(k)] for k in keys], dtype=int),
                      np.array([self.bus_pos[int(k)] for k in keys], dtype=int))
            object.__setattr__(self, "_lookup_arrays", cached)   # frozen dataclass: cache only
        return cached


@dataclass(frozen=True)
class BaseState:
    """Base values around which activations are cleared, per horizon period (H first axis).

    ``t_flow_mw``: (H, n_t_branch) transmission flows without activations.
    ``d_p_mw``/``d_q_mvar``: per area (H, n_d) feeding-branch flows; ``d_w_pu2``: per area (H, n_d)
    squared voltages.

    Treat it as immutable, arrays included: a clearing program keeps the vectors it filled for a
    state (``market.clearing.ClearingProgram.vectors``); a changed state is a new object.
    """

    t_flow_mw: np.ndarray
    d_p_mw: tuple[np.ndarray, ...]
    d_q_mvar: tuple[np.ndarray, ...]
    d_w_pu2: tuple[np.ndarray, ...]

    @property
    def horizon(self) -> int:
        return self.t_flow_mw.shape[0]

    def first_period(self, increment=None) -> BaseState:
        """The first period alone, plus a one-period increment of the same layout if given
        (a :class:`~smartnet_gym.grid.sensitivity.LinearIncrement`)."""
        if increment is None:
            return BaseState(self.t_flow_mw[:1], *(tuple(x[:1] for x in xs)
                                                   for xs in (self.d_p_mw, self.d_q_mvar, self.d_w_pu2)))
        return BaseState(self.t_flow_mw[:1] + increment.t_flow_mw, *(
            tuple(x[:1] + dx for x, dx in zip(xs, dxs, strict=True))
            for xs, dxs in ((self.d_p_mw, increment.d_p_mw), (self.d_q_mvar, increment.d_q_mvar),
                            (self.d_w_pu2, increment.d_w_pu2))))

    def first_period_moved(self, seen: BaseState, modelled: BaseState) -> BaseState:
        """All periods, the first moved by ``seen − modelled`` (one-period states of this layout): the
        base corrected where a power flow of the first period (``seen``) differs from the linear
        model's (``modelled``) at the same set-points."""
        def move(x: np.ndarray, s: np.ndarray, m: np.ndarray) -> np.ndarray:
            out = x.copy()
            out[0] += s[0] - m[0]
            return out
        return BaseState(move(self.t_flow_mw, seen.t_flow_mw, modelled.t_flow_mw), *(
            tuple(move(x, s, m) for x, s, m in zip(xs, ss, ms, strict=True))
            for xs, ss, ms in ((self.d_p_mw, seen.d_p_mw, modelled.d_p_mw),
                               (self.d_q_mvar, seen.d_q_mvar, modelled.d_q_mvar),
                               (self.d_w_pu2, seen.d_w_pu2, modelled.d_w_pu2))))
