"""Action checking and observation scaling shared by every smartnet env.

Actions are always ``Box(-1, 1, float32)``. :func:`check_action` rejects NaN/inf (naming the first
bad index), clips the rest into [-1, 1] and counts what it clipped; the envs report that count as
``info["clipped_actions"]``. Observations are float32 vectors whose every entry is clipped to
[-1, 1] after scaling by a documented constant (:func:`scaled`).
"""

from __future__ import annotations

import math

import numpy as np
from gymnasium import spaces

from smartnet_gym.data.profiles import STEPS_PER_DAY
from smartnet_gym.errors import ActionError

DAYS_PER_YEAR = 366  # 2016, the SimBench profile year
N_TIME_FEATURES = 4


def unit_box(n: int) -> spaces.Box:
    """``Box(-1, 1, (n,), float32)``: every action and observation space of the package."""
    return spaces.Box(-1.0, 1.0, shape=(int(n),), dtype=np.float32)


def check_action(action: object, n: int, who: str = "action") -> tuple[np.ndarray, int]:
    """Validate an action of ``n`` entries; return it clipped to [-1, 1] (float64) and the clip count.

    Raises:
        ActionError: wrong size, or a NaN/inf entry (the message names the first bad index).
    """
    a = np.asarray(action, dtype=np.float64)
    if a.size != n:
        raise ActionError(f"{who} has {a.size} entries (shape {a.shape}), expected {n} (shape ({n},))")
    a = a.reshape(n)
    finite = np.isfinite(a)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        i = int(bad[0])
        raise ActionError(f"{who}[{i}] = {a[i]} is not finite ({len(bad)} non-finite entries); "
                          f"actions must be finite numbers in [-1, 1]")
    out = np.minimum(np.maximum(a, -1.0), 1.0)      # = np.clip (bit for bit), without its dispatch
    return out, int(np.count_nonzero(out != a))


def share(a: np.ndarray) -> np.ndarray:
    """Map an action in [-1, 1] to a share in [0, 1]: -1 → 0, +1 → 1 (exact at both ends)."""
    return (a + 1.0) * 0.5


def scaled(x: np.ndarray | float, scale: np.ndarray | float) -> np.ndarray:
    """``x / scale`` clipped to [-1, 1]; NaN (e.g. no price) becomes 0, a zero scale gives 0."""
    x = np.asarray(x, dtype=np.float64)
    s = np.asarray(scale, dtype=np.float64)
    out = np.divide(x, s, out=np.zeros(np.broadcast(x, s).shape), where=s > 0)
    return _unit_clip(out)


def time_features(step: int) -> np.ndarray:
    """sin/cos of the time of day and of the day of the year of profile ``step`` (4 values)."""
    tod = 2 * math.pi * (step % STEPS_PER_DAY) / STEPS_PER_DAY
    doy = 2 * math.pi * (step // STEPS_PER_DAY) / DAYS_PER_YEAR
    return np.array([math.sin(tod), math.cos(tod), math.sin(doy), math.cos(doy)])


def pack(*parts: np.ndarray) -> np.ndarray:
    """Concatenate observation parts into a fresh float32 vector clipped to [-1, 1]."""
    v = np.concatenate([np.ravel(p) for p in parts], dtype=np.float64) if parts else np.zeros(0)
    return _unit_clip(v).astype(np.float32)


def _unit_clip(v: np.ndarray) -> np.ndarray:
    """``v`` (a fresh float array) clipped to [-1, 1] in place, NaN → 0 (±inf → ±1)."""
    v[np.isnan(v)] = 0.0
    return np.minimum(np.maximum(v, -1.0, out=v), 1.0, out=v)   # = np.clip, without its dispatch
