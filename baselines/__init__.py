"""Baseline policies of every smartnet env, with the predict interface of a Stable-Baselines3 model.

>>> import gymnasium as gym, smartnet_gym
>>> from baselines import make_baseline
>>> env = gym.make("smartnet/Dispatch-v0", scenario="toy", episode_steps=2, start_period=44)
>>> policy = make_baseline("optimal", env)
>>> obs, info = env.reset(seed=0)
>>> action, _ = policy.predict(obs, deterministic=True)
>>> obs, reward, terminated, truncated, info = env.step(action)
>>> abs(info["regret_eur"]) < 1e-3
True

Which baseline exists for which env (``available_baselines(env)``); the modules' docstrings say
what each one does:

| name | Bidding-v0 | Dispatch-v0 | DSOLimits-v0 | multi_bidding_v0 |
|---|---|---|---|---|
| truthful | true-cost bids | the env scheme's clearing of the truthful bids | no limits | true-cost bids |
| optimal | myopic oracle best response (grid) | CS_D joint clearing (the env's optimum) | grid search of the limits | — |
| perfect_foresight | — | CS_D clearing of the actual instance (cost lower bound) | — | — |
| markup | fixed markup on cost | — | — | fixed markup on cost |
| merit_order | — | network-blind merit order | — | — |
| fixed_limits | — | — | static share per area | — |
| prequalify | — | — | static DSO prequalification | — |
| random | uniform | uniform | uniform | uniform |
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from baselines.base import Baseline, ConstantBaseline, RandomBaseline, env_kind

_KINDS = ("bidding", "dispatch", "dso_limits", "multi_bidding")


def _random(env: Any, seed: int | None = None) -> Any:
    if env_kind(env) == "multi_bidding":
        from baselines.bidding import MultiAgentBaseline

        return MultiAgentBaseline(env, "random", seed=seed)
    return RandomBaseline(env, seed=seed)


def _truthful(env: Any) -> Any:
    kind = env_kind(env)
    if kind == "bidding":
        from baselines.bidding import truthful

        return truthful(env)
    if kind == "multi_bidding":
        from baselines.bidding import MultiAgentBaseline

        return MultiAgentBaseline(env, "truthful")
    if kind == "dispatch":
        from baselines.operator import SchemeDispatch

        return SchemeDispatch(env)
    return ConstantBaseline(env, 1.0, "truthful")     # DSOLimits: no limits


def _markup(env: Any, **kw: Any) -> Any:
    if env_kind(env) == "multi_bidding":
        from baselines.bidding import MultiAgentBaseline

        return MultiAgentBaseline(env, "markup", **kw)
    from baselines.bidding import MarkupBaseline

    return MarkupBaseline(env, **kw)


def _optimal(env: Any, **kw: Any) -> Baseline:
    kind = env_kind(env)
    if kind == "bidding":
        from baselines.bidding import BestResponseBaseline

        return BestResponseBaseline(env, **kw)
    if kind == "dispatch":
        from baselines.operator import OptimalDispatch

        return OptimalDispatch(env, **kw)
    from baselines.operator import BestLimits

    return BestLimits(env, **kw)


def _perfect_foresight(env: Any) -> Baseline:
    from baselines.operator import PerfectForesightDispatch

    return PerfectForesightDispatch(env)


def _merit_order(env: Any) -> Baseline:
    from baselines.operator import MeritOrderDispatch

    return MeritOrderDispatch(env)


def _fixed_limits(env: Any, **kw: Any) -> Baseline:
    from baselines.operator import FixedLimits

    return FixedLimits(env, **kw)


def _prequalify(env: Any) -> Baseline:
    from baselines.operator import PrequalifyLimits

    return PrequalifyLimits(env)


#: name → factory(env, **kwargs); read-only. Use :func:`make_baseline` (it checks the env).
BASELINES: Mapping[str, Callable[..., Any]] = MappingProxyType({
    "truthful": _truthful, "optimal": _optimal, "perfect_foresight": _perfect_foresight, "markup": _markup,
    "fixed_limits": _fixed_limits, "random": _random, "merit_order": _merit_order, "prequalify": _prequalify,
})

#: which baselines each env kind supports
SUPPORTED: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "bidding": ("truthful", "markup", "optimal", "random"),
    "dispatch": ("truthful", "optimal", "perfect_foresight", "merit_order", "random"),
    "dso_limits": ("truthful", "fixed_limits", "prequalify", "optimal", "random"),
    "multi_bidding": ("truthful", "markup", "random"),
})
assert set(SUPPORTED) == set(_KINDS) and all(set(v) <= set(BASELINES) for v in SUPPORTED.values())


def available_baselines(env: Any) -> tuple[str, ...]:
    """Names of the baselines that ``env`` (an env, env class or registered id) supports, in registry order."""
    return tuple(n for n in BASELINES if n in SUPPORTED[env_kind(env)])


def plays_per_bid(name: str, env: Any) -> bool:
    """Whether baseline ``name`` needs ``Dispatch-v0`` with ``action_mode="bid"`` while ``env`` has
    another action mode (the activation baselines choose every bid; random plays any action space)."""
    key = name.strip().lower().replace("-", "_")
    return (env_kind(env) == "dispatch" and key != "random"
            and getattr(getattr(env, "unwrapped", env), "action_mode", "bid") != "bid")


def make_baseline(name: str, env: Any, **kwargs: Any) -> Any:
    """The baseline ``name`` acting in ``env``; ``kwargs`` go to its constructor (e.g. ``share=0.3``).

    Raises:
        UnknownNameError: ``name`` is not a baseline, or not one of this env's (the message lists them).
        ConfigError: a keyword argument is out of range or not one the baseline takes.
    """
    from smartnet_gym.errors import ConfigError, UnknownNameError, did_you_mean

    key = name.strip().lower().replace("-", "_")
    if key not in BASELINES:
        raise UnknownNameError(did_you_mean(name, list(BASELINES), "baseline"))
    allowed = available_baselines(env)
    if key not in allowed:
        raise UnknownNameError(f"baseline {key!r} does not apply to {type(getattr(env, 'unwrapped', env)).__name__}; "
                               f"allowed: {', '.join(allowed)}.")
    try:
        return BASELINES[key](env, **kwargs)
    except TypeError as e:
        if "unexpected keyword argument" not in str(e) and "positional argument" not in str(e):
            raise
        raise ConfigError(f"baseline {key!r} for {env_kind(env)}: {e}") from None


__all__ = ["BASELINES", "SUPPORTED", "Baseline", "available_baselines", "make_baseline", "plays_per_bid"]
