"""Independent learners on RLlib: one PPO policy per agent of ``multi_bidding_v0``.

Each provider learns its own policy from its own reward (RLlib's multi-agent PPO, one RLModule
per agent id, ``policy_mapping_fn`` = identity), which is what independent profit-seeking firms
are — unlike a policy shared by all agents (:func:`train.collusion.train_shared`, the SB3 path).
Episodes start on the training days of the base config (as :class:`train.multiagent.ParallelVecEnv`
does), PPO's settings come from its ``algo_kwargs``:

| SB3 (``algo_kwargs``) | RLlib ``PPOConfig.training`` |
|---|---|
| ``learning_rate``, ``gamma``, ``gae_lambda``, ``n_epochs``, ``batch_size`` | ``lr``, ``gamma``, ``lambda_``, ``num_epochs``, ``minibatch_size`` |
| ``n_steps`` (per agent) | ``train_batch_size_per_learner`` = ``n_steps`` × agents |
| ``policy_kwargs.net_arch`` | ``fcnet_hiddens`` of each agent's module |

RLlib runs on the embedded local Ray instance (or a cluster by ``address``). Its extra
dependencies (dm-tree, lz4, ormsgpack, tensorboardX) are part of the project's install.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from train.config import TrainConfig

ENV_NAME = "smartnet_multi_bidding_train_days"


def _day_env(config: dict[str, Any]) -> Any:
    """RLlib env creator: the parallel env, episodes starting on the given days (RLlib's wrapper)."""
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

    from smartnet_gym.envs import multi_bidding_v0
    from train.multiagent import day_options

    env = multi_bidding_v0.parallel_env(**config["env_kwargs"])
    day_start = day_options(env, np.asarray(config["days"], int))
    rng = np.random.default_rng([config.get("seed", 0), getattr(config, "worker_index", 0)])
    reset = env.reset

    def reset_on_a_day(seed: int | None = None, options: dict | None = None) -> Any:
        return reset(seed=seed, options=options or day_start(rng))

    env.reset = reset_on_a_day
    return ParallelPettingZooEnv(env)


def ppo_config(base: TrainConfig, kwargs: dict[str, Any], agents: list[str], days: np.ndarray) -> Any:
    """RLlib PPOConfig: one module per agent, PPO settings mapped from the SB3 config (table above)."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.tune.registry import register_env

    register_env(ENV_NAME, _day_env)
    a = base.algo_kwargs
    hidden = list((a.get("policy_kwargs") or {}).get("net_arch", [64, 64]))
    spec = MultiRLModuleSpec(rl_module_specs={ag: RLModuleSpec(model_config={"fcnet_hiddens": hidden})
                                              for ag in agents})
    return (PPOConfig()
            .environment(ENV_NAME, env_config={"env_kwargs": kwargs, "days": [int(d) for d in days],
                                               "seed": base.seed})
            .env_runners(num_env_runners=1)
            .multi_agent(policies=set(agents), policy_mapping_fn=lambda agent_id, *args, **kw: agent_id)
            .rl_module(rl_module_spec=spec)
            .training(lr=a.get("learning_rate", 3e-4), gamma=a.get("gamma", 0.99),
                      lambda_=a.get("gae_lambda", 0.95), num_epochs=a.get("n_epochs", 10),
                      minibatch_size=a.get("batch_size", 64),
                      train_batch_size_per_learner=a.get("n_steps", 2048) * len(agents))
            .debugging(seed=base.seed))


def train_independent(base: TrainConfig, kwargs: dict[str, Any], agents: list[str], timesteps: int,
                      days: np.ndarray, address: str | None = None) -> tuple[Any, pd.DataFrame, float]:
    """Train one PPO policy per agent (``agents``: the env's ids) up to ``timesteps`` agent steps
    (all agents together); (algorithm, per-iteration log: agent steps and each agent's mean
    episode return, seconds)."""
    from smartnet_gym.study.engines import connect_ray

    connect_ray(address, None)
    algo = ppo_config(base, kwargs, agents, days).build_algo()
    rows, steps, t0 = [], 0, time.perf_counter()
    while steps < timesteps:
        r = algo.train()
        runners = r.get("env_runners", {})
        steps = int(runners.get("num_agent_steps_sampled_lifetime", {}).get("__all__", 0)
                    or sum(runners.get("num_agent_steps_sampled_lifetime", {}).values()))
        ret = runners.get("agent_episode_returns_mean", {})
        rows.append({"timesteps": steps, **{f"return_{ag}": float(ret.get(ag, np.nan)) for ag in agents}})
    return algo, pd.DataFrame(rows), time.perf_counter() - t0


def independent_act(algo: Any) -> Any:
    """Each agent's own module, deterministic (the mean of its action distribution), clipped to [-1, 1]."""
    import torch

    modules: dict[str, Any] = {}

    def act(env: Any, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {}
        for ag, o in obs.items():
            m = modules.get(ag) or modules.setdefault(ag, algo.get_module(ag))
            with torch.no_grad():
                res = m.forward_inference({"obs": torch.as_tensor(o[None], dtype=torch.float32)})
            dist = m.get_inference_action_dist_cls().from_logits(res["action_dist_inputs"])
            a = dist.to_deterministic().sample()[0].numpy()
            out[ag] = np.clip(a, -1.0, 1.0).astype(np.float32)
        return out
    return act


__all__ = ["independent_act", "ppo_config", "train_independent"]
