"""Forecaster against a per-call reference (the error model written out step by step), bit for bit:
whatever the block size, call order and profile values; returned arrays are the caller's own."""

from __future__ import annotations

import numpy as np
import pytest

from smartnet_gym.config import ForecastConfig
from smartnet_gym.data import forecasts
from smartnet_gym.data.forecasts import STEPS_PER_HOUR, Forecaster, _ar1
from smartnet_gym.data.profiles import ProfileSet


class Reference:
    """The error model of the module docstring, computed from the profiles at every call."""

    def __init__(self, profiles: ProfileSet, cfg: ForecastConfig, horizon: int) -> None:
        self.pr, self.cfg, self.h = profiles, cfg, horizon

    def reset(self, start: int, n: int, rng: np.random.Generator) -> None:
        """The same draws, in the same order, as Forecaster.reset."""
        cfg, h, phi = self.cfg, self.h, float(self.cfg.ar_coefficient)
        n_lp, n_sp = self.pr.load_rel_p.shape[1], self.pr.sgen_rel.shape[1]
        z = _ar1(_ar1(rng.standard_normal((n, h, n_lp + n_sp)), phi, axis=0), phi, axis=1)
        growth = 1.0 + cfg.growth_per_period * np.arange(h, dtype=np.float64)
        sig = np.r_[np.full(n_lp, cfg.load_sigma), np.full(n_sp, cfg.res_sigma)]
        err = z * growth[None, :, None] * sig[None, None, :]
        self.start, self.id_load, self.id_sgen = start, err[:, :, :n_lp], err[:, :, n_lp:]
        self.first_h = start // STEPS_PER_HOUR
        last_h = (start + n + h - 2) // STEPS_PER_HOUR
        zd = _ar1(rng.standard_normal((last_h - self.first_h + 1, n_lp + n_sp)), phi ** STEPS_PER_HOUR, axis=0)
        da = zd * np.r_[np.full(n_lp, cfg.day_ahead_load_sigma), np.full(n_sp, cfg.day_ahead_res_sigma)]
        self.da_load, self.da_sgen = da[:, :n_lp], da[:, n_lp:]

    def _apply(self, steps, e_load, e_sgen):
        pr = self.pr
        fac = np.maximum(1.0 + np.take(e_load, pr.load_profile, axis=-1), 0.0)
        cap = np.asarray(pr.sgen_p_mw, dtype=np.float64)
        sgen = pr.sgen_p(steps).astype(np.float64) + np.take(e_sgen, pr.sgen_profile, axis=-1) * cap
        return (pr.load_p(steps).astype(np.float64) * fac, pr.load_q(steps).astype(np.float64) * fac,
                np.clip(sgen, 0.0, np.maximum(cap, 0.0)))

    def actual(self, step):
        pr = self.pr
        return tuple(a.astype(np.float64) for a in (pr.load_p(step), pr.load_q(step), pr.sgen_p(step)))

    def forecast(self, step):
        i = step - self.start
        return self._apply(np.arange(step, step + self.h), self.id_load[i], self.id_sgen[i])

    def schedule(self, step):
        steps = np.arange(step, step + self.h)
        hours = steps // STEPS_PER_HOUR - self.first_h
        return self._apply(steps, self.da_load[hours], self.da_sgen[hours])


def _profiles(seed: int = 5, n_steps: int = 400) -> ProfileSet:
    """Profiles with the edge values: −0.0 and 0 relative values, zero and negative capacities and
    loads, several elements per column."""
    g = np.random.default_rng(seed)
    n_lc, n_sc, n_load, n_sgen = 6, 5, 23, 29
    lp = (1.0 + 0.3 * g.standard_normal((n_steps, n_lc))).astype(np.float32)
    lp[g.random(lp.shape) < 0.05] = -0.0
    sg = np.clip(g.uniform(-0.3, 1.0, (n_steps, n_sc)), 0, 1).astype(np.float32)
    sg[g.random(sg.shape) < 0.1] = -0.0
    cap = g.uniform(0.0, 8.0, n_sgen)
    cap[:3] = (0.0, -0.0, -2.0)
    scale = g.uniform(-1.0, 3.0, n_load)
    scale[:2] = (0.0, -0.0)
    return ProfileSet(load_rel_p=lp, load_rel_q=(0.3 * lp).astype(np.float32), load_profile=g.integers(0, n_lc, n_load),
                      load_p_mw=scale, load_q_mvar=0.4 * scale, sgen_rel=sg, sgen_profile=g.integers(0, n_sc, n_sgen),
                      sgen_p_mw=cap)


def _same(snap, ref) -> None:
    for a, b in zip((snap.load_p, snap.load_q, snap.sgen_p), ref, strict=True):
        assert a.dtype == np.float64 and a.flags.c_contiguous and a.shape == b.shape
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize(("block", "horizon", "n_steps"), [(48, 4, 96), (5, 4, 23), (3, 7, 10), (1, 2, 6), (64, 5, 17)])
def test_equals_the_per_call_reference_bit_for_bit(monkeypatch, block, horizon, n_steps):
    monkeypatch.setattr(forecasts, "BLOCK_STEPS", block)
    pr = _profiles()
    cfg = ForecastConfig(load_sigma=0.6, res_sigma=0.5, day_ahead_load_sigma=0.7, day_ahead_res_sigma=0.6)
    fc, ref = Forecaster(pr, cfg, horizon), Reference(pr, cfg, horizon)
    for seed, start in ((0, 37), (1, 102)):      # a second episode on the same object
        fc.reset(start, n_steps, np.random.default_rng(seed))
        ref.reset(start, n_steps, np.random.default_rng(seed))
        steps = list(range(start, start + n_steps))
        order = steps + list(np.random.default_rng(seed).permutation(steps))     # in order, then at random
        for s in order:
            for kind in ("schedule", "forecast", "actual"):
                _same(getattr(fc, kind)(int(s)), getattr(ref, kind)(int(s)))


def test_returned_arrays_are_the_callers_own():
    fc = Forecaster(_profiles(), ForecastConfig(), horizon=3)
    fc.reset(10, 8, np.random.default_rng(0))
    for kind in ("actual", "forecast", "schedule"):
        first = getattr(fc, kind)(12)
        kept = [a.copy() for a in (first.load_p, first.load_q, first.sgen_p)]
        for a in (first.load_p, first.load_q, first.sgen_p):
            a[...] = 1e9
        again = getattr(fc, kind)(12)
        for a, b in zip((again.load_p, again.load_q, again.sgen_p), kept, strict=True):
            assert a.tobytes() == b.tobytes()
    # a schedule and the next step's schedule overlap in H − 1 targets: the same values
    a, b = fc.schedule(12), fc.schedule(13)
    assert a.load_p[1:].tobytes() == b.load_p[:-1].tobytes()
