"""The price of aFRR energy: the merit order of the offers the market left, plus a premium.

What the market did not cover is activated by aFRR from the same kind of resources: its energy
price is that of the offer that covers the last MW of the residual imbalance in the cheapest
order (the first period's bids in the needed direction, what the market left of them, network
ignored), plus ``simulation.afrr_premium_eur_per_mwh`` for the faster product, and at least
``simulation.afrr_floor_eur_per_mwh``. Beyond the offers it is the price cap plus the premium.
The price depends on the offers, not on the clearing's shadow prices, so no market penalty
(which sets the shadow price when the market runs short) reaches the aFRR bill.
"""

from __future__ import annotations

import numpy as np

from smartnet_gym.config import ScenarioConfig
from smartnet_gym.market.bids import BidBook


def afrr_price(cfg: ScenarioConfig, book: BidBook, activated_mw: np.ndarray, residual_mw: float) -> float:
    """EUR/MWh of aFRR energy for a residual imbalance ``residual_mw`` (+ shortage: up offers)."""
    sim, cap = cfg.simulation, cfg.market.price_cap_eur_per_mwh
    need = abs(residual_mw)
    if need <= 0.0:
        return float(sim.afrr_floor_eur_per_mwh)
    sel = (book.period == 0) & (book.direction == (1 if residual_mw > 0 else -1))
    left = np.maximum(book.qty_mw[sel] - activated_mw[sel], 0.0)
    price = book.price_eur_per_mwh[sel]
    order = np.argsort(price, kind="stable")
    k = int(np.searchsorted(np.cumsum(left[order]), need - 1e-9))
    merit = float(price[order][k]) if k < len(order) else cap
    return float(max(sim.afrr_floor_eur_per_mwh, min(merit, cap) + sim.afrr_premium_eur_per_mwh))
