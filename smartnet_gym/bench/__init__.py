"""Benchmarks of the market clearing, its scaling and the env step (``smartnet-gym benchmark``).

:mod:`.instances` (bid books of a given size), :mod:`.timing` and :mod:`.limited` (one cell in
process or in a worker killed at a time limit), :mod:`.clearing` (schemes × bids × paths),
:mod:`.scaling` (bids and areas), :mod:`.env_step` (env steps per second), :mod:`.run` (the whole
report), :mod:`.report` (its tables) and :mod:`.cli` (the command lines). The scripts in
``benchmarks/`` call these modules; benchmarks/README.md describes what is measured.
"""
