"""Plain pandapower power flow as the project runs it (the source of truth of the AC state)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pandapower.auxiliary import pandapowerNet

__all__ = ["run_ac"]


def run_ac(net: pandapowerNet, **kwargs: Any) -> None:
    """``pp.runpp`` with pandapower's own Newton-Raphson, without its numba JIT (no controllers are run).

    The JIT's ~2.5 s compile in every process (nothing cached) costs more than it saves: the env's
    AC steps run on :class:`~smartnet_gym.grid.fast_ac.FastAC`, not on ``runpp``. lightsim2grid,
    when installed, would otherwise replace the solver on single-slack nets (``runpp``'s default
    ``lightsim2grid="auto"``) and change the last bits of the results."""
    import pandapower as pp

    kwargs.setdefault("numba", False)
    kwargs.setdefault("lightsim2grid", False)
    pp.runpp(net, **kwargs)
