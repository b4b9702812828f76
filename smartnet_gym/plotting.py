"""Matplotlib figures of `compare` results (written with the Agg backend, no screen needed)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

COMPONENTS = (("market_cost_eur", "market (mFRR)"), ("afrr_cost_eur", "aFRR"),
              ("unwanted_cost_eur", "unwanted measures"), ("ict_cost_eur", "ICT"))


def agg_pyplot():
    """``matplotlib.pyplot`` on the Agg backend (files only, no screen needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_compare(summary: pd.DataFrame, path: str | Path, title: str = "") -> None:
    """Stacked cost components per scheme."""
    plt = agg_pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    bottom = pd.Series(0.0, index=summary.index)
    for col, label in COMPONENTS:
        ax.bar(summary["scheme"], summary[col], bottom=bottom, label=label)
        bottom = bottom + summary[col]
    for x, total in zip(summary["scheme"], summary["total_cost_eur"], strict=True):
        ax.annotate(f"{total:,.0f}", (x, total), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("cost [EUR]")
    ax.set_title(f"Total system cost by scheme{' — ' + title if title else ''}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)


def plot_timeline(steps: pd.DataFrame, path: str | Path) -> None:
    """Uniform price and distribution violations over the episode, one line per scheme."""
    plt = agg_pyplot()
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    for scheme, df in steps.groupby("scheme", sort=False):
        t = (df["step"] - df["step"].iloc[0]) / 4.0
        a1.plot(t, df["uniform_price_eur_per_mwh"], label=scheme, lw=1)
        a2.plot(t, df["d_violations"], label=scheme, lw=1)
    a1.set_ylabel("price [EUR/MWh]")
    a2.set_ylabel("D violations [count]")
    a2.set_xlabel("hours since episode start")
    a1.legend(fontsize=7, ncol=5)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)
