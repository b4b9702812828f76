"""Env step throughput of ``smartnet/Bidding-v0`` and ``smartnet/Dispatch-v0``, and where a step's time goes.

Usage::

    python benchmarks/env_step.py                       # spain-like, linear and AC, 1 and 2 processes
    python benchmarks/env_step.py --scenario toy --steps 64 --no-subproc
    python benchmarks/env_step.py --physics linear --no-subproc --steps 90 --days 8   # + 8 days at 11:00
    python benchmarks/env_step.py --physics linear --no-subproc --episodes 4          # 4 random days, not 28

For each env and physics it prints single-process steps/s (random actions, resets excluded and
timed separately; also per CPU second of the process, which a busy machine does not inflate), SubprocVecEnv(2) env-steps/s (both workers together, auto-resets included),
and the split of a step: market clearing (the scheme's ``clear``), physical layer
(``PhysicalLayer.run``), the CS_D yardstick of Dispatch (optimum + evaluation, ``regret_info``)
and the rest (forecasts, base state, bids, account, observation). With ``--days N`` it also
times one episode on each of N days (``reset(seed)`` draws the day): a congested day costs
several times an uncongested one, so one day is not a representative figure. Last, it times
one whole episode of each env as registered (a day from 00:00) on each of the 28 days an
episode can start on: the mean over all their steps is the figure the ≤ 2 ms target is read
on (``smartnet-gym benchmark`` measures it so; ``--episodes N`` takes N random days
instead, 0 none); the 11:00 cases above are the congested middle of the day.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Callable

import gymnasium as gym
import numpy as np

IDS = ("smartnet/Bidding-v0", "smartnet/Dispatch-v0")


class Timers:
    """Wall time of wrapped callables, by label [s]."""

    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)

    def wrap(self, obj: object, name: str, label: str) -> None:
        """Replace ``obj.name`` by a wrapper that adds its wall time to ``label``."""
        fn: Callable = getattr(obj, name)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.total[label] += time.perf_counter() - t0

        setattr(obj, name, timed)


def single_process(env_id: str, kwargs: dict, steps: int, seed: int) -> dict[str, float]:
    """Steps/s of one env in this process and the split of a step (ms per step by part)."""
    env = gym.make(env_id, **kwargs)
    u = env.unwrapped
    env.action_space.seed(seed)
    t0 = time.perf_counter()
    env.reset(seed=seed)
    reset_s = time.perf_counter() - t0
    timers = Timers()   # after reset: reset installs fresh scheme objects
    timers.wrap(u.loop.scheme, "clear", "clearing")
    timers.wrap(u.loop.physics, "run", "physics")
    if env_id == "smartnet/Dispatch-v0":
        timers.wrap(u, "cs_d_optimum", "yardstick")
        timers.wrap(u, "evaluated_cost", "yardstick")
    env.step(env.action_space.sample())   # warm-up: first solves build the programs
    timers.total.clear()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        env.step(env.action_space.sample())
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    env.close()
    ms = {k: 1e3 * v / steps for k, v in timers.total.items()}
    ms["rest"] = 1e3 * wall / steps - sum(ms.values())
    return {"steps_per_s": steps / wall, "cpu_steps_per_s": steps / max(cpu, 1e-9), "reset_s": reset_s,
            **{f"{k}_ms": v for k, v in ms.items()}}


def across_days(env_id: str, kwargs: dict, steps: int, seeds: range) -> dict[str, object]:
    """ms per step of one episode per seed (``reset(seed)`` draws the day, so congestion differs):
    ``{"start_step": [...], "ms_per_step": [...], "median_ms", "mean_ms" (all steps), "max_ms"}``."""
    env = gym.make(env_id, **kwargs)
    starts, ms = [], []
    for seed in seeds:
        env.action_space.seed(seed)
        _, info = env.reset(seed=seed)
        env.step(env.action_space.sample())     # warm-up (first solves of a fresh episode)
        actions = [env.action_space.sample() for _ in range(steps)]
        t0 = time.perf_counter()
        for a in actions:
            env.step(a)
        ms.append(1e3 * (time.perf_counter() - t0) / steps)
        starts.append(int(info["start_step"]))
    env.close()
    return {"start_step": starts, "ms_per_step": ms, "median_ms": float(np.median(ms)),
            "mean_ms": float(np.mean(ms)), "max_ms": float(np.max(ms))}


def default_episodes(env_id: str, scenario: str, episodes: int, seed: int, every_day: bool = False,
                     revisit: bool = False) -> dict[str, object]:
    """Whole episodes of the env as registered (one day from 00:00, a random day of 28, 96 steps),
    linear physics, random actions, resets excluded: the cost of "an env step" as users meet it.

    ``every_day``: instead of ``episodes`` random days, one episode on each day an episode can
    start on (``random_days``, 28), in order: the expectation over the days, without the luck of
    the draw (a congested day costs twice an easy one).

    ``{"start_step": [...], "ms_per_step": [...] (per episode), "mean_ms" (all steps),
    "median_ms", "max_ms"}``; one warm-up episode first (programs and limit rows built). These are
    each day's first episodes, which compute its hourly linearisation points; ``revisit`` plays
    the same days again and adds ``revisit_mean_ms`` and ``revisit_max_ms``: the cost once the
    points are cached, as in training on a fixed set of days."""
    env = gym.make(env_id, scenario=scenario, physics="linear")
    core = env.unwrapped.core
    env.action_space.seed(seed)
    days = [None] * episodes
    if every_day:
        days = [core.start_step(d, core.start_period or 0) for d in range(core.random_days)]
    first = _timed_episodes(env, [None, *days], seed)[1:]       # episode 0 is the warm-up
    out = {"start_step": [s for s, _ in first], "ms_per_step": [m for _, m in first],
           "mean_ms": float(np.mean([m for _, m in first])), "median_ms": float(np.median([m for _, m in first])),
           "max_ms": float(max(m for _, m in first))}
    if revisit:
        again = [m for _, m in _timed_episodes(env, [s for s, _ in first], seed)]
        out |= {"revisit_mean_ms": float(np.mean(again)), "revisit_max_ms": float(max(again))}
    env.close()
    return out


def _timed_episodes(env: gym.Env, starts: list[int | None], seed: int) -> list[tuple[int, float]]:
    """(start step, ms per step) of one whole episode from each start (None: a random day)."""
    core = env.unwrapped.core
    out = []
    for k, start in enumerate(starts):
        _, info = env.reset(seed=seed + k, options=None if start is None else {"start_step": start})
        actions = [env.action_space.sample() for _ in range(core.episode_steps)]
        t0 = time.perf_counter()
        for a in actions:
            env.step(a)
        out.append((int(info["start_step"]), 1e3 * (time.perf_counter() - t0) / len(actions)))
    return out


def subproc(env_id: str, kwargs: dict, steps: int, seed: int) -> float:
    """Env steps/s of SubprocVecEnv(2), both workers together (auto-resets included)."""
    from stable_baselines3.common.vec_env import SubprocVecEnv

    venv = SubprocVecEnv([lambda: gym.make(env_id, **kwargs) for _ in range(2)])
    try:
        venv.seed(seed)
        venv.reset()
        venv.step(np.stack([venv.action_space.sample() for _ in range(2)]))   # warm-up
        t0 = time.perf_counter()
        for _ in range(steps):
            venv.step(np.stack([venv.action_space.sample() for _ in range(2)]))
        return 2 * steps / (time.perf_counter() - t0)
    finally:
        venv.close()


def main(argv: list[str] | None = None) -> int:
    """Command line of ``benchmarks/env_step.py``: the tables of this module."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="spain-like")
    p.add_argument("--steps", type=int, default=32, help="timed steps per case (episodes are 96 steps)")
    p.add_argument("--physics", nargs="+", default=["linear", "ac"], choices=["linear", "ac"])
    p.add_argument("--ids", nargs="+", default=list(IDS))
    p.add_argument("--no-subproc", action="store_true", help="skip the SubprocVecEnv(2) runs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--episodes", type=int, default=None,
                   help="whole default episodes (00:00–24:00) timed per env on this many random days, linear "
                        "physics (default: one on every day an episode can start on, 28; 0: none)")
    p.add_argument("--days", type=int, default=0,
                   help="also time one episode on each of this many days (seeds seed…seed+days−1), linear physics")
    args = p.parse_args(argv)
    print(f"scenario {args.scenario}, {args.steps} timed steps per case, start 11:00 (start_period=44)")
    head = (f"{'env':<22} {'physics':<7} {'steps/s':>8} {'cpu st/s':>8} {'2 procs':>8} {'reset s':>8} {'clear ms':>9} "
            f"{'phys ms':>8} {'yard ms':>8} {'rest ms':>8}")
    print(head)
    print("-" * len(head))
    for env_id in args.ids:
        for phys in args.physics:
            kw = {"scenario": args.scenario, "physics": phys, "episode_steps": 96, "start_period": 44}
            r = single_process(env_id, kw, args.steps, args.seed)
            sub = float("nan") if args.no_subproc else subproc(env_id, kw, args.steps, args.seed)
            print(f"{env_id.split('/')[1]:<22} {phys:<7} {r['steps_per_s']:>8.1f} {r['cpu_steps_per_s']:>8.1f} {sub:>8.1f} {r['reset_s']:>8.2f} "
                  f"{r.get('clearing_ms', 0):>9.1f} {r.get('physics_ms', 0):>8.1f} {r.get('yardstick_ms', 0):>8.1f} "
                  f"{r['rest_ms']:>8.1f}", flush=True)
    every_day = args.episodes is None
    if every_day or args.episodes:
        which = "every start day" if every_day else f"{args.episodes} random days"
        print(f"\nms per step over whole default episodes (96 steps from 00:00) on {which}, "
              f"linear physics, after one warm-up episode")
        for env_id in args.ids:
            d = default_episodes(env_id, args.scenario, args.episodes or 0, args.seed, every_day, revisit=True)
            per_ep = " ".join(f"{m:.2f}" for m in d["ms_per_step"])
            print(f"{env_id.split('/')[1]:<22} mean {d['mean_ms']:.2f}  median {d['median_ms']:.2f}  "
                  f"max {d['max_ms']:.2f}  per episode: {per_ep}", flush=True)
            print(f"{'':<22} the same days again (points cached): mean {d['revisit_mean_ms']:.2f}  "
                  f"max {d['revisit_max_ms']:.2f}", flush=True)
    if args.days:
        print(f"\nms per step on {args.days} days (linear physics, {args.steps} timed steps each, start 11:00)")
        for env_id in args.ids:
            kw = {"scenario": args.scenario, "physics": "linear", "episode_steps": 96, "start_period": 44}
            d = across_days(env_id, kw, args.steps, range(args.seed, args.seed + args.days))
            per_day = " ".join(f"{m:.2f}" for m in d["ms_per_step"])
            print(f"{env_id.split('/')[1]:<22} median {d['median_ms']:.2f}  mean {d['mean_ms']:.2f}  "
                  f"max {d['max_ms']:.2f}  per day: {per_day}", flush=True)
    return 0


ENV_CASES = {"quick": (("smartnet/Bidding-v0", "linear"),),   # for env_steps(quick=True) called directly
             "full": (("smartnet/Bidding-v0", "linear"), ("smartnet/Bidding-v0", "ac"),
                      ("smartnet/Dispatch-v0", "linear"), ("smartnet/Dispatch-v0", "ac"))}


def env_episodes(scenario: str = "spain-like", episodes: int = 4, every_day: bool = False,
                 ids: tuple[str, ...] = IDS, revisit: bool = False) -> tuple[dict, str]:
    """ms per step over whole default episodes (:func:`default_episodes`) of each env id, linear physics:
    ``({env_id: {mean_ms, median_ms, max_ms, ms_per_step, start_step}}, note)``; ``every_day``: one
    episode on each day an episode can start on instead of ``episodes`` random ones."""
    try:
        res = {eid: default_episodes(eid, scenario, episodes, 0, every_day, revisit) for eid in ids}
    except Exception as e:  # noqa: BLE001 - a failed env measurement is reported, never crashes the benchmark
        return {}, f"default_episodes failed ({type(e).__name__}: {e})"
    which = "one on every day an episode can start on" if every_day else f"{episodes} on random days"
    return res, (f"default_episodes(): whole episodes per env as registered "
                 f"(96 steps from 00:00), {which}, linear physics, random actions, after one warm-up episode")


def env_steps(scenario: str = "spain-like", quick: bool = False) -> tuple[dict, str]:
    """Single-process env steps and their split, measured by :func:`single_process`:
    ``({env_id: {physics: {steps_per_s, clearing_ms, …}}}, note)``, or ``({}, reason)`` when it
    fails (quick: 8 timed steps, full: 32)."""
    steps = 8 if quick else 32
    res: dict[str, dict[str, dict[str, float]]] = {}
    try:
        for env_id, physics in ENV_CASES["quick" if quick else "full"]:
            kw = {"scenario": scenario, "physics": physics, "episode_steps": 96, "start_period": 44}
            r = single_process(env_id, kw, steps, 0)
            res.setdefault(env_id, {})[physics] = {k: round(float(v), 3) for k, v in r.items()}
    except Exception as e:  # noqa: BLE001 - a failed env measurement is reported, never crashes the benchmark
        return {}, f"single_process failed ({type(e).__name__}: {e})"
    return res, (f"single_process(), {steps} timed steps after 1 warm-up step, "
                 "random actions, 1 process, resets excluded, episodes start at 11:00")
