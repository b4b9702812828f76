"""What every baseline shares: the SB3 ``predict`` interface, env lookup, seeding, action helpers.

A baseline is a *policy* with the interface of a Stable-Baselines3 model::

    action, state = baseline.predict(obs, state=None, episode_start=None, deterministic=True)

so the same evaluation loop runs a trained agent and every baseline. Unlike a model, most
baselines do not read ``obs``: they read the live market instance of the env they were made for
(``make_baseline(name, env)``), exactly what the env will clear on its next ``step``. They are
therefore tied to one env (not to a batch of vectorised envs): ``obs`` may be a single
observation (shape ``(m,)``) or a batch of one (shape ``(1, m)``), and the action has the same
leading shape. Only :class:`RandomBaseline` acts on a batch of any size.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def unwrapped(env: Any) -> Any:
    """The innermost env (Gymnasium wrappers removed); PettingZoo envs have no wrappers here."""
    return getattr(env, "unwrapped", env)


def env_kind(env: Any) -> str:
    """``"bidding"``, ``"dispatch"``, ``"dso_limits"`` or ``"multi_bidding"`` of a smartnet env.

    ``env`` may be an env (wrapped or not), an env class or a registered Gymnasium id.

    Raises:
        TypeError: ``env`` is not one of the smartnet envs.
    """
    from smartnet_gym.envs.bidding import BiddingEnv
    from smartnet_gym.envs.multi_bidding import MultiBiddingEnv
    from smartnet_gym.envs.operator import DispatchEnv, DSOLimitsEnv

    if isinstance(env, str):
        import gymnasium as gym
        from gymnasium.envs.registration import load_env_creator

        env = load_env_creator(gym.spec(env).entry_point)
    cls = env if isinstance(env, type) else type(unwrapped(env))
    for base, kind in ((BiddingEnv, "bidding"), (DispatchEnv, "dispatch"), (DSOLimitsEnv, "dso_limits"),
                       (MultiBiddingEnv, "multi_bidding")):
        if issubclass(cls, base):
            return kind
    raise TypeError(f"not a smartnet env: {cls.__name__} (expected Bidding, Dispatch, DSOLimits or MultiBidding)")


def action_from_share(share: np.ndarray) -> np.ndarray:
    """Inverse of ``spaces.share``: a share in [0, 1] → an action in [-1, 1] (float64, clipped)."""
    return np.clip(2.0 * np.asarray(share, dtype=np.float64) - 1.0, -1.0, 1.0)


def action_from_activations(x_mw: np.ndarray, offered_mw: np.ndarray) -> np.ndarray:
    """Dispatch action that activates ``x_mw`` of bids offering ``offered_mw`` (x = share · offer).

    Float64 on purpose: the env maps the action back with ``(a + 1) / 2 · offer``, which then
    returns ``x`` to within 1e-16 relative (float32 would cost ~1e-7 of every activation).
    Bids with no offer get −1 (nothing); activations above the offer are capped at +1.
    """
    off = np.asarray(offered_mw, dtype=np.float64)
    share = np.divide(np.asarray(x_mw, dtype=np.float64), off, out=np.zeros(len(off)), where=off > 1e-12)
    return action_from_share(np.clip(share, 0.0, 1.0))


def check_levels(levels: int) -> int:
    """A grid size of a search baseline: an integer >= 2 (else ``ConfigError`` naming ``levels``)."""
    from smartnet_gym.errors import ConfigError

    if int(levels) != levels or levels < 2:
        raise ConfigError(f"levels: must be an integer >= 2 (got {levels!r})")
    return int(levels)


class Baseline:
    """Base class: subclasses implement :meth:`act` (one action for the env's current state).

    :param env: the env this baseline acts in (Gymnasium env, possibly wrapped).
    """

    #: registry name of the baseline (set by subclasses)
    name = "baseline"
    #: whether :meth:`act` reads the env's live state (then only one env, not a batch)
    reads_env = True

    def __init__(self, env: Any):
        self.env = env
        self.unwrapped = unwrapped(env)
        self.action_space = env.action_space

    def seed(self, seed: int | None = None) -> None:
        """Reseed any randomness of the baseline (default: none)."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The action for the env's current state (``obs`` is that state's observation)."""
        raise NotImplementedError

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        """SB3's interface: ``(action, state)``; a batch of one observation gives a batch of one action.

        Raises:
            ValueError: a batch of more than one observation for a baseline that reads the env.
        """
        obs = np.asarray(observation)
        shape = self.env.observation_space.shape
        batched = obs.ndim == len(shape) + 1
        if not batched:
            return self.act(obs), state
        if obs.shape[0] != 1 and self.reads_env:
            raise ValueError(f"baseline {self.name!r} reads the live state of one env; got a batch of "
                             f"{obs.shape[0]} observations (use one env, not a VecEnv of several)")
        return np.stack([self.act(o) for o in obs]), state

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class RandomBaseline(Baseline):
    """Uniform random actions in [-1, 1] from its own seeded generator (not the env's)."""

    name = "random"
    reads_env = False

    def __init__(self, env: Any, seed: int | None = None):
        super().__init__(env)
        self.seed(seed)

    def seed(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def _sample(self) -> np.ndarray:
        sp = self.action_space
        return self.rng.uniform(sp.low, sp.high, sp.shape).astype(sp.dtype)

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self._sample()

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        obs = np.asarray(observation)
        if obs.ndim == len(self.env.observation_space.shape) + 1:
            return np.stack([self._sample() for _ in range(obs.shape[0])]), state
        return self._sample(), state


class ConstantBaseline(Baseline):
    """The same action every step (e.g. truthful bidding: all −1; no DSO limits: all +1)."""

    reads_env = False

    def __init__(self, env: Any, value: float | np.ndarray, name: str):
        super().__init__(env)
        self.name = name
        self.action = np.broadcast_to(np.asarray(value, dtype=np.float32), self.action_space.shape).copy()

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.action.copy()


__all__ = ["Baseline", "ConstantBaseline", "RandomBaseline", "action_from_activations", "action_from_share",
           "check_levels", "env_kind", "unwrapped"]
