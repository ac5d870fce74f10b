"""Rows of the results table from phase outputs, and the two units that are not PPO training (ISR, evaluation)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from internalize.agents.evaluate import evaluate
from internalize.agents.isr import check_isr_data, isr_init_params, isr_members, train_isr
from internalize.agents.isr_data import first_transitions
from internalize.agents.isr_ensemble import WRONG_BY, detection_auroc, disagreement, reduce_members
from internalize.agents.isr_metrics import isr_metrics_seeds
from internalize.experiments import phases
from internalize.experiments.lifecycle import Shared, UnitContext, initial_state, run_unit
from internalize.experiments.probes import Probe
from internalize.experiments.results import COLUMNS, rows_frame
from internalize.experiments.spec import Experiment

#: ISR metrics written once per ISR, at its last update: table name -> isr_metrics key.
ISR_FINAL = {
    "isr_heldout_balanced_mse": "holdout/balanced_mse",
    "isr_heldout_unbalanced_mse": "holdout/mse",
    "isr_heldout_corr": "holdout/pearson",
    "isr_heldout_true_corr": "holdout/true_pearson",
    "paid_heldout_true_corr": "holdout/paid_true_pearson",
    "isr_heldout_precision": "holdout/precision",
    "isr_heldout_recall": "holdout/recall",
    "isr_heldout_baseline_balanced_mse": "holdout/baseline_balanced_mse",
    "isr_train_balanced_mse": "train/balanced_mse",
    "isr_train_corr": "train/pearson",
    "isr_n_train": "train/n",
    "isr_n_heldout": "holdout/n",
}


def _frame(experiment: str, phase: str, labels: Sequence[dict], steps: np.ndarray, episodes: np.ndarray,
           values: dict[str, np.ndarray]) -> pd.DataFrame:
    """Long rows from (B, T) arrays: ``labels[b]`` gives condition/world/seed of run b; NaN values are dropped."""
    B, T = steps.shape
    parts = []
    for metric, v in values.items():
        v = np.asarray(v, np.float64).reshape(B, T)
        parts.append(pd.DataFrame({
            "run": np.repeat(np.arange(B), T), "step": steps.reshape(-1), "episode": episodes.reshape(-1),
            "metric": metric, "value": v.reshape(-1),
        }))
    df = pd.concat(parts, ignore_index=True).dropna(subset=["value"])
    lab = pd.DataFrame(list(labels))
    df = df.join(lab, on="run").drop(columns="run")
    df["experiment"], df["phase"] = experiment, phase
    if df.empty:
        return rows_frame([])
    return df[list(COLUMNS)].astype({"seed": "int64", "step": "int64", "episode": "float64", "value": "float64"})


def metrics_rows(experiment: str, phase: str, labels: Sequence[dict], metrics: dict[str, Any],
                 names: Sequence[str], episodes0: np.ndarray) -> pd.DataFrame:
    """Rows of PPO per-rollout metrics (each (B, T)); ``episode`` = cumulative episodes of each run."""
    steps = np.asarray(metrics["steps"], np.int64)
    cum = np.asarray(episodes0, np.float64)[:, None] + np.cumsum(np.asarray(metrics["episodes"], np.float64), axis=1)
    # The reward module's per-rollout metrics arrive as reward_<name> and are stored as <name>.
    values = {m.removeprefix("reward_"): metrics[m] for m in names if m in metrics}
    return _frame(experiment, phase, labels, steps, cum, values)


def socialization_rows(exp: Experiment) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Socialization is shared by all conditions of a seed (paired design): its rows appear under each one."""
    conditions = exp.conditions or ("caregiver",)

    def expand(df: pd.DataFrame) -> pd.DataFrame:
        return pd.concat([df.assign(condition=c) for c in conditions], ignore_index=True)

    return expand


@functools.lru_cache(maxsize=8)
def _fit_seeds(cfg: Any) -> Callable:
    """The jitted, seed-vmapped ``train_isr`` of ``cfg`` (static), made once: Figure 3b's sizes reuse it traced."""
    return jax.jit(jax.vmap(lambda b, k: train_isr(cfg, b, k)))


def _train_isrs(runner: UnitContext, cfg: Any, buffers: Any, keys: jax.Array, condition: str,
                holdout: Any = None) -> tuple[Any, pd.DataFrame]:
    """Train one ISR per seed (vmapped) and score it; returns ((S,)-batched params, its rows). ``holdout``: the
    config whose held-out transitions score it (default its own)."""
    exp = runner.exp
    # An ISR on the first n_data transitions trains on the buffer cut to them, under the config without n_data:
    # the same split and updates, with the size as data, so Figure 3b's sizes share one compiled program.
    fit_cfg, fit_buffers = cfg, buffers
    if cfg.n_data is not None:
        fit_cfg, fit_buffers = dataclasses.replace(cfg, n_data=None), first_transitions(buffers, cfg.n_data)
    with runner.progress.task(f"{exp.name}/isr ({condition})", total=cfg.n_updates, unit="updates") as bar:
        # Dispatch is asynchronous: wait for the result, or the bar reports the ISR done in a second while its
        # training (tens of seconds for a quick preset's 10 seeds) is charged to the metrics below.
        params, _, curve = jax.block_until_ready(_fit_seeds(fit_cfg)(fit_buffers, keys))
        bar.advance(cfg.n_updates)
    final = jax.device_get(isr_metrics_seeds(cfg, params, buffers, holdout=holdout))
    return params, _isr_rows(exp, condition, jax.device_get(curve), final, heldout_curve=holdout is None)


def isr_unit(runner: UnitContext, soc: Any) -> Any:
    """Train each seed's ISR on its whole socialization data; returns its parameters, (S,)-batched.

    The unit is the same for every experiment with the same socialization and ISR (Figure 3's full-data ISR is
    Figure 1b/4a's), so it is shared; Figure 3b's ISRs on less data are the ``isr-sizes`` unit.
    """
    exp, unit = runner.exp, "isr"
    buffers = soc.actors.reward_state.buffer
    obs_shape = tuple(buffers.obs.shape[2:])
    base = phases.isr_config(exp)
    template = initial_state(runner, jax.vmap(lambda k: isr_init_params(base, k, obs_shape)), runner.keys.isr)

    def compute() -> tuple[Any, pd.DataFrame, dict]:
        # One epoch is measured on the split itself (the same integer arithmetic the ISR trains with).
        n_full = int(np.min(check_isr_data(base, buffers)["n_train"]))
        cfg = phases.isr_config(exp, None, n_full, curve_points=100)
        params, rows = _train_isrs(runner, cfg, buffers, runner.keys.isr, "isr")
        return params, rows, {"unit": unit}

    shared = Shared(publish=lambda df: df, relabel=lambda df: df.assign(experiment=exp.name))
    return run_unit(runner, unit, compute, template=template, shared=shared).product


def isr_sizes_unit(runner: UnitContext, soc: Any) -> None:
    """Figure 3b (``isr.data_sizes``): for each size N below the whole socialization, an ISR (condition
    ``isr-data-N``) trained on the first floor((1 - holdout_fraction) N) transitions, for the updates
    ``isr.data_size_updates`` gives it, and scored on the full-data ISR's held-out transitions (the
    socialization's last 10%, after every size's training data): all sizes are scored on the same transitions,
    not each on the tail of its own first N, which would come from a different stage of the learner's policy.
    A size equal to the whole socialization is the full-data ISR itself (the ``isr`` unit), trained once.
    """
    exp, unit = runner.exp, "isr-sizes"
    store = runner.store
    if not store.unit_done(unit) and store.unit_done("isr") and \
            store.read_unit("isr")["condition"].str.startswith("isr-data-").any():
        # An output directory of an earlier version, whose isr unit holds the data-size ISRs too.
        return
    buffers = soc.actors.reward_state.buffer
    sizes = phases.isr_data_sizes(exp, int(np.max(jax.device_get(buffers.count))))
    if not sizes:
        return
    base = phases.isr_config(exp)

    def compute() -> tuple[None, pd.DataFrame, dict]:
        n_full = int(np.min(check_isr_data(base, buffers)["n_train"]))
        frames = []
        for n_data in sizes:
            # Of the data-size ISRs only the end point is used, so they log a coarse curve and spend their time
            # on training, not held-out batches.
            probe = phases.isr_config(exp, n_data, curve_points=10)
            n_train = int(np.min(check_isr_data(probe, buffers)["n_train"]))
            cfg = phases.isr_size_config(exp, n_data, n_train, n_full, curve_points=10)
            keys = jax.vmap(lambda k, n_data=n_data: jax.random.fold_in(k, n_data))(runner.keys.isr)
            frames.append(_train_isrs(runner, cfg, buffers, keys, f"isr-data-{n_data}", holdout=base)[1])
        return None, pd.concat(frames, ignore_index=True), {"unit": unit}

    run_unit(runner, unit, compute)


def _isr_rows(exp: Experiment, condition: str, curve: Any, final: dict[str, np.ndarray],
              heldout_curve: bool = True) -> pd.DataFrame:
    """``heldout_curve=False``: log only the final held-out MSE (the curve's points were sampled from the
    ISR's own split, ``final`` may score another held-out set: the two are not mixed under one metric)."""
    S = len(exp.seeds)
    labels = [{"condition": condition, "world": exp.socialization_world.name, "seed": s} for s in exp.seeds]
    steps = np.asarray(curve.update, np.int64).reshape(S, -1)
    heldout = np.asarray(curve.holdout_loss, np.float64).reshape(S, -1).copy()
    if not heldout_curve:
        heldout[:, :-1] = np.nan  # NaN values are not written
    # The last point of the held-out curve is exact: all held-out transitions, not a sample of them.
    heldout[:, -1] = np.asarray(final["holdout/balanced_mse"], np.float64)
    nan = np.full(steps.shape, np.nan)
    curve_df = _frame(exp.name, "isr", labels, steps, nan, {
        "isr_train_mse": curve.train_loss, "isr_heldout_mse": heldout,
    })
    last = steps[:, -1:]
    final_df = _frame(exp.name, "isr", labels, last, nan[:, -1:],
                      {name: np.asarray(final[key]).reshape(S, 1) for name, key in ISR_FINAL.items()})
    return pd.concat([curve_df, final_df], ignore_index=True)


def _isr_score(exp: Experiment) -> Callable[[Any, jax.Array, jax.Array], dict[str, jax.Array]]:
    """What an ISR ensemble makes of each evaluation step: R_i (reduced) and its members' std."""
    cfg = phases.isr_config(exp)

    def score(isr_params: Any, obs: jax.Array, action: jax.Array) -> dict[str, jax.Array]:
        members = isr_members(cfg, isr_params, obs, action)
        return {"internal": reduce_members(cfg, members), "isr_disagreement": disagreement(members)}

    return score


def _isr_trace_rows(trace: dict[str, np.ndarray], run: int) -> dict[str, float]:
    """Run ``run``'s ensemble metrics from its (horizon, episodes) evaluation trace, over the live steps."""
    live = np.asarray(trace["live"][run]) > 0.5
    internal, std = np.asarray(trace["internal"][run]), np.asarray(trace["isr_disagreement"][run])
    wrong = np.abs(internal - np.asarray(trace["social"][run])) > WRONG_BY
    return {"internal_return": float((internal * live).sum() / live.shape[-1]),
            "isr_disagreement": float(std[live].mean()), "isr_wrong_rate": float(wrong[live].mean()),
            "isr_detection_auroc": detection_auroc(std[live], wrong[live])}


def evaluation_unit(runner: UnitContext, finals: dict[tuple[str, str], Any], isr_params: Any = None) -> None:
    """Held-out deterministic episodes for every (condition, world, seed), on each world's own layouts.

    With an ISR ensemble (``isr.ensemble > 1``) every step is also scored by the seed's ensemble: rows
    ``internal_return`` (R_i per episode), ``isr_disagreement`` (mean member std over the steps), ``isr_wrong_rate``
    (share of steps with |R_i - R_s| > 0.2) and ``isr_detection_auroc`` (how well the disagreement tells those
    steps from the rest; NaN when either kind is absent)."""
    exp = runner.exp
    scored = isr_params is not None and exp.isr.ensemble > 1

    def compute() -> tuple[None, pd.DataFrame, dict]:
        network = phases.policy_network(exp)
        S = len(exp.seeds)
        soc_steps = exp.learner.phase_steps(exp.socialization_steps)
        aut_steps = exp.learner.phase_steps(exp.autonomy_steps)
        frames = []
        # The map is an argument, not a constant of the program: maps of one world kind (and horizon) share it.
        programs: dict[int, Callable] = {}
        for w_index, world in enumerate(exp.autonomy_worlds):
            conditions = [c for c in exp.conditions if (c, world.name) in finals]
            params = jax.tree.map(lambda *xs: jnp.concatenate(xs), *[finals[(c, world.name)] for c in conditions])
            keys = jnp.concatenate([phases.evaluation_keys(runner.keys, w_index)] * len(conditions))
            wp = phases.world_params(exp, world)
            horizon = int(wp.max_steps)
            if horizon not in programs:
                def one(p, k, on, ip, h=horizon):
                    score = functools.partial(_isr_score(exp), ip) if scored else None
                    return evaluate(network.apply, p, runner.world, on, k, exp.evaluation_episodes, horizon=h,
                                    score=score)

                programs[horizon] = jax.jit(jax.vmap(one, in_axes=(0, 0, None, 0 if scored else None)))
            n_cond = len(conditions)
            tiled = jax.tree.map(lambda x, n=n_cond: jnp.concatenate([x] * n), isr_params) if scored else None
            out = jax.device_get(programs[horizon](params, keys, wp, tiled))
            if scored:
                trace = out.pop("trace")
                extra = [_isr_trace_rows(trace, r) for r in range(len(conditions) * S)]
                out.update({m: np.asarray([e[m] for e in extra]) for m in extra[0]})
            labels = [{"condition": c, "world": world.name, "seed": s} for c in conditions for s in exp.seeds]
            steps = np.asarray([soc_steps + (aut_steps if exp.condition(c).learns else 0) for c in conditions
                                for _ in range(S)], np.int64)[:, None]
            episodes = np.full(steps.shape, float(exp.evaluation_episodes))
            frames.append(_frame(exp.name, "evaluation", labels, steps, episodes,
                                 {m: np.asarray(v).reshape(-1, 1) for m, v in out.items()}))
        return None, pd.concat(frames, ignore_index=True), {}

    run_unit(runner, "evaluation", compute)


def probe_unit(runner: UnitContext, probe: Probe, soc: Any, isr_params: Any) -> None:
    """One of the experiment's probes (``experiments.probes``) as a unit named by its kind; its rows join the
    table."""

    def compute() -> tuple[None, pd.DataFrame, dict]:
        return None, rows_frame(probe.rows(runner.exp, runner.keys, soc, isr_params)), {}

    run_unit(runner, probe.kind, compute)
