"""Training and evaluation of RL agents on the smartnet envs (Stable-Baselines3).

| module | what |
|---|---|
| :mod:`train.config` | ``TrainConfig`` (pydantic) and ``load_train_config`` of ``configs/train/*.yaml`` |
| :mod:`train.episodes` | train / validation / test split of the profile year's days; ``DaySplitWrapper`` |
| :mod:`train.train` | ``train(cfg)``: PPO or SAC, VecNormalize, evaluation, checkpoints, TensorBoard |
| :mod:`train.callbacks` | CBA TensorBoard scalars, atomic checkpoints and best model, progress |
| :mod:`train.evaluate` | ``smartnet-gym evaluate``: agents vs baselines on held-out days, mean ± 95 % CI |
| :mod:`train.cli` | ``smartnet-gym train`` |
"""
