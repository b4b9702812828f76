"""Seeded forecasts and day-ahead schedules of load and RES, with errors growing with lead time.

Error model (parameters in :class:`~smartnet_gym.config.ForecastConfig`):

* **Actual** values are the profiles themselves (:class:`~smartnet_gym.data.profiles.ProfileSet`).
* **Intraday forecast** issued at market step τ for the target steps τ..τ+H−1 (lead k = 1..H,
  lead 1 = the period about to be delivered). Each profile column c has a standard Gaussian error
  field ``z[τ, k, c]`` that is AR(1) in the issue time τ **and** along the lead k, both with
  coefficient φ = ``ar_coefficient`` (a separable field: corr = φ^|Δτ| · φ^|Δk|, unit variance):
  consecutive forecasts drift instead of jumping, and the errors of one forecast are smooth over
  its horizon. Its std at lead k is ``σ_k = σ_1 · (1 + growth_per_period · (k − 1))``.
* **Day-ahead schedule**: actual + an error that is constant within each hour, AR(1) from hour to
  hour with coefficient φ⁴ (the same persistence per unit time), std ``day_ahead_*_sigma``.
* **Relative to what.** Loads: the error is relative to the value, ``p̂ = p · max(1 + σ z, 0)``
  (q gets the same factor: constant power factor; a load keeps its sign). RES: relative to the
  installed capacity, ``p̂ = clip(p + σ z · capacity, 0, capacity)``.
* **Errors per profile column**, not per element: elements sharing a SimBench profile (same
  weather region / customer class) share its relative error, so the aggregate error does not
  average out over hundreds of units (the system imbalance the TSO has to balance stays realistic).

Determinism: :meth:`Forecaster.reset` draws everything for the episode window from the given
``np.random.Generator`` (in a fixed order), so the same generator state gives bit-identical
forecasts and schedules; nothing else is random.

Speed (every env step asks for one forecast, schedule and actual): the actual values and the
schedule are computed per target step, for a block of :data:`BLOCK_STEPS` consecutive market
steps at once (a schedule does not depend on when it is asked, so each target is computed once,
not H times); actual and schedule calls copy their rows, a forecast applies its errors to views
of the block's actual rows. A block depends only on the (read-only) profiles and on what
:meth:`Forecaster.reset` drew; a reset drops it.

Example::

    fc = Forecaster(system.profiles, cfg.data.forecast, horizon=4)
    fc.reset(start_step=17_472, n_steps=96, rng=np.random.default_rng(0))
    snap = fc.forecast(17_472)     # Snapshot of (4, n_load) / (4, n_load) / (4, n_sgen) arrays
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.signal import lfilter

if TYPE_CHECKING:
    from smartnet_gym.config import ForecastConfig
    from smartnet_gym.data.profiles import ProfileSet

__all__ = ["Forecaster", "Snapshot"]

STEPS_PER_HOUR = 4
#: market steps whose actuals and schedule are computed at once (half a day: ~1.3 MB for H = 4 on the
#: default system; larger blocks amortise better but no longer fit the CPU caches)
BLOCK_STEPS = 48


@dataclass(frozen=True)
class Snapshot:
    """Load and RES values: (n,) for one step or (H, n) over a horizon [MW, Mvar], float64."""

    load_p: np.ndarray
    load_q: np.ndarray
    sgen_p: np.ndarray


@dataclass(frozen=True)
class _Block:
    """Actual values and schedule (rows, n_el) of the target steps i0, i0 + 1, … (window indices), up
    to the last target of the forecasts issued at i0 … i0 + n − 1."""

    i0: int
    n: int
    actual: Snapshot
    schedule: Snapshot


def _ar1(white: np.ndarray, phi: float, axis: int) -> np.ndarray:
    """Stationary unit-variance AR(1) along ``axis`` from standard white noise (x_0 = w_0)."""
    u = np.moveaxis(white, axis, 0).copy()
    u[1:] *= np.sqrt(1.0 - phi * phi)
    x = lfilter([1.0], [1.0, -phi], u, axis=0) if phi > 0 else u
    return np.moveaxis(x, 0, axis)


class Forecaster:
    """Forecasts, schedules and actuals of one episode window (see the module docstring).

    :param profiles: the system's profiles (actual values).
    :param cfg: error model parameters.
    :param horizon: number of periods H of each forecast (≥ 1).
    """

    def __init__(self, profiles: ProfileSet, cfg: ForecastConfig, horizon: int) -> None:
        if int(horizon) != horizon or horizon < 1:
            raise ValueError(f"horizon must be an integer >= 1 (got {horizon})")
        if horizon > profiles.n_steps:
            raise ValueError(f"horizon ({horizon}) exceeds the profile length ({profiles.n_steps} steps)")
        self.profiles = profiles
        self.cfg = cfg
        self.horizon = int(horizon)
        lead = np.arange(self.horizon, dtype=np.float64)
        self._growth = 1.0 + cfg.growth_per_period * lead          # (H,)
        self._cap = np.asarray(profiles.sgen_p_mw, dtype=np.float64)
        self._cap_max = np.maximum(self._cap, 0.0)
        self._start = -1
        self._n = 0
        self._block: _Block | None = None

    # ------------------------------------------------------------------ window

    @property
    def start_step(self) -> int:
        """First market step of the current window (-1 before :meth:`reset`)."""
        return self._start

    @property
    def n_steps(self) -> int:
        """Number of market steps of the current window."""
        return self._n

    def reset(self, start_step: int, n_steps: int, rng: np.random.Generator) -> None:
        """Draw all errors for market steps start_step..start_step+n_steps−1.

        :raises ValueError: the window or its last forecast reaches past the profiles; the message
            names ``start_step``, ``n_steps``, ``horizon`` and the allowed range.
        """
        total = self.profiles.n_steps
        h = self.horizon
        if int(n_steps) != n_steps or n_steps < 1:
            raise ValueError(f"n_steps must be an integer >= 1 (got {n_steps})")
        last_start = total - int(n_steps) - h + 1
        if last_start < 0:
            raise ValueError(f"n_steps ({n_steps}) + horizon ({h}) - 1 exceeds the profile length "
                             f"({total} steps)")
        if int(start_step) != start_step or not 0 <= start_step <= last_start:
            raise ValueError(f"start_step ({start_step}) with n_steps ({n_steps}) and horizon ({h}) "
                             f"reaches past the profile end: the last forecast targets step "
                             f"{int(start_step) + int(n_steps) + h - 2}, profiles end at {total - 1}; "
                             f"allowed start_step range is 0..{last_start}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator (got {type(rng).__name__})")
        self._start = int(start_step)
        self._n = int(n_steps)
        phi = float(self.cfg.ar_coefficient)
        n_lp = self.profiles.load_rel_p.shape[1]
        n_sp = self.profiles.sgen_rel.shape[1]
        n_col = n_lp + n_sp
        # intraday field z[τ, k, c]: AR(1) over τ, then over k (separable, unit variance)
        z = rng.standard_normal((self._n, h, n_col))
        z = _ar1(_ar1(z, phi, axis=0), phi, axis=1)
        sig = np.r_[np.full(n_lp, self.cfg.load_sigma), np.full(n_sp, self.cfg.res_sigma)]
        err = z * self._growth[None, :, None] * sig[None, None, :]
        # loads only need their factor max(1 + e, 0) (per profile column; gathered to elements per call)
        self._id_fac = np.maximum(1.0 + err[:, :, :n_lp], 0.0)
        self._id_sgen = err[:, :, n_lp:]
        # day-ahead: one error per hour covering every target step of the window
        first_h = self._start // STEPS_PER_HOUR
        last_h = (self._start + self._n + h - 2) // STEPS_PER_HOUR
        zd = _ar1(rng.standard_normal((last_h - first_h + 1, n_col)), phi ** STEPS_PER_HOUR, axis=0)
        sig_da = np.r_[np.full(n_lp, self.cfg.day_ahead_load_sigma),
                       np.full(n_sp, self.cfg.day_ahead_res_sigma)]
        da = zd * sig_da[None, :]
        self._first_hour = first_h
        self._da_fac = np.maximum(1.0 + da[:, :n_lp], 0.0)
        self._da_sgen = da[:, n_lp:]
        self._block = None

    def _check(self, step: int) -> int:
        if self._start < 0:
            raise RuntimeError("call reset(start_step, n_steps, rng) first")
        i = int(step) - self._start
        if int(step) != step or not 0 <= i < self._n:
            raise ValueError(f"step ({step}) is outside the window: allowed "
                             f"{self._start}..{self._start + self._n - 1}")
        return i

    # ------------------------------------------------------------------ values

    def _block_of(self, i: int) -> _Block:
        """The block holding window index ``i`` (computed when first asked for)."""
        blk = self._block
        if blk is not None and blk.i0 <= i < blk.i0 + blk.n:
            return blk
        i0 = i - i % BLOCK_STEPS
        idx = np.arange(i0, min(i0 + BLOCK_STEPS, self._n))
        steps = np.arange(self._start + i0, self._start + idx[-1] + self.horizon)   # every target
        pr = self.profiles
        act = Snapshot(load_p=pr.load_p(steps).astype(np.float64, copy=False),
                       load_q=pr.load_q(steps).astype(np.float64, copy=False),
                       sgen_p=pr.sgen_p(steps).astype(np.float64, copy=False))
        hours = steps // STEPS_PER_HOUR - self._first_hour
        sched = self._apply(act.load_p, act.load_q, act.sgen_p, self._da_fac[hours], self._da_sgen[hours])
        blk = self._block = _Block(i0, len(idx), act, sched)
        return blk

    def _apply(self, load_p: np.ndarray, load_q: np.ndarray, sgen_p: np.ndarray, fac: np.ndarray,
               e_sgen: np.ndarray) -> Snapshot:
        """Actual values (…, n_el) with errors per profile column (…, n_columns) applied: loads
        times ``fac`` = max(1 + e, 0), RES plus ``e_sgen`` × capacity, within [0, capacity]."""
        pr = self.profiles
        f = fac.take(pr.load_profile, axis=-1)
        sgen = sgen_p + e_sgen.take(pr.sgen_profile, axis=-1) * self._cap
        # = np.clip(sgen, 0, cap) bit for bit (array bound; tested), in a third of the time
        np.minimum(np.maximum(sgen, 0.0, out=sgen), self._cap_max, out=sgen)
        return Snapshot(load_p=load_p * f, load_q=load_q * f, sgen_p=sgen)

    @staticmethod
    def _copy(snap: Snapshot, rows: int | slice) -> Snapshot:
        """Fresh arrays of ``rows`` of a block (the caller may change them)."""
        return Snapshot(load_p=snap.load_p[rows].copy(), load_q=snap.load_q[rows].copy(),
                        sgen_p=snap.sgen_p[rows].copy())

    def actual(self, step: int) -> Snapshot:
        """Realised values at market step ``step``: arrays (n_load,), (n_load,), (n_sgen,)."""
        i = self._check(step)
        blk = self._block_of(i)
        return self._copy(blk.actual, i - blk.i0)

    def forecast(self, step: int) -> Snapshot:
        """Forecast issued at ``step`` for steps step..step+H−1: arrays (H, n_load)/(H, n_sgen)."""
        i = self._check(step)
        blk = self._block_of(i)
        w = slice(i - blk.i0, i - blk.i0 + self.horizon)
        act = blk.actual
        return self._apply(act.load_p[w], act.load_q[w], act.sgen_p[w], self._id_fac[i], self._id_sgen[i])

    def schedule(self, step: int) -> Snapshot:
        """Day-ahead schedule for steps step..step+H−1 (hourly-constant error): (H, n) arrays."""
        i = self._check(step)
        blk = self._block_of(i)
        k = i - blk.i0
        return self._copy(blk.schedule, slice(k, k + self.horizon))
