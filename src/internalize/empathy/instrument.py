"""The empathy instrument: reward models scored on stimuli along continua, with the readings the study reports.

A *cell* is one stimulus set: the seed's held-out base layouts (``empathy.probe.build_stimuli``) seen with the
peer at one appearance level ``a`` (its colour ``(1 - a) * red + a * blue``: 0 = the learner's own colour, 1 =
the colour the peer had while the caregiver taught) and one identity level ``i`` (the self-marker's value on the
peer: 0 = only the learner carries it, 1 = both do; at appearance 0 and identity 1 self-goal and other-goal
stimuli would be the same input, so the study's identity continuum runs at appearance 1).
Every reward model is read in every cell, per seed:

* ``empathy_index``, ``own_gap``, ``peer_gap`` (``empathy.probe.empathy_index``), ``own_gap_ci_low``;
* ``vicarious_gap``: R(observe goal) - R(observe near), the learner turning left while the peer faces the goal
  or turns away (``empathy.probe.observe_stimuli``);
* ``self_other_distance``, ``event_alignment``, ``linear_cka`` on the model's penultimate layer
  (``empathy.latent``); NaN for the hand-built models;
* ``input_distance``: self-goal vs other-goal stimuli in the model's input (``empathy.probe.input_distance``);
* ``precondition_met``: 1 when the model learned from at least ``min_rewarded`` paid samples, fits held-out data
  (r >= ``min_heldout_r``), rewards the learner's own goal event (own gap >= ``min_own_gap`` with its bootstrap CI
  above 0), and every peer-goal stimulus differs in input from its near-miss control; always 0 for the untrained
  null, always 1 for the hand-built calibrations.

A row's ``condition`` names its cell and model (:func:`condition`, read back by :func:`parse_condition`):
``probe_model;width=W;arm=A;appearance=a;identity=i``; its ``step`` is the model's training updates at the
checkpoint read.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from internalize.agents.isr_config import IsrConfig
from internalize.analysis.empathy_section import FACTORS, parse_condition  # noqa: F401 - the label's reader
from internalize.empathy import latent
from internalize.empathy import probe as stim
from internalize.empathy import reward_model as rm
from internalize.empathy.unit import own_gap_ci_low
from internalize.worlds import grid
from internalize.worlds.peer import RGB, PeerParams

PROBE_MODELS = ("isr", "world-model", "positive-control", "negative-control", "untrained", "oracle-own",
                "oracle-any")
METRICS = ("empathy_index", "own_gap", "peer_gap", "vicarious_gap", "self_other_distance", "event_alignment",
           "linear_cka", "precondition_met", "own_gap_ci_low", "input_distance")


class Cell(NamedTuple):
    """One stimulus set: appearance ``a`` and identity ``i`` levels in [0, 1]."""

    appearance: float
    identity: float


class Thresholds(NamedTuple):
    min_rewarded: int
    min_heldout_r: float
    min_own_gap: float


def condition(probe_model: str, width: float, arm: str, cell: Cell) -> str:
    """The row label of a model read in a cell (see the module docstring)."""
    return f"{probe_model};width={width:g};arm={arm};appearance={cell.appearance:g};identity={cell.identity:g}"


def cell_params(params: PeerParams, cell: Cell) -> PeerParams:
    """The probe world of ``cell``: the peer's colour interpolated from red toward blue, its self-marker value."""
    rgb = (1.0 - cell.appearance) * np.asarray(RGB[grid.RED]) + cell.appearance * np.asarray(RGB[grid.BLUE])
    return params.replace(peer_rgb=jnp.asarray(rgb, jnp.float32), peer_self=jnp.asarray(cell.identity, jnp.float32))


class CellStimuli(NamedTuple):
    """A cell's inputs for every seed (leading axis S): obs kind -> (S, n, H, W, C), mark kind -> (S, n, H, W),
    action kind -> (S, n); kinds are ``empathy.probe.KINDS`` plus observe_goal / observe_near. ``distinct`` (S,):
    fraction of peer-goal stimuli that differ from their near-miss control; ``input_distance`` (S,)."""

    obs: dict[str, np.ndarray]
    mark: dict[str, np.ndarray]
    action: dict[str, np.ndarray]
    distinct: np.ndarray
    input_distance: np.ndarray


def cell_stimuli(bases: list[stim.Stimuli], params: PeerParams, cell: Cell, obs_scale: float) -> CellStimuli:
    """Every seed's base layouts (``bases``, one per seed) rendered in ``cell``."""
    p = cell_params(params, cell)
    obs: dict[str, list] = {}
    mark: dict[str, list] = {}
    action: dict[str, list] = {}
    distinct, distance = [], []
    for base in bases:
        s = stim.rerender(base, p)
        o_obs, o_mark, o_action = stim.observe_stimuli(base, p)
        for k in stim.KINDS:
            obs.setdefault(k, []).append(s.obs[k])
            mark.setdefault(k, []).append(s.mark[k])
            action.setdefault(k, []).append(s.action)
        for k in o_obs:
            obs.setdefault(k, []).append(o_obs[k])
            mark.setdefault(k, []).append(o_mark[k])
            action.setdefault(k, []).append(o_action)
        distinct.append(stim.distinct_fraction(s))
        distance.append(stim.input_distance(s, obs_scale))
    stack = lambda d: {k: np.stack([np.asarray(x) for x in v]) for k, v in d.items()}  # noqa: E731
    return CellStimuli(stack(obs), stack(mark), stack(action), np.asarray(distinct), np.asarray(distance))


@functools.lru_cache(maxsize=64)  # one program per model kind, compiled once for all its checkpoints
def _seed_program(apply: rm.Apply, features: Features | None):
    """One jitted program: every seed's model on every kind of a cell -> rewards (and penultimate features)."""

    def one(params: Any, obs: dict, mark: dict, action: dict):
        rewards = {k: apply(params, obs[k], action[k], mark[k]) for k in obs}
        if features is None:
            return rewards, {}
        return rewards, {k: features(params, obs[k], action[k], mark[k]) for k in stim.KINDS}

    return jax.jit(jax.vmap(one))


#: A model's latent code: (params, obs (n, H, W, C), action (n,), mark (n, H, W)) -> (n, F).
Features = Callable[[Any, jax.Array, jax.Array, jax.Array], jax.Array]


class Reading(NamedTuple):
    """A model to read: per-seed ``params`` (leading seed axis) with its ``apply`` (reward) and ``features``
    (latent code; None: no latent readings), or a hand-built ``oracle`` (one model for all seeds); and what the
    preconditions need: ``n_rewarded`` (S,), ``heldout_r`` (S,); ``null`` marks the untrained model (its
    preconditions never hold)."""

    params: Any
    apply: rm.Apply | None
    features: Features | None
    n_rewarded: np.ndarray | None
    heldout_r: np.ndarray | None
    oracle: Any = None
    null: bool = False


def isr_reading(config: IsrConfig, params: Any, n_rewarded: np.ndarray | None, heldout_r: np.ndarray | None,
                null: bool = False) -> Reading:
    """An ISR network's reading: its reward and its penultimate layer."""
    return Reading(params, *_isr_functions(config), n_rewarded, heldout_r, null=null)


@functools.lru_cache(maxsize=64)
def _isr_functions(config: IsrConfig) -> tuple[rm.Apply, Features]:
    """The same two functions for equal configs, so :func:`_seed_program` compiles them once."""
    return functools.partial(rm.predict, config), functools.partial(rm.features, config)


def oracle_reading(model: Any) -> Reading:
    return Reading(None, None, None, None, None, oracle=model)


def read(reading: Reading, cells: dict[Cell, CellStimuli], seeds: tuple[int, ...],
         thresholds: Thresholds) -> dict[Cell, list[dict[str, float]]]:
    """Every metric of :data:`METRICS` for each cell and seed: cell -> one dict per seed."""
    out: dict[Cell, list[dict[str, float]]] = {}
    program = None if reading.oracle is not None else _seed_program(reading.apply, reading.features)
    for cell, cs in cells.items():
        if reading.oracle is not None:
            rewards = {k: np.stack([np.asarray(reading.oracle(cs.obs[k][i], cs.action[k][i], cs.mark[k][i]))
                                    for i in range(len(seeds))]) for k in cs.obs}
            feats: dict = {}
        else:
            rewards, feats = jax.device_get(program(reading.params, cs.obs, cs.mark, cs.action))
        rows = []
        for i, seed in enumerate(seeds):
            scored = {k: np.asarray(rewards[k][i], np.float64) for k in stim.KINDS}
            s = stim.empathy_index(scored)
            low = own_gap_ci_low(scored, seed)
            vicarious = float(np.mean(rewards["observe_goal"][i]) - np.mean(rewards["observe_near"][i]))
            row = {"empathy_index": s.index, "own_gap": s.own, "peer_gap": s.other, "vicarious_gap": vicarious,
                   "own_gap_ci_low": low, "input_distance": float(cs.input_distance[i])}
            if feats:
                f = {k: np.asarray(feats[k][i]) for k in stim.KINDS}
                row["self_other_distance"] = latent.self_other_distance(f["learner_goal"], f["peer_goal"])
                row["event_alignment"] = latent.event_alignment(f["learner_goal"], f["learner_near"],
                                                                f["peer_goal"], f["peer_near"])
                row["linear_cka"] = latent.linear_cka(f["learner_goal"], f["peer_goal"])
            else:
                row.update(self_other_distance=np.nan, event_alignment=np.nan, linear_cka=np.nan)
            if reading.oracle is not None:
                met = True
            elif reading.null:
                met = False
            else:
                met = (int(reading.n_rewarded[i]) >= thresholds.min_rewarded
                       and float(reading.heldout_r[i]) >= thresholds.min_heldout_r
                       and s.own >= thresholds.min_own_gap and low > 0 and cs.distinct[i] == 1.0)
            row["precondition_met"] = float(met)
            rows.append(row)
        out[cell] = rows
    return out


def oracles(view: str) -> dict[str, Any]:
    """The hand-built calibrations: ``oracle-own`` (index 0 by construction) and ``oracle-any`` (index 1)."""
    return {"oracle-own": stim.own_goal_model(view), "oracle-any": stim.any_agent_goal_model(view)}
