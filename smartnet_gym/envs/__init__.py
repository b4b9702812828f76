"""Gymnasium and PettingZoo environments of smartnet_gym.

| id | class | agent |
|---|---|---|
| ``smartnet/Bidding-v0`` | :class:`~smartnet_gym.envs.bidding.BiddingEnv` | one strategic flexibility provider |
| ``smartnet/Dispatch-v0`` | :class:`~smartnet_gym.envs.operator.DispatchEnv` | the operator choosing activations |
| ``smartnet/DSOLimits-v0`` | :class:`~smartnet_gym.envs.operator.DSOLimitsEnv` | the DSOs limiting D bids (CS_A/CS_B) |
| ``multi_bidding_v0`` (PettingZoo) | :class:`~smartnet_gym.envs.multi_bidding.MultiBiddingEnv` | every provider of a local market |

Classes are imported lazily (``from smartnet_gym.envs import BiddingEnv``), so that importing
``smartnet_gym`` (which registers the ids) stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "BiddingEnv": "smartnet_gym.envs.bidding",
    "DispatchEnv": "smartnet_gym.envs.operator",
    "DSOLimitsEnv": "smartnet_gym.envs.operator",
    "MultiBiddingEnv": "smartnet_gym.envs.multi_bidding",
    "multi_bidding_v0": "smartnet_gym.envs.multi_bidding_v0",
}

__all__ = sorted(_LAZY)  # noqa: PLE0605 - the lazily loaded names are the public ones


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'smartnet_gym.envs' has no attribute {name!r}")
    mod = importlib.import_module(_LAZY[name])
    return mod if name == "multi_bidding_v0" else getattr(mod, name)
