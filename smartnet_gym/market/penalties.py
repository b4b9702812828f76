"""One valuation of a limit violation: what removing it by forced measures costs.

Forced measures (curtailment or load shedding) cost the value of lost load, VoLL, per MWh. On a
radial feeder, shedding or curtailing 1 MW below a branch changes its flow by 1 MW, so a flow
violation is worth VoLL per MW·h. In the meshed transmission grid 1 MW at bus k moves branch l's
flow by its PTDF, at most ``P_l = max_k |PTDF_lk|``, so removing 1 MW of overload costs at least
``VoLL / P_l`` (VoLL on radial spurs and transformers, up to ~5 × VoLL on meshed lines). At distribution bus k, 1 MW changes the squared voltage by at
most ``S_k = ∂w_k/∂p_k``: ``2 Σ r`` over the path from the feeder root (LinDistFlow) plus the
root's own rise where the model moves the roots (``LinearTD.root_coupling``), so removing a
squared-voltage excess Δw there costs at least ``VoLL · Δw / S_k``.

The clearing holds the forced measures themselves as options (``market.forced_measures``; unset,
on in the simulation commands and the RL envs alike): each bus's load shedding and generation
curtailment at VoLL, rows of its book whose unit is ``bids.FORCED_UNIT``. It then values a
violation at what the measures that remove it cost together, and removes it by flexibility where
that is cheaper. Its network and voltage slacks are then the last resort, at
:data:`REMOVAL_PRIORITY` times these values, and ``market.penalty_scale`` (any value in its range)
scales only them. Imbalance it leaves is aFRR's, another option with its own price:
``market.balance_penalty_eur_per_mwh`` as configured, which ``penalty_scale`` does not touch there
(a market that must cover every MW would buy room for balancing energy with forced measures).

A program without those options (``market.forced_measures: false``, CS_D's decomposition, or a
hand-made instance) lets its slacks stand for the forced measures bus by bus: their penalties are
these values with ``market.network_penalty_eur_per_mwh`` as the basis (by default VoLL,
``simulation.voll_eur_per_mwh``), and never more: a violation the market leaves is removed by
forced measures at that cost. A flat ``market.voltage_penalty_eur_per_pu2h`` replaces the per-bus
values where it is lower; ``penalty_scale`` below 1 lowers every market penalty (balance,
network, voltage: a market that under-values what it leaves); the configured values are caps,
so above 1 it changes nothing.
"""

from __future__ import annotations

import numpy as np

from smartnet_gym.config import MarketConfig, SimulationConfig
from smartnet_gym.grid.linear import DCModel, FeederModel, LinearTD

#: slack prices over the violations' value where forced measures are options: removal comes first
REMOVAL_PRIORITY = 1e3


def root_gains(lin: LinearTD) -> dict[int, np.ndarray]:
    """Per area (n_d,): how much 1 MW injected at each D bus raises its squared voltage through its
    tree root's own rise (``LinearTD.root_coupling``; zeros where the roots are held)."""
    rc = lin.root_coupling
    out = {}
    for a, f in enumerate(lin.feeders):
        if rc is None:
            out[f.area] = np.zeros(f.n_bus)
            continue
        root = f.root_of_bus()
        out[f.area] = np.maximum(rc.top_scale[a] * rc.dw_dp[np.searchsorted(rc.roots, root), root], 0.0)
    return out


def voltage_self_sensitivity(f: FeederModel, root_gain: np.ndarray | None = None) -> np.ndarray:
    """(n_d,) ∂w_k/∂p_k [pu² per MW] of each D bus: 2 Σ r over its path from the root, plus its
    root's own rise (``root_gain``, :func:`root_gains`) where the model moves the roots."""
    acc = np.asarray(f.r_pu, float).copy()
    par = np.asarray(f.parent).copy()
    while (par >= 0).any():                     # pointer jumping: path sums in log(depth) rounds
        k = par >= 0
        acc_next = acc.copy()
        acc_next[k] += acc[par[k]]
        par_next = par.copy()
        par_next[k] = par[par[k]]
        acc, par = acc_next, par_next
    return 2.0 * np.maximum(acc, 1e-9) + (0.0 if root_gain is None else root_gain)


def basis(cfg: MarketConfig) -> float:
    """What forced measures pay per MWh [EUR/MWh]: ``network_penalty_eur_per_mwh``, which a scenario
    sets to its VoLL; a market config on its own takes the default VoLL."""
    if cfg.network_penalty_eur_per_mwh is None:
        return float(SimulationConfig.model_fields["voll_eur_per_mwh"].default)
    return cfg.network_penalty_eur_per_mwh


def slack_factor(cfg: MarketConfig, removal: bool) -> float:
    """Factor on a slack's value in a program's price: ``REMOVAL_PRIORITY × penalty_scale`` where
    forced measures are options (``removal``: slacks are the last resort), else ``penalty_scale``
    up to 1."""
    return REMOVAL_PRIORITY * cfg.penalty_scale if removal else min(cfg.penalty_scale, 1.0)


def balance_penalty(cfg: MarketConfig, removal: bool = False) -> float:
    """Price of unmet imbalance in the market [EUR/MWh]: what the market assumes aFRR charges for it,
    the configured value — where forced measures are options (``removal``) as it is, beside them,
    otherwise × ``penalty_scale`` up to 1."""
    return cfg.balance_penalty_eur_per_mwh * (1.0 if removal else min(cfg.penalty_scale, 1.0))


def flow_penalty(cfg: MarketConfig, removal: bool = False) -> float:
    """Price of a D flow slack [EUR/MWh]: what forced measures pay (× :func:`slack_factor`)."""
    return basis(cfg) * slack_factor(cfg, removal)


def branch_relief_sensitivity(dc: DCModel) -> np.ndarray:
    """(n_br,) ``max_k |PTDF_lk|`` of each T branch over the buses whose θ is free: the most one MW
    curtailed or shed anywhere moves its flow [MW/MW] (built once per model)."""
    cached = dc.__dict__.get("_relief_sensitivity")
    if cached is None:
        free = ~dc.fixed
        bf = dc.flow_matrix()[:, free].toarray()
        if free.any() and dc.n_branch:
            ptdf = np.linalg.solve(dc.susceptance_matrix()[free][:, free].toarray().T, bf.T).T
            cached = np.abs(ptdf).max(axis=1)
        else:
            cached = np.zeros(dc.n_branch)
        cached = np.maximum(cached, 1e-3)      # a branch no bus can move is valued at 1000 × VoLL
        object.__setattr__(dc, "_relief_sensitivity", cached)   # frozen dataclass: cache only
    return cached


def transmission_flow_penalty(dc: DCModel, cfg: MarketConfig, removal: bool = False) -> np.ndarray:
    """(n_br,) price of a T flow slack on each branch [EUR/MWh]: what forced measures pay to remove
    1 MW of its overload at the most effective bus, the basis over ``max_k |PTDF_lk|``
    (× :func:`slack_factor`)."""
    return basis(cfg) / branch_relief_sensitivity(dc) * slack_factor(cfg, removal)


def voltage_penalty(f: FeederModel, cfg: MarketConfig, root_gain: np.ndarray | None = None,
                    removal: bool = False) -> np.ndarray:
    """(n_d,) price of a squared-voltage slack at each D bus [EUR/(pu²·h)]: what forced measures would
    pay to remove it (the basis over the bus's own sensitivity, × :func:`slack_factor`), or the
    flat ``voltage_penalty_eur_per_pu2h`` if set, capped at that."""
    value = basis(cfg) / voltage_self_sensitivity(f, root_gain)
    flat = cfg.voltage_penalty_eur_per_pu2h
    if flat is not None:
        return np.minimum(flat * cfg.penalty_scale, value * (slack_factor(cfg, True) if removal else 1.0))
    return value * slack_factor(cfg, removal)
