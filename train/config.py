"""Training configuration: the pydantic model of ``configs/train/NAME.yaml`` and its loader.

Like the scenario models (``smartnet_gym.config``) every model forbids unknown fields and is
frozen; :func:`load_train_config` re-raises pydantic's errors as a
:class:`~smartnet_gym.errors.ConfigError` that names the dotted field (``eval.episodes: …``).
Names the config points at are checked when it is validated, before anything is built: the env
id must be registered, ``env_kwargs`` must be arguments of that env, ``algo_kwargs`` arguments
of the algorithm (``algo_kwargs.n_steps``), so a bad config fails before any training starts.

Example (``configs/train/smoke.yaml``)::

    env_id: smartnet/Bidding-v0
    env_kwargs: {scenario: toy, physics: linear, episode_steps: 8, start_period: 44}
    algo: PPO
    algo_kwargs: {n_steps: 256, batch_size: 64}
    total_timesteps: 2048
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from smartnet_gym.config import read_yaml_mapping
from smartnet_gym.errors import ConfigError, did_you_mean

ALGOS: tuple[str, ...] = ("PPO", "SAC")
#: algorithm arguments the config sets through its own fields
RESERVED_ALGO_KWARGS = {"policy": "policy", "env": "env_id", "seed": "seed", "tensorboard_log": "tensorboard",
                        "verbose": "verbose", "device": "device", "_init_setup_model": "(internal)"}
ACTIVATIONS = ("tanh", "relu", "elu", "leaky_relu")


def algo_class(name: str) -> type:
    """The Stable-Baselines3 class of ``name`` (PPO or SAC)."""
    import stable_baselines3

    return getattr(stable_baselines3, name)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DaysConfig(_Model):
    """The part of the profile year (days 0..365 of 2016) that episodes start on.

    Within it the days are split by index: day % 10 == 8 → validation, day % 10 == 9 → test,
    the rest → training (see :mod:`train.episodes`).
    """

    first: int = Field(0, ge=0, le=365, description="first day (0 = 1 January 2016) [day]")
    last: int = Field(365, ge=0, le=365, description="last day, inclusive [day]")

    @model_validator(mode="after")
    def _order(self) -> DaysConfig:
        if self.last < self.first:
            raise ValueError(f"last ({self.last}) must be >= first ({self.first})")
        if self.last - self.first < 9:
            raise ValueError(f"first..last must span at least 10 days so that every split has a day "
                             f"(got {self.first}..{self.last})")
        return self


class NormalizeConfig(_Model):
    """VecNormalize of observations and rewards (its statistics are saved with the model)."""

    obs: bool = Field(True, description="normalise observations by running mean and std")
    reward: bool = Field(True, description="scale rewards by the running std of the discounted return")
    clip_obs: float = Field(10.0, gt=0, description="clip normalised observations to ± this")
    clip_reward: float = Field(10.0, gt=0, description="clip normalised rewards to ± this")


class EvalConfig(_Model):
    """Periodic evaluation on the validation days (EvalCallback); the best model is kept."""

    freq: int = Field(0, ge=0, description="env steps between evaluations (all envs together); 0 = none")
    episodes: int = Field(5, ge=1, le=1000, description="validation episodes per evaluation (the same each time)")
    deterministic: bool = Field(True, description="evaluate the deterministic policy")


class TrainConfig(_Model):
    """One training run: env, algorithm, budget, normalisation, evaluation, checkpoints, logging."""

    name: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9_.-]+$", description="run name: runs/NAME/")
    env_id: str = Field(..., description="registered Gymnasium id, e.g. smartnet/Dispatch-v0")
    env_kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of gym.make")
    algo: str = Field("PPO", description="PPO or SAC (any case)")
    policy: Literal["MlpPolicy"] = "MlpPolicy"
    algo_kwargs: dict[str, Any] = Field(default_factory=dict, description="arguments of the SB3 algorithm")
    total_timesteps: int = Field(..., gt=0, description="env steps to train (all envs together)")
    n_envs: int = Field(1, ge=1, le=64, description="parallel envs")
    vec_env: Literal["dummy", "subproc"] = Field("dummy", description="DummyVecEnv or SubprocVecEnv")
    seed: int = Field(0, ge=0, description="seed of the algorithm and the envs")
    days: DaysConfig = DaysConfig()
    normalize: NormalizeConfig = NormalizeConfig()
    eval: EvalConfig = EvalConfig()
    checkpoint_freq: int = Field(0, ge=0, description="env steps between checkpoints; 0 = none")
    tensorboard: bool = Field(True, description="write TensorBoard logs to runs/NAME/tb")
    progress_bar: bool = Field(True, description="tqdm progress bar (else a log line every 5 %)")
    verbose: int = Field(0, ge=0, le=2, description="SB3 verbosity")
    device: Literal["cpu", "auto"] = "cpu"
    torch_threads: int = Field(1, ge=1, le=64, description="torch.set_num_threads")

    @field_validator("algo")
    @classmethod
    def _algo(cls, v: str) -> str:
        up = v.strip().upper()
        if up not in ALGOS:
            raise ValueError(did_you_mean(v, ALGOS, "algorithm"))
        return up

    @field_validator("env_id")
    @classmethod
    def _env_id(cls, v: str) -> str:
        import gymnasium as gym

        import smartnet_gym  # noqa: F401  (registers the ids)

        if v not in gym.registry:
            smartnet = [k for k in gym.registry if k.startswith("smartnet/")]
            raise ValueError(did_you_mean(v, smartnet, "env id"))
        return v

    @model_validator(mode="after")
    def _arguments(self) -> TrainConfig:
        check_env_kwargs(self.env_id, self.env_kwargs)
        _check_algo_kwargs(self.algo, self.algo_kwargs)
        return self

    @property
    def gamma(self) -> float:
        """Discount factor of the algorithm (algo_kwargs.gamma or SB3's default 0.99)."""
        return float(self.algo_kwargs.get("gamma", 0.99))


class FieldError(ValueError):
    """A value error located at a dotted path inside a dict field (``env_kwargs.foo``)."""

    def __init__(self, loc: str, msg: str):
        super().__init__(msg)
        self.loc, self.msg = loc, msg


def env_parameters(env_id: str) -> list[str] | None:
    """Keyword arguments the env of ``env_id`` takes (None: it takes any)."""
    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator

    params = inspect.signature(load_env_creator(gym.spec(env_id).entry_point)).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    return [n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def check_env_kwargs(env_id: str, kwargs: dict[str, Any]) -> None:
    """Raise :class:`FieldError` (``env_kwargs.NAME``) for an argument the env does not take."""
    allowed = env_parameters(env_id)
    if allowed is None:
        return
    for k, v in kwargs.items():
        if k not in allowed:
            raise FieldError(f"env_kwargs.{k}",
                             f"unknown argument of {env_id}. " + did_you_mean(k, allowed, "argument"))
        if k == "render_mode" and v is not None:
            raise FieldError(f"env_kwargs.{k}", "training renders nothing; leave it out")


def _check_algo_kwargs(algo: str, kwargs: dict[str, Any]) -> None:
    params = inspect.signature(algo_class(algo).__init__).parameters
    allowed = [n for n in params if n != "self" and n not in RESERVED_ALGO_KWARGS]
    for k, v in kwargs.items():
        if k in RESERVED_ALGO_KWARGS:
            raise FieldError(f"algo_kwargs.{k}", f"set by the config field {RESERVED_ALGO_KWARGS[k]!r}, not here")
        if k not in allowed:
            raise FieldError(f"algo_kwargs.{k}", f"unknown argument of {algo}. " + did_you_mean(k, allowed, "argument"))
        if k == "policy_kwargs":
            if not isinstance(v, dict):
                raise FieldError(f"algo_kwargs.{k}", f"must be a mapping (got {v!r})")
            act = v.get("activation_fn")
            if act is not None and act not in ACTIVATIONS:
                raise FieldError("algo_kwargs.policy_kwargs.activation_fn",
                                  did_you_mean(str(act), ACTIVATIONS, "activation"))


def algo_arguments(cfg: TrainConfig) -> dict[str, Any]:
    """``algo_kwargs`` ready for SB3 (activation names turned into torch classes)."""
    import torch

    out = dict(cfg.algo_kwargs)
    pk = dict(out.get("policy_kwargs") or {})
    if isinstance(pk.get("activation_fn"), str):
        pk["activation_fn"] = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "elu": torch.nn.ELU,
                               "leaky_relu": torch.nn.LeakyReLU}[pk["activation_fn"]]
    if pk:
        out["policy_kwargs"] = pk
    return out


def _messages(e: ValidationError) -> list[str]:
    out = []
    for err in e.errors():
        ctx_err = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_err, FieldError):
            out.append(f"{ctx_err.loc}: {ctx_err.msg}")
            continue
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (not allowed)"
        got = err.get("input")
        out.append(f"{loc}: {msg}" + ("" if isinstance(got, dict) or err["type"] == "missing" else f" (got {got!r})"))
    return out


def validate_train_config(data: dict[str, Any], source: str = "training config") -> TrainConfig:
    """Validate a raw dict; errors name the dotted field and the rule (``ConfigError``)."""
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"invalid {source}: " + "; ".join(_messages(e))) from None


def load_train_config(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read ``path`` (YAML); ``name`` defaults to the file's stem; ``overrides`` replace top-level fields."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--config {str(path)!r}: no such file")
    data = read_yaml_mapping(p, f"--config {str(path)!r}")
    data.setdefault("name", p.stem)
    data.update(overrides or {})
    return validate_train_config(data, f"training config {str(path)!r}")


def dump_train_config(cfg: TrainConfig) -> str:
    """The resolved config as YAML (every field, defaults included)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


__all__ = ["ALGOS", "DaysConfig", "EvalConfig", "FieldError", "NormalizeConfig", "TrainConfig", "algo_arguments",
           "algo_class", "check_env_kwargs", "dump_train_config", "env_parameters", "load_train_config",
           "validate_train_config"]
