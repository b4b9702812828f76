"""Train PPO or SAC (Stable-Baselines3) on a registered smartnet env: ``smartnet-gym train --config …``.

Everything of a run goes under ``runs/NAME/``:

| file | what |
|---|---|
| ``config.yaml`` | the resolved :class:`~train.config.TrainConfig` (every default spelled out) |
| ``scenario.json`` | the env's resolved scenario config and its digest (provenance) |
| ``model.zip``, ``vecnormalize.pkl`` | the final model and its VecNormalize statistics |
| ``best_model.zip``, ``best_vecnormalize.pkl`` | the best model on the validation days (with ``eval.freq`` > 0) |
| ``checkpoints/ckpt_N_steps.zip`` (+ ``ckpt_vecnormalize_N_steps.pkl``, SAC: ``ckpt_replay_buffer_N_steps.pkl``) | checkpoints every ``checkpoint_freq`` steps |
| ``tb/<ALGO>_1/`` | TensorBoard: SB3's scalars, ``eval/*`` and the CBA sums per episode ``cba/*`` |
| ``train.json`` | steps, wall time, steps/s, best and last validation reward, versions |

Every file is written through a temporary file and ``os.replace``. Training episodes start on
the *train* days of the split (:mod:`train.episodes`), evaluations run on the *validation* days.
``resume`` continues a run from a checkpoint (or a final model) up to ``total_timesteps``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym

from smartnet_gym.errors import ConfigError, SmartnetError
from smartnet_gym.results import atomic_write_text
from train.callbacks import (
    AtomicCheckpointCallback,
    CbaTensorboardCallback,
    PlannedEvalCallback,
    ProgressCallback,
    SaveBestCallback,
    companion_path,
    save_model_atomic,
)
from train.config import (
    TrainConfig,
    algo_arguments,
    algo_class,
    dump_train_config,
    load_train_config,
)
from train.episodes import DaySplitWrapper, plan_episodes, split_days

log = logging.getLogger(__name__)

#: fields that must equal the saved run's to resume it
RESUME_FIELDS = ("env_id", "env_kwargs", "algo", "policy", "normalize")
VALIDATION_SEED_OFFSET = 1_000_000   # validation episodes' env seeds: cfg.seed + this + i


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced."""

    run_dir: str
    model_path: str
    num_timesteps: int
    trained_timesteps: int
    wall_s: float
    steps_per_s: float
    best_mean_reward: float | None
    last_mean_reward: float | None


def make_env(cfg: TrainConfig, split: str = "train", eval_plan_seed: int | None = None) -> gym.Env:
    """One env of the run: ``gym.make(env_id, **env_kwargs)`` + Monitor + the day split.

    With ``eval_plan_seed`` the episodes follow a fixed plan of ``cfg.eval.episodes`` episodes
    (validation), otherwise random days of ``split``.

    Raises:
        ConfigError: the env rejects ``env_kwargs`` (the message names them) or no day fits.
    """
    from stable_baselines3.common.monitor import Monitor

    import smartnet_gym  # noqa: F401  (registers the ids)

    try:
        env = gym.make(cfg.env_id, **cfg.env_kwargs)
    except SmartnetError as e:
        raise ConfigError(f"env_kwargs: {e}") from None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"env_kwargs: {cfg.env_id} rejects {cfg.env_kwargs}: {e}") from None
    env = Monitor(env)
    d = cfg.days
    if eval_plan_seed is not None:
        plan = plan_episodes(env, split, cfg.eval.episodes, eval_plan_seed, d.first, d.last)
        return DaySplitWrapper(env, plan=plan)
    return DaySplitWrapper(env, days=split_days(split, env.unwrapped.core.n_days, d.first, d.last))


def build_vec_env(cfg: TrainConfig, split: str = "train", evaluation: bool = False) -> Any:
    """The (Dummy|Subproc)VecEnv of the run, wrapped in VecNormalize if the config asks for it.

    ``evaluation``: one env on the planned validation episodes; VecNormalize frozen
    (``training=False``, raw rewards) so the EvalCallback can copy the training statistics into it.
    """
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

    if evaluation:
        fns: list[Callable[[], gym.Env]] = [lambda: make_env(cfg, "validation", cfg.seed + VALIDATION_SEED_OFFSET)]
        venv = DummyVecEnv(fns)
    else:
        fns = [lambda: make_env(cfg, split) for _ in range(cfg.n_envs)]
        venv = SubprocVecEnv(fns) if cfg.vec_env == "subproc" and cfg.n_envs > 1 else DummyVecEnv(fns)
    n = cfg.normalize
    if not (n.obs or n.reward):
        return venv
    return VecNormalize(venv, training=not evaluation, norm_obs=n.obs, norm_reward=n.reward and not evaluation,
                        clip_obs=n.clip_obs, clip_reward=n.clip_reward, gamma=cfg.gamma)


def _prepare_run_dir(cfg: TrainConfig, run_dir: Path, resume: str | None, force: bool) -> None:
    """Refuse a used run folder (unless ``force`` or ``resume``); check a resumed run's config."""
    if resume is None:
        if run_dir.exists() and any(run_dir.iterdir()) and not force:
            raise ConfigError(f"run folder {str(run_dir)!r} exists and is not empty; use --force to "
                              f"replace it or --resume CHECKPOINT to continue it")
        return
    if not Path(resume).is_file():
        raise ConfigError(f"--resume {resume!r}: no such checkpoint file")
    saved = run_dir / "config.yaml"
    if saved.is_file():
        old = load_train_config(saved)
        for f in RESUME_FIELDS:
            if getattr(old, f) != getattr(cfg, f):
                raise ConfigError(f"{f}: differs from the run being resumed ({getattr(old, f)!r} in {saved}, "
                                  f"{getattr(cfg, f)!r} now)")


def _write_provenance(cfg: TrainConfig, run_dir: Path, probe: gym.Env) -> None:
    scen = probe.unwrapped.core.cfg
    atomic_write_text(run_dir / "config.yaml", dump_train_config(cfg))
    atomic_write_text(run_dir / "scenario.json", json.dumps(
        {"config_digest": scen.digest(), "scheme": probe.unwrapped.core.scheme_name,
         "config": scen.model_dump(mode="json")}, indent=2))


def _load_for_resume(cfg: TrainConfig, resume: str, venv: Any, tb: str | None) -> Any:
    from stable_baselines3.common.vec_env import VecNormalize

    if isinstance(venv, VecNormalize):
        stats = companion_path(resume)
        if not stats.is_file():
            raise ConfigError(f"--resume {resume!r}: its VecNormalize statistics {str(stats)!r} are missing")
        venv = VecNormalize.load(str(stats), venv.venv)
        venv.training, venv.norm_reward = True, cfg.normalize.reward
    model = algo_class(cfg.algo).load(resume, env=venv, device=cfg.device, tensorboard_log=tb, verbose=cfg.verbose)
    buf = companion_path(resume, "replay_buffer")
    if hasattr(model, "replay_buffer") and buf.is_file():
        model.load_replay_buffer(str(buf))
    return model


def train(cfg: TrainConfig, runs_dir: str | Path = "runs", resume: str | None = None,
          force: bool = False) -> TrainResult:
    """Train ``cfg`` into ``runs_dir/cfg.name``; see the module docstring for what is written.

    Nothing is created before the config, the env and the run folder have been checked.

    Raises:
        ConfigError: bad env kwargs, a used run folder, a missing or mismatched checkpoint.
    """
    import torch

    run_dir = Path(runs_dir) / cfg.name
    _prepare_run_dir(cfg, run_dir, resume, force)
    probe = make_env(cfg, "train")                      # validates env_kwargs and the train days
    if cfg.eval.freq:
        make_env(cfg, "validation", 0).close()          # …and that validation days exist
    if resume is None and run_dir.exists() and force:
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_provenance(cfg, run_dir, probe)
    probe.close()

    torch.set_num_threads(cfg.torch_threads)
    venv = build_vec_env(cfg, "train")
    tb = str(run_dir / "tb") if cfg.tensorboard else None
    if resume:
        model = _load_for_resume(cfg, resume, venv, tb)
        venv = model.get_env()
        remaining = cfg.total_timesteps - model.num_timesteps
        if remaining <= 0:
            raise ConfigError(f"total_timesteps: {cfg.total_timesteps} already reached by {resume!r} "
                              f"({model.num_timesteps} steps)")
    else:
        model = algo_class(cfg.algo)(cfg.policy, venv, seed=cfg.seed, tensorboard_log=tb, verbose=cfg.verbose,
                                     device=cfg.device, **algo_arguments(cfg))
        remaining = cfg.total_timesteps

    callbacks: list[Any] = [CbaTensorboardCallback(), ProgressCallback(bar=cfg.progress_bar)]
    if cfg.checkpoint_freq:
        callbacks.append(AtomicCheckpointCallback(
            max(cfg.checkpoint_freq // cfg.n_envs, 1), str(run_dir / "checkpoints"), name_prefix="ckpt",
            save_vecnormalize=True, save_replay_buffer=cfg.algo == "SAC"))
    evaluator = None
    if cfg.eval.freq:
        eval_env = build_vec_env(cfg, evaluation=True)
        evaluator = PlannedEvalCallback(eval_env, n_eval_episodes=cfg.eval.episodes,
                                        eval_freq=max(cfg.eval.freq // cfg.n_envs, 1),
                                        deterministic=cfg.eval.deterministic,
                                        callback_on_new_best=SaveBestCallback(run_dir / "best_model.zip"),
                                        verbose=0)
        callbacks.append(evaluator)

    start_steps = model.num_timesteps
    t0 = time.perf_counter()
    try:
        model.learn(total_timesteps=remaining, callback=callbacks, tb_log_name=cfg.algo,
                    reset_num_timesteps=resume is None, progress_bar=False)
    finally:
        venv.close()
        if evaluator is not None:
            evaluator.eval_env.close()
    wall = time.perf_counter() - t0
    model_path = save_model_atomic(model, run_dir / "model.zip", run_dir / "vecnormalize.pkl")
    trained = model.num_timesteps - start_steps

    def _num(x: float) -> float | None:
        return None if x is None or x == float("-inf") else float(x)

    result = TrainResult(str(run_dir), str(model_path), int(model.num_timesteps), int(trained), wall,
                         trained / max(wall, 1e-9), _num(evaluator.best_mean_reward) if evaluator else None,
                         _num(evaluator.last_mean_reward) if evaluator else None)
    import stable_baselines3

    atomic_write_text(run_dir / "train.json", json.dumps(
        {**asdict(result), "name": cfg.name, "env_id": cfg.env_id, "algo": cfg.algo, "resumed_from": resume,
         "versions": {"stable_baselines3": stable_baselines3.__version__, "torch": torch.__version__,
                      "gymnasium": gym.__version__}}, indent=2))
    log.info("trained %d steps in %.0f s (%.1f steps/s) -> %s", trained, wall, result.steps_per_s, model_path)
    return result


__all__ = ["TrainResult", "build_vec_env", "make_env", "train"]
