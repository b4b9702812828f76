"""CVXPY cells in a forked worker that is killed when one clearing takes longer than a limit.

OSQP's C loop cannot be interrupted from Python, so the limit needs a process of its own. A
killed cell is reported in ``timeouts_s`` and its ratios become lower bounds.
"""

from __future__ import annotations

import numpy as np

from smartnet_gym.bench.instances import ScaledLayout, Setup
from smartnet_gym.bench.timing import Timing, time_clearing


def _child(conn, setup: Setup, key: str, path: str, layout: ScaledLayout, repeats: int, warmup: int,
           seed: int) -> None:
    """Forked worker of :func:`time_limited`: streams every clearing's time to the parent."""
    try:
        if path.endswith("_clarabel"):
            # this process only: CvxpyBackend's default solver becomes Clarabel (diagnostic paths)
            from smartnet_gym.market.solvers import CvxpyBackend

            CvxpyBackend.__init__.__defaults__ = ("CLARABEL",)
        t = time_clearing(setup, key, path, layout, repeats, warmup, seed,
                          on_clearing=lambda *a: conn.send(("clearing", *a)))
        conn.send(("done", t.rebuilt))
    except BaseException as e:  # noqa: BLE001 - report to the parent, never hang it
        conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        conn.close()


def time_limited(setup: Setup, key: str, path: str, layout: ScaledLayout, repeats: int, warmup: int,
                 limit_s: float, seed: int = 0) -> tuple[Timing | None, str | None]:
    """:func:`time_clearing` in a forked process that is killed when one clearing takes longer
    than ``limit_s``; returns (timing of the repeats done, or None; why it stopped, or None).

    OSQP can run for minutes on these programs; its C loop cannot be interrupted from Python,
    so the limit needs a process of its own. Without ``fork`` (not Linux/macOS) it runs in-process.
    """
    import multiprocessing as mp

    if "fork" not in mp.get_all_start_methods():
        t = time_clearing(setup, key, path, layout, repeats, warmup, seed)
        return t, None
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, setup, key, path, layout, repeats, warmup, seed), daemon=True)
    proc.start()
    send.close()
    walls, solves, bad, rebuilt, reason = [], [], 0, False, None
    try:
        while True:
            if not recv.poll(limit_s):
                reason = (f"one clearing took more than {limit_s:g} s (killed; {len(walls)} of {repeats} timed "
                          f"clearings done)")
                break
            try:
                msg = recv.recv()
            except EOFError:
                reason = "worker process ended without a result"
                break
            if msg[0] == "clearing":
                _, kind, wall, solve_ms, ok = msg
                if kind == "repeat":
                    walls.append(wall)
                    solves.append(solve_ms)
                    bad += not ok
            elif msg[0] == "done":
                rebuilt = msg[1]
                break
            else:
                reason = msg[1]
                break
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        recv.close()
    if not walls:
        return None, reason
    return Timing(float(np.median(walls)), float(np.median(solves)), walls, bad, rebuilt), reason


def warm_cvxpy() -> None:
    """Import and run CVXPY with OSQP and Clarabel once, so that forked workers start warm."""
    import cvxpy as cp

    z = cp.Variable(2)
    c = cp.Parameter(2, value=np.ones(2))
    prob = cp.Problem(cp.Minimize(c @ z), [z >= 0, cp.sum(z) == 1])
    for solver in ("OSQP", "CLARABEL"):
        try:
            prob.solve(solver=solver)
        except Exception:  # noqa: BLE001, S110 - a missing solver shows up in the measured paths
            pass
