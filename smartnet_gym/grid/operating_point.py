"""The AC operating point a linear T&D model is evaluated around (:class:`LinearizationPoint`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

__all__ = ["LinearizationPoint"]

_EMPTY = np.zeros((0, 0))


@dataclass(frozen=True)
class LinearizationPoint:
    """AC results of the operating point a :class:`~smartnet_gym.grid.linear.LinearTD` is evaluated around.

    ``t_flow_mw`` (n_t_branch,): P at the ``branch_from`` end of each DC branch (line from-bus,
    trafo HV side). ``d_p_mw``/``d_q_mvar`` per area (n_d,): flows into each feeding branch at its
    parent end (downstream positive; summed over parallel members). ``d_w_pu2`` per area (n_d,):
    squared voltage magnitudes. ``inj_p_mw``/``inj_q_mvar`` (n_bus,): set-point injections of every
    pandapower bus (net.bus.index order, :func:`~smartnet_gym.grid.bus_vectors.bus_injections`) at which the point was taken.

    Transmission voltage coupling (optional, empty when not computed): the feeder roots are not
    infinitely stiff. ``root_t`` (n_r,) are the T-model positions feeding any feeder;
    ``root_dw_dp``/``root_dw_dq`` (n_r, n_t) the AC sensitivity of their squared voltage [pu²] to
    an injection of 1 MW / 1 Mvar at each T-model bus (zero at fixed buses), from the Jacobian of
    the point; ``d_root_scale`` per area (n_d,) carries a root's Δw into each D bus of its tree
    (``w_D,top / w_T,root`` at the point, ≈ 1/τ² of the substation transformer). With it,
    ``Δw_k = d_root_scale_k · Δw_root(k) − 2 Σ_path (r ΔP + x ΔQ)``.
    """

    t_flow_mw: np.ndarray
    d_p_mw: tuple[np.ndarray, ...]
    d_q_mvar: tuple[np.ndarray, ...]
    d_w_pu2: tuple[np.ndarray, ...]
    inj_p_mw: np.ndarray
    inj_q_mvar: np.ndarray
    root_t: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    root_dw_dp: np.ndarray = field(default_factory=lambda: _EMPTY)
    root_dw_dq: np.ndarray = field(default_factory=lambda: _EMPTY)
    d_root_scale: tuple[np.ndarray, ...] = ()

    @property
    def has_voltage_coupling(self) -> bool:
        """Whether the point carries the feeder roots' voltage sensitivities."""
        return len(self.root_t) > 0 and self.root_dw_dp.size > 0

    def without_voltage_coupling(self) -> LinearizationPoint:
        """The same point with stiff feeder roots (Δw at a T root = 0, the FeederModel contract)."""
        return replace(self, root_t=np.zeros(0, dtype=np.int64), root_dw_dp=_EMPTY, root_dw_dq=_EMPTY,
                       d_root_scale=())
