"""The default T&D system from SimBench ("HVMV4-2sw") and the net helpers every grid source shares.

Recipe, from one ``1-HVMV-*`` code:

1. Load the code (validated against ``simbench.collect_all_simbench_codes()``) and take its
   relative profiles **before** any modification.
2. ``tap_changer_type = "Ratio"`` wherever ``tap_step_percent`` is set: SimBench leaves it None
   and pandapower 3 then ignores ``tap_pos`` altogether.
3. The kept MV areas' HV equivalents (load + sgen named ``HVx_MVy_eq`` at the HV bus of the area's
   substation) go out of service: SimBench keeps them next to the detailed grid, counting every
   MV grid twice. The other MV areas' buses are dropped with their elements; **their**
   equivalents stay in service and represent them (within 0.2 % of HV line loading).
4. Storage p = 0: SimBench's storage profile sign is dubious (discharging at the PV peak); flexibility from batteries is modelled by the flex units instead.
5. Knobs from :class:`~smartnet_gym.config.GridConfig`: PV / MV wind / HV wind scale, MV / HV line
   rating factor, D voltage band written to the area buses' ``min_vm_pu``/``max_vm_pu``.
6. OLTCs without pandapower controllers: :func:`set_oltc_taps` moves the HV/MV and EHV/HV taps
   once for the base case (the physical layer may call it again).

Areas are ``bus.subnet.split("_")[0]`` prefixes whose buses are all below 60 kV (MV/LV).

Time base: profiles have 35,136 integer steps (2016, leap year, 15 min). SimBench's ``time``
column is local time with DST (4 duplicated stamps in October, a gap in March): never index
profiles by timestamp, use :func:`step_of`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from smartnet_gym.data.profiles import STEPS_PER_DAY, ProfileSet
from smartnet_gym.errors import ConfigError, UnknownNameError, did_you_mean
from smartnet_gym.grid.power_flow import run_ac
from smartnet_gym.grid.system import Area

if TYPE_CHECKING:
    from pandapower.auxiliary import pandapowerNet

    from smartnet_gym.config import GridConfig

log = logging.getLogger(__name__)

STEPS_PER_YEAR = 35_136          # 366 days × 96 quarter-hours of 2016
AREA_MAX_KV = 60.0               # a distribution area's buses are all below this [kV]
SUPPORTED_PREFIX = "1-HVMV-"     # SimBench codes with a meshed HV grid and attached MV areas
CONST_PROFILE = "const"          # column of ones for elements without a SimBench profile
FLEX_PREFIX = "flex:"            # name prefix of the sgens that carry unit activations


def step_of(day: int, quarter_hour: int) -> int:
    """Profile step of quarter-hour ``quarter_hour`` (0..95) on ``day`` (0..365) of 2016.

    Steps count quarter-hours from 1 Jan 2016 00:00 in standard time (CET), 96 per day: SimBench's
    rows are equidistant, while its ``time`` column is local time with DST (an hour later from
    the end of March to the end of October, 4 stamps repeated on 30 Oct). Never build a
    DatetimeIndex from that column.
    """
    if not 0 <= int(day) < STEPS_PER_YEAR // STEPS_PER_DAY:
        raise ValueError(f"day must be in 0..365 (got {day})")
    if not 0 <= int(quarter_hour) < STEPS_PER_DAY:
        raise ValueError(f"quarter_hour must be in 0..95 (got {quarter_hour})")
    return int(day) * STEPS_PER_DAY + int(quarter_hour)


# ----------------------------------------------------------------------------- profiles

@dataclass(frozen=True)
class RelativeProfiles:
    """Relative profiles in SimBench's layout, integer step index (0..n_steps-1)."""

    load: pd.DataFrame  # columns "<profile>_pload" and "<profile>_qload"
    sgen: pd.DataFrame  # columns "<profile>" (renewables and power plants)

    @property
    def n_steps(self) -> int:
        return len(self.load)


def relative_profiles(net: pandapowerNet) -> RelativeProfiles:
    """Relative load and RES/power-plant profiles of a SimBench net (call before modifying it)."""
    prof = net["profiles"]
    load = prof["load"].drop(columns="time", errors="ignore")
    sgen = pd.concat([prof[k].drop(columns="time", errors="ignore")
                      for k in ("renewables", "powerplants") if k in prof], axis=1)
    load.index = sgen.index = pd.RangeIndex(len(load))
    return RelativeProfiles(load=load.astype(np.float32), sgen=sgen.astype(np.float32))


def profiled_elements(net: pandapowerNet) -> tuple[np.ndarray, np.ndarray]:
    """pandapower indices of the profiled loads and sgens, in ProfileSet order.

    All in-service loads, and all in-service sgens except the flex sgens (name ``flex:…``).
    """
    load_idx = net.load.index[net.load.in_service.astype(bool)].to_numpy(np.int64)
    names = net.sgen.name.astype(str)
    keep = net.sgen.in_service.astype(bool) & ~names.str.startswith(FLEX_PREFIX)
    return load_idx, net.sgen.index[keep].to_numpy(np.int64)


def _columns(names: pd.Series, table: pd.DataFrame, suffixes: tuple[str, ...]) -> tuple[list[str], np.ndarray]:
    """Unique profile names (first-seen order) and each element's column; missing -> const."""
    def known(n: object) -> bool:
        return isinstance(n, str) and all(f"{n}{s}" in table.columns for s in suffixes)

    resolved = [n if known(n) else CONST_PROFILE for n in names]
    missing = sorted({str(n) for n, r in zip(names, resolved, strict=True)
                      if r == CONST_PROFILE and isinstance(n, str) and n != CONST_PROFILE})
    if missing:
        log.warning("profiles %s not found; those elements use a constant profile", missing)
    cols = list(dict.fromkeys(resolved))
    pos = {c: i for i, c in enumerate(cols)}
    return cols, np.array([pos[r] for r in resolved], dtype=np.int64)


def _rel_array(table: pd.DataFrame, cols: list[str], suffix: str, n_steps: int) -> np.ndarray:
    out = np.ones((n_steps, len(cols)), dtype=np.float32)
    for i, c in enumerate(cols):
        if c != CONST_PROFILE:
            out[:, i] = table[f"{c}{suffix}"].to_numpy(np.float32)
    return out


def make_profile_set(net: pandapowerNet, rel: RelativeProfiles) -> tuple[ProfileSet, np.ndarray, np.ndarray]:
    """ProfileSet of the profiled loads/sgens of ``net`` (see :func:`profiled_elements`).

    Uses the identity abs = p_mw × rel[profile] of SimBench's profiles: scales are the elements'
    current ``p_mw``/``q_mvar``, so call after the knobs and before writing an operating point.
    Returns (profiles, load_idx, sgen_idx).
    """
    load_idx, sgen_idx = profiled_elements(net)
    load_prof = net.load.profile.loc[load_idx] if "profile" in net.load else pd.Series([None] * len(load_idx))
    sgen_prof = net.sgen.profile.loc[sgen_idx] if "profile" in net.sgen else pd.Series([None] * len(sgen_idx))
    lcols, lpos = _columns(load_prof, rel.load, ("_pload", "_qload"))
    scols, spos = _columns(sgen_prof, rel.sgen, ("",))
    n = rel.n_steps
    ps = ProfileSet(
        load_rel_p=_rel_array(rel.load, lcols, "_pload", n),
        load_rel_q=_rel_array(rel.load, lcols, "_qload", n),
        load_profile=lpos,
        load_p_mw=net.load.p_mw.loc[load_idx].to_numpy(np.float64),
        load_q_mvar=net.load.q_mvar.loc[load_idx].to_numpy(np.float64),
        sgen_rel=_rel_array(rel.sgen, scols, "", n),
        sgen_profile=spos,
        sgen_p_mw=net.sgen.p_mw.loc[sgen_idx].to_numpy(np.float64),
    )
    return ps, load_idx, sgen_idx


def set_operating_point(net: pandapowerNet, profiles: ProfileSet, load_idx: np.ndarray,
                        sgen_idx: np.ndarray, steps: np.ndarray | slice | None = None) -> None:
    """Write the mean over ``steps`` (default: the whole year) of every profile into the net."""
    sel = slice(None) if steps is None else steps
    lp = profiles.load_rel_p[sel].mean(axis=0)[profiles.load_profile] * profiles.load_p_mw
    lq = profiles.load_rel_q[sel].mean(axis=0)[profiles.load_profile] * profiles.load_q_mvar
    sp = profiles.sgen_rel[sel].mean(axis=0)[profiles.sgen_profile] * profiles.sgen_p_mw
    net.load.loc[load_idx, "p_mw"] = lp.astype(np.float64)
    net.load.loc[load_idx, "q_mvar"] = lq.astype(np.float64)
    net.sgen.loc[sgen_idx, "p_mw"] = sp.astype(np.float64)


# ----------------------------------------------------------------------------- classification

def sgen_class(net: pandapowerNet) -> np.ndarray:
    """'wind', 'pv' or 'other' for every row of ``net.sgen`` (by SimBench profile and type).

    wind: profile ``WP*`` or type ``Wind*``; pv: profile ``PV*``/``lv_*`` (rooftop PV aggregated at
    MV/LV substations) or type ``PV``/``PV_MV``/``lv_RES``; other: biomass, hydro, the HV
    equivalents of MV grids, ``mv_add*`` and anything else (profiled but never flexible).
    """
    n = len(net.sgen)
    prof = net.sgen["profile"].fillna("").astype(str) if "profile" in net.sgen else pd.Series([""] * n)
    typ = net.sgen["type"].fillna("").astype(str) if "type" in net.sgen else pd.Series([""] * n)
    prof, typ = prof.to_numpy(), typ.to_numpy()
    wind = np.char.startswith(prof.astype(str), "WP") | np.char.startswith(np.char.lower(typ.astype(str)), "wind")
    pv = (np.char.startswith(prof.astype(str), "PV") | np.char.startswith(prof.astype(str), "lv_")
          | np.isin(typ, ["PV", "PV_MV", "lv_RES"]))
    eq = hv_equivalents(net, "sgen").to_numpy()
    return np.where(wind, "wind", np.where(pv & ~eq, "pv", "other"))


# ----------------------------------------------------------------------------- areas

def bus_prefix(net: pandapowerNet) -> pd.Series:
    """Area prefix of every bus: ``bus.subnet.split("_")[0]`` (e.g. "MV1.101", "HV1")."""
    if "subnet" not in net.bus:
        raise ConfigError("the net has no bus.subnet column; areas are taken from its prefix "
                          "(e.g. 'MV1.101' or 'MV1.101_LV1.101_eq')")
    return net.bus.subnet.fillna("").astype(str).str.split("_").str[0]


def available_areas(net: pandapowerNet) -> list[str]:
    """Subnet prefixes whose buses are all below 60 kV (the distribution areas one can keep)."""
    prefix = bus_prefix(net)
    top_kv = net.bus.vn_kv.groupby(prefix).max()
    return sorted(p for p, kv in top_kv.items() if p and kv < AREA_MAX_KV)


def check_area_names(names: tuple[str, ...] | list[str], allowed: list[str]) -> None:
    """Raise UnknownNameError (listing ``allowed``) or ConfigError for duplicates."""
    for name in names:
        if name not in allowed:
            raise UnknownNameError(did_you_mean(name, allowed, "distribution area"))
    if len(set(names)) != len(names):
        raise ConfigError(f"grid.areas lists an area twice: {list(names)}")


def find_areas(net: pandapowerNet, names: tuple[str, ...] | list[str]) -> tuple[Area, ...]:
    """One :class:`Area` per name, in the given order (DSO1, DSO2, …).

    ``buses``: the area's buses (its subnet prefix); ``interface_trafos``: in-service trafos from a
    non-area bus to an area bus; ``interface_buses``: their HV-side (T) buses.
    """
    check_area_names(names, available_areas(net))
    prefix = bus_prefix(net)
    areas = []
    for i, name in enumerate(names):
        buses = np.sort(net.bus.index[prefix == name].to_numpy(np.int64))
        tr = net.trafo[net.trafo.in_service.astype(bool) & net.trafo.lv_bus.isin(buses)
                       & ~net.trafo.hv_bus.isin(buses)]
        if tr.empty:
            raise ConfigError(f"area {name!r} has no in-service transformer from the transmission grid")
        areas.append(Area(index=i, name=name, dso=f"DSO{i + 1}",
                          interface_buses=tuple(int(b) for b in sorted(set(tr.hv_bus))),
                          interface_trafos=tuple(int(t) for t in sorted(tr.index)),
                          buses=buses))
    return tuple(areas)


def area_bus_set(areas: tuple[Area, ...]) -> set[int]:
    return {int(b) for a in areas for b in a.buses}


# ----------------------------------------------------------------------------- SimBench fixes

def validate_code(code: str) -> str:
    """Check ``code`` against SimBench's list; only ``1-HVMV-*`` codes are supported."""
    import simbench as sb

    codes = list(sb.collect_all_simbench_codes())
    supported = [c for c in codes if c.startswith(SUPPORTED_PREFIX)]
    if code not in codes:
        raise UnknownNameError(did_you_mean(code, supported, "SimBench HVMV code"))
    if code not in supported:
        raise ConfigError(f"SimBench code {code!r} exists but is not supported: a T&D system needs an "
                          f"HV grid with MV areas. Allowed: {', '.join(supported)}.")
    return code


def load_simbench_net(code: str, areas: tuple[str, ...] | None = None, use_cache: bool = True) -> pandapowerNet:
    """A fresh SimBench net as SimBench ships it (cached on disk: the CSV parse takes seconds).

    With ``areas``, only the HV grid and those MV areas are extracted (the other MV areas are
    left out as if dropped; their HV equivalents are there): about 3 s faster than
    ``simbench.get_simbench_net``, through simbench's own extraction functions. If those
    internals are not available, the whole code is loaded instead (``reduce_to_areas`` drops
    the rest either way).
    """
    import pandapower as pp
    import simbench as sb

    from smartnet_gym.grid import cache

    tag = "all" if areas is None else cache.digest(sorted(areas))[:12]
    name = f"simbench-raw-{code}-{tag}-sb{metadata.version('simbench')}-pp{pp.__version__}.pkl"

    def build() -> pandapowerNet:
        if areas is not None:
            try:
                return _extract_areas(code, areas)
            except (ImportError, AttributeError, TypeError, KeyError, ValueError) as e:
                log.warning("fast SimBench extraction failed (%s: %s); loading the whole code", type(e).__name__, e)
        return sb.get_simbench_net(code)

    return cache.cached(name, build, use_cache=use_cache)


def simbench_area_names(code: str) -> list[str] | None:
    """The MV areas of a SimBench HVMV code without loading it (None if simbench's API moved)."""
    try:
        from simbench.networks.extract_simbench_grids_from_csv import (
            complete_data_path,
            get_relevant_subnets,
            get_simbench_code_and_parameters,
        )

        _, params = get_simbench_code_and_parameters(code)
        return sorted(get_relevant_subnets(params, complete_data_path(params[5]))[1])
    except (ImportError, AttributeError, TypeError, KeyError, ValueError, IndexError):
        return None


def _extract_areas(code: str, areas: tuple[str, ...]) -> pandapowerNet:
    """``simbench.get_simbench_net`` restricted to the HV grid plus ``areas``.

    Same steps as simbench's own function, with the MV subnets not kept left out of the
    extraction, and profile tables read only for the profiles the kept elements use.
    """
    import os

    from simbench.converter import csv_data2pp, csv_tablenames
    from simbench.networks.extract_simbench_grids_from_csv import (
        _get_extracted_csv_table,
        complete_data_path,
        generate_no_sw_variant,
        get_relevant_subnets,
        get_simbench_code_and_parameters,
    )
    from simbench.networks.loadcases import filter_loadcases
    from simbench.networks.profiles import filter_unapplied_profiles

    _, params = get_simbench_code_and_parameters(code)
    path = complete_data_path(params[5])
    hv, lv = get_relevant_subnets(params, path)
    subnets = (hv, [s for s in lv if s in areas])
    csv = {t: _get_extracted_csv_table(subnets, t, input_path=path)
           for t in csv_tablenames(["elements", "types", "cases"])}
    for t in csv_tablenames(["profiles"]):
        el = csv.get(t[: -len("Profile")])
        used = list(el.profile.dropna().unique()) if el is not None and "profile" in el else []
        want = {"time", *used} if t != "LoadProfile" else {"time", *(f"{p}_{x}load" for p in used for x in "pq")}
        csv[t] = pd.read_csv(os.path.join(path, f"{t}.csv"), sep=";", usecols=lambda c, w=want: c in w)
    filter_unapplied_profiles(csv)
    filter_loadcases(csv)
    net = csv_data2pp(csv)
    if not params[6]:  # "-no_sw" codes: fuse bus-bus switches as simbench does
        generate_no_sw_variant(net)
    return net


def fix_tap_changer_type(net: pandapowerNet) -> None:
    """Set ``tap_changer_type="Ratio"`` where a tap step is given (else pandapower ignores taps)."""
    has_tap = net.trafo.tap_step_percent.notna()
    net.trafo["tap_changer_type"] = net.trafo["tap_changer_type"].astype(object)
    net.trafo.loc[has_tap & net.trafo.tap_changer_type.isna(), "tap_changer_type"] = "Ratio"


_EQ = re.compile(r"^(?P<t>[^_]+)_(?P<kind>[^_.]+)_eq$")  # e.g. "HV1_MV1_eq"


def hv_equivalents(net: pandapowerNet, element: str) -> pd.Series:
    """Boolean mask over ``net[element]``: HV-level equivalents of MV grids (subnet ``HVx_MVy_eq``)."""
    sub = net[element]["subnet"].fillna("").astype(str) if "subnet" in net[element] else pd.Series(
        "", index=net[element].index)
    return sub.str.match(_EQ.pattern)


def reduce_to_areas(net: pandapowerNet, keep: tuple[str, ...] | list[str]) -> dict[str, list[int]]:
    """Keep ``keep`` detailed, drop the other MV areas; fix the equivalents' double counting.

    The kept areas' ``HVx_MVy_eq`` load and sgen (at the HV bus of their substation) go out of
    service; the dropped areas' equivalents stay in service. Returns the disabled indices.
    """
    import pandapower.toolbox as tb

    allowed = available_areas(net)
    check_area_names(keep, allowed)
    prefix = bus_prefix(net)
    disabled: dict[str, list[int]] = {"load": [], "sgen": []}
    for name in keep:
        buses = net.bus.index[prefix == name]
        hv = set(net.trafo.hv_bus[net.trafo.lv_bus.isin(buses)])
        kind = name.split(".")[0]  # "MV1" of "MV1.101"
        for el in ("load", "sgen"):
            tab = net[el]
            sub = tab.subnet.fillna("").astype(str) if "subnet" in tab else pd.Series("", index=tab.index)
            m = hv_equivalents(net, el) & tab.bus.isin(hv) & (sub.str.split("_").str[1] == kind)
            net[el].loc[m, "in_service"] = False
            disabled[el] += [int(i) for i in tab.index[m]]
    drop = net.bus.index[prefix.isin([a for a in allowed if a not in keep])]
    tb.drop_buses(net, drop, drop_elements=True)
    return disabled


def zero_storage(net: pandapowerNet) -> None:
    """Storage p = q = 0 (SimBench's storage sign is dubious; batteries are flex units here)."""
    net.storage["p_mw"] = 0.0
    net.storage["q_mvar"] = 0.0


def apply_knobs(net: pandapowerNet, areas: tuple[Area, ...], grid: GridConfig) -> None:
    """Scale RES capacity and line ratings; write the D voltage band to the area buses.

    pv_scale: PV in the areas (PV_MV and rooftop lv_RES); mv_wind_scale: wind in the areas;
    hv_wind_scale: wind outside the areas; mv/hv_line_rating_factor: ``max_i_ka`` of lines inside /
    outside the areas. ``v_min_pu``/``v_max_pu`` become the area buses' ``min_vm_pu``/``max_vm_pu``.
    """
    in_area = area_bus_set(areas)
    cls = sgen_class(net)
    sg_in = net.sgen.bus.isin(in_area).to_numpy()
    for mask, f in (((cls == "pv") & sg_in, grid.pv_scale),
                    ((cls == "wind") & sg_in, grid.mv_wind_scale),
                    ((cls == "wind") & ~sg_in, grid.hv_wind_scale)):
        idx = net.sgen.index[mask]
        for col in ("p_mw", "sn_mva"):
            if col in net.sgen:
                net.sgen.loc[idx, col] = net.sgen.loc[idx, col] * f
    fb = net.line.from_bus.isin(in_area)
    tb_ = net.line.to_bus.isin(in_area)
    net.line.loc[fb & tb_, "max_i_ka"] *= grid.mv_line_rating_factor
    net.line.loc[~fb & ~tb_, "max_i_ka"] *= grid.hv_line_rating_factor
    buses = sorted(in_area)
    net.bus.loc[buses, "min_vm_pu"] = grid.v_min_pu
    net.bus.loc[buses, "max_vm_pu"] = grid.v_max_pu


# ----------------------------------------------------------------------------- OLTC

def set_oltc_taps(net: pandapowerNet, areas: tuple[Area, ...], setpoint_pu: float,
                  ehv_setpoint_pu: float, max_iter: int = 8) -> int:
    """Move trafo ``tap_pos`` so each LV-side voltage is within ±½ tap step of its set-point.

    A plain stand-in for OLTC controllers (none are added to the net): the areas' interface
    trafos regulate to ``setpoint_pu``, every other tapped trafo (EHV/HV) to ``ehv_setpoint_pu``.
    The EHV/HV stage runs first, then HV/MV; each repeats ``runpp`` + move until no tap moves
    (within ``tap_min``..``tap_max``) or ``max_iter``. Ends with results of the final taps in
    ``net.res_*``. Returns the number of tap steps moved.
    """
    tr = net.trafo
    ok = tr.in_service.astype(bool) & tr.tap_step_percent.notna() & tr.tap_pos.notna()
    iface = {t for a in areas for t in a.interface_trafos}
    is_iface = tr.index.isin(list(iface))
    moved = 0
    ran = False
    for group, target in ((ok & ~is_iface, ehv_setpoint_pu), (ok & is_iface, setpoint_pu)):
        idx = tr.index[group]
        if len(idx) == 0:
            continue
        step = tr.loc[idx, "tap_step_percent"].to_numpy(float) / 100.0
        # a higher tap on the HV side lowers the LV voltage; on the LV side it raises it
        sign = np.where(tr.loc[idx, "tap_side"].astype(str).to_numpy() == "lv", -1.0, 1.0)
        lo = tr.loc[idx, "tap_min"].to_numpy(float)
        hi = tr.loc[idx, "tap_max"].to_numpy(float)
        lv = tr.loc[idx, "lv_bus"].to_numpy()
        for _ in range(max_iter):
            run_ac(net)
            ran = True
            dv = net.res_bus.vm_pu.loc[lv].to_numpy(float) - target
            n = np.where(np.abs(dv) > step / 2, np.rint(dv / step), 0.0)
            old = tr.loc[idx, "tap_pos"].to_numpy(float)
            new = np.clip(old + sign * n, lo, hi)
            if np.array_equal(new, old):
                break
            moved += int(np.abs(new - old).sum())
            net.trafo.loc[idx, "tap_pos"] = new
        else:
            run_ac(net)
    if not ran:
        run_ac(net)
    return moved


# ----------------------------------------------------------------------------- the system

@dataclass
class GridParts:
    """What a grid source hands to the common build pipeline (see grid.build)."""

    name: str
    net: pandapowerNet
    areas: tuple[Area, ...]
    rel: RelativeProfiles


def system_name(code: str, areas: tuple[str, ...]) -> str:
    """'HVMV4-2sw' for 4 areas of 1-HVMV-mixed-all-2-sw, else '<code>[<areas>]'."""
    m = re.fullmatch(r"1-HVMV-mixed-all-(\d)-(sw|no_sw)", code)
    if m:
        return f"HVMV{len(areas)}-{m.group(1)}{m.group(2).replace('_', '')}"
    return f"{code}[{','.join(areas)}]"


def build_simbench_grid(grid: GridConfig) -> GridParts:
    """Steps 1–5 of the module recipe for ``grid.simbench_code`` and ``grid.areas``."""
    code = validate_code(grid.simbench_code)
    names = simbench_area_names(code)
    if names is not None:  # fail fast, before the seconds-long load
        check_area_names(grid.areas, names)
    net = load_simbench_net(code, tuple(grid.areas))
    rel = relative_profiles(net)              # before any modification
    check_area_names(grid.areas, available_areas(net))
    fix_tap_changer_type(net)
    reduce_to_areas(net, grid.areas)
    zero_storage(net)
    areas = find_areas(net, grid.areas)
    apply_knobs(net, areas, grid)
    for key in ("profiles", "loadcases"):     # ProfileSet replaces them; keeps the pickle small
        if key in net:
            del net[key]
    return GridParts(name=system_name(code, grid.areas), net=net, areas=areas, rel=rel)
