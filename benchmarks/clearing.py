"""Market clearing time per scheme, bid count and solver path: fast (bid-space LP, hot start), CVXPY+OSQP
(compiled once) and the naive baseline (CVXPY problem rebuilt and compiled for every clearing).

Usage::

    python benchmarks/clearing.py            # spain-like, 50 / 200 / 1,000 / 5,000 bids (several minutes)
    python benchmarks/clearing.py --quick    # 50 / 200 / 1,000 bids, CVXPY only at 1,000 (< 60 s)
    python benchmarks/clearing.py --json --out clearing.json

How bid books are scaled and what each path does: benchmarks/README.md and smartnet_gym/bench/
(the functions this script calls; `smartnet-gym benchmark` runs the same plus the scaling and env steps).
"""

from __future__ import annotations

from smartnet_gym.bench.cli import script_main
from smartnet_gym.bench.report import format_clearing

if __name__ == "__main__":
    raise SystemExit(script_main(None, __doc__.split("\n\n")[0], ("clearing",), format_clearing))
