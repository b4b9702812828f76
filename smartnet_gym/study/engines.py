"""Where cells run: in this process (debugging), or on Ray — an embedded local instance by default,
an existing cluster by address.

Both engines yield each cell as it finishes, with its result or, after the bounded retries, its
error; the driver stores it at once. Ray retries a cell whose worker died as well as one that
raised; only the driver writes results, so a cluster needs no shared file system.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from smartnet_gym.study.cells import Cell
from smartnet_gym.study.execute import CellResult, run_cell


@dataclass(frozen=True)
class Finished:
    """A cell that ran to its end: ``result`` on success, else ``error`` after ``attempts`` tries."""

    cell: Cell
    result: CellResult | None
    error: str | None = None
    attempts: int = 1


def describe(err: BaseException) -> str:
    """One line naming an error: its type and the first line of its message."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".strip()


def connect_ray(address: str | None, workers: int | None):
    """``(ray, started)``: Ray connected — an embedded local instance with ``workers`` CPUs (default:
    every core) when ``address`` is None, else the cluster at ``address`` (``"auto"``, host:port);
    ``started`` is True when this call connected (the caller then shuts it down)."""
    import ray

    if ray.is_initialized():
        return ray, False
    opts = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if address is None:     # "local": a new instance even where a `ray start` cluster runs on this machine
        ray.init(address="local", num_cpus=workers or os.cpu_count(), **opts)
    else:
        ray.init(address=address, **opts)
    return ray, True


class InProcessEngine:
    """Runs the cells one after the other in this process (plain tracebacks, debuggers work)."""

    workers = 1

    def run(self, cells: Sequence[Cell], keep_steps: bool, retries: int) -> Iterator[Finished]:
        for cell in cells:
            for attempt in range(1, retries + 2):
                try:
                    yield Finished(cell, run_cell(cell, keep_steps), attempts=attempt)
                    break
                except Exception as e:  # noqa: BLE001 — a failing cell is reported, never fatal to the study
                    if attempt == retries + 1:
                        logging.getLogger(__name__).debug("cell %s failed:\n%s", cell.key, traceback.format_exc())
                        yield Finished(cell, None, describe(e), attempt)


class RayEngine:
    """Runs the cells as Ray tasks (one CPU each), at most ``workers`` at a time.

    ``address=None`` starts an embedded Ray instance with ``workers`` CPUs (default: all cores)
    and stops it afterwards; ``"auto"`` or ``"host:port"`` joins a running cluster (``ray start``).
    """

    def __init__(self, address: str | None = None, workers: int | None = None):
        self.address = address
        self.workers = workers
        self._started = False

    def _connect(self):
        ray, started = connect_ray(self.address, self.workers)
        self._started = self._started or started
        return ray

    def parallelism(self) -> int:
        """Cells in flight: ``workers``, or every CPU of the cluster."""
        ray = self._connect()
        cpus = int(ray.cluster_resources().get("CPU", 1))
        return max(1, min(self.workers or cpus, cpus))

    def run(self, cells: Sequence[Cell], keep_steps: bool, retries: int) -> Iterator[Finished]:
        ray = self._connect()
        try:
            remote = ray.remote(num_cpus=1, max_retries=retries, retry_exceptions=True)(run_cell)
            cap = self.parallelism()
            queue = iter(cells)
            pending: dict = {}

            def submit() -> None:
                for cell in queue:
                    pending[remote.remote(cell, keep_steps)] = cell
                    if len(pending) >= cap:
                        return

            submit()
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                cell = pending.pop(ready[0])
                try:
                    result = ray.get(ready[0])
                except Exception as e:  # noqa: BLE001 — RayTaskError (the cell raised) or a dead worker
                    yield Finished(cell, None, describe(getattr(e, "cause", None) or e), retries + 1)
                else:
                    yield Finished(cell, result)
                submit()
        finally:
            self.close()

    def close(self) -> None:
        """Stop the embedded Ray instance if this engine started it."""
        if self._started:
            import ray

            ray.shutdown()
            self._started = False
