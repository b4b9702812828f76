"""SimBench 15-min profiles as relative float32 arrays plus per-element scales.

Absolute values are gathered on demand (``rel[step, profile[e]] * scale[e]``, columns by ``np.take``,
several times faster than fancy indexing), so a process holds ~15 MB instead of the 1.9 GB of
SimBench's absolute tables. Steps are integers
0..35135 over 2016 (local time; never build a DatetimeIndex: SimBench's local-time stamps repeat and skip at the DST
changes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STEPS_PER_DAY = 96


@dataclass(frozen=True)
class ProfileSet:
    """Load and generator profiles of one T&D system, aligned with ``TDSystem.load_bus/sgen_bus``."""

    load_rel_p: np.ndarray    # (n_steps, n_load_profiles) float32
    load_rel_q: np.ndarray    # (n_steps, n_load_profiles) float32
    load_profile: np.ndarray  # (n_load,) column of each load
    load_p_mw: np.ndarray     # (n_load,) scale of p [MW]
    load_q_mvar: np.ndarray   # (n_load,) scale of q [Mvar]
    sgen_rel: np.ndarray      # (n_steps, n_sgen_profiles) float32
    sgen_profile: np.ndarray  # (n_sgen,) column of each sgen
    sgen_p_mw: np.ndarray     # (n_sgen,) installed capacity [MW]

    @property
    def n_steps(self) -> int:
        return self.load_rel_p.shape[0]

    def load_p(self, steps: np.ndarray | int) -> np.ndarray:
        """Absolute load p [MW], shape (len(steps), n_load) or (n_load,) for a scalar step."""
        return np.take(self.load_rel_p[steps], self.load_profile, axis=-1) * self.load_p_mw

    def load_q(self, steps: np.ndarray | int) -> np.ndarray:
        """Absolute load q [Mvar]."""
        return np.take(self.load_rel_q[steps], self.load_profile, axis=-1) * self.load_q_mvar

    def sgen_p(self, steps: np.ndarray | int) -> np.ndarray:
        """Absolute generator output p [MW] (before any curtailment)."""
        return np.take(self.sgen_rel[steps], self.sgen_profile, axis=-1) * self.sgen_p_mw
