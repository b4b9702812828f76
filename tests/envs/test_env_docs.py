"""The env docstrings are their manuals: doctests run, every section is there, sizes match the code."""

from __future__ import annotations

import doctest

import pytest
from envkit import make

from smartnet_gym.envs import bidding, multi_bidding_v0, operator
from smartnet_gym.envs.bidding import BiddingEnv
from smartnet_gym.envs.operator import DispatchEnv, DSOLimitsEnv

SECTIONS = ("## Description", "## Action Space", "## Observation Space", "## Rewards", "## Info",
            "## Starting State", "## Episode End", "## Arguments", "## Version History")


@pytest.mark.parametrize("module", [bidding, operator, multi_bidding_v0])
def test_doctests(module):
    res = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 0 and res.failed == 0


@pytest.mark.parametrize("cls", [BiddingEnv, DispatchEnv, DSOLimitsEnv])
def test_manual_sections(cls):
    doc = cls.__doc__
    positions = [doc.index(s) for s in SECTIONS]
    assert positions == sorted(positions)
    assert "Box(-1, 1" in doc and ">>> env = gym.make(" in doc


def test_multi_module_manual():
    doc = multi_bidding_v0.__doc__
    for s in ("| Creation |", "## Action Space", "## Observation Space", "## Rewards", "## Episode End",
              "## Arguments", "## Training with Stable-Baselines3", "## Version History"):
        assert s in doc


def test_observation_sizes_follow_the_documented_formulas():
    h, a = 4, 1
    b = make("smartnet/Bidding-v0").unwrapped
    r, n_bat = len(b.mapper.rows), 1
    assert b.observation_space.shape == (r + n_bat + 2 * h + 4,)
    d = make("smartnet/Dispatch-v0").unwrapped
    n, s = len(d.loop.layout), len(d.loop.storage_units)
    assert d.action_space.shape == (n,)
    assert d.observation_space.shape == (h + a * h + 2 * n + s + 3 * a * h + h + h + 4,)
    lim = make("smartnet/DSOLimits-v0").unwrapped
    assert lim.action_space.shape == (a,)
    assert lim.observation_space.shape == (h + a * h + 2 * a * h + s + 3 * a * h + h + h + 4,)
    m = multi_bidding_v0.parallel_env(scenario="toy")
    assert {m.observation_space(x).shape for x in m.possible_agents} == {(2 * h + 1 + 2 * h + 4 + 7,)}
