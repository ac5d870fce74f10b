"""PPO hyperparameters: Stable-Baselines3 2.x defaults, the paper's learning rate, validated at construction."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from internalize.config_error import ConfigError

TORSOS = ("cnn", "mlp")


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class PPOConfig:
    """One PPO training phase; defaults are SB3 2.0's ``PPO`` with ``CnnPolicy`` and the paper's lr 1e-4.

    Fixed SB3 choices that are not options here: no value-function clipping (``clip_range_vf=None``), no
    ``target_kl`` early stop, no state-dependent exploration, constant learning rate, Adam betas (0.9, 0.999).
    """

    total_timesteps: int = field(
        default=120_000,
        metadata=_help("env steps of the phase per seed (SB3 rounds up to whole rollouts: see num_rollouts)"),
    )
    learning_rate: float = field(default=1e-4, metadata=_help("constant Adam learning rate (paper: 1e-4)"))
    n_steps: int = field(default=2048, metadata=_help("vector steps per rollout, per env"))
    n_envs: int = field(default=1, metadata=_help("parallel envs per seed (paper: 1)"))
    batch_size: int = field(default=64, metadata=_help("minibatch size; must divide n_steps * n_envs"))
    n_epochs: int = field(default=10, metadata=_help("passes over each rollout"))
    gamma: float = field(default=0.99, metadata=_help("discount factor, in [0, 1]"))
    gae_lambda: float = field(default=0.95, metadata=_help("GAE lambda, in [0, 1]"))
    clip_range: float = field(default=0.2, metadata=_help("PPO ratio clip epsilon, > 0"))
    normalize_advantage: bool = field(
        default=True, metadata=_help("normalise advantages per minibatch: (a - mean) / (unbiased std + 1e-8)")
    )
    ent_coef: float = field(default=0.0, metadata=_help("entropy bonus coefficient, >= 0"))
    vf_coef: float = field(default=0.5, metadata=_help("value loss coefficient, >= 0"))
    max_grad_norm: float = field(default=0.5, metadata=_help("global gradient-norm clip, > 0"))
    adam_eps: float = field(default=1e-5, metadata=_help("Adam epsilon (SB3 sets 1e-5 for its policies)"))
    torso: str = field(default="cnn", metadata=_help("policy feature extractor: 'cnn' (paper) or 'mlp'"))
    obs_scale: float | None = field(
        default=None,
        metadata=_help("what the policy multiplies the uint8 observation by; None = the world's own scale (SB3's: "
                       "1/255 for navigation's image Box, raw codes (1) in the prosocial world)"),
    )
    obs_channel_scale: tuple[float, ...] | None = field(
        default=None,
        metadata=_help("one factor per observation channel (the last axis) that the policy multiplies the uint8 "
                       "observation by instead of obs_scale, e.g. 1 / each channel's largest code; None = obs_scale "
                       "for every channel. The ISR reads the same numbers"),
    )

    def __post_init__(self) -> None:
        total = self.total_timesteps
        if isinstance(total, float) and math.isfinite(total) and total.is_integer():
            object.__setattr__(self, "total_timesteps", int(total))  # 12e4, as the paper's scripts write it
        _check_int("total_timesteps", self.total_timesteps, 0)
        for name in ("n_steps", "n_envs", "n_epochs"):
            _check_int(name, getattr(self, name), 1)
        _check_int("batch_size", self.batch_size, 2 if self.normalize_advantage else 1,
                   why="(per-minibatch advantage normalisation needs at least 2 samples)")
        buffer = self.n_steps * self.n_envs
        if buffer % self.batch_size:
            raise ConfigError(
                "batch_size", f"must divide n_steps * n_envs = {buffer} (minibatches have a static shape; SB3 would "
                f"use a smaller last batch), got {self.batch_size}.", value=self.batch_size,
                allowed=f"a divisor of n_steps * n_envs = {buffer}")
        _check_real("learning_rate", self.learning_rate, low=0.0, low_open=True)
        _check_real("gamma", self.gamma, low=0.0, high=1.0)
        _check_real("gae_lambda", self.gae_lambda, low=0.0, high=1.0)
        _check_real("clip_range", self.clip_range, low=0.0, low_open=True)
        _check_real("ent_coef", self.ent_coef, low=0.0)
        _check_real("vf_coef", self.vf_coef, low=0.0)
        _check_real("max_grad_norm", self.max_grad_norm, low=0.0, low_open=True)
        _check_real("adam_eps", self.adam_eps, low=0.0, low_open=True)
        if not isinstance(self.normalize_advantage, bool):
            raise ConfigError.must("normalize_advantage", "True or False", self.normalize_advantage)
        if self.obs_scale is not None:
            _check_real("obs_scale", self.obs_scale, low=0.0, low_open=True)
        if self.obs_channel_scale is not None:
            scale = self.obs_channel_scale
            allowed = "a non-empty list of finite numbers > 0, one per observation channel, or None"
            if not isinstance(scale, (tuple, list)) or not scale or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
                    for v in scale):
                raise ConfigError.got("obs_channel_scale", self.obs_channel_scale, allowed)
            object.__setattr__(self, "obs_channel_scale", tuple(float(v) for v in scale))
        if self.torso not in TORSOS:
            raise ConfigError.must("torso", f"one of {' | '.join(TORSOS)}", self.torso)

    @property
    def rollout_steps(self) -> int:
        """Env steps per rollout: ``n_steps * n_envs``."""
        return self.n_steps * self.n_envs

    @property
    def num_rollouts(self) -> int:
        """Rollouts in ``total_timesteps``, rounded up like SB3's ``learn``."""
        return num_rollouts(self.total_timesteps, self.n_steps, self.n_envs)

    def rollouts(self, steps: int) -> int:
        """Whole rollouts a phase of ``steps`` env steps takes (SB3 rounds up: 12e4 -> 59 rollouts of 2048)."""
        return num_rollouts(steps, self.n_steps, self.n_envs)

    def phase_steps(self, steps: int) -> int:
        """Env steps a phase of ``steps`` actually runs: whole rollouts (12e4 -> 120,832)."""
        return self.rollouts(steps) * self.rollout_steps

    def policy_obs_scale(self, world: Any) -> float:
        """The one factor ``obs_scale`` gives on ``world``: the ISR's input scale, and the policy's unless
        ``obs_channel_scale`` is set (:meth:`policy_input_scale`)."""
        return float(world.obs_scale if self.obs_scale is None else self.obs_scale)

    def policy_input_scale(self, world: Any, channels: int | None = None) -> float | tuple[float, ...]:
        """What the policy network multiplies ``world``'s uint8 observations by: ``obs_channel_scale`` (one factor
        per channel; ``channels``, the observation's channel count, must match it when given), else
        :meth:`policy_obs_scale`."""
        scale = self.obs_channel_scale
        if scale is None:
            return self.policy_obs_scale(world)
        if channels is not None and len(scale) != channels:
            raise ConfigError.got("obs_channel_scale", scale,
                                  f"{channels} numbers > 0, one per channel of this world's observation")
        return scale

    @classmethod
    def help(cls) -> dict[str, str]:
        """Each field's help text, by name."""
        return {f.name: f.metadata.get("help", "") for f in fields(cls)}


def num_rollouts(total_timesteps: float, n_steps: int, n_envs: int = 1) -> int:
    """Rollouts SB3's ``learn(total_timesteps)`` collects: ``ceil(total / (n_steps * n_envs))``.

    SB3 keeps collecting while ``num_timesteps < total_timesteps``, so a phase is rounded up to whole
    rollouts: ``learn(12e4)`` with 2048 steps does 59 rollouts = 120,832 env steps.
    """
    _check_real("total_timesteps", total_timesteps, low=0.0)
    _check_int("n_steps", n_steps, 1)
    _check_int("n_envs", n_envs, 1)
    return math.ceil(total_timesteps / (n_steps * n_envs))


def _check_int(name: str, value: Any, low: int, why: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError.must(name, f"an integer >= {low}{' ' + why if why else ''}", value)


def _check_real(
    name: str, value: Any, *, low: float | None = None, high: float | None = None, low_open: bool = False
) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        lo = "" if low is None else (f"> {low}" if low_open else f">= {low}")
        hi = "" if high is None else f"<= {high}"
        allowed = " and ".join(s for s in (lo, hi) if s)
        raise ConfigError.must(name, f"a finite number{' ' + allowed if allowed else ''}", value)
