"""Each SimBench data fix of the default system (taps, HV equivalents, storage) is in place."""

from __future__ import annotations

import copy

import numpy as np
import pandapower as pp
import pytest

from smartnet_gym.grid.simbench_system import (
    STEPS_PER_YEAR,
    bus_prefix,
    hv_equivalents,
    load_simbench_net,
    step_of,
)

pytestmark = pytest.mark.slow


def _eq_mask(net, element):
    return hv_equivalents(net, element).to_numpy()


@pytest.mark.parametrize("element", ["load", "sgen"])
def test_kept_area_equivalents_out_of_service_others_in_service(default_system, element):
    net = default_system.net
    eq = net[element][_eq_mask(net, element)]
    for a in default_system.areas:
        own = eq[eq.bus.isin(a.interface_buses)]
        assert len(own) == 1, f"{a.name}: expected one HV equivalent {element}, found {len(own)}"
        assert not own.in_service.any(), f"{a.name}: its HV equivalent {element} still counts twice"
    kept_hv = {b for a in default_system.areas for b in a.interface_buses}
    others = eq[~eq.bus.isin(kept_hv)]
    # 1-HVMV-mixed-all: 15 MV grids, 4 kept detailed -> 11 represented by their equivalents
    assert len(others) == 11
    assert others.in_service.all()


def test_other_mv_areas_dropped(default_system):
    prefixes = set(bus_prefix(default_system.net))
    mv = {p for p in prefixes if p.startswith("MV")}
    assert mv == {a.name for a in default_system.areas}
    assert len(default_system.net.bus) == 845  # HVMV4-2sw has 845 buses
    net = default_system.net
    for el, cols in (("load", ["bus"]), ("sgen", ["bus"]), ("storage", ["bus"]),
                     ("line", ["from_bus", "to_bus"]), ("trafo", ["hv_bus", "lv_bus"])):
        for c in cols:
            assert net[el][c].isin(net.bus.index).all(), f"{el}.{c} refers to a dropped bus"


def test_tap_changer_type_set_and_taps_act(default_system):
    net = copy.deepcopy(default_system.net)
    tapped = net.trafo.tap_step_percent.notna()
    assert tapped.all() and (net.trafo.tap_changer_type[tapped] == "Ratio").all()
    a = default_system.areas[0]
    lv = int(net.trafo.lv_bus[a.interface_trafos[0]])
    pp.runpp(net, numba=False)
    v0 = net.res_bus.vm_pu[lv]
    net.trafo.loc[list(a.interface_trafos), "tap_pos"] += 2
    pp.runpp(net, numba=False)
    step = net.trafo.tap_step_percent[a.interface_trafos[0]] / 100
    assert v0 - net.res_bus.vm_pu[lv] == pytest.approx(2 * step * v0, rel=0.25)


def test_oltc_base_case_within_half_a_step(default_system, default_config):
    net = default_system.net
    iface = [t for a in default_system.areas for t in a.interface_trafos]
    for t in net.trafo.index:
        tr = net.trafo.loc[t]
        target = default_config.grid.mv_oltc_setpoint_pu if t in iface else default_config.grid.ehv_oltc_setpoint_pu
        v = net.res_bus.vm_pu[tr.lv_bus]
        at_limit = tr.tap_pos in (tr.tap_min, tr.tap_max)
        assert at_limit or abs(v - target) <= tr.tap_step_percent / 200 + 1e-3, f"trafo {t}: {v:.4f} pu"


def test_storage_power_zero(default_system):
    st = default_system.net.storage
    assert len(st) > 0
    assert (st.p_mw == 0).all() and (st.q_mvar == 0).all()


def test_profile_steps_and_dst():
    raw = load_simbench_net("1-HVMV-mixed-all-2-sw", ("MV1.101", "MV2.101", "MV3.101", "MV4.101"))
    time = raw.profiles["load"]["time"]
    assert len(time) == STEPS_PER_YEAR == 35_136
    # local time with DST: the 4 quarter-hours of 30 Oct 02:00-02:45 appear twice -> never index by time
    assert time.duplicated().sum() == 4
    assert time.iloc[step_of(0, 0)] == "01.01.2016 00:00"
    # steps run in standard time (CET): in summer SimBench's local stamps read one hour later
    assert time.iloc[step_of(182, 48)] == "01.07.2016 13:00"
    assert time.iloc[step_of(359, 48)] == "25.12.2016 12:00"
    assert step_of(365, 95) == STEPS_PER_YEAR - 1
    with pytest.raises(ValueError, match="quarter_hour"):
        step_of(0, 96)


def test_profiles_equal_simbench_absolute_values(default_system):
    """abs = p_mw × rel[profile] reproduces simbench.get_absolute_values (default knobs = 1)."""
    import simbench as sb

    s = default_system
    assert s.profiles.n_steps == STEPS_PER_YEAR
    rng = np.random.default_rng(1)
    lpos = np.r_[0, rng.choice(len(s.load_idx), size=15, replace=False)]
    spos = np.r_[0, rng.choice(len(s.sgen_idx), size=15, replace=False)]
    raw = load_simbench_net("1-HVMV-mixed-all-2-sw", ("MV1.101", "MV2.101", "MV3.101", "MV4.101"))
    # simbench computes per element: restrict the raw net to the sampled ones (seconds -> ms)
    raw.load = raw.load.loc[s.load_idx[lpos]]
    raw.sgen = raw.sgen.loc[s.sgen_idx[spos]]
    raw.storage = raw.storage.iloc[:0]
    ref = sb.get_absolute_values(raw, profiles_instead_of_study_cases=True)
    steps = np.array([0, step_of(182, 50), step_of(300, 10), STEPS_PER_YEAR - 1])
    for key, pos, ours in ((("load", "p_mw"), lpos, s.profiles.load_p), (("load", "q_mvar"), lpos, s.profiles.load_q),
                           (("sgen", "p_mw"), spos, s.profiles.sgen_p)):
        idx = (s.load_idx if key[0] == "load" else s.sgen_idx)[pos]
        expect = ref[key].loc[steps, idx].to_numpy()
        assert np.abs(expect).max() > 0
        np.testing.assert_allclose(ours(steps)[:, pos], expect, rtol=1e-6, atol=1e-9)
