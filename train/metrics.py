"""Per-episode CBA sums from the envs' ``info`` dicts, and 95 % confidence intervals.

Every smartnet env reports the step's CBA row in ``info`` (``smartnet_gym.cba.accounts``) plus
env-specific keys. An episode's value of a key is the sum over its steps (EUR, MWh, counts).
Used by the TensorBoard callback during training and by ``smartnet-gym evaluate``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from smartnet_gym.cba.accounts import COST_COMPONENTS

#: CBA columns of the account row summed per episode
CBA_KEYS: tuple[str, ...] = (
    "total_cost_eur", *COST_COMPONENTS, "tso_cost_eur", "bidders_profit_eur", "bidders_true_cost_eur",
    "imbalance_mwh", "afrr_energy_mwh", "unwanted_energy_mwh", "curtailed_mwh", "activation_mwh",
    "d_violations", "t_violations", "clearing_failures", "pf_failures",
)
#: env-specific info keys summed per episode (those an env reports)
ENV_KEYS: tuple[str, ...] = (
    # Dispatch-v0
    "operator_cost_eur", "policy_evaluated_cost_eur", "optimal_cost_eur", "regret_eur", "storage_reduced_mw",
    # Bidding-v0 / multi_bidding_v0
    "profit_eur", "provider_payment_eur", "provider_true_cost_eur", "provider_activated_mwh",
    "provider_delivered_mwh", "non_delivery_penalty_eur",
    # DSOLimits-v0
    "evaluated_cost_eur", "cs_d_evaluated_cost_eur",
    # all
    "clipped_actions",
)
#: market-power indicators of the global market (per step; logged as episode means)
MEAN_KEYS: tuple[str, ...] = ("hhi_offered", "hhi_activated", "psi", "rsi")
SUM_KEYS: tuple[str, ...] = tuple(dict.fromkeys(CBA_KEYS + ENV_KEYS + MEAN_KEYS))


class EpisodeAccumulator:
    """Sums of :data:`SUM_KEYS` (those present and finite) and of the reward over one episode."""

    def __init__(self, keys: Iterable[str] = SUM_KEYS):
        self.keys = tuple(keys)
        self.clear()

    def clear(self) -> None:
        self.sums: dict[str, float] = {}
        self.reward = 0.0
        self.steps = 0

    def add(self, info: Mapping[str, Any], reward: float) -> None:
        self.reward += float(reward)
        self.steps += 1
        for k in self.keys:
            v = info.get(k)
            if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v):
                self.sums[k] = self.sums.get(k, 0.0) + float(v)

    def result(self) -> dict[str, float]:
        """``{"reward": …, "steps": …, key: sum, …}`` of the episode so far."""
        return {"reward": self.reward, "steps": float(self.steps), **self.sums}


def mean_ci95(values: Iterable[float]) -> tuple[float, float]:
    """Mean and half-width of its two-sided 95 % Student-t confidence interval (NaN if n < 2)."""
    from scipy import stats

    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if not len(x):
        return float("nan"), float("nan")
    if len(x) < 2:
        return float(x.mean()), float("nan")
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return float(x.mean()), float(half)


__all__ = ["CBA_KEYS", "ENV_KEYS", "MEAN_KEYS", "SUM_KEYS", "EpisodeAccumulator", "mean_ci95"]
