"""smartnet_gym: the SmartNet TSO-DSO coordination schemes as Gymnasium environments.

Importing the package registers the env ids ``smartnet/Bidding-v0``, ``smartnet/Dispatch-v0``
and ``smartnet/DSOLimits-v0`` (and ``smartnet/multi_bidding_v0`` in PettingZoo's registry).
"""

__version__ = "0.1.0"

from smartnet_gym.envs import registration as _registration  # noqa: F401  (registers the env ids)

__all__ = ["__version__"]
