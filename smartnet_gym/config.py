"""Scenario configuration: pydantic models of a scenario and `load_scenario` (preset name or YAML path).

Every model forbids unknown fields and non-finite numbers (nan, inf) and is frozen;
`load_scenario` turns pydantic's errors into a `ConfigError` that names the field
(e.g. ``market.horizon_periods``) and the allowed range.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from smartnet_gym.errors import ConfigError, UnknownNameError, did_you_mean

SCHEMES: tuple[str, ...] = ("CS_A", "CS_B", "CS_C", "CS_D", "CS_E")


class _Model(BaseModel):
    """Base of every scenario model: unknown fields, mutation and non-finite numbers are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class GridConfig(_Model):
    """Which T&D system to build and the knobs that set how congested it is."""

    source: Literal["simbench", "toy", "pandapower_json"] = Field(
        "simbench", description="simbench: SimBench HVMV code; toy: tiny built-in T&D system; "
        "pandapower_json: a net saved with pandapower.to_json (areas from bus.subnet)")
    simbench_code: str = Field("1-HVMV-mixed-all-2-sw", description="SimBench HVMV grid code")
    pandapower_json: str | None = Field(None, description="path of a pandapower JSON net")
    areas: tuple[str, ...] = Field(("MV1.101", "MV2.101", "MV3.101", "MV4.101"), min_length=1,
                                   description="distribution areas kept in detail (bus.subnet prefix)")
    pv_scale: float = Field(1.0, ge=0, le=10, description="scale of MV PV installed capacity [-]")
    mv_wind_scale: float = Field(1.0, ge=0, le=10, description="scale of MV wind capacity [-]")
    hv_wind_scale: float = Field(1.0, ge=0, le=10, description="scale of HV wind capacity [-]")
    mv_line_rating_factor: float = Field(1.0, gt=0, le=5, description="factor on MV line max_i_ka [-]")
    hv_line_rating_factor: float = Field(1.0, gt=0, le=5, description="factor on HV line max_i_ka [-]")
    mv_oltc_setpoint_pu: float = Field(1.025, ge=0.9, le=1.1, description="HV/MV OLTC set-point [pu]")
    ehv_oltc_setpoint_pu: float = Field(1.025, ge=0.9, le=1.1, description="EHV/HV OLTC set-point [pu]")
    v_min_pu: float = Field(0.95, ge=0.8, le=1.0, description="lower D voltage limit [pu]")
    v_max_pu: float = Field(1.05, ge=1.0, le=1.2, description="upper D voltage limit [pu]")

    @model_validator(mode="after")
    def _check(self) -> GridConfig:
        if self.v_min_pu >= self.v_max_pu:
            raise ValueError(f"v_min_pu ({self.v_min_pu}) must be below v_max_pu ({self.v_max_pu})")
        if self.source == "pandapower_json" and not self.pandapower_json:
            raise ValueError("source 'pandapower_json' needs the field pandapower_json (a file path)")
        return self


class FlexConfig(_Model):
    """Which units offer flexibility and at what true cost (drawn once per scenario seed)."""

    pv_units_per_area: int = Field(4, ge=0, le=200, description="largest PV plants per area offering curtailment")
    wind_units_per_area: int = Field(1, ge=0, le=50, description="largest MV wind parks per area offering curtailment")
    load_units_per_area: int = Field(4, ge=0, le=200, description="largest loads per area offering demand response")
    storage_per_area: int = Field(1, ge=0, le=50, description="batteries added per area")
    storage_power_mw: float = Field(2.0, gt=0, le=100, description="battery power rating [MW]")
    storage_energy_h: float = Field(2.0, gt=0, le=24, description="battery energy / power [h]")
    load_flex_share: float = Field(0.3, ge=0, le=1, description="share of a flexible load that can move [-]")
    t_generators: int = Field(6, ge=0, le=100, description="flexible units at transmission buses")
    t_generator_mw: float = Field(40.0, gt=0, le=2000, description="up and down range of each T unit [MW]")
    t_wind_units: int = Field(4, ge=0, le=100, description="HV wind parks offering curtailment")
    cost_up_eur_per_mwh: tuple[float, float] = Field((40.0, 140.0), description="range of up costs [EUR/MWh]")
    cost_down_eur_per_mwh: tuple[float, float] = Field((5.0, 60.0), description="range of down costs [EUR/MWh]")
    d_cost_markup: float = Field(1.0, gt=0, le=10, description="factor on the cost of distribution units [-]")

    @field_validator("cost_up_eur_per_mwh", "cost_down_eur_per_mwh")
    @classmethod
    def _range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= v[0] <= v[1]:
            raise ValueError(f"must be [low, high] with 0 <= low <= high (got {list(v)})")
        return v


class ForecastConfig(_Model):
    """Forecast error model: relative Gaussian AR(1) errors whose spread grows with lead time.

    sigma(k) = sigma_1 * (1 + growth * (k - 1)) for lead k = 1..H periods, relative to the load
    value (loads) or installed capacity (RES). The day-ahead schedule has its own larger error.
    """

    load_sigma: float = Field(0.02, ge=0, le=1, description="load error std at lead 1 [share of value]")
    res_sigma: float = Field(0.03, ge=0, le=1, description="RES error std at lead 1 [share of capacity]")
    growth_per_period: float = Field(0.5, ge=0, le=10, description="relative growth of std per period [-]")
    day_ahead_load_sigma: float = Field(0.04, ge=0, le=1, description="day-ahead load error std [-]")
    day_ahead_res_sigma: float = Field(0.08, ge=0, le=1, description="day-ahead RES error std [-]")
    ar_coefficient: float = Field(0.9, ge=0, lt=1, description="AR(1) correlation of errors over time [-]")


class DataConfig(_Model):
    """Where in the SimBench year the episodes run and how forecasts err."""

    start_day: int = Field(182, ge=0, le=365, description="day of 2016 where episode 0 starts [day]")
    forecast: ForecastConfig = ForecastConfig()


class MarketConfig(_Model):
    """The clearing: scheme, horizon, caps, penalties and settlement."""

    scheme: str = Field("CS_D", description="coordination scheme, one of CS_A..CS_E")
    variant: Literal["centralized", "decentralized"] = Field("centralized", description="CS_D variant")
    horizon_periods: int = Field(4, ge=1, le=96, description="look-ahead periods [15 min]")
    period_minutes: Literal[15] = Field(15, description="market time unit [min]; profiles are 15-min")
    price_cap_eur_per_mwh: float = Field(1000.0, gt=0, le=1e5, description="highest bid price [EUR/MWh]")
    balance_penalty_eur_per_mwh: float = Field(2000.0, gt=0, description="price of unmet imbalance [EUR/MWh]")
    network_penalty_eur_per_mwh: float | None = Field(
        None, gt=0, description="what forced measures pay per MWh, the basis of every violation's value "
        "[EUR/MWh]; None: simulation.voll_eur_per_mwh")
    voltage_penalty_eur_per_pu2h: float | None = Field(
        None, gt=0, description="flat price of a v^2 slack [EUR/(pu^2 h)], capped per bus at the derived value; "
        "None: per bus, the network penalty over the bus's voltage sensitivity")
    forced_measures: bool | None = Field(
        None, description="the clearing holds every bus's load shedding and generation curtailment at VoLL as "
        "options (not dispatched; outside the balance): it values a violation at what removing it costs and its "
        "network and voltage slacks are the last resort; false: the slacks stand for the forced measures bus by "
        "bus; None: true, except with variant 'decentralized' (CS_D's decomposition exchanges the DSOs' bids only)")
    penalty_scale: float = Field(1.0, ge=0.01, le=100, description="factor on the last-resort network and voltage "
                                 "slacks; without forced measures as options, on every market penalty (balance, "
                                 "network, voltage) and below 1 only, the derived values being caps [-]")
    flow_reliability_margin_pct: float = Field(
        0.0, ge=0, lt=50, description="share of every transmission rating the clearing keeps free, as TSOs' "
        "flow reliability margin against the DC model's error [% of rating]; violations still count at the rating")
    qp_epsilon: float = Field(0.0, ge=0, description="quadratic regularisation [EUR/(MW^2 h)]; 0 = LP (default, fast path)")
    settlement: Literal["pay_as_clear", "pay_as_bid"] = "pay_as_clear"
    backend: Literal["highs", "highs-full", "cvxpy"] = Field(
        "highs", description="fast path (HiGHS, network limits screened), HiGHS on the explicit program, or CVXPY+OSQP")
    prequalification: bool = Field(False, description="CS_A: DSO blocks D bids of congested areas")
    brp_count: int = Field(4, ge=1, le=100, description="CS_E: balance responsible parties buying flexibility")
    brp_wtp_eur_per_mwh: float = Field(250.0, ge=0, description="CS_E: BRP willingness to pay [EUR/MWh]")

    @field_validator("scheme")
    @classmethod
    def _scheme(cls, v: str) -> str:
        up = v.upper().replace("-", "_")
        if up not in SCHEMES:
            raise ValueError(did_you_mean(v, SCHEMES, "scheme"))
        return up

    def uses_forced_options(self, default: bool = True) -> bool:
        """Whether the clearing holds forced measures as options: ``forced_measures``, or where it is
        None the caller's ``default`` (never for CS_D's decomposition)."""
        if self.forced_measures is None:
            return default and self.variant != "decentralized"
        return self.forced_measures

    @model_validator(mode="after")
    def _forced_measures_centralized(self) -> MarketConfig:
        """CS_D's decomposition exchanges the DSOs' bids only: it cannot hold forced measures."""
        if self.forced_measures and self.variant == "decentralized":
            raise ValueError("forced_measures: must be false with variant 'decentralized' (CS_D's decomposition "
                             "does not hold forced measures as options); use variant 'centralized'")
        return self


class SimulationConfig(_Model):
    """The rolling loop and the physical layer."""

    episode_steps: int = Field(96, ge=1, le=35000, description="market steps per episode [15 min]")
    physics: Literal["ac", "linear"] = Field("ac", description="AC power flow or the linear models")
    relinearize_every_steps: int = Field(
        4, ge=0, le=96, description="linear physics: a new AC linearisation point (OLTCs settled) at the "
        "realised values every N steps, so the linear state follows the day; 0 = only at the episode start")
    fast_ac: bool = Field(True, description="AC power flows (AC steps, every episode start's OLTC settling) on "
                          "the warm-started Newton-Raphson of grid.fast_ac; false: a full pandapower runpp each "
                          "time (the same states to 1e-6 pu, slower)")
    ac_check_rounds: int = Field(
        2, ge=0, le=5, description="AC physics: after each clearing, a power flow of the delivered period at the "
        "forecast with the cleared activations; where its violated elements differ from the clearing model's, "
        "that period's base state is moved by the difference and the market cleared again, up to N times "
        "(0 = off)")
    afrr_premium_eur_per_mwh: float = Field(30.0, ge=0, description="aFRR price above the merit order of the "
                                            "offers the market left [EUR/MWh]")
    afrr_floor_eur_per_mwh: float = Field(80.0, ge=0, description="lowest aFRR price [EUR/MWh]")
    voll_eur_per_mwh: float = Field(3000.0, gt=0, description="price of unwanted measures [EUR/MWh]")
    loading_tolerance_pct: float = Field(0.1, ge=0, le=10, description="a branch counts as overloaded above "
                                         "100 % plus this [percentage points of rating]")
    voltage_tolerance_pu: float = Field(1e-3, ge=0, le=0.05, description="a bus counts as out of its band by "
                                        "more than this [pu]")


class CbaConfig(_Model):
    """ICT cost per scheme as annual figures, scaled to the simulated time (see ``smartnet_gym.cba.ict``)."""

    ict_annual_eur: dict[str, float] = Field(
        default_factory=lambda: {"CS_A": 0.2e6, "CS_B": 0.6e6, "CS_C": 0.6e6, "CS_D": 0.8e6, "CS_E": 1.0e6},
        description="annual ICT cost of each scheme for this system [EUR/year]")

    @field_validator("ict_annual_eur")
    @classmethod
    def _ict(cls, v: dict[str, float]) -> dict[str, float]:
        out = {}
        for k, x in v.items():
            key = k.upper().replace("-", "_")
            if key not in SCHEMES:
                raise ValueError(did_you_mean(k, SCHEMES, "scheme"))
            if x < 0:
                raise ValueError(f"ICT cost of {key} must be >= 0 (got {x})")
            out[key] = float(x)
        return out


class ScenarioConfig(_Model):
    """A complete scenario: grid, flexibility, data, market, simulation and CBA settings."""

    name: str = "custom"
    description: str = ""
    seed: int = Field(0, ge=0, description="seed of unit selection, costs and forecast errors")
    grid: GridConfig = GridConfig()
    flex: FlexConfig = FlexConfig()
    data: DataConfig = DataConfig()
    market: MarketConfig = MarketConfig()
    simulation: SimulationConfig = SimulationConfig()
    cba: CbaConfig = CbaConfig()

    @model_validator(mode="after")
    def _violation_basis(self) -> ScenarioConfig:
        """The market values violations at what forced measures pay: VoLL unless set."""
        if self.market.network_penalty_eur_per_mwh is None:
            market = self.market.model_copy(update={"network_penalty_eur_per_mwh": self.simulation.voll_eur_per_mwh})
            object.__setattr__(self, "market", market)
        return self

    @model_validator(mode="after")
    def _balance_below_voll(self) -> ScenarioConfig:
        """With forced measures as options, a bid paired with a forced measure at its bus covers
        imbalance on paper only: the balance price must stay below what that pair costs."""
        m, voll = self.market, self.simulation.voll_eur_per_mwh
        if m.uses_forced_options() and m.balance_penalty_eur_per_mwh >= voll:
            raise ValueError(f"market.balance_penalty_eur_per_mwh: must be below simulation.voll_eur_per_mwh "
                             f"({voll:g}) with market.forced_measures (got {m.balance_penalty_eur_per_mwh:g})")
        return self

    def digest(self) -> str:
        """Short hash of the resolved config, written next to every result for provenance."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


def preset_names() -> list[str]:
    """Names of the scenario presets shipped with the package."""
    folder = resources.files("smartnet_gym") / "presets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _preset_text(name: str) -> str:
    return (resources.files("smartnet_gym") / "presets" / f"{name}.yaml").read_text()


def preset_descriptions() -> dict[str, str]:
    """One-line description of every preset."""
    return {n: yaml.safe_load(_preset_text(n)).get("description", "") for n in preset_names()}


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_yaml_mapping(path: Path, label: str) -> dict[str, Any]:
    """A YAML file that must hold a mapping; errors name ``label`` (e.g. "scenario file 'x.yaml'")."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{label} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{label} must be a YAML mapping, got {type(data).__name__}")
    return data


def _raw(name_or_path: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """Raw dict of a preset or YAML file, with `extends:` resolved."""
    if name_or_path in seen:
        raise ConfigError(f"extends: cycle through {' -> '.join(seen + (name_or_path,))}")
    path = Path(name_or_path)
    if name_or_path.endswith((".yaml", ".yml")) or path.exists():
        if not path.is_file():
            raise ConfigError(f"scenario file {name_or_path!r} does not exist")
        data = read_yaml_mapping(path, f"scenario file {name_or_path!r}")
        base_dir = path.parent
    else:
        names = preset_names()
        if name_or_path not in names:
            raise UnknownNameError(did_you_mean(name_or_path, names, "scenario preset"))
        data = yaml.safe_load(_preset_text(name_or_path)) or {}
        base_dir = None
    if not isinstance(data, dict):
        raise ConfigError(f"scenario {name_or_path!r} must be a YAML mapping, got {type(data).__name__}")
    parent = data.pop("extends", None)
    if parent:
        data = _deep_merge(_raw(str(parent), seen + (name_or_path,)), data)
    pj = data.get("grid", {}).get("pandapower_json") if isinstance(data.get("grid"), dict) else None
    if pj and base_dir is not None and not Path(pj).is_absolute():
        data["grid"]["pandapower_json"] = str((base_dir / pj).resolve())
    return data


def validation_message(e: ValidationError, source: str, loc: Callable[[tuple], str] | None = None) -> str:
    """One line per pydantic error: the dotted field (``loc`` maps an error's location), the rule
    and the value given."""
    lines = []
    for err in e.errors():
        where = (loc(err["loc"]) if loc else ".".join(str(p) for p in err["loc"])) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (not allowed)"
        got = err.get("input")
        lines.append(f"{where}: {msg}" + ("" if isinstance(got, dict) else f" (got {got!r})"))
    return f"invalid {source}: " + "; ".join(dict.fromkeys(lines))


def validate_scenario(data: dict[str, Any], source: str = "scenario") -> ScenarioConfig:
    """Validate a raw dict; errors name the dotted field, the value and the rule."""
    try:
        return ScenarioConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(validation_message(e, source)) from None


def load_scenario(name_or_path: str | ScenarioConfig, overrides: dict[str, Any] | None = None) -> ScenarioConfig:
    """Load a preset by name or a YAML file by path, apply nested `overrides`, validate once."""
    if isinstance(name_or_path, ScenarioConfig):
        data = name_or_path.model_dump(mode="python")
        source = name_or_path.name
    else:
        data = _raw(str(name_or_path))
        source = f"scenario {str(name_or_path)!r}"
    if overrides:
        data = _deep_merge(data, overrides)
    return validate_scenario(data, source)
