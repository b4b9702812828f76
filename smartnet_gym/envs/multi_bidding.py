"""Implementation of ``multi_bidding_v0``: every flexibility provider of a local market is an agent.

The versioned module :mod:`smartnet_gym.envs.multi_bidding_v0` re-exports this and documents it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv

from smartnet_gym.config import ScenarioConfig
from smartnet_gym.envs.core import EpisodeCore
from smartnet_gym.envs.local_market import make_competition
from smartnet_gym.envs.providers import (
    TRANSMISSION,
    BidMapper,
    ProviderObservation,
    bid_book,
    provider_reward,
    settle,
)
from smartnet_gym.envs.spaces import check_action, pack, unit_box
from smartnet_gym.errors import ActionError, ConfigError, UnknownNameError, did_you_mean


def agent_units(core: EpisodeCore, area: int | str | None) -> np.ndarray:
    """Units that are agents: those of one area (index, area or DSO name, "transmission") or all ("all"/None)."""
    system = core.system
    units = system.units
    if area is None or area == "all":
        return np.arange(len(units))
    if isinstance(area, (int, np.integer)) and not isinstance(area, bool):
        if not -1 <= area < len(system.areas):
            raise ValueError(f"area: index must be in -1..{len(system.areas) - 1} (-1 = transmission) or "
                             f"'all' (got {area})")
        idx = int(area)
    else:
        names = {a.name: a.index for a in system.areas} | {a.dso: a.index for a in system.areas} | {TRANSMISSION: -1}
        if area not in names:
            raise UnknownNameError(did_you_mean(str(area), [*names, "all"], "area"))
        idx = names[area]
    sel = np.flatnonzero(units.area == idx)
    if not len(sel):
        raise ValueError(f"area {area!r} has no flexible units")
    return sel


def agent_id(unit_name: str) -> str:
    """The agent id of a unit: its name with ``/`` and ``.`` replaced by ``_`` (``MV1.101/PV/0`` →
    ``MV1_101_PV_0``), valid as a file name and as an RLlib policy / module id."""
    return unit_name.replace("/", "_").replace(".", "_")


class MultiBiddingEnv(ParallelEnv[str, np.ndarray, np.ndarray]):
    """Parallel multi-agent bidding: each unit of the local market bids, the rest bid truthfully.

    See :mod:`smartnet_gym.envs.multi_bidding_v0` for the manual (spaces, rewards, arguments).
    """

    metadata: ClassVar[dict[str, Any]] = {"name": "multi_bidding_v0", "is_parallelizable": True, "render_modes": [], "render_fps": 4}

    def __init__(self, scenario: str | ScenarioConfig = "spain-like", scheme: str | None = None,
                 physics: str = "linear", episode_steps: int = 96, area: int | str | None = 0,
                 bid_quantity: bool = False, reward_scale_eur: float = 100.0,
                 non_delivery_penalty_eur_per_mwh: float = 0.0, random_days: int = 28,
                 start_period: int | None = 0, competitors: int | None = None,
                 local_market: Mapping[str, Any] | None = None, render_mode: str | None = None):
        if render_mode is not None:
            raise ValueError(f"render_mode: this env does not render (got {render_mode!r}; allowed: None)")
        if not reward_scale_eur > 0:
            raise ValueError(f"reward_scale_eur: must be > 0 (got {reward_scale_eur})")
        if not non_delivery_penalty_eur_per_mwh >= 0:
            raise ValueError(f"non_delivery_penalty_eur_per_mwh: must be >= 0 (got {non_delivery_penalty_eur_per_mwh})")
        self.render_mode = None
        self.reward_scale_eur = float(reward_scale_eur)
        self.penalty_eur_per_mwh = float(non_delivery_penalty_eur_per_mwh)
        self.core = EpisodeCore(scenario, scheme, physics, episode_steps, random_days, start_period)
        loop = self.core.loop
        lay, names = loop.layout, loop.system.units.name
        h = loop.horizon
        cap = self.core.cfg.market.price_cap_eur_per_mwh
        self.possible_agents: list[str] = []
        self.mappers: dict[str, BidMapper] = {}
        self.obs_builders: dict[str, ProviderObservation] = {}
        self.agent_unit: dict[str, str] = {}       # agent id -> unit name
        obs_dim: dict[str, int] = {}
        self.competition = comp = make_competition(self.core, competitors, local_market, bid_quantity)
        if comp is not None:
            if area != 0:
                raise ConfigError(f"area: must stay 0 with competitors; choose the market's area with "
                                  f"local_market={{'area': NAME}} (got {area!r})")
            for i, m in enumerate(comp.mappers):
                self.mappers[f"provider_{i}"] = m
                obs_dim[f"provider_{i}"] = comp.obs_dim
        else:
            for u in agent_units(self.core, area):
                name = agent_id(names[u])
                self.agent_unit[name] = names[u]
                rows = np.flatnonzero(lay.unit == u)
                slot = (lay.direction[rows] < 0).astype(int) * h + lay.period[rows]   # up slots, then down slots
                self.mappers[name] = BidMapper(rows, slot, 2 * h, cap, bid_quantity)
                self.obs_builders[name] = ProviderObservation(self.core, self.mappers[name], np.array([u]),
                                                              identity=True)
                obs_dim[name] = self.obs_builders[name].dim
        self.possible_agents = list(self.mappers)
        self._action_spaces = {a: unit_box(m.n_actions) for a, m in self.mappers.items()}
        self._observation_spaces = {a: unit_box(d) for a, d in obs_dim.items()}
        self.agents: list[str] = []
        self._np_random: np.random.Generator | None = None
        self.np_random_seed: int | None = None
        self._last_prices = np.full(h, np.nan)

    # ------------------------------------------------------------------ spaces
    def observation_space(self, agent: str):
        return self._observation_spaces[agent]

    def action_space(self, agent: str):
        return self._action_spaces[agent]

    @property
    def np_random(self) -> np.random.Generator:
        if self._np_random is None:
            self._np_random, self.np_random_seed = seeding.np_random()
        return self._np_random

    # ------------------------------------------------------------------ episode
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Start an episode; ``seed`` reseeds ``np_random``, ``options={"start_step": k}`` fixes the start."""
        if seed is not None:
            self._np_random, self.np_random_seed = seeding.np_random(seed)
        start = self.core.begin(self.np_random, options)
        if self.competition is not None:
            self.competition.restart()
        self.agents = list(self.possible_agents)
        self._last_prices = np.full(self.core.loop.horizon, np.nan)
        inst = self.core.loop.instance()
        obs = {a: self._observe(a, inst) for a in self.agents}
        return obs, {a: self.core.reset_info(start) for a in self.agents}

    def _observe(self, agent: str, inst) -> np.ndarray:
        if self.competition is not None:
            return pack(*self.competition.observe(self.possible_agents.index(agent)))
        return pack(*self.obs_builders[agent].parts(inst, self._last_prices))

    def step(self, actions: dict[str, np.ndarray]):
        """All agents bid at once; returns per-agent obs, rewards, terminations, truncations, infos."""
        self.core.require_started()
        if not self.agents:
            raise RuntimeError("the episode is over (truncated); call reset()")
        unknown = sorted(set(actions) - set(self.agents))
        if unknown:
            raise ActionError(f"actions for unknown or finished agents {unknown}; live agents: {self.agents}")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ActionError(f"missing actions for agents {missing}")
        checked = {a: check_action(actions[a], self.mappers[a].n_actions, who=f"action of agent {a!r}")
                   for a in self.agents}
        loop = self.core.loop
        local: dict[str, Any] = {}
        if self.competition is not None:   # every provider is an agent: actions in provider order
            res, local, markups = self.competition.step([checked[a][0] for a in self.possible_agents])
            local_of = {a: local | {"markup_eur_per_mwh": m}
                        for a, m in zip(self.possible_agents, markups, strict=True)}
        else:
            book = bid_book(loop.truthful_book, [self.mappers[a] for a in self.agents],
                            [checked[a][0] for a in self.agents])
            res = loop.step(book=book)
            local_of = dict.fromkeys(self.agents, local)
        self._last_prices = np.asarray(res.clearing.uniform_price_eur_per_mwh, dtype=float).copy()
        common = self.core.step_info(res, sum(c for _, c in checked.values()))
        rewards, infos = {}, {}
        for a in self.agents:
            rewards[a], own = provider_reward(settle(res, res.delivered_mw, self.mappers[a].rows),
                                              self.penalty_eur_per_mwh, self.reward_scale_eur)
            infos[a] = common | local_of[a] | own | {"clipped_actions": checked[a][1],
                                                     "total_clipped_actions": common["clipped_actions"]}
        truncated = loop.done
        inst = res.instance if truncated else loop.instance()
        obs = {a: self._observe(a, inst) for a in self.agents}
        terminations = dict.fromkeys(self.agents, False)
        truncations = dict.fromkeys(self.agents, truncated)
        if truncated:
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    def render(self) -> None:
        """No rendering."""

    def close(self) -> None:
        """Nothing to release."""


def parallel_env(**kwargs: Any) -> MultiBiddingEnv:
    """The parallel env (see :class:`MultiBiddingEnv` for the arguments)."""
    return MultiBiddingEnv(**kwargs)


def raw_env(**kwargs: Any):
    """The AEC version (PettingZoo's ``parallel_to_aec`` conversion, order enforced)."""
    from pettingzoo.utils.conversions import parallel_to_aec

    return parallel_to_aec(parallel_env(**kwargs))


env = raw_env
