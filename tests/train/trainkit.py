"""Helpers of the training tests: fast env settings (toy, linear physics, short episodes)."""

from __future__ import annotations

import gymnasium as gym

import smartnet_gym  # noqa: F401  (registers the ids)

#: toy system, linear physics, 8-step episodes from 11:00 (PV and some congestion on the feeder)
FAST = {"scenario": "toy", "physics": "linear", "episode_steps": 8, "start_period": 44}


def make(env_id: str, **kwargs) -> gym.Env:
    """``gym.make`` with the fast settings (overridable)."""
    return gym.make(env_id, **(FAST | kwargs))
