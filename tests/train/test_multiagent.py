"""ParallelVecEnv: each agent's action reaches that agent, slots keep the agent order, SB3 auto-reset.

Most checks use a small scripted ParallelEnv (exact, fast); one runs the real local market.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
from gymnasium import spaces
from pettingzoo import ParallelEnv

from train.multiagent import ParallelVecEnv, day_options


class Scripted(ParallelEnv):
    """Agents a, b, c; obs = [agent index, step, last own action]; reward = 10·index + action[0]."""

    metadata: ClassVar[dict[str, str]] = {"name": "scripted"}

    def __init__(self, length: int = 2, early: str | None = None, other_space: str | None = None):
        self.possible_agents = ["a", "b", "c"]
        self.length, self.early, self.other_space = length, early, other_space
        self.resets: list[tuple[int | None, dict | None]] = []
        self.received: list[dict[str, np.ndarray]] = []
        self.render_mode = None

    def observation_space(self, agent):
        return spaces.Box(-100, 100, (4 if agent == self.other_space else 3,), np.float32)

    def action_space(self, agent):
        return spaces.Box(-1, 1, (2,), np.float32)

    def _obs(self, last: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
        return {a: np.array([i, self.t, 0.0 if last is None else last[a][0]], np.float32)
                for i, a in enumerate(self.possible_agents)}

    def reset(self, seed=None, options=None):
        self.resets.append((seed, options))
        self.t = 0
        self.agents = list(self.possible_agents)
        return self._obs(None), {a: {"reset": True} for a in self.agents}

    def step(self, actions):
        self.received.append({a: np.array(v) for a, v in actions.items()})
        self.t += 1
        end = self.t >= self.length
        trunc = {a: end for a in self.agents}
        if self.early is not None and self.t == 1:
            trunc[self.early] = True
        rewards = {a: 10.0 * i + float(actions[a][0]) for i, a in enumerate(self.agents)}
        infos = {a: {"who": a} for a in self.agents}
        obs = self._obs(actions)
        if end:
            self.agents = []
        return obs, rewards, dict.fromkeys(trunc, False), trunc, infos


def test_actions_go_to_their_agents_and_results_come_back_in_slot_order():
    env = Scripted(length=3)
    venv = ParallelVecEnv(env)
    assert venv.num_envs == 3 and venv.observation_space.shape == (3,) and venv.action_space.shape == (2,)
    obs = venv.reset()
    assert obs.shape == (3, 3) and obs[:, 0].tolist() == [0, 1, 2]
    assert venv.reset_infos == [{"reset": True}] * 3
    actions = np.array([[0.1, 0.0], [0.2, 0.0], [0.3, 0.0]], np.float32)
    obs, rew, done, infos = venv.step(actions)
    for i, a in enumerate("abc"):
        np.testing.assert_array_equal(env.received[-1][a], actions[i])
    np.testing.assert_allclose(rew, [0.1, 10.2, 20.3], rtol=1e-6)
    assert rew.dtype == np.float32 and done.dtype == bool and not done.any()
    assert [i["who"] for i in infos] == ["a", "b", "c"]
    np.testing.assert_allclose(obs[:, 2], actions[:, 0])    # each agent observes its own last action


def test_episode_end_auto_resets_with_terminal_observation_and_seeds_once():
    env = Scripted(length=2)
    venv = ParallelVecEnv(env)
    venv.seed(7)
    venv.reset()
    assert env.resets[-1][0] == 7
    venv.step(np.zeros((3, 2)))
    act = np.array([[0.5, 0], [-0.5, 0], [0.25, 0]], np.float32)
    obs, _, done, infos = venv.step(act)
    assert done.all() and len(env.resets) == 2 and env.resets[-1][0] is None   # the seed is used once
    assert obs[:, 1].tolist() == [0, 0, 0]                                     # new episode's first obs
    for i in range(3):
        assert infos[i]["TimeLimit.truncated"] is True
        term = infos[i]["terminal_observation"]
        assert term[1] == 2 and term[2] == pytest.approx(act[i, 0])           # the last obs of that agent


def test_reset_options_drawn_from_a_seeded_generator():
    draws = []

    def options(rng):
        draws.append(int(rng.integers(1_000_000)))
        return {"start_step": draws[-1]}

    runs = []
    for _ in range(2):
        env = Scripted(length=1)
        venv = ParallelVecEnv(env, options)
        venv.seed(3)
        venv.reset()
        venv.step(np.zeros((3, 2)))                                          # ends: auto-reset draws again
        runs.append([o["start_step"] for _, o in env.resets])
    assert runs[0] == runs[1] and len(runs[0]) == 2 and runs[0][0] != runs[0][1]


def test_refuses_unequal_spaces_agents_leaving_early_and_wrong_action_count():
    with pytest.raises(ValueError, match="agent 'b' has other spaces"):
        ParallelVecEnv(Scripted(other_space="b"))
    venv = ParallelVecEnv(Scripted(length=3, early="c"))
    venv.reset()
    with pytest.raises(RuntimeError, match=r"\['c'\] ended before the others"):
        venv.step(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="one per agent"):
        venv.step_async(np.zeros((2, 2)))


def test_real_local_market_slots_and_train_days():
    from smartnet_gym.envs import multi_bidding_v0
    from train.episodes import split_days

    env = multi_bidding_v0.parallel_env(scenario="local-market", scheme="CS_B", episode_steps=2, start_period=44,
                                        competitors=3, local_market={"max_competitors": 3, "shares": [1 / 3] * 3})
    days = split_days("train", env.core.n_days, 152, 243)
    venv = ParallelVecEnv(env, day_options(env, days))
    venv.seed(0)
    obs = venv.reset()
    start = env.core.loop.t
    assert start // 96 in days and start % 96 == 44
    assert obs.shape == (3, env.observation_space("provider_0").shape[0])
    # provider 1 bids the cap, the others their cost: provider 1 earns nothing, the price is the cost
    _, rew, done, infos = venv.step(np.array([[-1] * 4, [1] * 4, [-1] * 4], np.float32))
    assert [i["markup_eur_per_mwh"] for i in infos] == pytest.approx([0.0, 950.0, 0.0])
    assert rew[1] == 0.0 and not done.any()
    _, _, done, infos = venv.step(np.zeros((3, 4), np.float32))
    assert done.all() and all("terminal_observation" in i for i in infos)
