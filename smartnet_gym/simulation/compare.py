"""Run several schemes on the same days, seeds and forecasts; collect the CBA tables."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from smartnet_gym.cba.accounts import episode_frame, summarize
from smartnet_gym.config import ScenarioConfig
from smartnet_gym.data.profiles import STEPS_PER_DAY
from smartnet_gym.errors import ConfigError
from smartnet_gym.grid.system import TDSystem
from smartnet_gym.simulation.loop import RollingLoop


def episode_start(cfg: ScenarioConfig) -> int:
    """Profile step where episodes of this scenario start (``data.start_day`` at 00:00)."""
    return cfg.data.start_day * STEPS_PER_DAY


def check_window(system: TDSystem, cfg: ScenarioConfig, steps: int) -> None:
    """Raise ConfigError naming the field if ``steps`` + horizon run past the profiles."""
    start = episode_start(cfg)
    need = start + steps + cfg.market.horizon_periods - 1
    if need > system.profiles.n_steps:
        raise ConfigError(f"steps: {steps} steps from day {cfg.data.start_day} with a horizon of "
                         f"{cfg.market.horizon_periods} need profile step {need}, but the profiles have "
                         f"{system.profiles.n_steps}; allowed steps <= "
                         f"{system.profiles.n_steps - start - cfg.market.horizon_periods + 1}")


def run_scheme(system: TDSystem, cfg: ScenarioConfig, scheme: str, steps: int, seed: int,
               physics: str, progress=None) -> pd.DataFrame:
    """One episode of one scheme; returns its per-step CBA frame."""
    loop = RollingLoop(system, cfg, scheme=scheme, physics=physics)
    loop.reset(episode_start(cfg), steps, np.random.default_rng(seed))
    rows = []
    while not loop.done:
        rows.append(loop.step().account)
        if progress is not None:
            progress.update(1)
    return episode_frame(rows, loop.scheme.name)


def run_compare(system: TDSystem, cfg: ScenarioConfig, schemes: Sequence[str], steps: int, seed: int,
                physics: str, show_progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """All ``schemes`` over the same window and forecast seed → (steps frame, summary frame, seconds)."""
    check_window(system, cfg, steps)
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    frames = []
    with tqdm(total=steps * len(schemes), desc="compare", unit="step", disable=not show_progress) as bar:
        for s in schemes:
            bar.set_postfix_str(s)
            frames.append(run_scheme(system, cfg, s, steps, seed, physics, bar))
    steps_df = pd.concat(frames, ignore_index=True)
    return steps_df, summarize(steps_df), time.perf_counter() - t0
