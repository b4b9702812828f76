"""``smartnet/Bidding-v0``: one strategic flexibility provider bids against truthful competitors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from smartnet_gym.config import ScenarioConfig
from smartnet_gym.envs.core import MarketEnv
from smartnet_gym.envs.local_market import make_competition
from smartnet_gym.envs.providers import (
    BidMapper,
    ProviderObservation,
    action_slots,
    bid_book,
    provider_reward,
    resolve_provider,
    reward_args,
    settle,
)
from smartnet_gym.envs.spaces import pack, unit_box
from smartnet_gym.errors import ConfigError


class BiddingEnv(MarketEnv):
    """A flexibility provider (one unit or an aggregator) learns what to bid in the AS market.

    ## Description
    Every 15 minutes the market of the chosen coordination scheme (SmartNet CS_A…CS_E, see docs/model.md)
    clears the next H periods (default H = 4). The *provider* — the units named by ``provider``
    (default: all units of distribution area 0, i.e. the aggregator of that area's largest PV,
    wind and load units and its battery) — chooses the price (and with ``bid_quantity=True`` the
    offered share) of each of its bids: one per unit × offered direction (up / down) × period.
    Every other unit bids truthfully (available quantity at true cost). Only the first period is
    delivered and paid; the rolling loop then runs the physical layer, aFRR and unwanted measures
    and books the CBA account. This is the strategic-bidding experiment: a pivotal provider
    learns to bid up to the cap, a competitive one toward its cost.

    ## Action Space
    ``Box(-1, 1, (n,), float32)`` with n = R (prices) or 2R (``bid_quantity=True``: prices, then
    quantity shares). R *slots*, chosen by ``action_mode`` (``env.unwrapped.action_labels`` names
    each entry):

    | action_mode | R = one slot per | size (italy-like, provider MV1.101) |
    |---|---|---|
    | ``"bid"`` (default) | bid row over the horizon, book order (period outermost, then unit, then up before down) | 428 |
    | ``"unit"`` | unit × offered direction, shared by the H periods | 107 |
    | ``"provider"`` | offered direction, shared by all the provider's units and periods (one markup up, one down) | 2 |

    | Index | Meaning | Unit | Maps to |
    |---|---|---|---|
    | 0..R−1 | price of the bids of slot k | — | price = cost + (a+1)/2 · max(cap − cost, 0) EUR/MWh per bid (its own cost): a = −1 truthful, a = +1 the cap |
    | R..2R−1 | quantity of the bids of slot k | — | qty = (a+1)/2 · forecast available MW (a = +1: all of it) |

    Entries outside [-1, 1] are clipped (counted in ``info["clipped_actions"]``); NaN or inf
    raises ``ValueError`` (an ``ActionError``) naming the first bad index.

    ## Observation Space
    ``Box(-1, 1, (m,), float32)``; m = R + n_batteries + 2H + 4. Every entry is clipped to [-1, 1].

    | Index | Observation | Unit | Scale | Min | Max |
    |---|---|---|---|---|---|
    | 0..R−1 | forecast available quantity of the bids of slot k | MW | / Σ rated power of their units | 0 | 1 |
    | R..R+B−1 | state of charge of own battery b | MWh | 2·SoC/energy − 1 | -1 | 1 |
    | next H | uniform price of the last clearing, per period (0 before the first or when none) | EUR/MWh | / price cap | -1 | 1 |
    | next H | published imbalance need forecast, per period (+ = shortage) | MW | / Σ rated power of all units | -1 | 1 |
    | last 4 | sin, cos of time of day; sin, cos of day of year | — | — | -1 | 1 |

    Nothing the provider could not know: no competitor's bids, costs or availability.

    ## Rewards
    ``reward = (profit_eur − non_delivery_penalty) / reward_scale_eur`` with
    ``profit_eur = Σ_{own bids k, period 0} (payment_eur[k] − true_cost_eur[k]) · delivered[k] / activated[k]``
    from ``StepOutcome.clearing`` (pay-as-clear at the bid's locational price, or pay-as-bid);
    ``delivered`` is what the loop really delivered (curtailment and demand response cannot
    exceed the actual output). This is the provider's share of the account's
    ``bidders_profit_eur``. ``non_delivery_penalty = non_delivery_penalty_eur_per_mwh ·
    undelivered MWh`` (default 0: undelivered energy is simply not paid). Default scale 100 EUR.

    ## Info
    | key | unit | meaning |
    |---|---|---|
    | every CBA column (``market_cost_eur``, ``afrr_cost_eur``, ``unwanted_cost_eur``, ``total_cost_eur``, ``bidders_profit_eur``, ``uniform_price_eur_per_mwh``, ``d_violations``, …) | EUR, MWh, … | the step's account row (all but the wall-clock ``solve_ms``); NaN → None |
    | ``clearing_status``, ``failed_stages`` | — | solver status of the clearing ("optimal" or the first failure) |
    | ``slack_mw`` | MW | balance + network slack used by the clearing |
    | ``prices_eur_per_mwh`` | EUR/MWh | tuple of H uniform prices (None where none) |
    | ``scheme``, ``physics`` | — | the scheme and physical layer |
    | ``clipped_actions`` | count | action entries outside [-1, 1] |
    | ``profit_eur`` | EUR | the provider's profit (before the penalty) |
    | ``provider_payment_eur``, ``provider_true_cost_eur`` | EUR | its payment and true cost, period 0, delivered |
    | ``provider_activated_mwh``, ``provider_delivered_mwh`` | MWh | cleared and delivered energy, period 0 |
    | ``non_delivery_penalty_eur`` | EUR | the penalty in the reward |

    ``reset`` returns ``{"start_step", "forecast_seed", "scheme", "physics", "episode_steps"}``: a
    ``RollingLoop`` reset with ``(start_step, episode_steps, np.random.default_rng(forecast_seed))``
    replays the episode's forecasts.

    ## Starting State
    Day ``data.start_day + d`` with d ~ U{0..random_days−1} from ``np_random`` (wrapping within
    the days where the episode fits), at quarter-hour ``start_period`` (None: drawn too); the
    forecast errors are drawn from the same generator. ``reset(options={"start_step": k})``
    starts at profile step k instead. Batteries start at their initial state of charge.

    ## Episode End
    Never terminates. Truncated after ``episode_steps`` steps (the env does it; no
    ``max_episode_steps`` in the registration). The final observation reuses the last forecasts.

    ## Arguments
    | Parameter | Type | Default | Description |
    |---|---|---|---|
    | scenario | str or ScenarioConfig | "spain-like" | preset name or YAML path; other settings through a ScenarioConfig, e.g. `load_scenario("spain-like", {"simulation": {"fast_ac": False}})` |
    | scheme | str or None | None (scenario's, CS_D) | CS_A … CS_E, any case |
    | physics | str | "linear" | "linear" or "ac" (AC power flow: the fast Newton-Raphson, or pandapower's runpp with the scenario's `simulation.fast_ac: false`) |
    | episode_steps | int | 96 | steps per episode (one day) |
    | provider | str, list of str or None | None (area 0) | unit names and/or area/DSO names or "transmission" |
    | bid_quantity | bool | False | also choose the offered share |
    | reward_scale_eur | float | 100.0 | reward = EUR / this |
    | non_delivery_penalty_eur_per_mwh | float | 0.0 | penalty on activated but undelivered energy |
    | random_days | int | 28 | number of start days drawn from |
    | start_period | int or None | 0 | quarter-hour of the first step (None = random) |
    | competitors | int or None | None | n: replace the area's bids by n local providers, the agent is provider 0 (below) |
    | local_market | mapping or None | None | knobs of that local market (``LocalMarketConfig`` fields) |
    | action_mode | str | "bid" | "bid", "unit" or "provider": what one price action sets (Action Space) |
    | render_mode | str or None | None | ignored: nothing to render |

    ## Local market with n competitors (``competitors=n``)
    The market-power experiment of ``smartnet-gym market-power`` inside the loop
    (:mod:`smartnet_gym.envs.local_market`): every step the bids of one area are replaced by n
    providers at one bus, sized on the DSO's need of that step (defaults of the ``local-market``
    preset: provider 0 offers 1.2 × the need, each rival 0.45 ×, all at 50 EUR/MWh, so provider 0
    is pivotal for n ≤ 3). The agent is provider 0; rivals bid truthfully. Action: H prices (one
    per period, the offer in the need's direction), ``price = cost + (a+1)/2 · (cap − cost)``.
    Observation (3H + 5): own offer per period, last local price per period, need forecast,
    time, own cost (see ``LocalCompetition.observe``). Reward: provider 0's period-0 profit /
    ``reward_scale_eur`` (every activation counts as delivered). Info adds ``markup_eur_per_mwh``
    (the agent's period-0 bid − cost) and the local indicators ``local_*`` (HHI, PSI, RSI, price,
    truthful price, Lerner, uplift; NaN → None when the DSO needs nothing). ``provider`` and
    ``bid_quantity`` must stay at their defaults.

    >>> import gymnasium as gym, smartnet_gym
    >>> env = gym.make("smartnet/Bidding-v0", scenario="toy", scheme="CS_B", episode_steps=4)
    >>> env.action_space
    Box(-1.0, 1.0, (36,), float32)
    >>> env.observation_space.shape
    (49,)
    >>> obs, info = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step(-np.ones(36, np.float32))  # truthful
    >>> info["clearing_status"], terminated, truncated
    ('optimal', False, False)

    ## Version History
    * v0: Initial version.
    """

    def __init__(self, scenario: str | ScenarioConfig = "spain-like", scheme: str | None = None,
                 physics: str = "linear", episode_steps: int = 96,
                 provider: str | Sequence[str] | None = None, bid_quantity: bool = False,
                 reward_scale_eur: float = 100.0, non_delivery_penalty_eur_per_mwh: float = 0.0,
                 random_days: int = 28, start_period: int | None = 0, competitors: int | None = None,
                 local_market: Mapping[str, Any] | None = None, action_mode: str = "bid",
                 render_mode: str | None = None):
        super().__init__(scenario=scenario, scheme=scheme, physics=physics, episode_steps=episode_steps,
                         random_days=random_days, start_period=start_period, render_mode=render_mode)
        self.reward_scale_eur, self.penalty_eur_per_mwh = reward_args(reward_scale_eur,
                                                                      non_delivery_penalty_eur_per_mwh)
        self.competition = make_competition(self.core, competitors, local_market, bid_quantity)
        if self.competition is not None:
            if action_mode != "bid":
                raise ConfigError(f"action_mode: must be 'bid' with competitors (got {action_mode!r})")
            self._init_competition(provider)
            return
        loop = self.loop
        self.provider_units = resolve_provider(loop.system, provider)
        rows = np.flatnonzero(np.isin(loop.layout.unit, self.provider_units))
        slot, slot_names = action_slots(loop.layout, rows, action_mode, loop.system.units.name)
        self.mapper = BidMapper(rows, slot, len(slot_names), self.core.cfg.market.price_cap_eur_per_mwh,
                                bid_quantity)
        self.obs_builder = ProviderObservation(self.core, self.mapper, self.provider_units)
        self.action_space = unit_box(self.mapper.n_actions)
        self.observation_space = unit_box(self.obs_builder.dim)
        self.action_labels = tuple(f"price {b}" for b in slot_names) + (
            tuple(f"quantity {b}" for b in slot_names) if bid_quantity else ())

    def _init_competition(self, provider: str | Sequence[str] | None) -> None:
        """The agent is provider 0 of the local market (class docstring)."""
        if provider is not None:
            raise ConfigError(f"provider: must be None with competitors (the agent is provider 0) (got {provider!r})")
        comp = self.competition
        self.mapper = comp.mappers[0]
        self.provider_units = np.zeros(0, dtype=int)
        self.action_space = unit_box(self.mapper.n_actions)
        self.observation_space = unit_box(comp.obs_dim)
        self.action_labels = tuple(f"price provider 0 t+{t}" for t in range(self.mapper.n_slots))

    def _on_reset(self) -> None:
        if self.competition is not None:
            self.competition.restart()

    def _observe(self, inst) -> np.ndarray:
        if self.competition is not None:
            return pack(*self.competition.observe(0))
        return pack(*self.obs_builder.parts(inst, self._last_prices))

    def book(self, action: np.ndarray):
        """The bid book this (clipped) action submits: truthful for everyone but the provider."""
        if self.competition is not None:
            return self.competition.physical(self.competition.book([action]))
        return bid_book(self.loop.truthful_book, [self.mapper], [action])

    def _act(self, action: np.ndarray) -> tuple[Any, float, dict[str, Any]]:
        local: dict[str, Any] = {}
        if self.competition is not None:
            res, local, (markup,) = self.competition.step([action])
            local |= {"markup_eur_per_mwh": markup}
        else:
            res = self.loop.step(book=self.book(action))
        s = settle(res, res.delivered_mw, self.mapper.rows)
        reward, info = provider_reward(s, self.penalty_eur_per_mwh, self.reward_scale_eur)
        return res, reward, info | local


__all__ = ["BiddingEnv"]
