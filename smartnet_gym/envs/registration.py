"""Registration of the smartnet env ids (run on ``import smartnet_gym``).

Gymnasium ids take scheme, scenario and physics as kwargs
(``gym.make("smartnet/Bidding-v0", scheme="cs_b", scenario="toy")``). No ``max_episode_steps``:
the envs truncate themselves after ``episode_steps``. The PettingZoo env is registered in
PettingZoo's registry (``pettingzoo.make("parallel", "smartnet/multi_bidding_v0")``) when that
registry exists (PettingZoo ≥ 1.27). Registering an id that already points elsewhere raises.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

GYM_ENTRY_POINTS: dict[str, str] = {
    "smartnet/Bidding-v0": "smartnet_gym.envs.bidding:BiddingEnv",
    "smartnet/Dispatch-v0": "smartnet_gym.envs.operator:DispatchEnv",
    "smartnet/DSOLimits-v0": "smartnet_gym.envs.operator:DSOLimitsEnv",
}
PARALLEL_ENTRY_POINTS: dict[str, str] = {
    "smartnet/multi_bidding_v0": "smartnet_gym.envs.multi_bidding_v0:parallel_env",
}


def register_envs() -> None:
    """Register every id once; an id already registered with another entry point raises."""
    for env_id, entry in GYM_ENTRY_POINTS.items():
        spec = registry.get(env_id)
        if spec is not None:
            if spec.entry_point != entry:
                raise ValueError(f"env id {env_id!r} is already registered with entry point "
                                 f"{spec.entry_point!r}, not {entry!r}")
            continue
        register(id=env_id, entry_point=entry)
    try:
        from pettingzoo.env_registry.registration import parallel_registry
        from pettingzoo.env_registry.registration import register as pz_register
        from pettingzoo.env_registry.spec import EnvSpec
    except ImportError:  # older PettingZoo: no registry; use multi_bidding_v0.parallel_env()
        return
    for env_id, entry in PARALLEL_ENTRY_POINTS.items():
        spec = parallel_registry.get(EnvSpec(id=env_id).id)
        if spec is not None:
            if spec.entry_point != entry:
                raise ValueError(f"parallel env id {env_id!r} is already registered with entry point "
                                 f"{spec.entry_point!r}, not {entry!r}")
            continue
        pz_register("parallel", env_id, entry_point=entry)


register_envs()
