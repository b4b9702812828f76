"""Same seed and actions → identical observations, rewards and infos; pickling; SubprocVecEnv."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from envkit import GYM_IDS, ID_ONE, make, random_actions, rollout
from gymnasium.utils.env_checker import data_equivalence
from stable_baselines3.common.vec_env import SubprocVecEnv

from smartnet_gym.envs import multi_bidding_v0


@pytest.mark.parametrize(("env_id", "scheme"), ID_ONE)
def test_reset_seed_restores_everything(env_id, scheme, env_cache):
    """After other episodes (other seeds, other actions), reset(seed) replays bit-identically."""
    env = env_cache(env_id, scheme=scheme, episode_steps=5, start_period=None, random_days=200)
    acts = random_actions(env.action_space, 5, seed=1, low=-1.1, high=1.1)
    first = rollout(env, 7, acts)
    rollout(env, 8, acts[::-1])
    again = rollout(env, 7, acts)
    assert data_equivalence(first, again, exact=True)
    other = make(env_id, scheme=scheme, episode_steps=5, start_period=None, random_days=200)
    assert data_equivalence(first, rollout(other, 7, acts), exact=True)   # a fresh env too


@pytest.mark.parametrize("env_id", GYM_IDS)
def test_seed_changes_the_episode(env_id, env_cache):
    env = env_cache(env_id, start_period=None, random_days=200)
    starts = {env.reset(seed=s)[1]["start_step"] for s in range(6)}
    assert len(starts) > 1


@pytest.mark.parametrize("env_id", GYM_IDS)
def test_pickle_roundtrip(env_id, env_cache):
    env = env_cache(env_id)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    clone = pickle.loads(pickle.dumps(env))
    with pytest.raises(RuntimeError, match="reset"):     # episode state is not pickled
        clone.step(env.action_space.sample())
    acts = random_actions(env.action_space, 3, seed=2)
    assert data_equivalence(rollout(env, 4, acts), rollout(clone, 4, acts), exact=True)


def test_parallel_env_pickles_and_replays():
    env = multi_bidding_v0.parallel_env(scenario="toy", episode_steps=3, start_period=44)
    env.reset(seed=0)
    clone = pickle.loads(pickle.dumps(env))
    rng = np.random.default_rng(0)
    acts = [{a: rng.uniform(-1, 1, env.action_space(a).shape) for a in env.possible_agents} for _ in range(3)]
    assert data_equivalence(rollout(env, 5, acts), rollout(clone, 5, acts), exact=True)


def test_subproc_vec_env_runs():
    """Two worker processes build, reset and step the env (fork: workers share the warm imports)."""
    fns = [lambda: make("smartnet/Bidding-v0", episode_steps=3) for _ in range(2)]
    venv = SubprocVecEnv(fns, start_method="fork")
    try:
        venv.seed(0)
        obs = venv.reset()
        assert obs.shape == (2, *venv.observation_space.shape)
        dones = []
        for _ in range(4):   # crosses the episode end (auto-reset after 3 steps)
            obs, rew, done, infos = venv.step(np.stack([venv.action_space.sample() for _ in range(2)]))
            assert np.isfinite(rew).all() and obs.shape[0] == 2
            dones.append(done.copy())
        assert [d.all() for d in dones] == [False, False, True, False]
        assert all(i["clearing_status"] == "optimal" for i in infos)
    finally:
        venv.close()


def test_ac_physics_replays():
    env = make("smartnet/Bidding-v0", physics="ac", episode_steps=2)
    acts = random_actions(env.action_space, 2, seed=3)
    first = rollout(env, 1, acts)
    assert first[1][4]["physics"] == "ac" and first[1][4]["pf_failures"] == 0.0
    rollout(env, 2, acts)
    assert data_equivalence(first, rollout(env, 1, acts))
