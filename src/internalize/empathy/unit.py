"""The empathy probe as a unit of an experiment in the peer world (``experiments.probes``).

After the experiment's evaluation, the probe scores every seed's ISR -- the experiment's own full-data ISR and
ISRs of other widths trained on the same socialization data (ISR capacity) -- on matched held-out stimuli
(``empathy.probe``): the empathy index, its parts (``own_gap``, ``peer_gap``), each stimulus kind's mean reward and
the ISR's held-out fit, one row per (ISR width, seed), condition ``isr-width-W``, phase ``empathy``. Hand-built
calibration models of index 0 (``oracle-own``) and 1 (``oracle-any``) are scored on the same stimuli, and an
untrained ISR (``untrained``, the null: fresh parameters of the experiment's ISR) too.

Preconditions, per seed and model, recorded as ``precondition_met`` (1 or 0) before any index is read: at least
``min_rewarded`` rewarded training transitions (``n_rewarded``); held-out r at least ``min_heldout_r``; an own gap
of at least ``min_own_gap`` whose 95% bootstrap CI over the stimuli lies above 0 (``own_gap_ci_low``); and every
peer-goal stimulus differing in input from its peer-near control (``stimuli_distinct``, the fraction that do). The
report reads an index only where they hold (``analysis.empathy_section``).

A seed's stimuli come from ``fold_in(key(seed), STIMULUS_TAG)``, a key no training phase uses, identical across
similarity levels, views and widths (paired comparisons on the same layouts).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import jax
import numpy as np

from internalize.agents.isr import check_isr_data, isr_init_params, isr_reward, train_isr
from internalize.agents.isr_metrics import isr_metrics
from internalize.config_error import ConfigError
from internalize.empathy import probe as stimuli_probe
from internalize.experiments import phases
from internalize.experiments.probes import Probe
from internalize.experiments.spec import Experiment

STIMULUS_TAG = 0x5EE  # folded into a seed's root key for its held-out stimuli


def stimulus_key(seed: int) -> jax.Array:
    return jax.random.fold_in(jax.random.key(seed), STIMULUS_TAG)


def own_gap_ci_low(rewards: dict[str, np.ndarray], seed: int, n_boot: int = 2000) -> float:
    """The lower end of the 95% percentile-bootstrap CI of the own gap, mean R(learner goal) − mean R(learner near),
    resampling the matched stimuli (each layout gives one of each; seeded by ``seed``)."""
    d = np.asarray(rewards["learner_goal"], np.float64) - np.asarray(rewards["learner_near"], np.float64)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, (n_boot, d.size))].mean(axis=1)
    return float(np.quantile(means, 0.025))


@dataclass(frozen=True)
class EmpathyProbe(Probe):
    """ISRs of several widths scored on matched stimuli: is another agent's goal reaching rewarded?

    See the module docstring; every field's help is in its metadata (``internalize schema probes.empathy``).
    """

    kind: ClassVar[str] = "empathy"
    isr_widths: tuple[float, ...] = field(default=(0.25, 1.0, 4.0), metadata={"help": (
        "ISR capacities probed (hidden-width multipliers); the experiment's isr.width must be among them (its own "
        "ISR is probed too); the others are trained on the same socialization data")})
    n_stimuli: int = field(default=256, metadata={"help": "matched stimuli of each kind per seed"})
    min_rewarded: int = field(default=1000, metadata={"help": (
        "precondition: rewarded training transitions the ISR learned from, at least")})
    min_heldout_r: float = field(default=0.9, metadata={"help": "precondition: the ISR's held-out r, at least"})
    min_own_gap: float = field(default=0.1, metadata={"help": (
        "precondition: R(learner goal) - R(learner near), at least (its 95% bootstrap CI must lie above 0 too)")})
    label: str = field(default="", metadata={"help": (
        "the probed ISR's condition label instead of isr-width-W, for a control experiment (positive-control: "
        "its caregiver also pays for the peer's goals); one width; no calibration or null rows")})

    def __post_init__(self) -> None:
        if not self.isr_widths or any(not isinstance(w, (int, float)) or isinstance(w, bool) or not 0 < w <= 64
                                      for w in self.isr_widths) or len(set(self.isr_widths)) != len(self.isr_widths):
            raise ConfigError.got("isr_widths", self.isr_widths, "distinct numbers in (0, 64]")
        if not isinstance(self.n_stimuli, int) or isinstance(self.n_stimuli, bool) or self.n_stimuli < 2:
            raise ConfigError.got("n_stimuli", self.n_stimuli, "an integer >= 2")
        if not isinstance(self.min_rewarded, int) or isinstance(self.min_rewarded, bool) or self.min_rewarded < 0:
            raise ConfigError.got("min_rewarded", self.min_rewarded, "a non-negative integer")
        if not isinstance(self.label, str) or (self.label and len(self.isr_widths) != 1):
            raise ConfigError.got("label", self.label, "a string, with exactly one isr_widths entry when set")
        for name in ("min_heldout_r", "min_own_gap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
                raise ConfigError.got(name, value, "a finite number")

    def check(self, exp: Experiment) -> None:
        if exp.socialization_world.kind != "peer":
            raise ConfigError("probes.empathy", f"socialization_world {exp.socialization_world.name!r} is a "
                              f"{exp.socialization_world.kind} world; allowed: a peer world (the probe's stimuli are "
                              "two-agent scenes).", value=exp.socialization_world.name, allowed="a peer world")
        if exp.isr.width not in self.isr_widths:
            raise ConfigError.got("isr.width", exp.isr.width, f"one of isr_widths {self.isr_widths!r} (the "
                                  "behaviour run's ISR is also probed)")
        if exp.isr.network == "policy" and set(self.isr_widths) != {1.0}:
            allowed = "'reference' or 'mlp' (the policy network has one size), or isr_widths = (1.0,)"
            raise ConfigError("isr.network", f"got 'policy' with isr_widths {self.isr_widths!r}; allowed: {allowed}.",
                              value="policy", allowed=allowed)

    def rows(self, exp: Experiment, keys: Any, soc: Any, isr_params: Any) -> list[dict]:
        """Rows of every ISR width x seed: the index, its parts, and the ISR's held-out fit; then calibration."""
        world, params = exp.socialization_world, exp.socialization_world.params()
        buffers = soc.actors.reward_state.buffer
        stimuli = [stimuli_probe.build_stimuli(params, stimulus_key(s), self.n_stimuli) for s in exp.seeds]
        rows: list[dict] = []

        def add(condition: str, seed: int, metric: str, value: float) -> None:
            rows.append({"experiment": exp.name, "condition": condition, "world": world.name, "seed": seed,
                         "phase": self.kind, "step": 0, "episode": np.nan, "metric": metric, "value": float(value)})

        kinds = stimuli_probe.KINDS
        stacked = {k: np.stack([st.obs[k] for st in stimuli]) for k in kinds}
        marks = {k: np.stack([st.mark[k] for st in stimuli]) for k in kinds}
        action = np.stack([st.action for st in stimuli])
        # Does each peer-goal stimulus differ in input (observation or mark) from its peer-near control?
        distinct = [stimuli_probe.distinct_fraction(st) for st in stimuli]
        for width in self.isr_widths:
            wexp = dataclasses.replace(exp, isr=dataclasses.replace(exp.isr, width=float(width)))
            counts = check_isr_data(phases.isr_config(wexp), buffers)
            n_train = int(np.min(counts["n_train"]))
            cfg = phases.isr_config(wexp, None, n_train, curve_points=10)
            if width == exp.isr.width:
                widened = isr_params  # the experiment's own ISR
            else:
                widened, _, _ = jax.jit(jax.vmap(lambda b, k, cfg=cfg: train_isr(cfg, b, k)))(buffers, keys.isr)
            fit = jax.device_get(jax.jit(jax.vmap(lambda p, b, cfg=cfg: isr_metrics(cfg, p, b)))(widened, buffers))
            # Every seed's ISR on that seed's stimuli, all seeds in one program.
            model = jax.jit(jax.vmap(lambda p, o, a, m, cfg=cfg: isr_reward(cfg, p, o, a, m)))
            rewards = {k: np.asarray(model(widened, stacked[k], action, marks[k]), np.float64) for k in kinds}
            label = self.label or f"isr-width-{width:g}"
            for i, seed in enumerate(exp.seeds):
                scored = {k: rewards[k][i] for k in kinds}
                s = stimuli_probe.empathy_index(scored)
                r = float(fit["holdout/pearson"][i])
                low = own_gap_ci_low(scored, seed)
                n_pos = int(np.asarray(counts["n_train_pos"])[i])
                met = (n_pos >= self.min_rewarded and r >= self.min_heldout_r and s.own >= self.min_own_gap
                       and low > 0 and distinct[i] == 1.0)
                for metric, value in (("empathy_index", s.index), ("own_gap", s.own), ("peer_gap", s.other),
                                      ("own_gap_ci_low", low), ("n_rewarded", n_pos),
                                      ("stimuli_distinct", distinct[i]), ("isr_heldout_corr", r),
                                      ("precondition_met", float(met))):
                    add(label, seed, metric, value)
                for kind, v in s.means.items():
                    add(label, seed, f"isr_{kind}", v)
        if self.label:  # a control experiment: its ISR only (the main experiment scores calibrations and the null)
            return rows
        # The null: the experiment's ISR with fresh parameters (what the index reads before any learning).
        cfg = phases.isr_config(exp, None, 1, curve_points=10)
        obs_shape = tuple(stacked[kinds[0]].shape[2:])
        init_keys = jax.numpy.stack([jax.random.fold_in(stimulus_key(s), 1) for s in exp.seeds])
        fresh = jax.vmap(lambda k: isr_init_params(cfg, k, obs_shape))(init_keys)
        model = jax.jit(jax.vmap(lambda p, o, a, m: isr_reward(cfg, p, o, a, m)))
        rewards = {k: np.asarray(model(fresh, stacked[k], action, marks[k]), np.float64) for k in kinds}
        for i, seed in enumerate(exp.seeds):
            scored = {k: rewards[k][i] for k in kinds}
            s = stimuli_probe.empathy_index(scored)
            for metric, value in (("empathy_index", s.index), ("own_gap", s.own), ("peer_gap", s.other),
                                  ("own_gap_ci_low", own_gap_ci_low(scored, seed)), ("precondition_met", 0.0)):
                add("untrained", seed, metric, value)
        # Calibration: hand-built models of index 0 and 1 on the same stimuli (the any-agent model reads the
        # peer's direction, which a ball does not show).
        calib = [("oracle-own", stimuli_probe.own_goal_model(world.view))]
        if world.similarity != "kind":
            calib.append(("oracle-any", stimuli_probe.any_agent_goal_model(world.view)))
        for label, model in calib:
            for i, seed in enumerate(exp.seeds):
                add(label, seed, "empathy_index",
                    stimuli_probe.empathy_index(stimuli_probe.score(model, stimuli[i])).index)
        return rows
