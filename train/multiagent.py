"""A PettingZoo ``ParallelEnv`` of homogeneous agents as a Stable-Baselines3 ``VecEnv`` (parameter sharing).

SuperSuit's ``pettingzoo_env_to_vec_env_v1`` is not installed here (no internet); this is the same
idea in one small class: every agent of the parallel env is one slot of the VecEnv, so a single
SB3 policy (e.g. PPO) acts for all agents and learns from all their experience.

| VecEnv | ParallelEnv |
|---|---|
| slot i | agent ``possible_agents[i]`` |
| ``step(actions)`` (n_agents, act_dim) | ``env.step({agent_i: actions[i]})`` |
| ``obs``, ``rewards``, ``dones``, ``infos`` | per agent, in slot order; ``dones = terminated or truncated`` |
| episode end | every agent must end together (else ``RuntimeError``); each slot's info gets ``terminal_observation`` and ``TimeLimit.truncated``, then the env is reset and the new first observations are returned (SB3's auto-reset) |
| ``seed(s)`` | the next reset's ``env.reset(seed=s)`` (slot 0's seed: one env behind all slots) |

``reset_options`` (optional) draws the ``options`` of every reset, e.g. the start step of a
training day (:func:`day_options`), from the adapter's own generator (seeded by the first seeded reset).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

ResetOptions = Callable[[np.random.Generator], dict[str, Any]]


class ParallelVecEnv(VecEnv):
    """SB3 VecEnv over one PettingZoo ParallelEnv: one slot per agent, agents in ``possible_agents`` order.

    :param env: a parallel env whose agents all have the same observation and action space and
        never leave before the others.
    :param reset_options: ``rng -> options`` of every ``env.reset`` (None: no options).
    """

    def __init__(self, env: Any, reset_options: ResetOptions | None = None):
        self.env = env
        self.agents: list[str] = list(env.possible_agents)
        if not self.agents:
            raise ValueError("env: has no agents (possible_agents is empty)")
        a0 = self.agents[0]
        obs_space, act_space = env.observation_space(a0), env.action_space(a0)
        for a in self.agents[1:]:
            if env.observation_space(a) != obs_space or env.action_space(a) != act_space:
                raise ValueError(f"env: agent {a!r} has other spaces than {a0!r} ({env.observation_space(a)}, "
                                 f"{env.action_space(a)} vs {obs_space}, {act_space}); parameter sharing needs "
                                 f"identical spaces")
        self.reset_options = reset_options
        self._rng = np.random.default_rng()
        self._actions: np.ndarray | None = None
        super().__init__(len(self.agents), obs_space, act_space)

    # ------------------------------------------------------------------ episodes
    def _reset_env(self) -> np.ndarray:
        seed = self._seeds[0]
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        options = dict(self._options[0] or {})
        if self.reset_options is not None:
            options.update(self.reset_options(self._rng))
        obs, infos = self.env.reset(seed=seed, options=options or None)
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [dict(infos.get(a, {})) for a in self.agents]
        return self._stack(obs)

    def _stack(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.stack([np.asarray(obs[a], dtype=self.observation_space.dtype) for a in self.agents])

    def reset(self) -> np.ndarray:
        """Reset the env; the first observation of every agent, (n_agents, obs_dim)."""
        return self._reset_env()

    def step_async(self, actions: np.ndarray) -> None:
        actions = np.asarray(actions)
        if len(actions) != self.num_envs:
            raise ValueError(f"actions: expected one per agent ({self.num_envs}), got {len(actions)}")
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async()")
        actions, self._actions = self._actions, None
        obs, rewards, terms, truncs, infos = self.env.step({a: actions[i] for i, a in enumerate(self.agents)})
        done = np.array([bool(terms[a] or truncs[a]) for a in self.agents])
        if done.any() and not done.all():
            raise RuntimeError(f"agents {[a for a, d in zip(self.agents, done, strict=True) if d]} ended before the "
                               f"others; ParallelVecEnv needs agents that end together")
        out_obs = self._stack(obs)
        out_infos = [dict(infos.get(a, {})) for a in self.agents]
        if done.all():
            for i, a in enumerate(self.agents):
                out_infos[i]["terminal_observation"] = out_obs[i]
                out_infos[i]["TimeLimit.truncated"] = bool(truncs[a] and not terms[a])
            out_obs = self._reset_env()
        reward = np.array([rewards[a] for a in self.agents], dtype=np.float32)
        return out_obs, reward, done, out_infos

    def close(self) -> None:
        self.env.close()

    # ------------------------------------------------------------------ VecEnv plumbing (one env behind all slots)
    def _slots(self, indices: VecEnvIndices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        return [indices] if isinstance(indices, int) else list(indices)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self.env, attr_name) for _ in self._slots(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        return [getattr(self.env, method_name)(*method_args, **method_kwargs) for _ in self._slots(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._slots(indices)]


def day_options(env: Any, days: np.ndarray) -> ResetOptions:
    """Reset options that start each episode on a day of ``days`` (e.g. a split's) at the env's start period."""
    from train.episodes import start_step

    core = env.core
    days = np.asarray(days, int)
    if not len(days):
        raise ValueError("days: no day to start episodes on")
    return lambda rng: {"start_step": start_step(core, int(rng.choice(days)), rng)}


__all__ = ["ParallelVecEnv", "ResetOptions", "day_options"]
