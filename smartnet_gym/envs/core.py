"""What every smartnet env shares: the scenario, the T&D system, the rolling loop and the episode window.

:class:`EpisodeCore` is owned by each env (Gymnasium or PettingZoo). It loads the scenario, builds
the system (cached on disk) and one :class:`~smartnet_gym.simulation.loop.RollingLoop` in
``__init__``, draws the episode window from the env's ``np_random`` in :meth:`EpisodeCore.begin`
and turns a :class:`~smartnet_gym.simulation.loop.StepOutcome` into the common ``info`` dict.
:class:`MarketEnv` is the Gymnasium base: the public ``reset``/``step`` do the bookkeeping and call
the subclass hooks ``_observe`` and ``_act`` (one hook each).

Pickling: solver objects (HiGHS) do not pickle, so an env pickles its constructor arguments, its
spaces and its RNG only; the system and loop are rebuilt on first use after unpickling, and the
unpickled env must be ``reset()`` before ``step()``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import gymnasium as gym
import numpy as np

from smartnet_gym.config import ScenarioConfig, load_scenario
from smartnet_gym.data.profiles import STEPS_PER_DAY
from smartnet_gym.envs.spaces import check_action
from smartnet_gym.errors import ConfigError

if TYPE_CHECKING:
    from smartnet_gym.grid.system import TDSystem
    from smartnet_gym.market.schemes import Scheme
    from smartnet_gym.market.stages import MarketInstance
    from smartnet_gym.simulation.loop import RollingLoop, StepOutcome

PHYSICS = ("linear", "ac")
NONDETERMINISTIC = ("solve_ms",)  # account columns left out of info (wall-clock time)


class EpisodeCore:
    """Scenario, system and rolling loop of one env, and the episode window it runs.

    :param scenario: preset name, YAML path or a :class:`ScenarioConfig`.
    :param scheme: coordination scheme (``CS_A``…``CS_E``, any case); None = the scenario's.
    :param physics: ``"linear"`` (fast) or ``"ac"`` (pandapower power flow).
    :param episode_steps: market steps (15 min) per episode.
    :param random_days: episodes start on day ``data.start_day + d``, d drawn uniformly from
        0..random_days−1 by the env's ``np_random`` (1 = always ``data.start_day``).
    :param start_period: quarter-hour of the day where episodes start (0 = 00:00); None = drawn
        uniformly from 0..95 as well.
    :param allowed_schemes: schemes this env supports; others raise ``ConfigError``.
    """

    def __init__(self, scenario: str | ScenarioConfig, scheme: str | None, physics: str, episode_steps: int,
                 random_days: int, start_period: int | None,
                 allowed_schemes: tuple[str, ...] = ("CS_A", "CS_B", "CS_C", "CS_D", "CS_E")):
        from smartnet_gym.market.schemes import normalize_scheme

        self.cfg = scenario if isinstance(scenario, ScenarioConfig) else load_scenario(scenario)
        self.scheme_name = normalize_scheme(scheme or self.cfg.market.scheme)
        if self.scheme_name not in allowed_schemes:
            raise ConfigError(f"scheme: {self.scheme_name} is not supported by this env; "
                              f"allowed: {', '.join(allowed_schemes)}")
        if physics not in PHYSICS:
            raise ConfigError(f"physics: must be one of {', '.join(PHYSICS)} (got {physics!r})")
        if int(episode_steps) != episode_steps or episode_steps < 1:
            raise ConfigError(f"episode_steps: must be an integer >= 1 (got {episode_steps!r})")
        if int(random_days) != random_days or random_days < 1:
            raise ConfigError(f"random_days: must be an integer >= 1 (got {random_days!r})")
        if start_period is not None and not 0 <= start_period < STEPS_PER_DAY:
            raise ConfigError(f"start_period: must be None or in 0..{STEPS_PER_DAY - 1} (got {start_period!r})")
        self.physics, self.episode_steps = physics, int(episode_steps)
        self.random_days, self.start_period = int(random_days), start_period
        self._system: TDSystem | None = None
        self._loop: RollingLoop | None = None
        self._schemes: dict[str, Scheme] = {}
        self.started = False
        self.forecast_seed = -1
        self.loop  # build now: spaces depend on the bid layout   # noqa: B018
        n_prof = self.system.profiles.n_steps
        last_start = n_prof - self.episode_steps - self.loop.horizon + 1
        max_period = STEPS_PER_DAY - 1 if start_period is None else start_period
        self.n_days = (last_start - max_period) // STEPS_PER_DAY + 1   # days an episode can start on
        if self.n_days < 1:
            raise ConfigError(f"episode_steps: {self.episode_steps} steps (+ horizon {self.loop.horizon}) from "
                              f"period {max_period} do not fit in the {n_prof} profile steps")

    # ------------------------------------------------------------------ lazily built parts
    @property
    def system(self) -> TDSystem:
        """The T&D system (built or loaded from the disk cache on first use)."""
        if self._system is None:
            from smartnet_gym.grid.build import build_system

            self._system = build_system(self.cfg)
        return self._system

    @property
    def loop(self) -> RollingLoop:
        """The rolling loop of this env's scheme and physics."""
        if self._loop is None:
            from smartnet_gym.simulation.loop import RollingLoop

            self._loop = RollingLoop(self.system, self.cfg, scheme=self.scheme_name, physics=self.physics)
        return self._loop

    def scheme(self, name: str) -> Scheme:
        """Another scheme on the same system (e.g. the CS_D bound), built once."""
        if name not in self._schemes:
            from smartnet_gym.market.schemes import make_scheme

            self._schemes[name] = make_scheme(name, self.system.linear, self.cfg.market)
        return self._schemes[name]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_system=None, _loop=None, _schemes={}, started=False)
        return state

    # ------------------------------------------------------------------ episodes
    @property
    def need_scale_mw(self) -> float:
        """Scale of imbalance needs in observations: Σ rated power of all flexible units [MW]."""
        return max(float(self.system.units.p_rated_mw.sum()), 1.0)

    def begin(self, np_random: np.random.Generator, options: dict[str, Any] | None = None) -> int:
        """Draw the episode window from ``np_random`` and reset the loop; returns the start step.

        The loop's forecast errors come from ``np.random.default_rng(forecast_seed)``, a seed drawn
        here too (``reset_info`` reports it, so a scripted ``RollingLoop`` can replay the episode).

        Always three draws (day offset, period, loop seed), so ``options={"start_step": k}`` (a
        fixed start) leaves the RNG stream where a random start would.
        """
        day_off = int(np_random.integers(self.random_days))
        period = int(np_random.integers(STEPS_PER_DAY)) if self.start_period is None else self.start_period
        if self.start_period is not None:
            np_random.integers(STEPS_PER_DAY)
        loop_seed = int(np_random.integers(2**63 - 1))
        start = self.start_step(day_off, period)
        if options and options.get("start_step") is not None:
            start = int(options["start_step"])
        self.fresh_solvers()
        self.forecast_seed = loop_seed
        self.loop.reset(start, self.episode_steps, np.random.default_rng(loop_seed))
        self.started = True
        return start

    def start_step(self, day_offset: int, period: int) -> int:
        """Profile step where an episode on day ``data.start_day + day_offset`` (wrapped to the
        days an episode fits in) starts at quarter-hour ``period``."""
        return ((self.cfg.data.start_day + day_offset) % self.n_days) * STEPS_PER_DAY + period

    def fresh_solvers(self) -> None:
        """Cold solvers for the loop's scheme, the yardsticks and the unwanted measures.

        The solvers hot-start each solve from the previous basis, so the last bits of a clearing
        (and, for a degenerate program, which optimal vertex it returns) depend on every earlier
        solve. Starting each episode from cold solvers makes an episode depend only on its seed and
        actions: ``reset(seed)`` replays bit-identically after any history, and so does an
        unpickled or a new env. The programs themselves (matrices, network factors, bid-space
        rows) depend only on the bid layout and are kept (``Scheme.reset``).
        """
        from smartnet_gym.market.schemes import make_scheme
        from smartnet_gym.simulation.unwanted import UnwantedMeasures

        loop = self.loop
        if loop.scheme.name == self.scheme_name:
            loop.scheme.reset()
        else:
            loop.scheme = make_scheme(self.scheme_name, self.system.linear, self.cfg.market)
        for scheme in self._schemes.values():
            scheme.reset()
        if not loop.unwanted.prog.reset():
            loop.unwanted = UnwantedMeasures(self.system, self.cfg.market, self.cfg.simulation.voll_eur_per_mwh)

    def require_started(self) -> None:
        if not self.started:
            raise RuntimeError("call reset() before step() (a new or unpickled env has no episode)")

    def reset_info(self, start: int) -> dict[str, Any]:
        return {"start_step": start, "forecast_seed": self.forecast_seed, "scheme": self.scheme_name,
                "physics": self.physics, "episode_steps": self.episode_steps}

    def step_info(self, res: StepOutcome, clipped: int) -> dict[str, Any]:
        """The common info of a step: the CBA row, clearing status, prices, scheme, clipped actions.

        Non-finite numbers (e.g. ``welfare_eur`` outside CS_E, the price when no stage balanced)
        are reported as None, and the wall-clock ``solve_ms`` is left out, so that the same seed
        and actions give infos that compare equal.
        """
        out = res.clearing
        isfinite = math.isfinite   # the account holds plain floats only (``step_account``)
        info: dict[str, Any] = {k: v if isfinite(v) else None for k, v in res.account.items()
                                if k not in NONDETERMINISTIC}
        info.update(
            clearing_status=out.status, failed_stages=int(out.failed_stages), scheme=out.scheme,
            physics=self.physics, slack_mw=float(out.slack_mw),
            prices_eur_per_mwh=tuple(finite_or_none(p) for p in out.uniform_price_eur_per_mwh),
            clipped_actions=int(clipped))
        return info


def finite_or_none(v: Any) -> Any:
    """Python float of ``v``, None if it is NaN/inf (non-numbers pass through)."""
    if isinstance(v, (int, float, np.integer, np.floating)):
        f = float(v)
        return f if math.isfinite(f) else None
    return v


class MarketEnv(gym.Env[np.ndarray, np.ndarray]):
    """Gymnasium base of the smartnet envs: owns the :class:`EpisodeCore`, ``np_random`` and spaces.

    Subclasses set ``self.action_space``/``self.observation_space`` in ``__init__`` (after calling
    this one) and implement ``_observe(inst)`` and ``_act(action) -> (StepOutcome, reward, info)``.
    Episodes never terminate; they are truncated after ``episode_steps`` steps.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": [], "render_fps": 4}

    def __init__(self, *, scenario: str | ScenarioConfig, scheme: str | None, physics: str, episode_steps: int,
                 random_days: int, start_period: int | None, render_mode: str | None = None,
                 allowed_schemes: tuple[str, ...] = ("CS_A", "CS_B", "CS_C", "CS_D", "CS_E")):
        self.render_mode = None   # nothing to render; a requested mode (e.g. SB3's "rgb_array") is ignored
        self.core = EpisodeCore(scenario, scheme, physics, episode_steps, random_days, start_period,
                                allowed_schemes)
        self._last_prices = np.full(self.core.loop.horizon, np.nan)

    @property
    def loop(self) -> RollingLoop:
        return self.core.loop

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode (see :meth:`EpisodeCore.begin`); ``options={"start_step": k}`` fixes the start."""
        super().reset(seed=seed)
        start = self.core.begin(self.np_random, options)
        self._last_prices = np.full(self.loop.horizon, np.nan)
        self._on_reset()
        return self._observe(self.loop.instance()), self.core.reset_info(start)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Validate and clip the action, advance one market step, observe and report."""
        self.core.require_started()
        if self.loop.done:
            raise RuntimeError("the episode is over (truncated); call reset()")
        a, clipped = check_action(action, int(self.action_space.shape[0]))
        res, reward, extra = self._act(a)
        self._last_prices = np.asarray(res.clearing.uniform_price_eur_per_mwh, dtype=float).copy()
        info = self.core.step_info(res, clipped)
        info.update(extra)
        truncated = self.loop.done
        # at truncation there is no next forecast: the final observation reuses the last instance
        obs = self._observe(res.instance if truncated else self.loop.instance())
        return obs, float(reward), False, truncated, info

    # ------------------------------------------------------------------ hooks
    def _on_reset(self) -> None:
        """Per-episode state of a subclass (default: none)."""

    def _observe(self, inst: MarketInstance) -> np.ndarray:
        raise NotImplementedError

    def _act(self, action: np.ndarray) -> tuple[StepOutcome, float, dict[str, Any]]:
        raise NotImplementedError
