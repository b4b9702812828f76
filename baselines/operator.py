"""Operator baselines for ``smartnet/Dispatch-v0`` and ``smartnet/DSOLimits-v0``.

Dispatch-v0 (action = share of each bid's offer to activate, ``x = (a + 1)/2 · offer``):

| baseline | activations |
|---|---|
| optimal | the CS_D joint clearing of the current instance, read from the env (``DispatchEnv.cs_d_optimum``): the yardstick optimum, so ``info["regret_eur"]`` = 0 up to solver tolerance |
| perfect_foresight | the CS_D joint clearing of the *actual* instance (:mod:`baselines.foresight`); its yardstick cost on the actual instance (``last_bound_eur``) is a lower bound on the cost of every decision on that step. Executed in the env it is capped at the forecast offers (the env's action scale) |
| truthful | what the env's own scheme (CS_A…CS_E) clears from the truthful bids: the market outcome of that scheme, for CS_D the optimum |
| merit_order | rule-based and network-blind: per period, the cheapest bids of the needed direction until the forecast imbalance is covered |
| random | uniform in [-1, 1] |

DSOLimits-v0 (action = share of each area's D bid quantities offered to the market):

| baseline | shares |
|---|---|
| truthful | 1 everywhere: no limits (all D bids reach the market) |
| fixed_limits | a static share (default 0.5) in every area |
| prequalify | static DSO prequalification: 0 in an area whose forecast base state violates a D limit (the CS_A ``Prequalify`` rule), else 1 |
| optimal | myopic grid search of the shares (levels 0, 0.25, …, 1; one coordinate pass per area from all-ones) minimising the yardstick cost of what the env's scheme then clears; not a proven optimum |
| random | uniform in [-1, 1] |
"""

from __future__ import annotations

from typing import Any

import numpy as np

from baselines.base import Baseline, action_from_activations, action_from_share, check_levels
from baselines.foresight import actual_instance


def _own_scheme(core: Any, name: str):
    """A scheme object of the baseline's own (solver state apart from the env's)."""
    from smartnet_gym.market.schemes import make_scheme

    return make_scheme(name, core.system.linear, core.cfg.market)


class _DispatchBaseline(Baseline):
    """Dispatch baselines: choose activations ``x`` of the current instance; the action is x / offer,
    one entry per bid, so they play ``Dispatch-v0`` with ``action_mode="bid"``."""

    def __init__(self, env: Any):
        super().__init__(env)
        mode = getattr(self.unwrapped, "action_mode", "bid")
        if mode != "bid":
            from smartnet_gym.errors import ConfigError

            raise ConfigError(f"baseline {self.name!r} chooses every bid's activation: play it on Dispatch-v0 "
                              f"with action_mode='bid' (got {mode!r}); `smartnet-gym evaluate` does so")

    def activations(self, inst: Any) -> np.ndarray:
        raise NotImplementedError

    def act(self, obs: np.ndarray) -> np.ndarray:
        inst = self.unwrapped.loop.instance()
        return action_from_activations(self.activations(inst), inst.book.qty_mw)


class OptimalDispatch(_DispatchBaseline):
    """The CS_D joint clearing of the current instance (the env's own yardstick optimum)."""

    name = "optimal"

    def activations(self, inst: Any) -> np.ndarray:
        x, self.last_cost_eur = self.unwrapped.cs_d_optimum(inst)
        return x


class SchemeDispatch(_DispatchBaseline):
    """Activations of the env's scheme clearing the truthful bids (the market outcome)."""

    name = "truthful"

    def __init__(self, env: Any):
        super().__init__(env)
        core = self.unwrapped.core
        self.scheme = _own_scheme(core, core.scheme_name)

    def activations(self, inst: Any) -> np.ndarray:
        return self.scheme.clear(inst, evaluate=False).activated_mw


class PerfectForesightDispatch(_DispatchBaseline):
    """The CS_D joint clearing of the actual instance; records the lower bound of the step."""

    name = "perfect_foresight"

    def __init__(self, env: Any):
        super().__init__(env)
        self.scheme = _own_scheme(self.unwrapped.core, "CS_D")
        self.last_bound_eur = float("nan")
        self.last_instance = None

    def activations(self, inst: Any) -> np.ndarray:
        real = actual_instance(self.unwrapped.loop)
        out = self.scheme.clear(real, evaluate=True)
        self.last_bound_eur, self.last_instance = float(out.evaluated_cost_eur), real
        return out.activated_mw

    def actual_cost_eur(self, x_mw: np.ndarray) -> float:
        """Yardstick cost of activations ``x_mw`` on the last actual instance (≥ ``last_bound_eur``)."""
        return float(self.scheme.evaluate(self.last_instance, x_mw))


class MeritOrderDispatch(_DispatchBaseline):
    """Per period, the cheapest bids of the needed direction until the forecast need is covered."""

    name = "merit_order"

    def activations(self, inst: Any) -> np.ndarray:
        book = inst.book
        x = np.zeros(len(book))
        for t, need in enumerate(inst.need_mw):
            if abs(need) < 1e-9:
                continue
            rows = np.flatnonzero((book.period == t) & (book.direction == np.sign(need)) & (book.qty_mw > 0))
            left = abs(float(need))
            for r in rows[np.argsort(book.price_eur_per_mwh[rows], kind="stable")]:
                x[r] = min(book.qty_mw[r], left)
                left -= x[r]
                if left <= 1e-9:
                    break
        return x


class _LimitsBaseline(Baseline):
    """DSOLimits baselines: one share per distribution area."""

    @property
    def n_areas(self) -> int:
        return int(self.action_space.shape[0])


class FixedLimits(_LimitsBaseline):
    """The same share of D bid quantities in every area, every step."""

    name = "fixed_limits"
    reads_env = False

    def __init__(self, env: Any, share: float = 0.5):
        from smartnet_gym.errors import ConfigError

        super().__init__(env)
        if not 0.0 <= share <= 1.0:
            raise ConfigError(f"share: must be in [0, 1] (got {share})")
        self.share = float(share)

    def act(self, obs: np.ndarray) -> np.ndarray:
        return action_from_share(np.full(self.n_areas, self.share)).astype(np.float32)


class PrequalifyLimits(_LimitsBaseline):
    """Static prequalification: block the D bids of areas whose forecast base state violates a limit."""

    name = "prequalify"

    def act(self, obs: np.ndarray) -> np.ndarray:
        inst = self.unwrapped.loop.instance()
        share = np.ones(self.n_areas)
        for i, f in enumerate(self.unwrapped.loop.system.linear.feeders):
            w, p = inst.base.d_w_pu2[i], np.abs(inst.base.d_p_mw[i])
            if ((w > f.v_max_pu ** 2) | (w < f.v_min_pu ** 2)).any() or (p > f.rating_mva).any():
                share[f.area] = 0.0
        return action_from_share(share).astype(np.float32)


class BestLimits(_LimitsBaseline):
    """Grid search of the area shares minimising the yardstick cost of the scheme's clearing."""

    name = "optimal"

    def __init__(self, env: Any, levels: int = 5):
        super().__init__(env)
        self.grid = np.linspace(0.0, 1.0, check_levels(levels))
        core = self.unwrapped.core
        self.scheme = _own_scheme(core, core.scheme_name)
        self.yardstick = _own_scheme(core, "CS_D")
        self.last_cost_eur = float("nan")

    def cost_eur(self, share: np.ndarray) -> float:
        """Yardstick cost of what the scheme clears when each area offers ``share`` of its D bids."""
        e = self.unwrapped
        inst = e.loop.instance()
        limited = e.loop.instance(e.book(action_from_share(share)))
        x = self.scheme.clear(limited, evaluate=False).activated_mw
        return float(self.yardstick.evaluate(inst, x))

    def act(self, obs: np.ndarray) -> np.ndarray:
        share = np.ones(self.n_areas)
        best = self.cost_eur(share)
        for a in range(self.n_areas):
            for level in self.grid[::-1]:       # from 1 down: ties keep the larger (less limiting) share
                if level == share[a]:
                    continue
                trial = share.copy()
                trial[a] = level
                c = self.cost_eur(trial)
                if c < best - 1e-9 * max(1.0, abs(best)):
                    best, share = c, trial
        self.last_cost_eur = best
        return action_from_share(share).astype(np.float32)


__all__ = ["BestLimits", "FixedLimits", "MeritOrderDispatch", "OptimalDispatch", "PerfectForesightDispatch",
           "PrequalifyLimits", "SchemeDispatch"]
