"""Per-scheme means and paired scheme differences with 95 % confidence intervals.

Schemes are compared on the same cells (scenario, variant, day and forecast seed), so the
day-to-day spread of the system's cost cancels out of the differences. Intervals are Student-t
intervals of the mean (of the cell values, or of the paired differences).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from smartnet_gym.study.cells import SEASONS

#: metrics summarised per scheme (``operating_cost_eur`` = total without ICT)
METRICS = ("total_cost_eur", "operating_cost_eur", "market_cost_eur", "afrr_cost_eur", "unwanted_cost_eur",
           "ict_cost_eur", "d_violations", "d_violation_steps", "t_violations")
#: columns of ``summary.csv`` — a contract of `smartnet-gym study`
SUMMARY_COLUMNS = ("scenario", "variant", "season", "metric", "scheme", "versus", "n", "mean", "std",
                   "ci95_low", "ci95_high", "p_value", "ci_excludes_zero")
PAIR_KEYS = ("scenario", "variant", "day", "seed")


def with_operating_cost(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with ``operating_cost_eur`` (total system cost without ICT)."""
    out = rows.copy()
    out["operating_cost_eur"] = out["total_cost_eur"] - out["ict_cost_eur"]
    return out


def mean_ci(values: np.ndarray) -> dict[str, float]:
    """Mean, standard deviation, 95 % t-interval and two-sided p-value of mean = 0."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = len(v)
    mean = float(v.mean()) if n else np.nan
    if n < 2:
        return {"n": n, "mean": mean, "std": np.nan, "ci95_low": np.nan, "ci95_high": np.nan, "p_value": np.nan}
    sd = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / np.sqrt(n)
    if sd > 0:
        p = float(2 * stats.t.sf(abs(mean) / (sd / np.sqrt(n)), n - 1))
    else:
        p = 0.0 if mean != 0 else 1.0
    return {"n": n, "mean": mean, "std": sd, "ci95_low": mean - half, "ci95_high": mean + half, "p_value": p}


def summarize_study(rows: pd.DataFrame, schemes: tuple[str, ...], reference: str) -> pd.DataFrame:
    """The long ``summary.csv`` table: per (scenario, variant, season ∈ all + seasons, metric) one row
    per scheme (``versus`` empty: its mean) and one per scheme pair (``scheme − versus``, paired)."""
    if rows.empty:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    rows = with_operating_cost(rows)
    order = [reference] + [s for s in schemes if s != reference]
    pairs = [(order[j], order[i]) for i in range(len(order)) for j in range(i + 1, len(order))]
    out = []
    for (scen, var), group in rows.groupby(["scenario", "variant"], sort=False):
        for season in ("all",) + SEASONS:
            part = group if season == "all" else group[group["season"] == season]
            if part.empty:
                continue
            for metric in METRICS:
                wide = part.pivot_table(index=["day", "seed"], columns="scheme", values=metric, aggfunc="first")
                label = {"scenario": scen, "variant": var, "season": season, "metric": metric}
                for s in order:
                    if s in wide:
                        out.append({**label, "scheme": s, "versus": "", **mean_ci(wide[s].dropna().to_numpy())})
                for s, r in pairs:
                    if s in wide and r in wide:
                        diff = (wide[s] - wide[r]).dropna().to_numpy()
                        out.append({**label, "scheme": s, "versus": r, **mean_ci(diff)})
    df = pd.DataFrame(out)
    df["ci_excludes_zero"] = ((df["ci95_low"] > 0) | (df["ci95_high"] < 0)).astype(object)
    df.loc[df["versus"] == "", "ci_excludes_zero"] = None      # a test of differences only
    return df[list(SUMMARY_COLUMNS)]


def markdown_table(summary: pd.DataFrame, reference: str, metric: str = "total_cost_eur") -> str:
    """Paired differences ``scheme − reference`` of ``metric`` per scenario and variant, overall
    and per season, as a markdown table: mean [95 % CI] per cell-day, bold where the CI excludes 0."""
    d = summary[(summary["metric"] == metric) & (summary["versus"] == reference)]
    seasons = [s for s in ("all",) + SEASONS if s in set(d["season"])]
    head = ["scenario", "variant", "scheme"] + [f"{s} (n)" for s in seasons]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 3 + "---:|" * len(seasons)]
    for (scen, var, scheme), g in d.groupby(["scenario", "variant", "scheme"], sort=False):
        cells = []
        for s in seasons:
            r = g[g["season"] == s]
            if r.empty:
                cells.append("")
                continue
            r = r.iloc[0]
            text = f"{r['mean']:+,.0f} [{r['ci95_low']:+,.0f}, {r['ci95_high']:+,.0f}] ({r['n']})"
            cells.append(f"**{text}**" if r["ci_excludes_zero"] else text)
        lines.append(f"| {scen} | {var} | {scheme} − {reference} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
