"""Independent learners on RLlib: one PPO module per agent, each with its own parameters,
trained on multi_bidding_v0 and played on held-out days by the collusion experiment."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from train.collusion import main


@pytest.mark.slow
def test_independent_learners_have_one_policy_each(tmp_path):
    out = tmp_path / "ind"
    assert main(["--out", str(out), "--learner", "independent", "--agents", "3", "--timesteps", "600",
                 "--episodes", "1"]) == 0
    meta = json.loads((out / "run.json").read_text())
    assert meta["learner"] == "independent" and meta["timesteps"] >= 600
    summary = pd.read_csv(out / "collusion.csv").set_index("policy")
    assert set(summary.index) == {"ppo", "truthful", "cap"}
    assert summary.loc["truthful", "local_lerner_mean"] == pytest.approx(0.0, abs=1e-9)
    from ray.rllib.algorithms.algorithm import Algorithm

    algo = Algorithm.from_checkpoint(str(out / "rllib"))
    try:
        agents = ["provider_0", "provider_1", "provider_2"]
        weights = [np.concatenate([p.detach().numpy().ravel() for p in algo.get_module(a).parameters()])
                   for a in agents]
        assert all(not np.allclose(weights[0], w) for w in weights[1:])     # separate, separately trained
    finally:
        algo.stop()
        import ray

        ray.shutdown()
