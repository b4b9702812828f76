"""Baselines: interface, registry, and the yardstick properties that hold by construction.

* Dispatch-v0: the optimal baseline has zero regret; every other baseline has regret >= 0 on the
  same episodes (regret = policy_evaluated_cost - optimal_cost, both from ``info``).
* Perfect foresight is a lower bound: on every step, the CS_D clearing of the actual instance
  costs no more (on that actual instance) than the forecast optimum's activations.
"""

from __future__ import annotations

import numpy as np
import pytest
from trainkit import make

from baselines import BASELINES, SUPPORTED, available_baselines, make_baseline
from baselines.foresight import actual_instance
from smartnet_gym.envs.spaces import share
from smartnet_gym.errors import ConfigError, UnknownNameError

DISPATCH = "smartnet/Dispatch-v0"
SEEDS = (3,)
TOL_EUR = 1e-3


@pytest.fixture(scope="module")
def dispatch_env():
    env = make(DISPATCH, episode_steps=6)
    yield env
    env.close()


def _episode(env, policy, seed: int, hook=None) -> list[dict]:
    if hasattr(policy, "seed"):
        policy.seed(seed)
    obs, _ = env.reset(seed=seed)
    infos = []
    while True:
        action, _ = policy.predict(obs, deterministic=True)
        if hook is not None:
            hook(action)
        obs, _, terminated, truncated, info = env.step(action)
        infos.append(info)
        if terminated or truncated:
            return infos


def test_registry_names_and_support():
    assert {"truthful", "optimal", "perfect_foresight", "markup", "fixed_limits", "random"} <= set(BASELINES)
    for names in SUPPORTED.values():
        assert "truthful" in names and "random" in names


def test_unknown_and_inapplicable_names(dispatch_env):
    with pytest.raises(UnknownNameError, match="optimal"):
        make_baseline("optimall", dispatch_env)
    with pytest.raises(UnknownNameError, match=r"allowed: .*perfect_foresight"):
        make_baseline("markup", dispatch_env)
    with pytest.raises(ConfigError, match="random"):
        make_baseline("random", dispatch_env, share=0.3)


def test_optimal_zero_regret_others_nonnegative(dispatch_env):
    names = available_baselines(dispatch_env)
    assert set(names) == {"truthful", "optimal", "perfect_foresight", "merit_order", "random"}
    for seed in SEEDS:
        opt_costs = None
        for name in names:
            infos = _episode(dispatch_env, make_baseline(name, dispatch_env), seed)
            regret = np.array([i["regret_eur"] for i in infos])
            pol = np.array([i["policy_evaluated_cost_eur"] for i in infos])
            opt = np.array([i["optimal_cost_eur"] for i in infos])
            assert np.allclose(regret, pol - opt)
            if name == "optimal":
                assert np.abs(regret).max() <= TOL_EUR, (seed, regret)
                opt_costs = opt
            else:
                assert regret.min() >= -TOL_EUR, (name, seed, regret)
        assert opt_costs is not None
    # the random baseline is far from the optimum
    assert sum(i["regret_eur"] for i in _episode(dispatch_env, make_baseline("random", dispatch_env), 0)) > 100


def test_perfect_foresight_is_a_lower_bound(dispatch_env):
    """PF bound <= cost of the forecast optimum's activations, both on the actual instance."""
    pf = make_baseline("perfect_foresight", dispatch_env)
    opt = make_baseline("optimal", dispatch_env)
    e = dispatch_env.unwrapped
    for seed in SEEDS:
        obs, _ = dispatch_env.reset(seed=seed)
        done = False
        while not done:
            inst = e.loop.instance()
            pf.predict(obs)
            a_opt, _ = opt.predict(obs)
            x_opt = share(np.asarray(a_opt, dtype=float)) * inst.book.qty_mw
            assert pf.last_bound_eur <= pf.actual_cost_eur(x_opt) + TOL_EUR
            obs, _, term, trunc, _ = dispatch_env.step(a_opt)
            done = term or trunc


def test_actual_instance_matches_forecast_layout(dispatch_env):
    dispatch_env.reset(seed=0)
    loop = dispatch_env.unwrapped.loop
    fc, real = loop.instance(), actual_instance(loop)
    assert real.book.layout_key() == fc.book.layout_key()
    assert real.need_mw.shape == fc.need_mw.shape and real.area_need_mw.shape == fc.area_need_mw.shape
    assert not np.allclose(real.need_mw, fc.need_mw)   # forecasts err


def test_predict_batch_of_one_and_refuses_more(dispatch_env):
    obs, _ = dispatch_env.reset(seed=0)
    opt = make_baseline("optimal", dispatch_env)
    a1, state = opt.predict(obs)
    ab, _ = opt.predict(obs[None])
    assert state is None and ab.shape == (1, *a1.shape) and np.allclose(ab[0], a1)
    with pytest.raises(ValueError, match="batch"):
        opt.predict(np.stack([obs, obs]))
    r = make_baseline("random", dispatch_env, seed=0)
    assert r.predict(np.stack([obs, obs]))[0].shape == (2, *a1.shape)


def test_bidding_baselines():
    env = make("smartnet/Bidding-v0")
    assert set(available_baselines(env)) == {"truthful", "markup", "optimal", "random"}
    e = env.unwrapped
    obs, _ = env.reset(seed=0)
    truthful = make_baseline("truthful", env).predict(obs)[0]
    assert np.all(truthful == -1)
    mk = make_baseline("markup", env, markup_fraction=0.5).predict(obs)[0]
    book = e.book(mk)
    rows = e.mapper.rows
    cost = e.loop.truthful_book.true_cost_eur_per_mwh[rows]
    assert np.allclose(book.price_eur_per_mwh[rows], np.minimum(1.5 * cost, e.mapper.cap))
    with pytest.raises(ConfigError, match="markup_fraction"):
        make_baseline("markup", env, markup_fraction=-1)
    best = make_baseline("optimal", env, levels=5)
    a = best.predict(obs)[0]
    assert best.last_profit_eur >= best.profit_eur(truthful) - 1e-6
    assert env.action_space.contains(a.astype(np.float32))
    env.close()


def test_dso_limits_baselines_respect_the_bound():
    env = make("smartnet/DSOLimits-v0", scheme="CS_B", episode_steps=3)
    assert set(available_baselines(env)) == {"truthful", "fixed_limits", "prequalify", "optimal", "random"}
    for name in available_baselines(env):
        for info in _episode(env, make_baseline(name, env, **({"seed": 0} if name == "random" else {})), 0):
            assert info["evaluated_cost_eur"] >= info["cs_d_evaluated_cost_eur"] - TOL_EUR, name
    obs, _ = env.reset(seed=0)
    assert np.allclose(make_baseline("fixed_limits", env, share=0.25).predict(obs)[0], -0.5)
    with pytest.raises(ConfigError, match="share"):
        make_baseline("fixed_limits", env, share=2.0)
    env.close()


def test_multi_bidding_baselines():
    from smartnet_gym.envs import multi_bidding_v0

    env = multi_bidding_v0.parallel_env(scenario="toy", physics="linear", episode_steps=2, start_period=44)
    assert set(available_baselines(env)) == {"truthful", "markup", "random"}
    obs, _ = env.reset(seed=0)
    for name in ("truthful", "markup", "random"):
        actions, _ = make_baseline(name, env).predict(obs)
        assert set(actions) == set(env.agents)
        for agent, a in actions.items():
            assert env.action_space(agent).contains(np.asarray(a, dtype=np.float32))
    _, rewards, *_ = env.step(make_baseline("truthful", env).predict(obs)[0])
    assert set(rewards) == set(env.possible_agents)


def test_dispatch_baselines_play_per_bid_when_the_agent_acts_per_area():
    """With ``action_mode="area"`` the activation baselines refuse the compact env (naming the
    field) and ``evaluate`` plays them on the per-bid env of the same episodes: the optimum's
    regret stays 0, random plays the agent's own action space."""
    import gymnasium as gym

    from baselines import make_baseline
    from smartnet_gym.errors import ConfigError
    from train.evaluate import evaluate

    kw = {"scenario": "toy", "physics": "linear", "episode_steps": 4, "start_period": 44, "action_mode": "area"}
    env = gym.make("smartnet/Dispatch-v0", **kw)
    with pytest.raises(ConfigError, match="action_mode"):
        make_baseline("optimal", env)
    env.close()
    ev = evaluate("smartnet/Dispatch-v0", ["optimal", "random"], 1, env_kwargs=kw)
    rows = ev.episodes.set_index("policy")
    assert abs(rows.loc["optimal", "regret_eur"]) < 1e-6 * max(1.0, abs(rows.loc["optimal", "optimal_cost_eur"]))
    assert rows.loc["random", "regret_eur"] > 0
