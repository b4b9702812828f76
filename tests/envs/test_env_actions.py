"""Action handling: NaN/inf rejected with the index, out-of-range clipped and counted, random actions safe."""

from __future__ import annotations

import math

import numpy as np
import pytest
from envkit import GYM_IDS, make
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from smartnet_gym.envs import multi_bidding_v0
from smartnet_gym.errors import ActionError, ConfigError, UnknownNameError


@pytest.mark.parametrize("env_id", GYM_IDS)
def test_non_finite_action_names_the_index(env_id, env_cache):
    env = env_cache(env_id)
    env.reset(seed=0)
    n = env.action_space.shape[0]
    for i, bad in zip((n - 1, 0, n // 2), (np.nan, np.inf, -np.inf), strict=True):
        a = np.zeros(n, np.float32)
        a[i] = bad
        a[-1] = a[-1] if i == n - 1 else np.nan   # a later bad entry: the first one is named
        with pytest.raises(ValueError, match=rf"action\[{i}\] = {bad} is not finite") as e:
            env.step(a)   # raises before the market is touched: the episode goes on
        assert isinstance(e.value, ActionError)
    env.step(np.zeros(n, np.float32))


@pytest.mark.parametrize("env_id", GYM_IDS)
def test_wrong_action_size_is_rejected(env_id, env_cache):
    env = env_cache(env_id)
    env.reset(seed=0)
    n = env.action_space.shape[0]
    with pytest.raises(ValueError, match=f"expected {n}"):
        env.unwrapped.step(np.zeros(n + 1, np.float32))


@pytest.mark.parametrize("env_id", GYM_IDS)
def test_out_of_range_actions_are_clipped_and_counted(env_id, env_cache):
    env = env_cache(env_id)
    n = env.action_space.shape[0]
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, n)
    out = rng.choice(n, size=min(3, n), replace=False)
    a[out] = np.where(np.arange(len(out)) % 2, 7.5, -3.0)
    env.reset(seed=1)
    obs_big, r_big, _, _, info_big = env.unwrapped.step(a)
    env.reset(seed=1)
    obs_c, r_c, _, _, info_c = env.unwrapped.step(np.clip(a, -1, 1))
    assert info_big["clipped_actions"] == len(out) and info_c["clipped_actions"] == 0
    assert r_big == r_c
    np.testing.assert_array_equal(obs_big, obs_c)
    assert {k: v for k, v in info_big.items() if k != "clipped_actions"} == \
        {k: v for k, v in info_c.items() if k != "clipped_actions"}


@pytest.mark.parametrize("env_id", GYM_IDS)
def test_truncates_itself_and_never_terminates(env_id, env_cache):
    env = env_cache(env_id, episode_steps=3)
    env.reset(seed=0)
    flags = [env.step(env.action_space.sample())[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]
    with pytest.raises(RuntimeError, match="reset"):
        env.unwrapped.step(env.action_space.sample())


def _finite_info(info: dict) -> None:
    for k, v in info.items():
        if isinstance(v, float):
            assert math.isfinite(v), k
        elif isinstance(v, tuple):
            assert all(x is None or math.isfinite(x) for x in v), k


@pytest.mark.parametrize("env_id", GYM_IDS)
def test_random_actions_never_crash(env_id, env_cache):
    env = env_cache(env_id, episode_steps=2)
    n = env.action_space.shape[0]

    @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
    @given(arrays(np.float32, (2, n), elements=st.floats(-3, 3, width=32)), st.integers(0, 2**16))
    def check(actions, seed):
        obs, _ = env.reset(seed=seed)
        assert env.observation_space.contains(obs)
        for a in actions:
            obs, reward, terminated, _, info = env.step(a)
            assert np.isfinite(reward) and not terminated
            assert env.observation_space.contains(obs)
            assert info["clipped_actions"] == int(np.count_nonzero(np.abs(a) > 1))
            _finite_info(info)

    check()


def test_parallel_env_action_errors():
    env = multi_bidding_v0.parallel_env(scenario="toy", episode_steps=2, start_period=44)
    env.reset(seed=0)
    acts = {a: np.zeros(env.action_space(a).shape, np.float32) for a in env.agents}
    bad = dict(acts)
    who = env.agents[2]
    bad[who] = bad[who].copy()
    bad[who][5] = np.nan
    with pytest.raises(ValueError, match=rf"agent '{who}'\[5\] = nan is not finite"):
        env.step(bad)
    with pytest.raises(ValueError, match="missing actions"):
        env.step({a: v for a, v in acts.items() if a != who})
    with pytest.raises(ValueError, match="unknown or finished agents"):
        env.step(acts | {"nobody": acts[who]})
    big = {a: v + 2.0 for a, v in acts.items()}
    _, _, _, _, infos = env.step(big)
    assert infos[who]["clipped_actions"] == env.action_space(who).shape[0]
    assert infos[who]["total_clipped_actions"] == sum(env.action_space(a).shape[0] for a in env.agents)


def test_constructor_errors_name_the_argument():
    with pytest.raises(UnknownNameError, match=r"Did you mean 'MV1.101/PV/\d'\? Allowed: DSO1, MV1.101, "):
        make("smartnet/Bidding-v0", provider="MV1.101/PV/O")
    with pytest.raises(ConfigError, match="scheme: CS_C is not supported.*CS_A, CS_B"):
        make("smartnet/DSOLimits-v0", scheme="cs_c")
    with pytest.raises(ConfigError, match="physics"):
        make("smartnet/Dispatch-v0", physics="dc")
    with pytest.raises(ConfigError, match="episode_steps"):
        make("smartnet/Dispatch-v0", episode_steps=0)
    with pytest.raises(UnknownNameError, match="area"):
        multi_bidding_v0.parallel_env(scenario="toy", area="MV9")


def test_provider_choices():
    e1 = make("smartnet/Bidding-v0", provider="MV1.101/STORAGE/0").unwrapped
    assert e1.action_space.shape == (2 * 4,)                     # up and down, 4 periods
    assert e1.observation_space.shape == (8 + 1 + 8 + 4,)         # + its SoC
    e2 = make("smartnet/Bidding-v0", provider=["T/GENERATOR/0", "MV1.101/PV/0"], bid_quantity=True).unwrapped
    assert e2.action_space.shape == (2 * (2 + 1) * 4,)
    assert e2.action_labels[0] == "price MV1.101/PV/0 down t+0"
    assert e2.action_labels[-1] == "quantity T/GENERATOR/0 down t+3"
    e3 = make("smartnet/Bidding-v0", provider="DSO1").unwrapped
    assert list(e3.provider_units) == list(make("smartnet/Bidding-v0").unwrapped.provider_units)
