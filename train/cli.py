"""``smartnet-gym train``: argparse wiring of :func:`train.train.train`.

Wire into ``smartnet_gym/cli.py``::

    from train.cli import add_train_parser, cmd_train
    add_train_parser(sub)                 # in build_parser()
    COMMANDS["train"] = cmd_train

User errors raise :class:`~smartnet_gym.errors.ConfigError` (the CLI's ``main`` turns them into
exit code 2), before anything is trained or written.
"""

from __future__ import annotations

import argparse
import logging


def add_train_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand to ``sub`` (the CLI's subparsers)."""
    p = sub.add_parser("train", help="train PPO or SAC on a smartnet env (runs/NAME/)",
                       description="Train PPO or SAC (Stable-Baselines3) as configured in a YAML file "
                                   "(see configs/train/). Everything goes under RUNS_DIR/NAME/.")
    p.add_argument("--config", required=True, help="training config YAML (configs/train/NAME.yaml)")
    p.add_argument("--resume", metavar="PATH", help="continue from this checkpoint or model .zip")
    p.add_argument("--runs-dir", default="runs", help="parent folder of the run (default: runs)")
    p.add_argument("--total-timesteps", type=int, metavar="N", help="override total_timesteps")
    p.add_argument("--seed", type=int, help="override seed")
    p.add_argument("--name", help="override the run name (default: the config's name or file stem)")
    p.add_argument("--force", action="store_true", help="replace an existing run folder")
    p.add_argument("--no-progress", action="store_true", help="log lines instead of a progress bar")
    return p


def cmd_train(args: argparse.Namespace) -> int:
    """Run ``smartnet-gym train``; prints where the run went and its speed."""
    from train.config import load_train_config
    from train.train import train

    over = {k: v for k, v in (("total_timesteps", args.total_timesteps), ("seed", args.seed), ("name", args.name))
            if v is not None}
    if args.no_progress:
        over["progress_bar"] = False
    cfg = load_train_config(args.config, over)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    res = train(cfg, runs_dir=args.runs_dir, resume=args.resume, force=args.force)
    best = "" if res.best_mean_reward is None else f", best validation reward {res.best_mean_reward:.4g}"
    print(f"{cfg.algo} on {cfg.env_id}: {res.trained_timesteps} steps in {res.wall_s:.0f} s "
          f"({res.steps_per_s:.1f} steps/s){best} -> {res.run_dir}")
    return 0


__all__ = ["add_train_parser", "cmd_train"]
