"""``build_system``: scenario config -> :class:`~smartnet_gym.grid.system.TDSystem`, cached on disk.

Pipeline (same for every ``grid.source``):

1. the source builds the net, its areas and relative profiles (``simbench``: SimBench recipe in
   :mod:`.simbench_system`; ``toy``: :mod:`.toy_system`; ``pandapower_json``: a saved net whose
   areas come from ``bus.subnet``);
2. :func:`~.simbench_system.make_profile_set` over all in-service loads and sgens (scales are
   the knob-scaled ``p_mw``; abs = p_mw × rel);
3. the net is put at the **base case**: every profiled element at its annual-mean value; the
   OLTCs are set for it (:func:`~.simbench_system.set_oltc_taps`);
4. flexible units are selected and their flex sgens added (:func:`~.units.select_units`,
   ``np.random.default_rng(cfg.seed)``);
5. a plain ``runpp`` so ``net.res_*`` hold the base case, then the linear T&D model
   (:func:`~.linear_build.build_linear_td`).

The result is pickled in the cache folder (``$SMARTNET_GYM_CACHE`` or ``~/.cache/smartnet_gym``)
under a hash of cfg.grid, cfg.flex, cfg.seed, the package, simbench and pandapower versions and
the source text of the grid-building modules, so editing them invalidates old systems.
"""

from __future__ import annotations

import logging
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from smartnet_gym.grid import cache
from smartnet_gym.grid.system import TDSystem, UnitKind

if TYPE_CHECKING:
    from smartnet_gym.config import GridConfig, ScenarioConfig
    from smartnet_gym.grid.simbench_system import GridParts

log = logging.getLogger(__name__)

_PKG = Path(__file__).resolve().parents[1]
_KEY_SOURCES = ("grid", "data/profiles.py")  # every grid-building module (grid/*.py) and the profiles: edits invalidate cached systems


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "none"


def _source_digest() -> str:
    files: list[Path] = []
    for rel in _KEY_SOURCES:
        p = _PKG / rel
        files += sorted(p.glob("*.py")) if p.is_dir() else [p]
    return cache.digest(*[(f.name, f.read_text()) for f in files if f.is_file()])


def system_cache_key(cfg: ScenarioConfig) -> str:
    """Cache file name of the system ``cfg`` describes."""
    from smartnet_gym import __version__

    extra = ""
    if cfg.grid.source == "pandapower_json" and cfg.grid.pandapower_json:
        p = Path(cfg.grid.pandapower_json)
        extra = f"{p.resolve()}:{p.stat().st_mtime_ns}:{p.stat().st_size}" if p.is_file() else str(p)
    key = cache.digest(cfg.grid.model_dump(mode="json"), cfg.flex.model_dump(mode="json"), cfg.seed,
                       __version__, _version("simbench"), _version("pandapower"), _source_digest(), extra)
    return f"system-{cfg.grid.source}-{key[:20]}.pkl"


def build_system(cfg: ScenarioConfig, use_cache: bool = True) -> TDSystem:
    """The T&D system of ``cfg`` (grid, flexible units, profiles, linear model), cached on disk.

    Raises:
        UnknownNameError: unknown SimBench code or area (the message lists the allowed names).
        ConfigError: a valid SimBench code that is not ``1-HVMV-*``, or an unusable net.
    """
    return cache.cached(system_cache_key(cfg), lambda: _build(cfg), use_cache=use_cache)


def _grid_parts(grid: GridConfig) -> GridParts:
    if grid.source == "simbench":
        from smartnet_gym.grid.simbench_system import build_simbench_grid

        return build_simbench_grid(grid)
    if grid.source == "toy":
        from smartnet_gym.grid.toy_system import build_toy_grid

        return build_toy_grid(grid)
    return _json_grid(grid)


def _json_grid(grid: GridConfig) -> GridParts:
    """A net saved with ``pandapower.to_json``: areas from bus.subnet, profiles from net.profiles."""
    import pandas as pd

    from smartnet_gym.errors import ConfigError
    from smartnet_gym.grid.simbench_system import (
        STEPS_PER_YEAR,
        GridParts,
        RelativeProfiles,
        apply_knobs,
        find_areas,
        fix_tap_changer_type,
        relative_profiles,
    )

    path = Path(str(grid.pandapower_json))
    if not path.is_file():
        raise ConfigError(f"grid.pandapower_json: file {str(path)!r} does not exist")
    net = _read_net(path)
    if isinstance(net.get("profiles"), dict) and "load" in net["profiles"]:
        rel = relative_profiles(net)
    else:  # no time series: every element keeps its p_mw (constant profile)
        empty = pd.DataFrame(index=pd.RangeIndex(STEPS_PER_YEAR))
        rel = RelativeProfiles(load=empty, sgen=empty)
    fix_tap_changer_type(net)
    areas = find_areas(net, grid.areas)
    apply_knobs(net, areas, grid)
    for key in ("profiles", "loadcases"):
        if key in net:
            del net[key]
    return GridParts(name=path.stem, net=net, areas=areas, rel=rel)


def _read_net(path: Path):
    """The pandapower net saved in ``path``; a ConfigError naming the file if it holds none."""
    import pandapower as pp

    from smartnet_gym.errors import ConfigError

    try:
        net = pp.from_json(str(path))
    except Exception as e:  # noqa: BLE001 -- pandapower raises many types on foreign or broken files
        raise ConfigError(f"grid.pandapower_json: file {str(path)!r} is not a pandapower net "
                          f"({type(e).__name__}: {e})") from None
    if not isinstance(net, pp.pandapowerNet) or "bus" not in net:
        raise ConfigError(f"grid.pandapower_json: file {str(path)!r} is not a pandapower net")
    return net


def _build(cfg: ScenarioConfig) -> TDSystem:
    import pandas as pd

    from smartnet_gym.grid.linear_build import build_linear_td
    from smartnet_gym.grid.power_flow import run_ac
    from smartnet_gym.grid.simbench_system import (
        make_profile_set,
        set_oltc_taps,
        set_operating_point,
        sgen_class,
    )
    from smartnet_gym.grid.units import select_units

    parts = _grid_parts(cfg.grid)
    net, areas = parts.net, parts.areas
    profiles, load_idx, sgen_idx = make_profile_set(net, parts.rel)
    set_operating_point(net, profiles, load_idx, sgen_idx)
    set_oltc_taps(net, areas, cfg.grid.mv_oltc_setpoint_pu, cfg.grid.ehv_oltc_setpoint_pu)
    cls = pd.Series(sgen_class(net), index=net.sgen.index).loc[sgen_idx].to_numpy()
    units = select_units(net, areas, profiles, cfg.flex, np.random.default_rng(cfg.seed))
    run_ac(net)  # structural change (flex sgens): plain runpp so results and _ppc are current
    linear = build_linear_td(net, areas, v_min_pu=cfg.grid.v_min_pu, v_max_pu=cfg.grid.v_max_pu)
    return TDSystem(
        name=parts.name,
        net=net,
        areas=areas,
        units=units,
        linear=linear,
        profiles=profiles,
        load_bus=net.load.bus.loc[load_idx].to_numpy(np.int64),
        sgen_bus=net.sgen.bus.loc[sgen_idx].to_numpy(np.int64),
        sgen_kind=np.where(cls == "wind", int(UnitKind.WIND), int(UnitKind.PV)).astype(np.int64),
        load_idx=load_idx,
        sgen_idx=sgen_idx,
    )
