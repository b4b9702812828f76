"""build_system: areas and interfaces, units, profiles alignment, knobs, bad inputs, the cache."""

from __future__ import annotations

import numpy as np
import pandapower as pp
import pytest
from pandapower.toolbox import nets_equal

from smartnet_gym.config import FlexConfig, GridConfig, ScenarioConfig, load_scenario
from smartnet_gym.errors import ConfigError, UnknownNameError
from smartnet_gym.grid import build, cache
from smartnet_gym.grid.build import build_system, system_cache_key
from smartnet_gym.grid.simbench_system import FLEX_PREFIX, bus_prefix, set_oltc_taps
from smartnet_gym.grid.system import TDSystem, UnitKind

SYSTEMS = ["toy_system", pytest.param("default_system", marks=pytest.mark.slow)]


@pytest.fixture(params=SYSTEMS)
def system(request) -> TDSystem:
    return request.getfixturevalue(request.param)


# ----------------------------------------------------------------------------- areas

def test_area_buses_are_the_subnet_buses(system):
    net = system.net
    prefix = bus_prefix(net)
    for i, a in enumerate(system.areas):
        assert a.index == i and a.dso == f"DSO{i + 1}"
        assert set(a.buses) == set(net.bus.index[prefix == a.name])
        assert (net.bus.vn_kv[a.buses] < 60).all()


def test_interface_trafos_connect_t_to_area(system):
    net = system.net
    for a in system.areas:
        assert a.interface_trafos, a.name
        tr = net.trafo.loc[list(a.interface_trafos)]
        assert tr.lv_bus.isin(a.buses).all()
        assert set(tr.hv_bus) == set(a.interface_buses)
        assert not set(a.interface_buses) & {int(b) for x in system.areas for b in x.buses}
        # every trafo feeding the area from outside is an interface trafo
        feeding = net.trafo.index[net.trafo.lv_bus.isin(a.buses) & ~net.trafo.hv_bus.isin(a.buses)]
        assert set(feeding) == set(a.interface_trafos)


def test_toy_has_two_parallel_interface_trafos(toy_system):
    (a,) = toy_system.areas
    tr = toy_system.net.trafo.loc[list(a.interface_trafos)]
    assert len(tr) == 2 and tr.hv_bus.nunique() == 1 and tr.lv_bus.nunique() == 1


@pytest.mark.slow
def test_default_system_shape(default_system):
    assert default_system.name == "HVMV4-2sw"
    assert [a.name for a in default_system.areas] == ["MV1.101", "MV2.101", "MV3.101", "MV4.101"]
    assert default_system.n_areas >= 3
    assert len(default_system.areas[2].interface_trafos) == 2  # MV3: split busbar, one trafo per half


# ----------------------------------------------------------------------------- units

def test_units_sit_in_their_area(system):
    u = system.units
    area_bus = {int(b) for a in system.areas for b in a.buses}
    for i in range(len(u)):
        if u.area[i] >= 0:
            assert u.bus[i] in system.areas[u.area[i]].buses, u.name[i]
        else:
            assert u.bus[i] not in area_bus and u.bus[i] in system.net.bus.index, u.name[i]


def test_units_match_their_elements(system):
    u, p, net = system.units, system.profiles, system.net
    assert len(set(u.name)) == len(u)
    for i in range(len(u)):
        kind = UnitKind(u.kind[i])
        if u.element[i] == "sgen":
            assert kind in (UnitKind.PV, UnitKind.WIND)
            assert system.sgen_bus[u.element_idx[i]] == u.bus[i]
            assert system.sgen_kind[u.element_idx[i]] == kind
            assert u.p_rated_mw[i] == pytest.approx(p.sgen_p_mw[u.element_idx[i]])
        elif u.element[i] == "load":
            assert kind == UnitKind.LOAD
            assert system.load_bus[u.element_idx[i]] == u.bus[i]
        else:
            assert kind in (UnitKind.STORAGE, UnitKind.GENERATOR) and u.element_idx[i] == -1
        sg = net.sgen.loc[u.flex_sgen[i]]
        assert sg["name"] == FLEX_PREFIX + u.name[i] and sg.bus == u.bus[i]
        assert sg.p_mw == 0 and sg.q_mvar == 0 and sg.in_service
    assert (u.p_rated_mw > 0).all()
    st = u.kind == UnitKind.STORAGE
    assert (u.energy_mwh[st] > 0).all() and (u.soc0[st] == 0.5).all() and (u.energy_mwh[~st] == 0).all()


def test_unit_counts_and_costs(toy_config, toy_system):
    s = toy_system
    f = toy_config.flex
    u = s.units
    kinds = [UnitKind(k) for k in u.kind]
    d = u.area >= 0
    assert sum(k == UnitKind.PV for k in kinds) == f.pv_units_per_area  # toy has >= 2 PV plants
    assert sum(k == UnitKind.GENERATOR for k in kinds) == f.t_generators
    assert sum((k == UnitKind.WIND) and a < 0 for k, a in zip(kinds, u.area, strict=True)) == f.t_wind_units
    lo, hi = f.cost_up_eur_per_mwh
    assert ((u.cost_up_eur_per_mwh >= lo * np.where(d, f.d_cost_markup, 1))
            & (u.cost_up_eur_per_mwh <= hi * np.where(d, f.d_cost_markup, 1))).all()
    # the largest PV plant is the first PV unit
    pv = np.flatnonzero(s.sgen_kind == UnitKind.PV)
    first = u.element_idx[u.name.index("MV1.101/PV/0")]
    assert s.profiles.sgen_p_mw[first] == s.profiles.sgen_p_mw[pv].max()


def test_seed_and_markup_change_costs_only(toy_config, toy_system):
    a = toy_system
    b = build_system(toy_config, use_cache=False)
    np.testing.assert_array_equal(a.units.cost_up_eur_per_mwh, b.units.cost_up_eur_per_mwh)
    c = build_system(load_scenario(toy_config, {"seed": 7, "flex": {"d_cost_markup": 2.0}}), use_cache=False)
    assert not np.array_equal(a.units.cost_up_eur_per_mwh, c.units.cost_up_eur_per_mwh)
    assert c.units.name[:3] == a.units.name[:3]


def test_fewer_candidates_than_asked(toy_config):
    cfg = load_scenario(toy_config, {"flex": {"pv_units_per_area": 50, "wind_units_per_area": 9,
                                              "t_wind_units": 9, "storage_per_area": 50}})
    s = build_system(cfg)
    kinds = s.units.kind
    assert (kinds == UnitKind.PV).sum() == 4          # 3 PV plants + 1 rooftop aggregate
    assert (kinds == UnitKind.WIND).sum() == 1 + 2    # 1 MV wind park + 2 HV wind parks
    assert (kinds == UnitKind.STORAGE).sum() == 8     # one per load bus of the feeder


# ----------------------------------------------------------------------------- profiles and net

def test_profiles_align_with_net(system):
    net, p = system.net, system.profiles
    assert len(system.load_idx) == len(system.load_bus) == len(p.load_p_mw) == len(p.load_profile)
    assert len(system.sgen_idx) == len(system.sgen_bus) == len(p.sgen_p_mw) == len(p.sgen_profile)
    np.testing.assert_array_equal(net.load.bus[system.load_idx].to_numpy(), system.load_bus)
    np.testing.assert_array_equal(net.sgen.bus[system.sgen_idx].to_numpy(), system.sgen_bus)
    assert set(system.load_idx) == set(net.load.index[net.load.in_service])
    flex = net.sgen.name.astype(str).str.startswith(FLEX_PREFIX)
    assert set(system.sgen_idx) == set(net.sgen.index[net.sgen.in_service & ~flex])
    assert p.n_steps == 35_136
    assert p.load_rel_p.dtype == np.float32 and p.sgen_rel.dtype == np.float32
    wind = net.sgen.profile[system.sgen_idx].astype(str).str.startswith("WP").to_numpy()
    np.testing.assert_array_equal(system.sgen_kind == UnitKind.WIND, wind)


def test_net_has_base_case_results(system):
    net = system.net
    assert net.converged
    assert len(net.res_bus) == len(net.bus) and net.res_bus.vm_pu.notna().all()
    assert len(net.res_sgen) == len(net.sgen)
    assert len(net.controller) == 0  # OLTCs are set by set_oltc_taps, not by controllers


def test_linear_model(system):
    lin = system.linear
    assert len(lin.feeders) == system.n_areas
    for f, a in zip(lin.feeders, system.areas, strict=True):
        assert set(f.bus) <= set(a.buses)


def test_toy_feeder_congests_at_sunny_middays(toy_system):
    """With fixed base-case taps, the toy feeder leaves [0.95, 1.05] pu at some summer middays."""
    import copy

    s = copy.deepcopy(toy_system)
    net, p = s.net, s.profiles
    a = s.areas[0]
    steps = [d * 96 + 48 for d in range(150, 240, 8)]
    over = 0
    for t in steps:
        net.load.loc[s.load_idx, "p_mw"] = p.load_p(t)
        net.load.loc[s.load_idx, "q_mvar"] = p.load_q(t)
        net.sgen.loc[s.sgen_idx, "p_mw"] = p.sgen_p(t)
        pp.runpp(net, numba=False)
        over += net.res_bus.vm_pu[a.buses].max() > 1.05
    assert 0 < over < len(steps)


def test_set_oltc_taps_follows_setpoint(toy_system):
    import copy

    s = copy.deepcopy(toy_system)
    net = s.net
    (a,) = s.areas
    lv = int(net.trafo.lv_bus[a.interface_trafos[0]])
    for target in (0.99, 1.04):
        set_oltc_taps(net, s.areas, target, 1.02)
        assert abs(net.res_bus.vm_pu[lv] - target) <= 0.0075 + 1e-6
    assert net.trafo.tap_pos.nunique() == 1  # the parallel pair moves together


def test_knobs_scale_capacity_and_ratings(toy_config, toy_system):
    s2 = build_system(load_scenario(toy_config, {"grid": {
        "pv_scale": 2.0, "mv_wind_scale": 3.0, "hv_wind_scale": 0.5,
        "mv_line_rating_factor": 0.5, "hv_line_rating_factor": 2.0, "v_max_pu": 1.04}}))
    s1 = toy_system
    typ = s1.net.sgen.type[s1.sgen_idx].to_numpy()
    ratio = s2.profiles.sgen_p_mw / s1.profiles.sgen_p_mw
    np.testing.assert_allclose(ratio[np.isin(typ, ["PV_MV", "lv_RES"])], 2.0)
    np.testing.assert_allclose(ratio[typ == "Wind_MV"], 3.0)
    np.testing.assert_allclose(ratio[typ == "Wind"], 0.5)
    mv = s1.net.line.from_bus.isin(s1.areas[0].buses)
    r = s2.net.line.max_i_ka / s1.net.line.max_i_ka
    np.testing.assert_allclose(r[mv], 0.5)
    np.testing.assert_allclose(r[~mv], 2.0)
    np.testing.assert_allclose(s2.net.bus.max_vm_pu[s2.areas[0].buses], 1.04)
    np.testing.assert_array_equal(s2.profiles.load_p_mw, s1.profiles.load_p_mw)


# ----------------------------------------------------------------------------- bad inputs

def test_unknown_simbench_code_lists_allowed():
    cfg = ScenarioConfig(grid=GridConfig(simbench_code="1-HVMV-mixed-all-3-sw"))
    with pytest.raises(UnknownNameError, match="1-HVMV-mixed-all-2-sw") as e:
        build_system(cfg)
    assert "Did you mean" in str(e.value)


def test_non_hvmv_code_is_a_config_error():
    with pytest.raises(ConfigError, match="not supported.*Allowed: .*1-HVMV-"):
        build_system(ScenarioConfig(grid=GridConfig(simbench_code="1-MV-rural--0-sw")))


def test_unknown_area_lists_allowed():
    with pytest.raises(UnknownNameError, match="MV1.108") as e:
        build_system(ScenarioConfig(grid=GridConfig(areas=("MV1.101", "MV9.101"))))
    assert "MV9.101" in str(e.value) and "MV4.101" in str(e.value)
    with pytest.raises(UnknownNameError, match="Allowed: MV1.101"):
        build_system(load_scenario("toy", {"grid": {"areas": ["MV2.101"]}}))


def test_missing_json_file(tmp_path):
    cfg = ScenarioConfig(grid=GridConfig(source="pandapower_json", pandapower_json=str(tmp_path / "no.json")))
    with pytest.raises(ConfigError, match="does not exist"):
        build_system(cfg)


def test_pandapower_json_source(tmp_path, toy_config):
    from smartnet_gym.grid.toy_system import toy_net

    path = tmp_path / "net.json"
    pp.to_json(toy_net(), str(path))
    cfg = load_scenario(toy_config, {"grid": {"source": "pandapower_json", "pandapower_json": str(path)}})
    s = build_system(cfg, use_cache=False)
    assert s.name == "net" and [a.name for a in s.areas] == ["MV1.101"]
    assert s.profiles.load_rel_p.shape[1] == 1  # no time series in the file: constant profiles
    np.testing.assert_allclose(s.profiles.load_p(5), s.profiles.load_p_mw)


# ----------------------------------------------------------------------------- cache

def _same_system(a: TDSystem, b: TDSystem) -> None:
    assert a.name == b.name and len(a.units) == len(b.units) and a.units.name == b.units.name
    for f in ("kind", "bus", "area", "element_idx", "p_rated_mw", "cost_up_eur_per_mwh", "flex_sgen"):
        np.testing.assert_array_equal(getattr(a.units, f), getattr(b.units, f))
    for x, y in zip(a.areas, b.areas, strict=True):
        assert (x.name, x.interface_buses, x.interface_trafos) == (y.name, y.interface_buses, y.interface_trafos)
        np.testing.assert_array_equal(x.buses, y.buses)
    np.testing.assert_array_equal(a.profiles.sgen_rel, b.profiles.sgen_rel)
    np.testing.assert_array_equal(a.load_idx, b.load_idx)
    assert nets_equal(a.net, b.net)


def _forbid_building(monkeypatch) -> None:
    """Make a cache miss fail the test: the system must be loaded from the cache file."""
    def rebuilt(cfg):
        raise AssertionError(f"cache miss: {cfg.name} was built again")
    monkeypatch.setattr(build, "_build", rebuilt)


def test_cache_hit_equal_and_not_rebuilt(tmp_path, monkeypatch, toy_config):
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path))
    first = build_system(toy_config)
    files = list(tmp_path.iterdir())
    assert [f.name for f in files] == [system_cache_key(toy_config)]  # no temporary file left
    _forbid_building(monkeypatch)
    again = build_system(toy_config)
    assert again is not first
    _same_system(first, again)


@pytest.mark.slow
def test_default_cache_hit_not_rebuilt(default_system, default_config, monkeypatch):
    _forbid_building(monkeypatch)
    again = build_system(default_config)
    assert again.units.name == default_system.units.name
    np.testing.assert_array_equal(again.units.bus, default_system.units.bus)


def test_cache_key_depends_on_grid_flex_seed(toy_config):
    keys = {system_cache_key(c) for c in (
        toy_config,
        load_scenario(toy_config, {"seed": 1}),
        load_scenario(toy_config, {"flex": {"t_generators": 1}}),
        load_scenario(toy_config, {"grid": {"pv_scale": 1.5}}))}
    assert len(keys) == 4
    # market / simulation settings do not change the system
    assert system_cache_key(load_scenario(toy_config, {"market": {"horizon_periods": 8}})) == system_cache_key(toy_config)


def test_corrupt_cache_file_is_rebuilt(tmp_path, monkeypatch, toy_config):
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path))
    (tmp_path / system_cache_key(toy_config)).write_bytes(b"not a pickle")
    s = build_system(toy_config)
    assert isinstance(s, TDSystem)
    assert isinstance(cache.load(system_cache_key(toy_config)), TDSystem)


def test_flex_config_counts_validate():
    with pytest.raises(ValueError):
        FlexConfig(pv_units_per_area=-1)
