"""The five SmartNet coordination schemes, each a composition of shared stages (docs/model.md#the-schemes)."""

from __future__ import annotations

from collections.abc import Callable

from smartnet_gym.config import SCHEMES, MarketConfig
from smartnet_gym.errors import UnknownNameError, did_you_mean
from smartnet_gym.grid.linear import LinearTD
from smartnet_gym.market.schemes.base import ClearingOutcome, Scheme
from smartnet_gym.market.schemes.cs_a import cs_a
from smartnet_gym.market.schemes.cs_b import cs_b
from smartnet_gym.market.schemes.cs_c import cs_c
from smartnet_gym.market.schemes.cs_d import cs_d
from smartnet_gym.market.schemes.cs_e import cs_e

SCHEME_FACTORIES: dict[str, Callable[[LinearTD, MarketConfig, str], Scheme]] = {
    "CS_A": cs_a, "CS_B": cs_b, "CS_C": cs_c, "CS_D": cs_d, "CS_E": cs_e,
}
assert tuple(SCHEME_FACTORIES) == SCHEMES


def normalize_scheme(name: str) -> str:
    """'cs_b', 'CS-B', 'CS_B' → 'CS_B'; unknown names raise with the allowed list."""
    key = name.strip().upper().replace("-", "_")
    if key not in SCHEME_FACTORIES:
        raise UnknownNameError(did_you_mean(name, list(SCHEME_FACTORIES), "scheme"))
    return key


def make_scheme(name: str, lin: LinearTD, cfg: MarketConfig, backend: str | None = None) -> Scheme:
    """Build scheme ``name`` for this T&D model; programs are built lazily on first clearing."""
    return SCHEME_FACTORIES[normalize_scheme(name)](lin, cfg, backend or cfg.backend)


__all__ = ["SCHEME_FACTORIES", "ClearingOutcome", "Scheme", "make_scheme", "normalize_scheme"]
