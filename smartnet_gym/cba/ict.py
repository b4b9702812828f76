"""ICT cost per scheme, from annual figures scaled to the simulated time.

Defaults (``CbaConfig.ict_annual_eur``) are relative figures for this ~850-bus system, set by
the reasoning of SmartNet's CBA: CS_A needs only the TSO platform plus a DSO prequalification
interface; CS_B and CS_C add one local market platform and TSO–DSO data exchange per DSO;
CS_D adds real-time sharing of the full distribution models with a joint optimiser; CS_E adds
an independent operator open to commercial parties. Absolute values are assumptions — set your
own in the scenario's ``cba.ict_annual_eur``.
"""

from __future__ import annotations

from smartnet_gym.config import CbaConfig

STEPS_PER_YEAR = 365 * 96


def ict_cost_per_step(cfg: CbaConfig, scheme: str) -> float:
    """ICT cost of one 15-minute step under ``scheme`` [EUR]."""
    return cfg.ict_annual_eur.get(scheme, 0.0) / STEPS_PER_YEAR
