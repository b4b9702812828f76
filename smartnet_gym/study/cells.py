"""The cells of a study: one scheme × scenario × variant × day × forecast seed, keyed by content."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from smartnet_gym.config import ScenarioConfig, load_scenario
from smartnet_gym.data.profiles import STEPS_PER_DAY
from smartnet_gym.errors import ConfigError
from smartnet_gym.study.config import YEAR_DAYS, StudyConfig

#: meteorological seasons by month of 2016
SEASONS = ("winter", "spring", "summer", "autumn")
_SEASON_OF_MONTH = {12: "winter", 1: "winter", 2: "winter", 3: "spring", 4: "spring", 5: "spring",
                    6: "summer", 7: "summer", 8: "summer", 9: "autumn", 10: "autumn", 11: "autumn"}


@cache
def code_digest() -> str:
    """Hash of the package's source: a cell's result belongs to the code that computed it."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def season(day: int) -> str:
    """Meteorological season of day ``day`` of 2016 (0 = 1 January)."""
    return _SEASON_OF_MONTH[(dt.date(2016, 1, 1) + dt.timedelta(days=day)).month]


@dataclass(frozen=True)
class Cell:
    """One simulated episode of a study: what runs it needs, carried to any worker.

    ``config`` is the resolved scenario (variant overrides applied, ``data.start_day`` = ``day``),
    so a worker needs the package but not the study's scenario files.
    """

    scenario: str          # label: the preset name or the scenario file's stem
    variant: str
    scheme: str
    day: int
    seed: int              # forecast-error seed of the episode
    physics: str
    steps: int
    config: ScenarioConfig

    @property
    def season(self) -> str:
        return season(self.day)

    @property
    def key(self) -> str:
        """Content key: scenario label, variant, resolved config, scheme, day, seed, physics, steps and
        the package's code (labels too: two variants with equal overrides stay two cells)."""
        blob = json.dumps([self.scenario, self.variant, self.config.model_dump(mode="json"), self.scheme,
                           self.day, self.seed, self.physics, self.steps, code_digest()], sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:20]

    @property
    def file_stem(self) -> str:
        """Name of the cell's files under ``cells/`` (readable prefix, content key)."""
        return f"{self.scheme}-d{self.day:03d}-s{self.seed}-{self.key}"

    def labels(self) -> dict[str, object]:
        """The identifying columns of the cell's result row."""
        return {"scenario": self.scenario, "variant": self.variant, "scheme": self.scheme, "day": self.day,
                "season": self.season, "seed": self.seed, "physics": self.physics, "steps": self.steps,
                "config_digest": self.config.digest(), "code_digest": code_digest(), "cell_key": self.key}


def scenario_label(name_or_path: str) -> str:
    """A preset's name, or a scenario file's stem."""
    return Path(name_or_path).stem if name_or_path.endswith((".yaml", ".yml")) else name_or_path


def expand(study: StudyConfig) -> list[Cell]:
    """Every cell of ``study``, grouped by scenario and variant (so a worker reuses its system)."""
    labels = [scenario_label(s) for s in study.scenarios]
    dup = {x for x in labels if labels.count(x) > 1}
    if dup:
        raise ConfigError(f"invalid study: scenarios: two entries share the label {min(dup)!r}")
    cells = []
    for src, label in zip(study.scenarios, labels, strict=True):
        for variant, over in study.variants.items():
            base = _variant_config(src, variant, over)
            physics = study.physics or base.simulation.physics
            for day in study.day_list():
                _check_day(study, base, day)
                cfg = load_scenario(base, {"data": {"start_day": day}})
                for seed in study.seeds:
                    for scheme in study.schemes:
                        cells.append(Cell(label, variant, scheme, day, seed, physics, study.steps, cfg))
    return cells


def _variant_config(src: str, variant: str, over: dict) -> ScenarioConfig:
    """The scenario ``src`` with the variant's overrides; errors name the variant."""
    try:
        return load_scenario(src, over)
    except ConfigError as e:
        raise ConfigError(f"variants.{variant} on scenario {src!r}: {e}") from None


def _check_day(study: StudyConfig, cfg: ScenarioConfig, day: int) -> None:
    """Refuse a day whose window (steps + horizon) runs past the year of profiles."""
    need = day * STEPS_PER_DAY + study.steps + cfg.market.horizon_periods - 1
    if need > YEAR_DAYS * STEPS_PER_DAY:
        last = (YEAR_DAYS * STEPS_PER_DAY - study.steps - cfg.market.horizon_periods + 1) // STEPS_PER_DAY
        raise ConfigError(f"invalid study: days: day {day} with {study.steps} steps and a horizon of "
                          f"{cfg.market.horizon_periods} runs past the profiles; allowed days 0..{last}")
