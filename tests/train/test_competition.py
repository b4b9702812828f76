"""Bidding-v0 / multi_bidding_v0 with ``competitors=n`` (the sweep's local market in the loop) and the
plumbing of ``python -m train.competition`` and ``python -m train.collusion`` (tiny budgets)."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest

import smartnet_gym  # noqa: F401  (registers the ids)
from smartnet_gym.errors import ConfigError
from smartnet_gym.experiments.market_power import LocalMarketConfig
from smartnet_gym.market.program import DT_H

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "train" / "competition_ppo.yaml"
KW = {"scenario": "local-market", "scheme": "CS_B", "episode_steps": 3, "start_period": 44}
NOON = 190 * 96 + 44   # a sunny July day at 11:00: the feeder end needs down flexibility


def _step(n: int, a: float, **kw):
    env = gym.make("smartnet/Bidding-v0", **KW, competitors=n, **kw)
    env.reset(seed=0, options={"start_step": NOON})
    return env.step(np.full(env.action_space.shape, a, np.float32))


@pytest.mark.parametrize("n", [1, 3])
def test_pivotal_provider_at_the_cap_sets_the_price(n):
    lm, cap = LocalMarketConfig(), 1000.0
    _, reward, _, _, info = _step(n, 1.0)
    cost = lm.cost_eur_per_mwh
    assert info["markup_eur_per_mwh"] == pytest.approx(cap - cost)
    assert info["local_psi"] == 1.0 and info["local_price_eur_per_mwh"] == pytest.approx(cap)
    assert info["local_truthful_price_eur_per_mwh"] == pytest.approx(cost)
    assert info["local_lerner"] == pytest.approx((cap - cost) / cap)
    # provider 0 supplies what the truthful rivals (0.45 x the need each) cannot
    shares = lm.provider_shares()
    need = info["local_need_mw"]
    rival_mw = lm.liquidity * shares[1:n].sum() * need
    assert info["provider_activated_mwh"] == pytest.approx(DT_H * (need - rival_mw), rel=1e-6)
    assert reward == pytest.approx(info["provider_activated_mwh"] * (cap - cost) / 100.0, rel=1e-6)
    q = lm.liquidity * shares[:n] * need                      # HHI of the offers: textbook formula
    assert info["local_hhi_offered"] == pytest.approx(1e4 * ((q / q.sum()) ** 2).sum())
    assert info["local_rsi"] == pytest.approx(rival_mw / need)


def test_non_pivotal_provider_cannot_raise_the_price():
    _, reward, _, _, info = _step(4, 1.0)
    assert info["local_psi"] == 0.0 and info["local_rsi"] == pytest.approx(1.35)
    assert info["local_price_eur_per_mwh"] == pytest.approx(50.0) and info["local_lerner"] == pytest.approx(0.0, abs=1e-6)
    assert reward == pytest.approx(0.0, abs=1e-6) and info["provider_activated_mwh"] == 0.0


@pytest.mark.parametrize("n, step, markup", [(4, 0.0, 0.0), (4, 5.0, 9.99), (1, 5.0, 950.0)])
def test_best_response_policy_cost_when_not_pivotal_undercut_with_dearer_rivals(n, step, markup):
    from train.competition import best_response_act

    env = gym.make("smartnet/Bidding-v0", **KW, competitors=n, local_market={"cost_step_eur_per_mwh": step})
    obs, _ = env.reset(seed=0, options={"start_step": NOON})
    _, _, _, _, info = env.step(best_response_act(env, obs))
    assert info["markup_eur_per_mwh"] == pytest.approx(markup, abs=1e-4)


def test_truthful_bid_earns_nothing_and_episode_is_deterministic():
    _, reward, _, _, info = _step(1, -1.0)
    # paid its cost, up to the clearing's tie-break perturbation of prices (≤ 1e-6 EUR/MWh)
    assert reward == pytest.approx(0.0, abs=1e-6) and info["markup_eur_per_mwh"] == 0.0
    assert info["local_lerner"] == pytest.approx(0.0, abs=1e-6)
    a, b = _step(2, 0.3), _step(2, 0.3)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[4] == b[4]


@pytest.mark.parametrize("kw, field", [
    ({"competitors": 0}, "competitors: must be an integer in 1..5"),
    ({"competitors": 6}, "competitors: must be an integer in 1..5"),
    ({"competitors": 2, "local_market": {"shares": [0.5, 0.6, 0.1, 0.1, 0.1]}}, "local_market: .*shares"),
    ({"competitors": 2, "local_market": {"liquidity": -1}}, "local_market: .*liquidity"),
    ({"competitors": 2, "local_market": {"cost_eur_per_mwh": 2000.0}}, "market.price_cap_eur_per_mwh"),
    ({"competitors": 2, "local_market": {"bus": 2}}, "local_market.bus"),
    ({"local_market": {}}, "competitors: local_market needs competitors"),
    ({"competitors": 2, "provider": "MV1.101"}, "provider: must be None"),
    ({"competitors": 2, "bid_quantity": True}, "bid_quantity: must be False"),
])
def test_bad_arguments_name_the_field(kw, field):
    with pytest.raises(ConfigError, match=field):
        gym.make("smartnet/Bidding-v0", **KW, **kw)


def test_multi_agent_local_market_and_area_guard():
    from smartnet_gym.envs import multi_bidding_v0

    env = multi_bidding_v0.parallel_env(**KW, competitors=2)
    assert env.possible_agents == ["provider_0", "provider_1"]
    env.reset(seed=0, options={"start_step": NOON})
    _, rewards, _, _, infos = env.step({"provider_0": np.ones(4), "provider_1": -np.ones(4)})
    assert infos["provider_0"]["local_price_eur_per_mwh"] == pytest.approx(1000.0)   # 0 is pivotal at n = 2
    # pay-as-clear: the truthful rival sells all its 0.45 x the need at the cap too, provider 0 the rest
    assert rewards["provider_0"] / rewards["provider_1"] == pytest.approx(0.55 / 0.45, rel=1e-6)
    with pytest.raises(ConfigError, match="area: must stay 0"):
        multi_bidding_v0.parallel_env(**KW, competitors=2, area=1)


def _tiny_config(tmp_path: Path) -> Path:
    text = CONFIG.read_text()
    for old, new in (("n_steps: 256", "n_steps: 16"), ("batch_size: 64", "batch_size: 16"),
                     ("n_epochs: 10", "n_epochs: 1"), ("episode_steps: 8", "episode_steps: 2"),
                     ("tensorboard: true", "tensorboard: false")):
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    return path


def test_competition_experiment_smoke(tmp_path, capsys):
    from train.competition import main

    out = tmp_path / "out"
    rest = ["--config", str(_tiny_config(tmp_path)), "--timesteps", "16", "--episodes", "1",
            "--runs-dir", str(tmp_path / "runs")]
    args = ["--out", str(out), "--competitors", "1", *rest]
    assert main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["markup_vs_n.csv", "markup_vs_n.png", "run.json", "steps.csv"]
    s = pd.read_csv(out / "markup_vs_n.csv").set_index(["n_competitors", "policy"])
    assert set(s.index) == {(1, p) for p in ("ppo", "best_response", "truthful")}
    # the grid-search best response equals the analytic one for a pivotal provider: the cap
    assert s.loc[(1, "best_response"), "markup_eur_per_mwh_mean"] == pytest.approx(950.0)
    assert s.loc[(1, "best_response"), "analytic_markup_eur_per_mwh_mean"] == pytest.approx(950.0)
    assert s.loc[(1, "truthful"), "local_price_eur_per_mwh_mean"] == pytest.approx(50.0)
    assert s.loc[(1, "best_response"), "profit_share_of_best_response"] == pytest.approx(1.0)
    assert (tmp_path / "runs" / "tiny_n1" / "model.zip").is_file()
    assert main(args) == 2 and "not empty" in capsys.readouterr().out      # --out is not overwritten
    assert main(["--out", str(out), "--competitors", "9", "--force", *rest]) == 2
    assert "--competitors: each n must be in 1..5" in capsys.readouterr().out


def test_collusion_experiment_smoke(tmp_path, capsys):
    from train.collusion import main

    out = tmp_path / "coll"
    assert main(["--out", str(out), "--config", str(_tiny_config(tmp_path)), "--timesteps", "16",
                 "--episodes", "1"]) == 0
    s = pd.read_csv(out / "collusion.csv").set_index("policy")
    assert set(s.index) == {"ppo", "truthful", "cap"}
    assert s.loc["truthful", "local_price_eur_per_mwh_mean"] == pytest.approx(50.0)
    assert s.loc["cap", "local_price_eur_per_mwh_mean"] == pytest.approx(1000.0)
    assert s.loc["truthful", "local_rsi_mean"] == pytest.approx(2.0)       # 3 equal providers, liquidity 3
    steps = pd.read_csv(out / "steps.csv")
    assert {"markup_provider_0", "markup_provider_2", "profit_provider_1"} <= set(steps.columns)
    assert (out / "model.zip").is_file() and (out / "vecnormalize.pkl").is_file() and (out / "collusion.png").is_file()
    assert main(["--out", str(tmp_path / "x"), "--agents", "1"]) == 2
    assert "--agents: must be >= 2" in capsys.readouterr().out


@pytest.mark.parametrize("step", [0.0, 5.0])
def test_markup_baseline_adds_the_markup_to_the_local_providers_costs(step):
    """With competitors the markup baseline prices provider 0's rows at its own cost × 1.2 (not the loop's book)."""
    from baselines.bidding import MarkupBaseline

    env = gym.make("smartnet/Bidding-v0", **KW, competitors=3, local_market={"cost_step_eur_per_mwh": step})
    obs, _ = env.reset(seed=0, options={"start_step": NOON})
    action = MarkupBaseline(env, markup_fraction=0.2).act(obs)
    u = env.unwrapped
    book = u.book(action)
    cost = LocalMarketConfig(cost_step_eur_per_mwh=step).provider_costs()[0]
    np.testing.assert_allclose(book.true_cost_eur_per_mwh[u.mapper.rows], cost)
    np.testing.assert_allclose(book.price_eur_per_mwh[u.mapper.rows], 1.2 * cost, rtol=1e-5)
