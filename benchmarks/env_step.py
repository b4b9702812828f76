"""Env step throughput of ``smartnet/Bidding-v0`` and ``smartnet/Dispatch-v0``: see :mod:`smartnet_gym.bench.env_step`.

Usage::

    python benchmarks/env_step.py                       # spain-like, linear and AC, 1 and 2 processes
    python benchmarks/env_step.py --scenario toy --steps 64 --no-subproc
    python benchmarks/env_step.py --physics linear --no-subproc --steps 90 --days 8   # + 8 days at 11:00
    python benchmarks/env_step.py --physics linear --no-subproc --episodes 4          # 4 random days, not 28
"""

from __future__ import annotations

from smartnet_gym.bench.env_step import main

if __name__ == "__main__":
    raise SystemExit(main())
