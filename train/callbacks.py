"""Stable-Baselines3 callbacks of ``smartnet-gym train``: CBA scalars, atomic checkpoints, progress.

Each overrides one hook (``_on_step`` and, where needed, ``_on_training_start/_end``), as SB3's
own callbacks do. Every file is written to a temporary name in its folder and moved into place
with ``os.replace`` (:func:`save_model_atomic`), so a crash never leaves a half-written model.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback, EvalCallback

from train.metrics import MEAN_KEYS, EpisodeAccumulator

log = logging.getLogger(__name__)


def write_atomic(path: str | Path, save: Callable[[str], Any], suffix: str) -> Path:
    """``save(tmp)`` to a temporary file beside ``path`` (ending in ``suffix``), then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)     # mkstemp's 0600 would make results unreadable to others
    try:
        save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def save_model_atomic(model: BaseAlgorithm, path: str | Path, vecnormalize_path: str | Path | None = None) -> Path:
    """``model.save(path)`` (a .zip) and its VecNormalize statistics, each via a temporary file.

    :param vecnormalize_path: where to save ``model.get_vec_normalize_env()`` (skipped if None
        or the model has none).
    """
    out = write_atomic(path, model.save, ".zip")      # SB3 appends ".zip" to names without it
    vn = model.get_vec_normalize_env()
    if vecnormalize_path is not None and vn is not None:
        write_atomic(vecnormalize_path, vn.save, ".pkl")
    return out


_CKPT = re.compile(r"^(?P<prefix>.*)_(?P<steps>\d+)_steps$")


def companion_path(model_zip: str | Path, kind: str = "vecnormalize") -> Path:
    """The file saved beside a model: ``model.zip`` → ``vecnormalize.pkl``,
    ``best_model.zip`` → ``best_vecnormalize.pkl``, ``ckpt_800_steps.zip`` → ``ckpt_vecnormalize_800_steps.pkl``.

    :param kind: ``"vecnormalize"`` or ``"replay_buffer"``.
    """
    p = Path(model_zip)
    stem = p.name.removesuffix(".zip")
    m = _CKPT.match(stem)
    if m:
        return p.with_name(f"{m['prefix']}_{kind}_{m['steps']}_steps.pkl")
    return p.with_name(f"{stem.replace('model', kind)}.pkl" if "model" in stem else f"{stem}_{kind}.pkl")


class CbaTensorboardCallback(BaseCallback):
    """Logs each finished episode's CBA sums (from ``info``) as ``cba/<key>`` TensorBoard scalars.

    Per env it sums :data:`train.metrics.SUM_KEYS` (those the env reports) over the episode; at the
    episode's end it records the sums with ``logger.record_mean``, so each dump holds the mean over
    the episodes that ended since the last one (plus ``cba/episodes``, their count). Market-power
    indicators (:data:`train.metrics.MEAN_KEYS`) go to ``market_power/<key>`` as episode means.
    """

    def _init_callback(self) -> None:
        self.acc = [EpisodeAccumulator() for _ in range(self.training_env.num_envs)]

    def _on_step(self) -> bool:
        infos, dones = self.locals["infos"], self.locals["dones"]
        for i, info in enumerate(infos):
            acc = self.acc[i]
            acc.add(info, 0.0)
            if dones[i]:
                for k, v in acc.sums.items():
                    if k in MEAN_KEYS:   # indicators: the episode mean, not a sum
                        self.logger.record_mean(f"market_power/{k}", v / max(acc.steps, 1))
                    else:
                        self.logger.record_mean(f"cba/{k}", v)
                self.logger.record_mean("cba/episode_steps", acc.steps)
                acc.clear()
        return True


class AtomicCheckpointCallback(CheckpointCallback):
    """SB3's CheckpointCallback (same file names) writing every file through a temporary name.

    .. warning:: ``save_freq`` counts calls, i.e. vectorised steps: pass ``max(freq // n_envs, 1)``.
    """

    def _on_step(self) -> bool:
        if self.n_calls % self.save_freq == 0:
            path = Path(self._checkpoint_path(extension="zip"))
            vpath = Path(self._checkpoint_path("vecnormalize_", extension="pkl")) if self.save_vecnormalize else None
            save_model_atomic(self.model, path, vpath)
            buf = getattr(self.model, "replay_buffer", None)
            if self.save_replay_buffer and buf is not None:
                write_atomic(self._checkpoint_path("replay_buffer_", extension="pkl"), self.model.save_replay_buffer,
                             ".pkl")
            log.info("checkpoint %s", path)
        return True


class SaveBestCallback(BaseCallback):
    """Child of an EvalCallback (``callback_on_new_best``): saves the new best model atomically."""

    parent: EvalCallback

    def __init__(self, path: str | Path, verbose: int = 0):
        super().__init__(verbose)
        self.path = Path(path)

    def _on_step(self) -> bool:
        save_model_atomic(self.model, self.path, companion_path(self.path))
        log.info("new best mean reward %.4g at %d steps -> %s", self.parent.best_mean_reward,
                 self.num_timesteps, self.path)
        return True


class PlannedEvalCallback(EvalCallback):
    """EvalCallback whose eval env replays the same planned episodes at every evaluation.

    The eval env's :class:`~train.episodes.DaySplitWrapper` cycles through a plan; before each
    evaluation the plan is restarted, so every evaluation runs exactly the same episodes.
    """

    def _on_step(self) -> bool:
        if self.eval_freq > 0 and self.n_calls % self.eval_freq == 0:
            self.eval_env.env_method("restart_plan")
        return super()._on_step()


class ProgressCallback(BaseCallback):
    """A tqdm progress bar over the timesteps of this ``learn`` call, or a log line every 5 %.

    (SB3's own ProgressBarCallback needs ``rich``; this one uses plain tqdm.)
    """

    def __init__(self, bar: bool = True, verbose: int = 0):
        super().__init__(verbose)
        self.bar = bar
        self.pbar: Any = None

    def _on_training_start(self) -> None:
        self.total = int(self.locals["total_timesteps"]) - self.model.num_timesteps
        self.start_steps, self.t0, self.next_log = self.model.num_timesteps, time.perf_counter(), 0.05
        if self.bar:
            from tqdm import tqdm

            self.pbar = tqdm(total=self.total, unit="step", dynamic_ncols=True)

    def _on_step(self) -> bool:
        if self.pbar is not None:
            self.pbar.update(self.training_env.num_envs)
            return True
        done = (self.model.num_timesteps - self.start_steps) / max(self.total, 1)
        if done >= self.next_log:
            rate = (self.model.num_timesteps - self.start_steps) / max(time.perf_counter() - self.t0, 1e-9)
            log.info("%d/%d steps (%.0f %%), %.1f steps/s", self.model.num_timesteps - self.start_steps,
                     self.total, 100 * done, rate)
            self.next_log += 0.05
        return True

    def _on_training_end(self) -> None:
        if self.pbar is not None:
            self.pbar.close()
            self.pbar = None


__all__ = ["AtomicCheckpointCallback", "CbaTensorboardCallback", "PlannedEvalCallback", "ProgressCallback",
           "SaveBestCallback", "companion_path", "save_model_atomic", "write_atomic"]
