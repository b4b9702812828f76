"""Which days of the profile year an episode may start on: the train / validation / test split.

The SimBench profiles cover 2016 (days 0..365, 96 quarter-hours each). Days are split by their
index in the year, so neighbouring days (similar weather) fall into different splits and every
season is in every split:

| split | days |
|---|---|
| train | day % 10 ∈ {0, …, 7} (80 %) |
| validation | day % 10 == 8 (10 %): evaluations during training, best-model selection |
| test | day % 10 == 9 (10 %): ``smartnet-gym evaluate`` (held out from training and selection) |

restricted to the config's ``days.first..days.last`` and to the days where an episode of the
env fits in the profiles (``EpisodeCore.n_days``). An episode starts on day d at the env's
``start_period`` (a random quarter-hour when it is None): profile step ``96·d + period``.

:class:`DaySplitWrapper` makes a Gymnasium env start its episodes on one split's days, either
drawn at random (training) or from a fixed plan cycled in order (evaluation), through the env's
``reset(options={"start_step": k})``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from smartnet_gym.data.profiles import STEPS_PER_DAY
from smartnet_gym.errors import ConfigError

SPLITS = ("train", "validation", "test")
MODULUS = 10
REMAINDERS = {"train": tuple(range(8)), "validation": (8,), "test": (9,)}


@dataclass(frozen=True)
class EpisodeSpec:
    """One planned episode: its day, first profile step and the env seed of its reset."""

    day: int
    start_step: int
    seed: int


def split_days(split: str, n_days: int, first: int = 0, last: int = 365) -> np.ndarray:
    """Days of ``split`` in ``first..last`` (inclusive) that are below ``n_days`` (where episodes fit)."""
    if split not in SPLITS:
        raise ConfigError(f"split: must be one of {', '.join(SPLITS)} (got {split!r})")
    days = np.arange(first, min(last, n_days - 1) + 1)
    days = days[np.isin(days % MODULUS, REMAINDERS[split])]
    if not len(days):
        raise ConfigError(f"days: no {split} day in {first}..{last} where an episode fits "
                          f"(episodes fit on days 0..{n_days - 1})")
    return days


def _core(env: Any) -> Any:
    core = getattr(getattr(env, "unwrapped", env), "core", None)
    if core is None:
        raise TypeError(f"not a smartnet env (no EpisodeCore): {type(env).__name__}")
    return core


def start_step(core: Any, day: int, rng: np.random.Generator) -> int:
    """Profile step of an episode on ``day``: the env's start period, or a random one if it is None."""
    period = core.start_period if core.start_period is not None else int(rng.integers(STEPS_PER_DAY))
    return int(day) * STEPS_PER_DAY + period


def plan_episodes(env: Any, split: str, n: int, seed: int, first: int = 0, last: int = 365) -> list[EpisodeSpec]:
    """``n`` episodes on ``split`` days, spread evenly over them (cycling if ``n`` exceeds them).

    Episode i uses env seed ``seed + i``; a random start period (``start_period=None``) is drawn
    from ``default_rng([seed, i])``. The plan depends only on its arguments and the env's episode
    window, so every policy and scheme is evaluated on the same episodes.
    """
    core = _core(env)
    days = split_days(split, core.n_days, first, last)
    idx = np.round(np.linspace(0, len(days) - 1, n)).astype(int) if n <= len(days) else np.arange(n) % len(days)
    return [EpisodeSpec(int(days[j]), start_step(core, int(days[j]), np.random.default_rng([seed, i])), seed + i)
            for i, j in enumerate(idx)]


class DaySplitWrapper(gym.Wrapper):
    """Start every episode on a day of one split.

    :param env: a smartnet Gymnasium env.
    :param days: the allowed days (:func:`split_days`); episodes start on a uniformly drawn one
        (own generator, seeded by the first ``reset(seed=…)``).
    :param plan: instead of ``days``, a fixed list of episodes cycled in order (each reset with
        its own seed); :meth:`restart_plan` goes back to the first.

    A reset whose ``options`` already give a ``start_step`` is passed through unchanged.
    """

    def __init__(self, env: gym.Env, days: np.ndarray | None = None, plan: list[EpisodeSpec] | None = None):
        super().__init__(env)
        if (days is None) == (plan is None):
            raise ValueError("give exactly one of days or plan")
        self.days, self.plan = days, plan
        self.core = _core(env)
        self._rng = np.random.default_rng()
        self._next = 0

    def restart_plan(self) -> None:
        """The next reset starts the plan's first episode again."""
        self._next = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if options and options.get("start_step") is not None:
            return self.env.reset(seed=seed, options=options)
        if self.plan is not None:
            spec = self.plan[self._next % len(self.plan)]
            self._next += 1
            return self.env.reset(seed=spec.seed, options={**(options or {}), "start_step": spec.start_step})
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        day = int(self._rng.choice(self.days))
        first = start_step(self.core, day, self._rng)
        return self.env.reset(seed=seed, options={**(options or {}), "start_step": first})


__all__ = ["SPLITS", "DaySplitWrapper", "EpisodeSpec", "plan_episodes", "split_days", "start_step"]
