"""A study described in YAML: scenarios × variants × schemes × days × forecast seeds.

Validated like scenarios: unknown fields, out-of-range values and unknown names raise a
:class:`~smartnet_gym.errors.ConfigError` naming the dotted field (the CLI exits with code 2).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from smartnet_gym.config import SCHEMES, read_yaml_mapping, validation_message
from smartnet_gym.data.profiles import STEPS_PER_DAY
from smartnet_gym.errors import ConfigError, did_you_mean

#: days of the profile year (2016, a leap year) that a study can name
YEAR_DAYS = 366


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DayRange(_Model):
    """Days ``first``, ``first + every``, … up to ``last`` (inclusive), days of 2016 counted from 0."""

    first: int = Field(0, ge=0, le=YEAR_DAYS - 1, description="first day [day of 2016, 0 = 1 January]")
    last: int = Field(364, ge=0, le=YEAR_DAYS - 1, description="last day, inclusive [day of 2016]")
    every: int = Field(1, ge=1, le=YEAR_DAYS, description="step between days [days]")

    @model_validator(mode="after")
    def _order(self) -> DayRange:
        if self.last < self.first:
            raise ValueError(f"last ({self.last}) must be >= first ({self.first})")
        return self

    def days(self) -> tuple[int, ...]:
        return tuple(range(self.first, self.last + 1, self.every))


def _check_ints(values: tuple[int, ...], what: str, low: int, high: int | None) -> None:
    """Each value within [low, high] (no upper end: None) and listed once; else a ValueError."""
    bad = [x for x in values if x < low or (high is not None and x > high)]
    if bad:
        allowed = f"in {low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"{what}s must be {allowed}; {bad[0]} is not")
    if len(set(values)) != len(values):
        raise ValueError(f"a {what} is listed twice")


#: ``days:`` is a list of days or a :class:`DayRange` mapping (errors name the field, not the union arm)
Days = Annotated[Annotated[tuple[int, ...], Tag("list")] | Annotated[DayRange, Tag("range")],
                 Discriminator(lambda v: "range" if isinstance(v, dict | DayRange) else "list")]


class StudyConfig(_Model):
    """The cells of a study and how they are run (see ``docs/studies.md``)."""

    name: str = Field("study", min_length=1, description="label of the study")
    scenarios: tuple[str, ...] = Field(min_length=1, description="preset names or scenario YAML paths")
    schemes: tuple[str, ...] = Field(SCHEMES, min_length=1, description="coordination schemes CS_A..CS_E")
    days: Days = Field(
        DayRange(first=182, last=182), description="list of days of 2016, or {first, last, every}")
    seeds: tuple[int, ...] = Field((0,), min_length=1, description="forecast-error seeds")
    physics: Literal["ac", "linear"] | None = Field(None, description="physical layer; None = each scenario's")
    steps: int = Field(STEPS_PER_DAY, ge=1, le=STEPS_PER_DAY * 7, description="market steps per cell [15 min]")
    variants: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {"base": {}}, description="named scenario overrides (nested mappings)")
    reference: str | None = Field(None, description="scheme the paired differences are taken against")
    per_step: bool = Field(False, description="also keep every step's CBA row (steps.parquet)")
    retries: int = Field(2, ge=0, le=10, description="extra attempts of a failing cell before it is reported")

    @field_validator("schemes")
    @classmethod
    def _schemes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for s in v:
            up = s.upper().replace("-", "_")
            if up not in SCHEMES:
                raise ValueError(did_you_mean(s, SCHEMES, "scheme"))
            if up in out:
                raise ValueError(f"scheme {up} is listed twice")
            out.append(up)
        return tuple(out)

    @field_validator("days")
    @classmethod
    def _days(cls, v: tuple[int, ...] | DayRange) -> tuple[int, ...] | DayRange:
        if isinstance(v, tuple):
            if not v:
                raise ValueError("needs at least one day")
            _check_ints(v, "day", 0, YEAR_DAYS - 1)
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        _check_ints(v, "seed", 0, None)
        return v

    @field_validator("variants")
    @classmethod
    def _variants(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        if not v:
            raise ValueError("needs at least one variant (e.g. base: {})")
        for name, over in v.items():
            if not name or not all(c.isalnum() or c in "-_." for c in name):
                raise ValueError(f"variant name {name!r} must be letters, digits, '-', '_' or '.'")
            if not isinstance(over, dict):
                raise ValueError(f"variant {name!r} must be a mapping of scenario overrides")  # noqa: TRY004 (pydantic)
        return v

    @model_validator(mode="after")
    def _reference(self) -> StudyConfig:
        if self.reference is not None:
            ref = self.reference.upper().replace("-", "_")
            if ref not in self.schemes:
                raise ValueError(did_you_mean(self.reference, self.schemes, "reference scheme"))
            object.__setattr__(self, "reference", ref)
        return self

    def day_list(self) -> tuple[int, ...]:
        """The study's days, in order."""
        return self.days.days() if isinstance(self.days, DayRange) else tuple(self.days)

    def reference_scheme(self) -> str:
        """The scheme paired differences are taken against (``reference`` or the first scheme)."""
        return self.reference or self.schemes[0]

    def digest(self) -> str:
        """Hash of the resolved study; a results folder belongs to one digest."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def validate_study(data: dict[str, Any], source: str = "study") -> StudyConfig:
    """Validate a raw dict; errors name the dotted field, the value and the rule."""
    try:
        return StudyConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(validation_message(e, source, _field)) from None


def _field(loc: tuple) -> str:
    """The dotted field of an error location, without the tag of the ``days`` union's arm."""
    parts = [str(p) for p in loc]
    if parts[:1] == ["days"] and parts[1:2] in (["list"], ["range"]):
        parts.pop(1)
    return ".".join(parts)


def load_study(path: str | Path) -> StudyConfig:
    """Read and validate a study YAML; scenario paths are taken relative to the study file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config {str(path)!r} does not exist")
    data = read_yaml_mapping(path, f"study file {str(path)!r}")
    scen = data.get("scenarios")
    if isinstance(scen, list):
        data["scenarios"] = [_resolve(s, path.parent) for s in scen]
    return validate_study(data, f"study file {str(path)!r}")


def _resolve(scenario: Any, base: Path) -> Any:
    """A scenario YAML path relative to the study file, made absolute; preset names unchanged."""
    if isinstance(scenario, str) and scenario.endswith((".yaml", ".yml")) and not Path(scenario).is_absolute():
        return str((base / scenario).resolve())
    return scenario
