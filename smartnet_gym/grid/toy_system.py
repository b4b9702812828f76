"""A tiny T&D system for tests and quick experiments, built with pandapower create functions.

Transmission ("HV1", 110 kV): 5 buses meshed by 6 overhead lines, one ext_grid (bus HV1 Bus 0),
two HV loads and two HV wind parks. Distribution ("MV1.101", 20 kV): one substation with **two
parallel** 25 MVA 110/20 kV OLTC transformers (hv side, ±9 × 1.5 %) feeding a radial overhead
feeder of 8 buses (2.5–4 km sections), 8 loads, 3 PV plants, 1 rooftop-PV aggregate and 1 wind
park. Bus ``subnet`` names follow SimBench, so the area logic is the same as for SimBench nets.

The feeder is sized to congest now and then: with the OLTC regulated for the annual-mean case,
the feeder end rises above 1.05 pu at sunny middays (see tests/grid/test_build.py).

Profiles are SimBench's own (read from the installed ``simbench`` package's CSV files,
scenario 2, only the columns used): 35,136 quarter-hours of 2016.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from smartnet_gym.grid.simbench_system import (
    GridParts,
    RelativeProfiles,
    apply_knobs,
    available_areas,
    find_areas,
)

if TYPE_CHECKING:
    from pandapower.auxiliary import pandapowerNet

    from smartnet_gym.config import GridConfig

# (bus, p_mw, q_mvar, SimBench load profile)
_HV_LOADS = ((2, 60.0, 15.0, "mv_add1"), (3, 40.0, 10.0, "hv_mixed1"))
# (bus, p_mw installed, type, SimBench RES profile)
_HV_WIND = ((2, 60.0, "Wind", "WP4"), (3, 40.0, "Wind", "WP7"))
# (from, to, length_km) of the 110 kV lines
_HV_LINES = ((0, 1, 20.0), (1, 2, 25.0), (2, 3, 20.0), (3, 4, 15.0), (4, 0, 30.0), (1, 3, 20.0))
_HV_SUBSTATION = 4
# MV feeder sections: (from, to, length_km); bus 0 is the substation busbar
_MV_LINES = ((0, 1, 4.0), (1, 2, 3.0), (2, 3, 3.0), (3, 4, 2.5), (4, 5, 2.5), (5, 6, 2.5),
             (6, 7, 2.5), (7, 8, 2.5))
_MV_LOADS = ((1, 1.2, 0.35, "G0-A"), (2, 0.8, 0.25, "H0-A"), (3, 1.0, 0.3, "L0-A"), (4, 0.6, 0.2, "H0-B"),
             (5, 0.9, 0.3, "G1-A"), (6, 0.5, 0.15, "H0-A"), (7, 0.7, 0.2, "lv_rural1"), (8, 0.6, 0.2, "L2-A"))
_MV_SGENS = ((4, 2.0, "PV_MV", "PV3"), (6, 3.0, "PV_MV", "PV5"), (8, 3.5, "PV_MV", "PV3"),
             (7, 1.5, "lv_RES", "lv_rural1"), (5, 2.0, "Wind_MV", "WP7"))
_SCENARIO_DIR = "1-complete_data-mixed-all-2-sw"


def _data_dir() -> Path:
    spec = importlib.util.find_spec("simbench")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the toy system takes its profiles from the 'simbench' package; install it")
    return Path(next(iter(spec.submodule_search_locations))) / "networks" / _SCENARIO_DIR


@functools.cache
def toy_profiles() -> RelativeProfiles:
    """SimBench relative profiles of the toy's elements (read once per process, ~0.6 s)."""
    loads = sorted({p for *_, p in _HV_LOADS + _MV_LOADS})
    res = sorted({p for *_, p in _HV_WIND + _MV_SGENS})
    lcols = [f"{p}_{x}load" for p in loads for x in "pq"]
    d = _data_dir()
    load = pd.read_csv(d / "LoadProfile.csv", sep=";", usecols=lcols, dtype=dict.fromkeys(lcols, "float32"))
    sgen = pd.read_csv(d / "RESProfile.csv", sep=";", usecols=res, dtype=dict.fromkeys(res, "float32"))
    return RelativeProfiles(load=load[lcols], sgen=sgen[res])


def toy_net() -> pandapowerNet:
    """A fresh copy of the toy pandapower net (taps neutral, elements at their profile scales)."""
    return copy.deepcopy(_toy_net())


@functools.cache
def _toy_net() -> pandapowerNet:  # create_empty_network alone takes ~0.7 s: build once per process
    import pandapower as pp

    net = pp.create_empty_network(name="smartnet_gym toy T&D system")
    hv = _add_level(net, "HV1", 110.0, 5, (0.9, 1.1), _HV_LINES, "149-AL1/24-ST1A 110.0", _HV_LOADS, _HV_WIND)
    pp.create_ext_grid(net, hv[0], vm_pu=1.02, name="HV1 slack")
    mv = _add_level(net, "MV1.101", 20.0, len(_MV_LINES) + 1, (0.965, 1.055), _MV_LINES,
                    "94-AL1/15-ST1A 20.0", _MV_LOADS, _MV_SGENS)
    for k in (1, 2):
        pp.create_transformer(net, hv[_HV_SUBSTATION], mv[0], "25 MVA 110/20 kV",
                              name=f"HV1-MV1.101-Trafo{k}", max_loading_percent=100.0, subnet="MV1.101")
    return net


def _add_level(net: pandapowerNet, subnet: str, vn_kv: float, n_bus: int, v_band: tuple[float, float],
               lines: tuple, line_type: str, loads: tuple, sgens: tuple) -> list[int]:
    """Buses, lines, loads and sgens of one subnet (SimBench-style names); returns the bus ids."""
    import pandapower as pp

    bus = [pp.create_bus(net, vn_kv, name=f"{subnet} Bus {i}", subnet=subnet, min_vm_pu=v_band[0],
                         max_vm_pu=v_band[1]) for i in range(n_bus)]
    for f, t, km in lines:
        pp.create_line(net, bus[f], bus[t], km, line_type, name=f"{subnet} Line {f}-{t}", subnet=subnet,
                       max_loading_percent=100.0)
    for b, p, q, prof in loads:
        pp.create_load(net, bus[b], p, q, name=f"{subnet} Load {b}", profile=prof, subnet=subnet)
    for b, p, typ, prof in sgens:
        pp.create_sgen(net, bus[b], p, sn_mva=p, name=f"{subnet} {typ} {b}", type=typ, profile=prof,
                       subnet=subnet)
    return bus


def build_toy_grid(grid: GridConfig) -> GridParts:
    """The toy system with the knobs of ``grid`` applied.

    ``grid.areas`` left at the SimBench default means "all toy areas" (i.e. MV1.101).
    """
    from smartnet_gym.config import GridConfig

    net = toy_net()
    names = tuple(grid.areas)
    if names == GridConfig.model_fields["areas"].default:
        names = tuple(available_areas(net))
    areas = find_areas(net, names)
    apply_knobs(net, areas, grid)
    return GridParts(name="toy", net=net, areas=areas, rel=toy_profiles())
