"""The ISR's configuration: network, input encoding, observation scale, training budget and data split.

One frozen, hashable dataclass (a static argument of the jitted ISR functions), validated at construction; the
ISR itself is :mod:`internalize.agents.isr`, its data :mod:`internalize.agents.isr_data`. An experiment holds
one as its ``isr`` (the ``[isr]`` table of a file); the fields whose metadata has ``derived`` are filled in by
the runner from the world, the policy and the unit (``experiments.phases.isr_config``), so a file cannot set
them to values that disagree with what the ISR is trained on.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, fields

from internalize.config_error import ConfigError

NETWORKS = ("policy", "reference", "mlp")
ENCODINGS = ("channel", "onehot")
SPLITS = ("chronological", "random")
SAMPLINGS = ("balanced", "uniform")
DATA_SIZE_UPDATES = ("epoch", "full")
REDUCTIONS = ("mean", "min", "lcb")


def _positive_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True)
class IsrConfig:
    """Everything that defines an ISR and its training; frozen, hashable (a static jit argument), validated."""

    network: str = field(default="policy", metadata={"help": f"network kind, one of {', '.join(NETWORKS)}."})
    encoding: str = field(default="channel", metadata={"help": f"action encoding, one of {', '.join(ENCODINGS)}."})
    obs_scale: float | tuple[float, ...] = field(
        default=1.0 / 255.0,
        metadata={"help": "what the uint8 observation is multiplied by: the policy's scale (SB3: 1/255) so both see "
                  "the same numbers, a tuple for one factor per channel; 1.0 = the reference's raw cell codes.",
                  "derived": "the policy's observation scale"},
    )
    num_actions: int = field(default=3, metadata={"help": "number of actions (size of the one-hot encoding).",
                                                  "derived": "the world's action count"})
    learning_rate: float = field(
        default=3e-4, metadata={"help": "Adam learning rate (reference: 3e-4; 3e-5 for Figs 3a/3b)."}
    )
    adam_eps: float = field(default=1e-5, metadata={"help": "Adam epsilon (reference: 1e-5)."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "global gradient-norm clip (reference: 1.0)."})
    batch_size: int = field(default=1, metadata={"help": "transitions per update (reference: 1; Fig 3a: 10)."})
    n_updates: int | None = field(
        default=None,
        metadata={"help": "updates to run; unset = updates_fraction of one epoch, "
                  "ceil(updates_fraction * ceil(n_train / batch_size))."},
    )
    updates_fraction: float = field(
        default=1.0,
        metadata={"help": "when n_updates is unset: updates as a fraction of one epoch over the training split "
                  "(1 = one epoch, the reference; 1/12 = the undertrained ISR of Fig 6)."},
    )
    n_data: int | None = field(
        default=None, metadata={"help": "use only the first n_data stored transitions (Fig 3b); None = all.",
                                "derived": "the unit (the Fig 3b data sizes)"}
    )
    data_sizes: tuple[int, ...] = field(
        default=(),
        metadata={"help": "also train ISRs on the first N socialization transitions for each N (Fig 3b); "
                  "empty = no."},
    )
    data_size_updates: str = field(
        default="epoch",
        metadata={"help": "updates of each data_sizes ISR: epoch = updates_fraction of an epoch over its own data "
                  "(the reference); full = as many as the full-data ISR, so that only the amount of data differs."},
    )
    holdout_fraction: float = field(
        default=0.1, metadata={"help": "fraction of the used transitions held out, never trained on; in (0, 1)."}
    )
    split: str = field(
        default="chronological",
        metadata={"help": "'chronological': the last holdout_fraction is held out (reference); 'random': by key."},
    )
    split_seed: int = field(default=0, metadata={"help": "random split: seed of the per-transition key."})
    sampling: str = field(default="balanced", metadata={"help": (
        "training batches: 'balanced' (half rewarded transitions, the paper's and the reference's) or 'uniform' "
        "(as the transitions came: the ISR then regresses on the expected payment)")})
    log_every: int = field(default=1000, metadata={"help": "updates between two points of the training curve.",
                                                   "derived": "about 100 points per training curve"})
    eval_size: int = field(
        default=256, metadata={"help": "held-out transitions evaluated at each point of the training curve."}
    )
    width: float = field(
        default=1.0, metadata={"help": "multiplier of every hidden width of the reference and mlp networks."}
    )
    ensemble: int = field(
        default=1,
        metadata={"help": "members of the ISR ensemble (1 = one ISR). Each member has its own initialization and "
                  "trains on its own stratified bootstrap of the socialization data; R_i is their reduction "
                  "(ensemble_reduce) and their std is logged as isr_disagreement."},
    )
    ensemble_reduce: str = field(
        default="mean",
        metadata={"help": f"how the members' predictions give R_i, one of {', '.join(REDUCTIONS)}: mean, min (the "
                  "worst case) or lcb = mean - ensemble_lambda * std."},
    )
    ensemble_lambda: float = field(
        default=1.0, metadata={"help": "lcb's weight on the members' std (>= 0)."}
    )
    self_channel: int | None = field(
        default=None,
        metadata={"help": "observation channel that is 1 on the learner's own cell (where the action is marked); "
                  "None = the red agent's cell.", "derived": "the world's"},
    )

    def __post_init__(self) -> None:
        for name, allowed in (("network", NETWORKS), ("encoding", ENCODINGS), ("split", SPLITS),
                              ("data_size_updates", DATA_SIZE_UPDATES), ("sampling", SAMPLINGS),
                              ("ensemble_reduce", REDUCTIONS)):
            if getattr(self, name) not in allowed:
                raise ConfigError.must(name, f"one of {', '.join(allowed)}", getattr(self, name))
        if isinstance(self.obs_scale, list):  # one factor per channel, as JSON stores a tuple
            object.__setattr__(self, "obs_scale", tuple(self.obs_scale))
        scales = self.obs_scale if isinstance(self.obs_scale, tuple) and self.obs_scale else (self.obs_scale,)
        if not all(not isinstance(v, bool) and isinstance(v, (int, float)) and 0 < v <= 1 for v in scales):
            raise ConfigError.must("obs_scale", "a number in (0, 1], or a tuple of them (one per channel)",
                                   self.obs_scale)
        for name in ("num_actions", "batch_size", "log_every", "eval_size"):
            if not _positive_int(getattr(self, name)):
                raise ConfigError.must(name, "a positive integer", getattr(self, name))
        for name in ("n_updates", "n_data"):
            value = getattr(self, name)
            if value is not None and not _positive_int(value):
                raise ConfigError.must(name, "a positive integer or None", value)
        u = self.updates_fraction
        if not isinstance(u, numbers.Real) or isinstance(u, bool) or not math.isfinite(u) or not 0 < u <= 100:
            raise ConfigError.must("updates_fraction", "a number in (0, 100]", u)
        if not isinstance(self.data_sizes, tuple) or not all(_positive_int(n) for n in self.data_sizes):
            raise ConfigError.must("data_sizes", "a tuple of positive integers", self.data_sizes)
        for name in ("learning_rate", "adam_eps", "max_grad_norm"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
                raise ConfigError.must(name, "a positive finite number", value)
        w = self.width
        if not isinstance(w, numbers.Real) or isinstance(w, bool) or not math.isfinite(w) or not 0 < w <= 64:
            raise ConfigError.must("width", "a number in (0, 64]", w)
        if w != 1.0 and self.network == "policy":
            raise ConfigError("width", f"the policy network keeps the policy's size; got width={w!r} with "
                              "network='policy' (use network 'reference' or 'mlp').", value=w,
                              allowed="1.0 with network 'policy'")
        if not _positive_int(self.ensemble) or self.ensemble > 64:
            raise ConfigError.must("ensemble", "an integer from 1 to 64", self.ensemble)
        lam = self.ensemble_lambda
        if not isinstance(lam, numbers.Real) or isinstance(lam, bool) or not math.isfinite(lam) or lam < 0:
            raise ConfigError.must("ensemble_lambda", "a finite number >= 0", lam)
        sc = self.self_channel
        if sc is not None and (not isinstance(sc, numbers.Integral) or isinstance(sc, bool) or sc < 0):
            raise ConfigError.must("self_channel", "a non-negative integer or None", sc)
        f = self.holdout_fraction
        if not isinstance(f, numbers.Real) or isinstance(f, bool) or not 0.0 < f < 1.0:
            raise ConfigError.must("holdout_fraction", "a number in the open interval (0, 1)", f)
        if not isinstance(self.split_seed, numbers.Integral) or isinstance(self.split_seed, bool):
            raise ConfigError.must("split_seed", "an integer", self.split_seed)

    def epoch_updates(self, n_train: int) -> int:
        """Updates of one training run on ``n_train`` transitions when ``n_updates`` is unset:
        ``ceil(updates_fraction * ceil(n_train / batch_size))`` (at least 1)."""
        return max(1, math.ceil(self.updates_fraction * math.ceil(n_train / self.batch_size)))


def derived_fields() -> tuple[str, ...]:
    """The fields the runner fills in from the world, the policy and the unit (not settable from a file)."""
    return tuple(f.name for f in fields(IsrConfig) if "derived" in f.metadata)
