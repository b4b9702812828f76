"""Bidding baselines for ``smartnet/Bidding-v0`` and ``multi_bidding_v0``.

Action mapping of the bidding envs (``envs/providers.py``): for each of the provider's bid rows,
``price = cost + (a + 1)/2 · max(cap − cost, 0)``; with ``bid_quantity`` a second block of
entries sets ``qty = (a + 1)/2 · forecast available MW``.

| baseline | action |
|---|---|
| truthful | price entries −1 (price = true cost), quantity entries +1 (offer everything): the competitive benchmark |
| markup | price = cost · (1 + markup_fraction) + markup_eur_per_mwh, capped at the price cap; quantities +1 |
| optimal | Bidding-v0 only: myopic oracle best response. Each step it clears the *current* market instance (every competitor's truthful bid, the forecast) once per level of a grid of uniform price actions (default 11 levels from −1 to +1), with its own copy of the env's scheme, and keeps the level with the highest first-period profit of the provider (payment − true cost, delivery as forecast); ties go to the lower (more truthful) level. An upper reference for a myopic bidder that knows its rivals' bids, not a proven optimum (one level for all slots; later periods not valued). |
| random | uniform in [-1, 1] |
"""

from __future__ import annotations

from typing import Any

import numpy as np

from baselines.base import Baseline, ConstantBaseline, action_from_share, check_levels, unwrapped
from smartnet_gym.envs.local_market import mapped_book_costs


def truthful_action(n_slots: int, bid_quantity: bool) -> np.ndarray:
    """Price entries −1 (true cost), quantity entries (if any) +1 (everything available)."""
    a = -np.ones(n_slots, dtype=np.float32)
    return np.r_[a, np.ones(n_slots, dtype=np.float32)] if bid_quantity else a


def markup_action(mapper: Any, cost_eur_per_mwh: np.ndarray, markup_fraction: float,
                  markup_eur_per_mwh: float) -> np.ndarray:
    """Action of a fixed-markup bidder for the rows of ``mapper`` (``cost`` is per book row).

    ``price = cost · (1 + markup_fraction) + markup_eur_per_mwh`` (at most the cap), i.e. a share
    ``(price − cost) / (cap − cost)`` of the range above cost. Slots without a row stay −1.
    """
    c = np.asarray(cost_eur_per_mwh, dtype=np.float64)[mapper.rows]
    room = np.maximum(mapper.cap - c, 0.0)
    share = np.divide(c * markup_fraction + markup_eur_per_mwh, room, out=np.ones(len(c)), where=room > 1e-9)
    a = truthful_action(mapper.n_slots, mapper.bid_quantity).astype(np.float64)
    a[mapper.slot] = action_from_share(np.clip(share, 0.0, 1.0))
    return a.astype(np.float32)


def _check_markup(markup_fraction: float, markup_eur_per_mwh: float) -> None:
    from smartnet_gym.errors import ConfigError

    if not markup_fraction >= 0:
        raise ConfigError(f"markup_fraction: must be >= 0 (got {markup_fraction})")
    if not markup_eur_per_mwh >= 0:
        raise ConfigError(f"markup_eur_per_mwh: must be >= 0 (got {markup_eur_per_mwh})")


def truthful(env: Any) -> Baseline:
    """Truthful (competitive) bids of the Bidding-v0 provider."""
    e = unwrapped(env)
    return ConstantBaseline(env, truthful_action(e.mapper.n_slots, e.mapper.bid_quantity), "truthful")


class MarkupBaseline(Baseline):
    """Fixed-markup bidder: every bid at ``cost · (1 + markup_fraction) + markup_eur_per_mwh``."""

    name = "markup"

    def __init__(self, env: Any, markup_fraction: float = 0.2, markup_eur_per_mwh: float = 0.0):
        super().__init__(env)
        _check_markup(markup_fraction, markup_eur_per_mwh)
        self.markup_fraction, self.markup_eur_per_mwh = float(markup_fraction), float(markup_eur_per_mwh)
        self._action: np.ndarray | None = None

    def act(self, obs: np.ndarray) -> np.ndarray:
        if self._action is None:   # true costs are constant per bid row; read once after reset
            cost = mapped_book_costs(self.unwrapped.core, self.unwrapped.competition)
            self._action = markup_action(self.unwrapped.mapper, cost, self.markup_fraction, self.markup_eur_per_mwh)
        return self._action.copy()


class BestResponseBaseline(Baseline):
    """Myopic oracle best response of the Bidding-v0 provider on a grid of uniform price actions."""

    name = "optimal"

    def __init__(self, env: Any, levels: int = 11):
        from smartnet_gym.market.schemes import make_scheme

        super().__init__(env)
        self.grid = np.linspace(-1.0, 1.0, check_levels(levels))
        core = self.unwrapped.core
        self.scheme = make_scheme(core.scheme_name, core.system.linear, core.cfg.market)
        self.last_profit_eur = float("nan")

    def profit_eur(self, action: np.ndarray) -> float:
        """First-period profit of the provider if it bid ``action`` on the current instance."""
        e = self.unwrapped
        inst = e.loop.instance(e.book(np.asarray(action, dtype=np.float64)))
        out = self.scheme.clear(inst, evaluate=False)
        rows = e.mapper.rows[inst.book.period[e.mapper.rows] == 0]
        return float((out.payment_eur[rows] - out.true_cost_eur[rows]).sum())

    def act(self, obs: np.ndarray) -> np.ndarray:
        m = self.unwrapped.mapper
        best, best_a = -np.inf, None
        for level in self.grid:
            a = truthful_action(m.n_slots, m.bid_quantity).astype(np.float64)
            a[:m.n_slots] = level
            p = self.profit_eur(a)
            if best_a is None or p > best + 1e-9 * max(1.0, abs(best)):
                best, best_a = p, a
        self.last_profit_eur = best
        return best_a


class MultiAgentBaseline:
    """A baseline for every agent of ``multi_bidding_v0``: ``predict({agent: obs})`` → ``{agent: action}``.

    :param kind: "truthful", "markup" or "random".
    """

    reads_env = False

    def __init__(self, env: Any, kind: str, seed: int | None = None, markup_fraction: float = 0.2,
                 markup_eur_per_mwh: float = 0.0):
        self.env, self.name = env, kind
        self.unwrapped = unwrapped(env)
        if kind == "markup":
            _check_markup(markup_fraction, markup_eur_per_mwh)
        self.markup = (float(markup_fraction), float(markup_eur_per_mwh))
        self._fixed: dict[str, np.ndarray] = {}
        self.seed(seed)

    def seed(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def _action(self, agent: str) -> np.ndarray:
        e = self.unwrapped
        if self.name == "random":
            sp = e.action_space(agent)
            return self.rng.uniform(sp.low, sp.high, sp.shape).astype(sp.dtype)
        if agent not in self._fixed:
            m = e.mappers[agent]
            if self.name == "truthful":
                self._fixed[agent] = truthful_action(m.n_slots, m.bid_quantity)
            else:
                self._fixed[agent] = markup_action(m, mapped_book_costs(e.core, e.competition), *self.markup)
        return self._fixed[agent].copy()

    def predict(self, observation: dict[str, np.ndarray], state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[dict[str, np.ndarray], Any]:
        """One action per agent in ``observation`` (a dict keyed by agent, as the parallel API gives)."""
        if not isinstance(observation, dict):
            raise TypeError(f"multi_bidding_v0 baselines take the dict of observations per agent "
                            f"(got {type(observation).__name__})")
        return {a: self._action(a) for a in observation}, state

    def __repr__(self) -> str:
        return f"MultiAgentBaseline(name={self.name!r})"


__all__ = ["BestResponseBaseline", "MarkupBaseline", "MultiAgentBaseline", "markup_action", "truthful",
           "truthful_action"]
