"""Helpers of the env tests: registered ids, supported schemes, fast settings, rollouts.

All env tests use the ``toy`` preset with linear physics and short episodes (≤ 8 steps) starting
at 11:00 (``start_period=44``, when the toy feeder has PV and some congestion), to stay fast.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import smartnet_gym  # noqa: F401  (registers the ids)
from smartnet_gym.config import SCHEMES

GYM_IDS = sorted(k for k in gym.registry if k.startswith("smartnet/"))
#: schemes each env supports (DSOLimits: the schemes where a DSO limits D bids)
SUPPORTED = {"smartnet/Bidding-v0": SCHEMES, "smartnet/Dispatch-v0": SCHEMES,
             "smartnet/DSOLimits-v0": ("CS_A", "CS_B")}
ID_SCHEMES = [(i, s) for i in GYM_IDS for s in SUPPORTED[i]]
#: one representative scheme per id, for the slower tests
ID_ONE = [(i, SUPPORTED[i][1]) for i in GYM_IDS]
FAST = {"scenario": "toy", "physics": "linear", "episode_steps": 4, "start_period": 44}


def make(env_id: str, **kwargs) -> gym.Env:
    """``gym.make`` with the fast test settings (overridable)."""
    return gym.make(env_id, **(FAST | kwargs))


def rollout(env, seed: int, actions: list[np.ndarray]) -> list:
    """reset(seed) then step through ``actions``; everything returned, in order."""
    out: list = [env.reset(seed=seed)]
    for a in actions:
        out.append(env.step(a))
    return out


def random_actions(space, n: int, seed: int, low: float = -1.0, high: float = 1.0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(low, high, space.shape).astype(np.float32) for _ in range(n)]

