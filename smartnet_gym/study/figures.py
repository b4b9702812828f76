"""Figures of a study (Agg backend): daily totals per scheme, paired differences, cost by season."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from smartnet_gym.study.cells import SEASONS


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _panels(groups: list, width: float = 5.0, height: float = 3.4):
    """One subplot per (scenario, variant) group, in a row-major grid of at most 3 columns."""
    plt = _pyplot()
    n = max(1, len(groups))
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    if not groups:
        fig.text(0.5, 0.5, "nothing to compare (one scheme, or no finished cells)", ha="center")
    return plt, fig, list(axes.flat[:len(groups)])


def _save(plt, fig, path: str | Path) -> None:
    """Lay out, write as PNG and release a figure."""
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)


def _title(scenario: str, variant: str) -> str:
    return scenario if variant == "base" else f"{scenario} / {variant}"


def plot_totals(rows: pd.DataFrame, schemes: tuple[str, ...], path: str | Path) -> None:
    """Distribution of each cell's total cost (one day × seed) per scheme, per scenario and variant."""
    groups = list(rows.groupby(["scenario", "variant"], sort=False))
    plt, fig, axes = _panels(groups)
    for ax, ((scen, var), g) in zip(axes, groups, strict=True):
        present = [s for s in schemes if s in set(g["scheme"])]
        ax.boxplot([g.loc[g["scheme"] == s, "total_cost_eur"].to_numpy() / 1e3 for s in present],
                   tick_labels=present, showmeans=True)
        ax.set_title(f"{_title(scen, var)} (n = {g[['day', 'seed']].drop_duplicates().shape[0]} days × seeds)",
                     fontsize=9)
        ax.set_ylabel("total cost per cell [k EUR]")
    _save(plt, fig, path)


def plot_paired(summary: pd.DataFrame, reference: str, path: str | Path,
                metric: str = "total_cost_eur") -> None:
    """Mean paired difference of each scheme to ``reference`` with its 95 % CI, overall and per season."""
    d = summary[(summary["metric"] == metric) & (summary["versus"] == reference)]
    groups = list(d.groupby(["scenario", "variant"], sort=False))
    plt, fig, axes = _panels(groups, width=6.0)
    seasons = ("all",) + SEASONS
    for ax, ((scen, var), g) in zip(axes, groups, strict=True):
        schemes = list(dict.fromkeys(g["scheme"]))
        x = np.arange(len(schemes))
        for k, season in enumerate(seasons):
            gs = g[g["season"] == season].set_index("scheme").reindex(schemes)
            if gs["mean"].isna().all():
                continue
            off = (k - (len(seasons) - 1) / 2) * 0.14
            lo = (gs["mean"] - gs["ci95_low"]).to_numpy() / 1e3
            hi = (gs["ci95_high"] - gs["mean"]).to_numpy() / 1e3
            ax.errorbar(x + off, gs["mean"].to_numpy() / 1e3, yerr=np.vstack([lo, hi]), fmt="o" if k else "s",
                        ms=4 if k else 6, capsize=2, label=season)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(x, schemes)
        ax.set_ylabel(f"{metric} − {reference} [k EUR per cell]", fontsize=8)
        ax.set_title(_title(scen, var), fontsize=9)
        ax.legend(fontsize=7, ncol=3)
    _save(plt, fig, path)


def plot_seasons(summary: pd.DataFrame, schemes: tuple[str, ...], path: str | Path,
                 metric: str = "total_cost_eur") -> None:
    """Mean cost per cell by season and scheme with 95 % CIs."""
    d = summary[(summary["metric"] == metric) & (summary["versus"] == "") & (summary["season"] != "all")]
    groups = list(d.groupby(["scenario", "variant"], sort=False))
    plt, fig, axes = _panels(groups, width=6.0)
    for ax, ((scen, var), g) in zip(axes, groups, strict=True):
        seasons = [s for s in SEASONS if s in set(g["season"])]
        x = np.arange(len(seasons))
        present = [s for s in schemes if s in set(g["scheme"])]
        w = 0.8 / max(1, len(present))
        for k, scheme in enumerate(present):
            gs = g[g["scheme"] == scheme].set_index("season").reindex(seasons)
            err = np.vstack([gs["mean"] - gs["ci95_low"], gs["ci95_high"] - gs["mean"]]) / 1e3
            ax.bar(x + (k - (len(present) - 1) / 2) * w, gs["mean"] / 1e3, w, yerr=np.nan_to_num(err),
                   capsize=2, label=scheme)
        ax.set_xticks(x, seasons)
        ax.set_ylabel(f"{metric} [k EUR per cell]", fontsize=8)
        ax.set_title(_title(scen, var), fontsize=9)
        ax.legend(fontsize=7, ncol=5)
    _save(plt, fig, path)
