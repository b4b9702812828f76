"""Every registered id passes Gymnasium's and SB3's env checkers; the PettingZoo env its API tests."""

from __future__ import annotations

import gymnasium as gym
import pytest
from envkit import GYM_IDS, ID_SCHEMES, SUPPORTED, make
from gymnasium.utils.env_checker import check_env as gym_check_env
from pettingzoo.test import parallel_api_test, parallel_seed_test
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from smartnet_gym.envs import multi_bidding_v0
from smartnet_gym.envs.registration import GYM_ENTRY_POINTS


def test_registry_lists_the_three_gym_ids():
    assert GYM_IDS == sorted(GYM_ENTRY_POINTS)
    assert set(SUPPORTED) == set(GYM_IDS)
    for env_id in GYM_IDS:
        assert gym.spec(env_id).max_episode_steps is None   # the envs truncate themselves


@pytest.mark.parametrize(("env_id", "scheme"), ID_SCHEMES)
def test_gymnasium_and_sb3_checkers(env_id, scheme):
    env = make(env_id, scheme=scheme)
    gym_check_env(env.unwrapped)
    sb3_check_env(env)
    env.close()


@pytest.mark.parametrize("scheme", ["CS_B", "CS_D"])
def test_parallel_api(scheme):
    env = multi_bidding_v0.parallel_env(scenario="toy", scheme=scheme, episode_steps=4, start_period=44)
    parallel_api_test(env, num_cycles=10)


def test_parallel_seed():
    parallel_seed_test(lambda: multi_bidding_v0.parallel_env(scenario="toy", episode_steps=3, start_period=44,
                                                             random_days=100), num_cycles=5)


def test_pettingzoo_registry_makes_the_parallel_env():
    import pettingzoo

    env = pettingzoo.make("parallel", "smartnet/multi_bidding_v0", scenario="toy", episode_steps=2)
    assert isinstance(env, multi_bidding_v0.MultiBiddingEnv)
    # every agent has the same spaces (parameter sharing)
    assert len({env.observation_space(a).shape for a in env.possible_agents}) == 1
    assert len({env.action_space(a).shape for a in env.possible_agents}) == 1


def test_aec_conversion_runs():
    aec = multi_bidding_v0.env(scenario="toy", episode_steps=2, start_period=44)
    aec.reset(seed=0)
    for agent in aec.agent_iter(max_iter=50):
        _, _, term, trunc, _ = aec.last()
        aec.step(None if term or trunc else aec.action_space(agent).sample())


def _rllib_valid(policy_id: str) -> bool:
    """RLlib's rule for policy / module ids (``ray.rllib.core.rl_module.validate_module_id``): no
    character disallowed in Unix/Windows file names, not ending in a dot or a space."""
    import re

    return bool(policy_id) and not re.search(r'[<>:"/\\|?]', policy_id) and policy_id[-1] not in " ."


@pytest.mark.parametrize("area", [0, "all"])
def test_agent_ids_are_valid_rllib_module_ids(area):
    env = multi_bidding_v0.parallel_env(scenario="toy", area=area, episode_steps=2)
    assert env.possible_agents and all(_rllib_valid(a) for a in env.possible_agents)
    assert all("." not in a and "/" not in a for a in env.possible_agents)
    assert {multi_bidding_v0.agent_id(n) for n in env.agent_unit.values()} == set(env.possible_agents)
    assert set(env.agent_unit.values()) <= set(env.core.loop.system.units.name)
    assert len(set(env.possible_agents)) == len(env.possible_agents)      # no two units map to one id
    try:
        from ray.rllib.core.rl_module import validate_module_id
    except ImportError:       # RLlib's extra dependencies are not installed
        return
    for a in env.possible_agents:
        validate_module_id(a, error=True)
