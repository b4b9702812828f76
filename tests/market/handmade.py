"""Small hand-built linear T&D models for market tests (independent of SimBench)."""

from __future__ import annotations

import numpy as np

from smartnet_gym.grid.linear import BaseState, DCModel, FeederModel, LinearTD


def three_bus_td(line_rating_mw: float = 100.0, feeder_rating_mva: float = 50.0) -> LinearTD:
    """T: buses 0 (slack), 1, 2 in a triangle of equal lines; area 0: buses 10 -> 11 hanging off T bus 2."""
    dc = DCModel(bus=np.array([0, 1, 2]), fixed=np.array([True, False, False]),
                 branch_from=np.array([0, 1, 0]), branch_to=np.array([1, 2, 2]),
                 branch_b_mw=np.array([1000.0, 1000.0, 1000.0]),
                 rating_mw=np.array([line_rating_mw, line_rating_mw, line_rating_mw]),
                 branch_element=(("line", 0), ("line", 1), ("line", 2)))
    fd = FeederModel(area=0, bus=np.array([10, 11]), parent=np.array([-1, 0]), root_t=np.array([2, -1]),
                     r_pu=np.array([0.001, 0.004]), x_pu=np.array([0.002, 0.004]),
                     rating_mva=np.array([feeder_rating_mva, feeder_rating_mva]),
                     v_min_pu=np.array([0.95, 0.95]), v_max_pu=np.array([1.05, 1.05]),
                     branch_element=(("trafo", 0), ("line", 3)))
    bus_area = {0: -1, 1: -1, 2: -1, 10: 0, 11: 0}
    bus_pos = {0: 0, 1: 1, 2: 2, 10: 0, 11: 1}
    return LinearTD(dc=dc, feeders=(fd,), bus_area=bus_area, bus_pos=bus_pos)


def flat_base(lin: LinearTD, horizon: int, v_pu: float = 1.0) -> BaseState:
    """Base state with zero flows and flat voltages."""
    return BaseState(t_flow_mw=np.zeros((horizon, lin.dc.n_branch)),
                     d_p_mw=tuple(np.zeros((horizon, f.n_bus)) for f in lin.feeders),
                     d_q_mvar=tuple(np.zeros((horizon, f.n_bus)) for f in lin.feeders),
                     d_w_pu2=tuple(np.full((horizon, f.n_bus), v_pu ** 2) for f in lin.feeders))
