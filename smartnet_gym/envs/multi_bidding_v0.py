"""# Multi Bidding: every flexibility provider of a local market bids strategically

| | |
|---|---|
| Import | ``from smartnet_gym.envs import multi_bidding_v0`` |
| Creation | ``multi_bidding_v0.parallel_env(scenario="toy", area=0)``, or ``pettingzoo.make("parallel", "smartnet/multi_bidding_v0")`` |
| Actions | continuous, ``Box(-1, 1, (2H,) or (4H,), float32)`` per agent |
| Parallel API | yes (AEC via ``multi_bidding_v0.env()``) |
| Agents | ``agents = [agent ids of the area's units]`` (unit ``"MV1.101/PV/0"`` → ``"MV1_101_PV_0"``, ``env.agent_unit`` maps back), or all units (``area="all"``) |
| Number of agents | units of the area (toy: 6; spain-like area 0: 10; all: toy 9, spain-like 49) |
| Action shape | (2H,) prices; (4H,) with ``bid_quantity=True`` (H = horizon periods, default 4) |
| Action values | [-1, 1] |
| Observation shape | (2H + 1 + 2H + 4 + 7,) = (28,) for H = 4, the same for every agent |
| Observation values | [-1, 1] |

## Description
The same market as ``smartnet/Bidding-v0`` (SmartNet coordination scheme CS_A…CS_E, rolling
15-min clearing of an H-period horizon, physical layer, aFRR, unwanted measures, CBA), but every
flexible unit of one distribution area (default ``area=0``: the local market of DSO1), or of the
whole system (``area="all"``), is an agent bidding for itself. Agent ids are the unit names with
``/`` and ``.`` replaced by ``_`` (valid RLlib policy and module ids, and file names), so each
agent can have its own policy on any multi-agent library. All other units bid truthfully.
This is the strategic-bidding setting of ``smartnet/Bidding-v0`` with competition: with many competitors each markup falls toward
zero; a pivotal provider can push the price to the cap.

## Action Space
Every agent has the same layout (so one shared policy fits all): 2H price slots — up for periods
0..H−1, then down for periods 0..H−1 — then, with ``bid_quantity=True``, 2H quantity slots in the
same order. A slot of a direction the unit does not offer (PV and wind offer only down) is ignored.
Mapping as in Bidding-v0: ``price = cost + (a+1)/2 · max(cap − cost, 0)`` (a = −1 truthful,
+1 the cap); ``qty = (a+1)/2 · forecast available MW``. Out-of-range entries are clipped (counted
in the agent's ``info["clipped_actions"]``); NaN/inf raises ``ValueError`` naming the agent and
index. Every live agent must act each step.

## Observation Space
Per agent, clipped to [-1, 1] (the same parts as Bidding-v0, plus the agent's identity):

| Index | Observation | Scale |
|---|---|---|
| 0..2H−1 | forecast available quantity per slot (0 where the unit has no bid) | / unit rated power |
| 2H | state of charge of the unit's battery (0 for other kinds) | 2·SoC/energy − 1 |
| next H | uniform price of the last clearing per period (0 before the first / when none) | / price cap |
| next H | published imbalance need forecast per period | / Σ rated power of all units |
| next 4 | sin, cos of time of day; sin, cos of day of year | — |
| last 7 | one-hot unit kind (PV, WIND, LOAD, STORAGE, GENERATOR); own true cost up, down (0 if not offered) | —; / price cap |

## Rewards
Each agent: ``(profit_eur − non_delivery_penalty) / reward_scale_eur`` with its own first-period
payment − true cost scaled by delivery (exactly as Bidding-v0; the agents' profits sum to the
account's ``bidders_profit_eur`` when all units are agents). Default scale 100 EUR.

## Info
Per agent: the common step info of Bidding-v0 (every CBA column, ``clearing_status``,
``slack_mw``, ``prices_eur_per_mwh``, ``scheme``, ``physics``), the agent's ``profit_eur``,
``provider_payment_eur``, ``provider_true_cost_eur``, ``provider_activated_mwh``,
``provider_delivered_mwh``, ``non_delivery_penalty_eur``, ``clipped_actions`` (its own) and
``total_clipped_actions`` (all agents).

## Episode End
No agent ever terminates; all are truncated together after ``episode_steps`` steps (then
``agents`` is empty).

## Arguments
| Parameter | Type | Default | Description |
|---|---|---|---|
| scenario | str or ScenarioConfig | "spain-like" | preset name or YAML path; other settings through a ScenarioConfig, e.g. `load_scenario("spain-like", {"simulation": {"fast_ac": False}})` |
| scheme | str or None | None (scenario's) | CS_A … CS_E |
| physics | str | "linear" | "linear" or "ac" (AC power flow: the fast Newton-Raphson, or pandapower's runpp with the scenario's `simulation.fast_ac: false`) |
| episode_steps | int | 96 | steps per episode |
| area | int, str or None | 0 | area index, area/DSO name, "transmission", or "all"/None for every unit |
| bid_quantity | bool | False | also choose the offered share |
| reward_scale_eur | float | 100.0 | reward = EUR / this |
| non_delivery_penalty_eur_per_mwh | float | 0.0 | penalty on activated but undelivered energy |
| random_days | int | 28 | number of start days drawn from |
| start_period | int or None | 0 | quarter-hour of the first step (None = random) |
| competitors | int or None | None | n: the agents are n providers of a local market (below) |
| local_market | mapping or None | None | knobs of that market (``LocalMarketConfig`` fields) |

## Local market of n providers (``competitors=n``)
As in ``smartnet/Bidding-v0`` with ``competitors`` (:mod:`smartnet_gym.envs.local_market`): every
step the area's bids are replaced by n providers at one bus, sized on the DSO's need of that step,
but here all n are agents, ``provider_0`` … ``provider_{n-1}``. Each has H price actions (its offer
per period, in the need's direction) and an observation of 3H + 5 entries (own offer, last local
price, need forecast, time, own cost). Infos add ``markup_eur_per_mwh`` (own period-0 bid − cost)
and the local market's indicators ``local_*`` (HHI, PSI, RSI, price, truthful price, Lerner).
``area`` must stay 0 (the market's area is ``local_market["area"]``) and ``bid_quantity`` False.

## Training with Stable-Baselines3 (parameter sharing)
All agents share the observation and action layout, so one policy can be trained on all of them
with SuperSuit's vector-env conversion::

    import supersuit as ss
    from stable_baselines3 import PPO
    from smartnet_gym.envs import multi_bidding_v0

    env = multi_bidding_v0.parallel_env(scenario="toy", area=0, episode_steps=96)
    venv = ss.pettingzoo_env_to_vec_env_v1(env)            # one SB3 env slot per agent
    venv = ss.concat_vec_envs_v1(venv, 2, num_cpus=2, base_class="stable_baselines3")
    model = PPO("MlpPolicy", venv).learn(100_000)

SuperSuit is **not installed** in this environment (and not a dependency), so this recipe is not
tested here; what it needs from the env — a ``ParallelEnv`` with identical spaces for every agent
and no agent leaving before the others — is what ``parallel_api_test`` and the tests check.
Without SuperSuit, :class:`train.multiagent.ParallelVecEnv` does the same (one VecEnv slot per
agent; tested in ``tests/train/test_multiagent.py``), e.g. ``python -m train.collusion``.

>>> from smartnet_gym.envs import multi_bidding_v0
>>> env = multi_bidding_v0.parallel_env(scenario="toy", episode_steps=2)
>>> env.possible_agents[:2]
['MV1_101_PV_0', 'MV1_101_PV_1']
>>> obs, infos = env.reset(seed=0)
>>> env.action_space("MV1_101_PV_0")
Box(-1.0, 1.0, (8,), float32)

## Version History
* v0: Initial version.
"""

from smartnet_gym.envs.multi_bidding import MultiBiddingEnv, agent_id, env, parallel_env, raw_env

__all__ = ["MultiBiddingEnv", "agent_id", "env", "parallel_env", "raw_env"]
