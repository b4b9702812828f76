"""Rewards equal the CBA quantities they claim: each env is replayed by a scripted RollingLoop,
built as the simulation commands build theirs (so an env values violations as ``compare`` does).

The scripted loop is built on its own copy of the system (from the disk cache) and reset with the
env's ``start_step`` and ``forecast_seed``; both start from fresh solvers, so results are equal
bit for bit, not just close.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from envkit import make

from smartnet_gym.config import SCHEMES
from smartnet_gym.envs import multi_bidding_v0
from smartnet_gym.envs.operator import storage_feasible
from smartnet_gym.envs.providers import settle
from smartnet_gym.grid.build import build_system
from smartnet_gym.market.manual import manual_outcome
from smartnet_gym.simulation.loop import RollingLoop

STEPS = 6
ALL_UNITS = ["MV1.101", "transmission"]


def scripted_loop(env, reset_info) -> RollingLoop:
    core = env.unwrapped.core
    loop = RollingLoop(build_system(core.cfg), core.cfg, scheme=core.scheme_name, physics=core.physics)
    assert loop.forced is not None      # the simulation commands' clearing: forced measures as options
    loop.reset(reset_info["start_step"], core.episode_steps, np.random.default_rng(reset_info["forecast_seed"]))
    return loop


def same_account(info: dict, account: dict) -> None:
    """The env's info carries the scripted account (NaN reported as None, solve_ms left out)."""
    for k, v in account.items():
        if k == "solve_ms":
            assert k not in info
        elif np.isnan(v):
            assert info[k] is None, k
        else:
            assert info[k] == v, (k, info[k], v)


def strategic_book(truthful, rows, a_price, a_qty, cap):
    """Prices and quantities of ``rows`` from the documented mapping, written out independently."""
    price, qty = truthful.price_eur_per_mwh.copy(), truthful.qty_mw.copy()
    cost = truthful.true_cost_eur_per_mwh[rows]
    price[rows] = cost + (a_price + 1) / 2 * np.maximum(cap - cost, 0)
    qty[rows] = qty[rows] * (a_qty + 1) / 2
    return truthful.with_values(qty_mw=qty, price_eur_per_mwh=price)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_truthful_bidding_equals_scripted_run(scheme):
    """a = −1 on every price and +1 on every quantity share: exactly the scripted truthful market."""
    env = make("smartnet/Bidding-v0", scheme=scheme, episode_steps=STEPS, bid_quantity=True)
    n = env.action_space.shape[0] // 2
    action = np.r_[-np.ones(n), np.ones(n)].astype(np.float32)
    _, info0 = env.reset(seed=11)
    loop = scripted_loop(env, info0)
    for _ in range(STEPS):
        _, reward, _, _, info = env.step(action)
        ref = loop.step()
        same_account(info, ref.account)
        assert info["clearing_status"] == ref.clearing.status
        assert info["prices_eur_per_mwh"] == tuple(
            None if np.isnan(p) else float(p) for p in ref.clearing.uniform_price_eur_per_mwh)
        s = settle(ref, ref.delivered_mw, env.unwrapped.mapper.rows)
        assert reward == s.profit_eur / env.unwrapped.reward_scale_eur


@pytest.mark.parametrize("scheme", SCHEMES)
def test_all_units_as_provider_earn_the_accounts_bidders_profit(scheme):
    """Strategic bids of every unit: profit = the CBA's ``bidders_profit_eur`` of the same book."""
    env = make("smartnet/Bidding-v0", scheme=scheme, episode_steps=STEPS, bid_quantity=True, provider=ALL_UNITS)
    u = env.unwrapped
    _, info0 = env.reset(seed=3)
    loop = scripted_loop(env, info0)
    rng = np.random.default_rng(0)
    cap = u.core.cfg.market.price_cap_eur_per_mwh
    assert len(u.mapper.rows) == len(loop.layout)
    profits = []
    for _ in range(STEPS):
        a = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        _, reward, _, _, info = env.step(a)
        a64 = a.astype(np.float64)
        book = strategic_book(loop.truthful_book, u.mapper.rows, a64[:len(u.mapper.rows)],
                              a64[len(u.mapper.rows):], cap)
        ref = loop.step(book=book)
        same_account(info, ref.account)
        assert reward * u.reward_scale_eur == pytest.approx(ref.account["bidders_profit_eur"], rel=1e-12, abs=1e-9)
        # the per-row delivery the env settles sums to the loop's per-unit delivery
        unit_mw = np.zeros(len(ref.unit_mw))
        np.add.at(unit_mw, ref.instance.book.unit, ref.instance.book.direction * ref.delivered_mw)
        np.testing.assert_allclose(unit_mw, ref.unit_mw, atol=1e-12)
        profits.append(info["profit_eur"])
    assert max(profits) > 0   # markups above cost earn something


def test_provider_reward_is_its_share_of_the_profit():
    """Default provider (area 0) with markups; transmission units truthful."""
    env = make("smartnet/Bidding-v0", scheme="CS_D", episode_steps=STEPS, non_delivery_penalty_eur_per_mwh=500.0)
    u = env.unwrapped
    _, info0 = env.reset(seed=5)
    loop = scripted_loop(env, info0)
    cap = u.core.cfg.market.price_cap_eur_per_mwh
    for k in range(STEPS):
        a = np.full(env.action_space.shape, -1.0 + 0.3 * k, np.float32)
        _, reward, _, _, info = env.step(a)
        rows = u.mapper.rows
        ref = loop.step(book=strategic_book(loop.truthful_book, rows, a.astype(float), np.ones(len(rows)), cap))
        same_account(info, ref.account)
        first = rows[ref.instance.book.period[rows] == 0]
        out = ref.clearing
        d = ref.delivered_mw[first]
        x = out.activated_mw[first]
        scale = np.divide(d, x, out=np.zeros(len(x)), where=x > 1e-12)
        profit = float(((out.payment_eur[first] - out.true_cost_eur[first]) * scale).sum())
        penalty = 500.0 * max(0.25 * (x.sum() - d.sum()), 0.0)
        assert info["profit_eur"] == pytest.approx(profit, rel=1e-12, abs=1e-9)
        assert info["non_delivery_penalty_eur"] == pytest.approx(penalty, abs=1e-9)
        assert reward == pytest.approx((profit - penalty) / 100.0, rel=1e-12, abs=1e-12)
        assert (u.core.loop.system.units.area[loop.layout.unit[rows]] == 0).all()


@pytest.mark.parametrize("scheme", ["CS_A", "CS_C", "CS_E"])
def test_multi_agent_profits_sum_to_the_accounts_bidders_profit(scheme):
    env = multi_bidding_v0.parallel_env(scenario="toy", scheme=scheme, episode_steps=4, start_period=44,
                                        area="all", bid_quantity=True)
    env.reset(seed=2)
    rng = np.random.default_rng(1)
    assert len(env.possible_agents) == len(env.core.system.units)
    while env.agents:
        acts = {a: rng.uniform(-1, 1, env.action_space(a).shape) for a in env.agents}
        _, rewards, _, _, infos = env.step(acts)
        total = infos[env.possible_agents[0]]["bidders_profit_eur"]
        assert sum(rewards.values()) * env.reward_scale_eur == pytest.approx(total, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("scheme", ["CS_A", "CS_D"])
def test_dispatch_reward_and_regret(scheme):
    env = make("smartnet/Dispatch-v0", scheme=scheme, episode_steps=STEPS)
    u = env.unwrapped
    _, info0 = env.reset(seed=4)
    loop = scripted_loop(env, info0)
    rng = np.random.default_rng(2)
    for k in range(STEPS):
        inst = loop.instance()
        if k % 2:   # the CS_D optimum as an action: regret 0
            x_opt = u.core.scheme("CS_D").clear(inst, evaluate=False).activated_mw
            q = inst.book.qty_mw
            a = np.where(q > 0, 2 * x_opt / np.where(q > 0, q, 1) - 1, -1.0)
        else:
            a = rng.uniform(-1, 1, env.action_space.shape)
        _, reward, _, _, info = env.step(a)
        x = storage_feasible(inst.book, (np.clip(a, -1, 1) + 1) / 2 * inst.book.qty_mw)
        ref = loop.step(outcome=manual_outcome(inst, x, scheme))
        same_account(info, ref.account)
        acc = ref.account
        assert reward == -(acc["market_cost_eur"] + acc["afrr_cost_eur"] + acc["unwanted_cost_eur"]
                           + acc["unresolved_cost_eur"]) / 1000.0
        assert info["regret_eur"] >= -1e-6 * max(1.0, abs(info["optimal_cost_eur"]))
        assert info["regret_eur"] == info["policy_evaluated_cost_eur"] - info["optimal_cost_eur"]
        if k % 2:
            assert info["regret_eur"] == pytest.approx(0.0, abs=1e-6 * max(1.0, abs(info["optimal_cost_eur"])))
        else:
            assert info["regret_eur"] > 0


def storage_feasible_per_battery(book, x):
    """The rule written out one battery and one period at a time (the reference)."""
    x = np.array(x, dtype=float)
    st = book.storage_state
    for sid in np.unique(book.storage[book.storage >= 0]):
        soc, e = float(st.soc_mwh[sid]), float(st.energy_mwh[sid])
        for t in range(int(book.period.max()) + 1):
            k = (book.storage == sid) & (book.period == t)
            up, down = np.flatnonzero(k & (book.direction > 0)), np.flatnonzero(k & (book.direction < 0))
            net = x[up].sum() - x[down].sum()
            hi, lo = soc / 0.25, (soc - e) / 0.25
            if net > hi and x[up].sum() > 0:
                x[up] *= max(1.0 - (net - hi) / x[up].sum(), 0.0)
            elif net < lo and x[down].sum() > 0:
                x[down] *= max(1.0 - (lo - net) / x[down].sum(), 0.0)
            soc = min(max(soc - 0.25 * (x[up].sum() - x[down].sum()), 0.0), e)
    return x


def test_storage_feasible_equals_the_rule_per_battery_and_period():
    env = make("smartnet/Dispatch-v0")
    env.reset(seed=0)
    book = env.unwrapped.loop.instance().book
    rng = np.random.default_rng(0)
    assert (book.storage >= 0).sum() > 0
    changed = False
    for soc_share in (0.0, 0.5, 1.0):
        st = book.storage_state
        b = replace(book, storage_state=replace(st, soc_mwh=soc_share * st.energy_mwh))
        for _ in range(5):
            x = book.qty_mw * rng.random(len(book)) * (rng.random(len(book)) < 0.7)
            ref = storage_feasible_per_battery(b, x)
            np.testing.assert_allclose(storage_feasible(b, x), ref, rtol=1e-12, atol=1e-12)
            changed |= not np.array_equal(ref, x)
    assert changed, "no activation was ever cut: the test would not exercise the rule"


def test_storage_feasible_keeps_the_state_of_charge_in_bounds():
    env = make("smartnet/Dispatch-v0")
    env.reset(seed=0)
    inst = env.unwrapped.loop.instance()
    book = inst.book
    x = storage_feasible(book, book.qty_mw.copy())    # everything, up and down
    st = book.storage_state
    for sid in np.unique(book.storage[book.storage >= 0]):
        soc = st.soc_mwh[sid]
        for t in range(inst.horizon):
            k = (book.storage == sid) & (book.period == t)
            soc -= 0.25 * (book.direction[k] * x[k]).sum()
            assert -1e-9 <= soc <= st.energy_mwh[sid] + 1e-9
    assert (x <= book.qty_mw).all() and (x >= 0).all()


@pytest.mark.parametrize("scheme", ["CS_A", "CS_B"])
def test_dso_limits_full_share_is_the_scripted_scheme(scheme):
    """Share 1 in every area = the unrestricted scheme; reward = −total cost / 1000."""
    env = make("smartnet/DSOLimits-v0", scheme=scheme, episode_steps=STEPS)
    _, info0 = env.reset(seed=6)
    loop = scripted_loop(env, info0)
    for _ in range(STEPS):
        _, reward, _, _, info = env.step(np.ones(env.action_space.shape, np.float32))
        ref = loop.step()
        same_account(info, ref.account)
        assert reward == -ref.account["total_cost_eur"] / 1000.0
        assert info["evaluated_cost_eur"] >= info["cs_d_evaluated_cost_eur"] - 1e-6 * max(
            1.0, info["cs_d_evaluated_cost_eur"])


def test_dso_limits_zero_share_blocks_distribution_bids():
    env = make("smartnet/DSOLimits-v0", scheme="CS_A", episode_steps=STEPS)
    u = env.unwrapped
    env.reset(seed=6)
    d_rows = u.core.system.units.area[u.loop.layout.unit] >= 0
    for k in range(STEPS):
        a = np.full(env.action_space.shape, -1.0, np.float32)
        book = u.book(np.clip(a, -1, 1))
        assert (book.qty_mw[d_rows] == 0).all() and (book.qty_mw[~d_rows] == u.loop.truthful_book.qty_mw[~d_rows]).all()
        _, _, _, _, info = env.step(a)
        assert info["limit_share"] == (0.0,)
        assert info["evaluated_cost_eur"] >= info["cs_d_evaluated_cost_eur"] - 1e-6
