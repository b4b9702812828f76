"""Compact action modes: Bidding-v0 per unit or per provider, Dispatch-v0 per area block; both
env checkers, the bids they submit and the merit-order fill against hand computations."""

from __future__ import annotations

import numpy as np
import pytest
from envkit import make
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from smartnet_gym.envs.operator import merit_order_fill
from smartnet_gym.envs.spaces import share


@pytest.mark.parametrize(("env_id", "mode"), [("smartnet/Bidding-v0", "unit"), ("smartnet/Bidding-v0", "provider"),
                                             ("smartnet/Dispatch-v0", "area")])
def test_compact_modes_pass_both_checkers(env_id, mode):
    env = make(env_id, action_mode=mode)
    gym_check_env(env.unwrapped)
    sb3_check_env(env)
    env.close()


def test_unknown_action_mode_names_the_field():
    for env_id in ("smartnet/Bidding-v0", "smartnet/Dispatch-v0"):
        with pytest.raises(ValueError, match="action_mode"):
            make(env_id, action_mode="per-bid")


def _bids_of(env, action):
    """Prices of the provider's rows and their (unit, direction, period) in the submitted book."""
    u = env.unwrapped
    env.reset(seed=0)
    book = u.book(np.asarray(action, np.float32))
    rows = u.mapper.rows
    lay = u.loop.layout
    return book.price_eur_per_mwh[rows], book.true_cost_eur_per_mwh[rows], lay.unit[rows], lay.direction[rows], u


def test_unit_mode_shares_a_markup_over_the_horizon():
    env = make("smartnet/Bidding-v0", action_mode="unit")
    n = env.action_space.shape[0]
    a = np.linspace(-1, 1, n)
    price, cost, unit, direction, u = _bids_of(env, a)
    cap = u.core.cfg.market.price_cap_eur_per_mwh
    assert n == len(set(zip(unit.tolist(), direction.tolist(), strict=True)))
    assert n < len(price)                                    # fewer slots than bids
    for k, label in enumerate(u.action_labels):
        name, word = label.removeprefix("price ").rsplit(" ", 1)
        idx = u.loop.system.units.name.index(name)
        mine = (unit == idx) & (direction == (1 if word == "up" else -1))
        assert mine.sum() == u.loop.horizon
        np.testing.assert_allclose(price[mine], cost[mine] + share(a[k]) * np.maximum(cap - cost[mine], 0), rtol=1e-12)
    env.close()


def test_provider_mode_is_one_markup_per_direction():
    env = make("smartnet/Bidding-v0", action_mode="provider")
    assert env.unwrapped.action_labels == ("price all down", "price all up")
    price, cost, _, direction, u = _bids_of(env, [-1.0, 1.0])
    cap = u.core.cfg.market.price_cap_eur_per_mwh
    np.testing.assert_allclose(price[direction < 0], cost[direction < 0])              # truthful down
    np.testing.assert_allclose(price[direction > 0], np.maximum(cap, cost[direction > 0]))   # the cap up
    env.close()


def test_merit_order_fill_by_hand():
    """Block 0: bids 10 MW @ 50, 5 MW @ 20, 5 MW @ 80; block 1: 4 MW @ 30. Half of block 0 is
    10 MW: the 20 bid (5 MW) then 5 of the 50 bid; a quarter of block 1 is 1 MW."""
    block = np.array([0, 0, 1, 0])
    price = np.array([50.0, 20.0, 30.0, 80.0])
    qty = np.array([10.0, 5.0, 4.0, 5.0])
    np.testing.assert_allclose(merit_order_fill(block, price, qty, np.array([0.5, 0.25])), [5.0, 5.0, 1.0, 0.0])
    np.testing.assert_allclose(merit_order_fill(block, price, qty, np.array([1.0, 0.0])), [10.0, 5.0, 0.0, 5.0])
    np.testing.assert_allclose(merit_order_fill(block, price, qty, np.array([0.0, 1.0])), [0.0, 0.0, 4.0, 0.0])


def test_merit_order_fill_against_a_loop():
    rng = np.random.default_rng(3)
    for _ in range(20):
        n, nb = 40, 6
        block, price, qty, s = rng.integers(0, nb, n), rng.integers(0, 5, n).astype(float), rng.uniform(0, 3, n), rng.uniform(0, 1, nb)
        expect = np.zeros(n)
        for b in range(nb):
            left = s[b] * qty[block == b].sum()
            for i in sorted(np.flatnonzero(block == b), key=lambda i: (price[i], i)):
                expect[i] = min(qty[i], left)
                left -= expect[i]
        np.testing.assert_allclose(merit_order_fill(block, price, qty, s), expect, atol=1e-12)


def test_area_mode_sums_to_the_block_share():
    env = make("smartnet/Dispatch-v0", action_mode="area")
    u = env.unwrapped
    env.reset(seed=0)
    inst = u.loop.instance()
    a = np.random.default_rng(0).uniform(-1, 1, env.action_space.shape[0])
    x = u.activations(inst.book, a)
    offered = np.bincount(u._block, inst.book.qty_mw, u._n_blocks)
    np.testing.assert_allclose(np.bincount(u._block, x, u._n_blocks), share(a) * offered, atol=1e-9)
    env.close()
