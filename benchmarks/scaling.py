"""How the fast-path clearing time scales with the number of bids and of detailed distribution
areas, with the fitted exponents (log-log slopes; 1 = linear).

Usage::

    python benchmarks/scaling.py            # bids 50..5,000 on spain-like; 1, 2, 4, 8, 15 MV areas
    python benchmarks/scaling.py --quick    # bids 50..1,000; 1 and 4 areas
    python benchmarks/scaling.py --json --out scaling.json

Areas are nested subsets of the 15 MV areas of SimBench 1-HVMV-mixed-all-2-sw (benchmarks/README.md);
the area sweep keeps the bid count at 1,000.
"""

from __future__ import annotations

from smartnet_gym.bench.cli import script_main
from smartnet_gym.bench.report import format_scaling

if __name__ == "__main__":
    raise SystemExit(script_main(None, __doc__.split("\n\n")[0], ("fast", "areas"), format_scaling,
                                 drop=("clear_ms_cvxpy", "clear_ms_naive", "naive_over_fast", "cvxpy_over_fast",
                                       "naive_over_cvxpy")))
