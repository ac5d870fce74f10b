"""Run any Experiment: seeds vmapped, phases in jitted chunks, checkpoints, resume, one results table.

(This is the ``vmap`` layout; ``experiments.layout`` also runs an experiment one seed per worker process.)

An experiment is a sequence of *units*, each a phase of all its seeds (and conditions) in one compiled program:

1. ``socialization`` — all seeds with the experiment's caregiver (present on its schedule; the paper: always);
   every transition it was present for is stored for the ISR;
2. ``isr`` — each seed's ISR trained on its socialization data; for Figure 3b, ``isr-sizes`` trains one on the
   first N transitions for each N below the whole socialization, all scored on the full-data ISR's held-out
   transitions (``units.isr_sizes_unit``);
3. ``autonomy-<world>`` — every learning condition x seed continuing its socialization model on that world,
   vmapped together (the conditions differ only in data: caregiver flag and ISR weight); a condition with a
   gradual schedule runs alone (``autonomy-<world>-<condition>``) and one that continues on the socialization
   world in ``autonomy-<condition>`` (``autonomy-frozen-continued``); see ``phases.autonomy_groups``;
4. ``evaluation`` — held-out deterministic episodes for every (condition, world, seed);
5. one unit per probe (``experiments.probes``, e.g. ``empathy``) — questions asked of the socialization data and
   the full-data ISR.

Every unit goes through one lifecycle (``experiments.lifecycle.run_unit``): a finished unit leaves its rows in
``units/<unit>.parquet`` and its product (final states) in ``checkpoints/<unit>/final.ckpt``, and a rerun loads
it; an identical unit another experiment finished is taken from ``OUT/.shared``. A unit in progress is
checkpointed between chunks (at most every ``checkpoint_seconds``, and less often when a checkpoint takes over a
tenth of that to write; 0 = after every chunk); a rerun after an interruption resumes from the last checkpoint
and, the programs being deterministic on CPU, produces the same numbers as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from internalize.agents.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from internalize.agents.isr_data import isr_buffer_extend
from internalize.agents.ppo import check_finite, make_seeds_runner, make_train
from internalize.experiments import phases
from internalize.experiments.gifs import learner_gifs
from internalize.experiments.lifecycle import Shared, initial_state, run_unit
from internalize.experiments.progress import Progress
from internalize.experiments.results import ResultsStore
from internalize.experiments.shared import SharedUnits
from internalize.experiments.spec import Experiment, WorldSpec
from internalize.experiments.units import (
    evaluation_unit,
    isr_sizes_unit,
    isr_unit,
    metrics_rows,
    probe_unit,
    socialization_rows,
)
from internalize.social.conditions import Condition
from internalize.storage import CorruptFile, read_parquet_verified, remove_verified, write_parquet_verified

#: Per-rollout learner metrics written to the results table.
LOGGED = ("goals_per_episode", "social_return", "paid_return", "extrinsic_return", "utility_return",
          "internal_return", "presence_return", "reward_presence_rate", "episodes", "policy_loss", "value_loss",
          "entropy", "approx_kl", "clip_fraction",
          # a condition that keeps internalizing: the ISR's mean training loss after each rollout
          "reward_isr_loss",
          # an ISR ensemble's mean member std over the rollout; the policy's KL from its departure policy
          "reward_isr_disagreement", "kl_from_departure")
#: With several caregivers, each one's metrics (``social.internalization.caregiver_labels``) are logged too.
PER_CAREGIVER = ("paid_return/", "presence_return/", "reward_presence_rate/")


def logged(metrics: dict) -> tuple[str, ...]:
    """The metrics of a training unit that go into the table: :data:`LOGGED`, the world's own per-episode counts
    (``<stem>_per_episode``, ``agents.rollout.count_keys``: the prosocial world's lifts, the two-goal world's goals
    of each colour) and the per-caregiver ones."""
    counts = sorted(m for m in metrics if m.endswith("_per_episode") and m not in LOGGED)
    return LOGGED + tuple(counts) + tuple(sorted(m for m in metrics if m.startswith(PER_CAREGIVER)))


#: The key ``Runner.trained`` gives the socialized learner (beside the conditions' names).
SOCIALIZATION = "socialization"


class Runner:
    """Executes one Experiment into ``out/<name>/``; see the module docstring."""

    def __init__(self, exp: Experiment, out: str | Path = "runs", *, force: bool = False,
                 progress: bool | Progress = True,
                 checkpoint_seconds: float = 30.0, log: Callable[[str], None] = print, gifs: bool = False):
        self.exp = exp
        self.gifs = gifs  # write out/<name>/gifs/<condition>.gif at the end (experiments.gifs)
        self.store = ResultsStore(out, exp.name, warn=log)
        self.force = force
        self.progress = progress if isinstance(progress, Progress) else Progress(enabled=progress)
        self.checkpoint_seconds = checkpoint_seconds
        self.log = log
        self.world = phases.env(exp)  # every world of an experiment is of this kind
        self.keys = phases.seed_keys(exp.seeds)
        self.units: list[str] = []
        # --force recomputes everything, shared units included (and republishes them).
        self.shared = SharedUnits(out)
        self.reuse_shared = not force
        self.load_only = False

    # ----------------------------------------------------------------------------------------------- driver
    def run(self) -> pd.DataFrame:
        """Run every unit not yet done, holding the output directory's lock (a second run is refused)."""
        with self.store.lock():
            return self._run()

    def _run(self) -> pd.DataFrame:
        exp = self.exp
        # Raises before anything is written on a mismatch; a setting added since at its default is no mismatch.
        self.store.claim(exp.to_dict(), force=self.force, identify=Experiment.identity_of)
        if self.store.is_complete():
            self.log(f"{exp.name}: complete in {self.store.dir}, skipped (use --force to recompute)")
            return self.store.read_table()
        soc, isr_params = self._socialized()
        if exp.isr.data_sizes:
            isr_sizes_unit(self, soc)
        finals = self._trained(soc, isr_params)
        if exp.evaluation_episodes and finals:
            self.evaluation(finals, isr_params)
        for probe in exp.probes:
            probe_unit(self, probe, soc, isr_params)
        if self.gifs and finals:
            learner_gifs(exp, finals, self.store.dir / "gifs")
        df = self.store.finish(self.units)
        self.log(f"{exp.name}: {len(df)} rows -> {self.store.table_path}")
        return df

    def trained(self, worlds: tuple[str, ...] | None = None) -> dict[tuple[str, str], Any]:
        """The policy parameters every (condition, autonomy world) ends with, each batched over the seeds, and the
        end of socialization as ``("socialization", <socialization world>)``, loaded from this experiment's finished
        units (``internalize play --from``); nothing is computed: a unit that is not finished, or whose trained
        state was cleaned away, raises ``LookupError``; a directory of another configuration, ``ValueError`` (as a
        run would). ``worlds``: load only the learners of these autonomy worlds (all when None)."""
        self.store.attach(self.exp.to_dict(), Experiment.identity_of)
        self.load_only = True
        try:
            soc, isr_params = self._socialized()
            return {**self._trained(soc, isr_params, worlds),
                    (SOCIALIZATION, self.exp.socialization_world.name): soc.params}
        finally:
            self.load_only = False

    def _socialized(self) -> tuple[Any, Any]:
        """The socialization's final state and, where a condition, Figure 3b or a probe needs it, the ISR's
        parameters (else None)."""
        exp = self.exp
        soc = self.socialization()
        uses_isr = any(exp.condition(c).isr for c in exp.conditions)
        return soc, self.isr(soc) if (uses_isr or exp.isr.data_sizes or exp.probes) else None

    def _trained(self, soc: Any, isr_params: Any,
                 worlds: tuple[str, ...] | None = None) -> dict[tuple[str, str], Any]:
        exp = self.exp
        finals: dict[tuple[str, str], Any] = {}
        for unit, world, w_index, conditions in phases.autonomy_groups(exp):
            places = {c.name: [world] if c.world == "autonomy" else list(exp.autonomy_worlds) for c in conditions}
            if worlds is not None and not any(p.name in worlds for ps in places.values() for p in ps):
                continue
            trained = self.autonomy(unit, world, w_index, conditions, soc, isr_params)
            for c in conditions:  # a condition that continued on the socialization world is scored on every world
                for place in places[c.name]:
                    finals[(c.name, place.name)] = trained[(c.name, world.name)]
        for c in exp.conditions:
            if not exp.condition(c).learns:
                for world in exp.autonomy_worlds:
                    finals[(c, world.name)] = soc.params
        return finals

    # ------------------------------------------------------------------------------------------------ units
    def socialization(self) -> Any:
        exp, unit = self.exp, "socialization"
        params = phases.world_params(exp, exp.socialization_world)
        obs_shape = self.world.observation_shape(params)
        learner = make_train(phases.ppo_config(exp, exp.socialization_steps), self.world, params,
                             phases.socialization_reward(exp, obs_shape))
        seeds = make_seeds_runner(learner, donate=True)
        states = initial_state(self, seeds.init, self.keys.socialization)
        n = exp.learner.rollouts(exp.socialization_steps)
        labels = [{"condition": "caregiver", "world": exp.socialization_world.name, "seed": s} for s in exp.seeds]

        def rows(metrics, episodes0):
            return metrics_rows(exp.name, "socialization", labels, metrics, logged(metrics), episodes0)

        expand = socialization_rows(exp)
        first = (exp.conditions or ("caregiver",))[0]
        # Shared as computed: the rows of one condition, under the label socialization runs with.
        shared = Shared(publish=lambda df: df[df["condition"] == first].assign(condition="caregiver"),
                        relabel=lambda df: expand(df.assign(experiment=exp.name)))
        def train() -> tuple[Any, pd.DataFrame, dict]:
            self._continue_prefix(unit, states)
            return self._train(unit, seeds.run, states, n, rows, expand=expand)

        done = self._run_training(unit, states, train, shared)
        self._episodes_after_socialization = np.asarray(done.meta["episodes"], np.float64)
        return done.product

    def _continue_prefix(self, unit: str, states: Any) -> None:
        """Start the socialization from the longest finished shorter one of the same run in ``.shared`` (same
        learner, world, caregivers, seeds; fewer steps), if there is one and nothing of this unit was computed yet:
        its final state, the buffer widened to this phase, and its rows become this unit's resume checkpoint."""
        exp = self.exp
        partial = self.store.checkpoint_dir(unit) / "partial.ckpt"
        found = None if partial.exists() or not self.reuse_shared else self.shared.longest_prefix(exp)
        if found is None:
            return
        entry, steps = found
        short = dataclasses.replace(exp, socialization_steps=steps)
        cap = phases.socialization_capacity(short)
        buffer = states.actors.reward_state.buffer
        # The shorter run's state has its own (smaller) buffer: load it into that shape, then widen it.
        narrow = buffer.replace(obs=buffer.obs[:, :cap], action=buffer.action[:, :cap],
                                social=buffer.social[:, :cap], true_social=buffer.true_social[:, :cap])
        template = states.replace(actors=states.actors._replace(
            reward_state=states.actors.reward_state.replace(buffer=narrow)))
        try:
            prefix, meta = load_checkpoint(entry / "final.ckpt", template)
            rows = read_parquet_verified(entry / "rows.parquet")
        except (CheckpointError, CorruptFile) as err:
            self.log(f"warning: {exp.name}/{unit}: shared prefix {entry} not usable ({err}); computing from scratch")
            return
        wide = jax.vmap(lambda b: isr_buffer_extend(b, buffer.capacity))(prefix.actors.reward_state.buffer)
        prefix = prefix.replace(actors=prefix.actors._replace(
            reward_state=prefix.actors.reward_state.replace(buffer=wide)))
        done = exp.learner.rollouts(steps)
        self._save_partial(partial, prefix, [rows.assign(experiment=exp.name)], done,
                           np.asarray(meta["episodes"], np.float64))
        self.log(f"{exp.name}/{unit}: continuing the finished {steps:,}-step socialization of the same run "
                 f"({entry.name})")

    def isr(self, soc: Any) -> Any:
        return isr_unit(self, soc)

    def autonomy(self, unit: str, world: WorldSpec, w_index: int, conditions: list[Condition], soc: Any,
                 isr_params: Any) -> dict[tuple[str, str], Any]:
        exp = self.exp
        S = len(exp.seeds)
        params = phases.world_params(exp, world)
        obs_shape = self.world.observation_shape(params)
        start = int(np.asarray(soc.actors.steps).reshape(-1)[0])
        reward = phases.autonomy_reward(exp, obs_shape, conditions, start)
        learner = make_train(phases.ppo_config(exp, exp.autonomy_steps), self.world, params, reward)
        seeds = make_seeds_runner(learner, donate=True)
        keys = jnp.concatenate([phases.autonomy_keys(self.keys, c, w_index) for c in conditions])
        tile = lambda tree: jax.tree.map(lambda x: jnp.concatenate([x] * len(conditions)), tree)  # noqa: E731 - local
        from internalize.social.internalization import with_isr, with_run_flags

        caregiver, weight = phases.run_flags(conditions, S)

        internalizes = len(conditions) == 1 and conditions[0].internalizes

        def init(keys: jax.Array, soc_params: Any, soc_opt: Any, isr_params: Any, soc_buffer: Any) -> Any:
            rstate = jax.vmap(reward.init_state, in_axes=(0, None))(keys, exp.learner.n_envs)
            rstate = with_run_flags(rstate, caregiver, weight)
            if isr_params is not None:
                rstate = with_isr(rstate, tile(isr_params))
            if internalizes:  # it goes on from everything it stored while socialized
                capacity = phases.internalization_capacity(exp)
                rstate = rstate.replace(buffer=jax.vmap(lambda b: isr_buffer_extend(b, capacity))(soc_buffer))
            return seeds.init(keys, tile(soc_params), tile(soc_opt), rstate, start)

        soc_buffer = soc.actors.reward_state.buffer if internalizes else None
        states = initial_state(self, init, keys, soc.params, soc.opt_state, isr_params, soc_buffer)
        labels = [{"condition": c.name, "world": world.name, "seed": s} for c in conditions for s in exp.seeds]
        n = exp.learner.rollouts(exp.autonomy_steps)
        episodes0 = np.concatenate([self._episodes_after_socialization] * len(conditions))

        def rows(metrics, episodes):
            return metrics_rows(exp.name, "autonomy", labels, metrics, logged(metrics), episodes)

        # Every rollout also measures how far the policy has moved from the one that left the caregiver.
        run = functools.partial(seeds.run, anchor=tile(soc.params))
        final = self._run_training(unit, states, lambda: self._train(unit, run, states, n, rows,
                                                                     episodes0=episodes0)).product
        out = {}
        for i, c in enumerate(conditions):
            out[(c.name, world.name)] = jax.tree.map(lambda x, i=i: x[i * S:(i + 1) * S], final.params)
        return out

    def evaluation(self, finals: dict[tuple[str, str], Any], isr_params: Any = None) -> None:
        evaluation_unit(self, finals, isr_params)

    # ------------------------------------------------------------------------------------ chunked training
    def _train(self, unit: str, run: Callable, states: Any, n_rollouts: int,
               rows: Callable[[dict, np.ndarray], list[dict]], *, expand: Callable | None = None,
               episodes0: np.ndarray | None = None) -> tuple[Any, pd.DataFrame, dict]:
        """Run ``n_rollouts`` in chunks, checkpointing between them and resuming from the last checkpoint;
        returns (final states, the unit's rows, meta) for :func:`~internalize.experiments.lifecycle.run_unit`."""
        ckpt_dir = self.store.checkpoint_dir(unit)
        partial_path = ckpt_dir / "partial.ckpt"
        batch = int(np.asarray(states.rollouts).size)
        done, frames = 0, []
        episodes = np.zeros(batch) if episodes0 is None else np.asarray(episodes0, np.float64)
        if partial_path.exists():
            try:
                resumed, meta = load_checkpoint(partial_path, states)
                if meta.get("identity") != self.store.identity:
                    raise CheckpointError(f"{partial_path}: written for another configuration")
                partial_rows = read_parquet_verified(ckpt_dir / meta["rows"], self.store.identity)
            except (CheckpointError, CorruptFile, KeyError, TypeError) as err:
                # A damaged checkpoint is never resumed from: the unit starts again (same numbers on CPU).
                partial_path.unlink()
                self.log(f"warning: {self.exp.name}/{unit}: checkpoint not usable ({err}); starting the unit again")
            else:
                states, frames = resumed, [partial_rows]
                done, episodes = int(meta["done"]), np.asarray(meta["episodes"], np.float64)
                self.log(f"{self.exp.name}/{unit}: resuming after rollout {done}/{n_rollouts}")
        chunk = _chunk(n_rollouts, self.exp.chunk_rollouts)
        steps_per_rollout = self.exp.learner.rollout_steps * batch
        last_save = time.perf_counter()
        interval = self.checkpoint_seconds
        with self.progress.task(f"{self.exp.name}/{unit}", total=n_rollouts * steps_per_rollout,
                                completed=done * steps_per_rollout) as bar:
            while done < n_rollouts:
                # A unit continued from a shorter one may start off the chunk grid: its last chunk is shorter.
                ran = min(chunk, n_rollouts - done)
                states, metrics = run(states, ran)
                metrics = jax.device_get(metrics)
                check_finite(metrics, context=f"{self.exp.name}/{unit}")
                frames.append(rows(metrics, episodes))
                episodes = episodes + np.asarray(metrics["episodes"]).sum(axis=-1)
                done += ran
                bar.advance(ran * steps_per_rollout)
                if done < n_rollouts and time.perf_counter() - last_save >= interval:
                    t0 = time.perf_counter()
                    self._save_partial(partial_path, states, frames, done, episodes)
                    last_save = time.perf_counter()
                    # A big state (the socialization buffer holds every transition) takes seconds to write:
                    # save at most ~10% of the time, unless every chunk was asked for (checkpoint_seconds=0).
                    if self.checkpoint_seconds > 0:
                        interval = max(self.checkpoint_seconds, 10 * (last_save - t0))
        df = pd.concat(frames, ignore_index=True)
        if expand is not None:
            df = expand(df)
        return states, df, {"done": done, "episodes": episodes.tolist()}

    def _run_training(self, unit: str, states: Any, train: Callable[[], tuple[Any, pd.DataFrame, dict]],
                      shared: Shared | None = None) -> Any:
        """A training unit through :func:`run_unit`; its resume checkpoint is dropped once the unit is stored."""
        done = run_unit(self, unit, train, template=states, shared=shared)
        ckpt_dir = self.store.checkpoint_dir(unit)
        (ckpt_dir / "partial.ckpt").unlink(missing_ok=True)
        for stale in ckpt_dir.glob("rows-*.parquet"):
            remove_verified(stale)
        return done

    def _save_partial(self, path: Path, states: Any, frames: list[pd.DataFrame], done: int,
                      episodes: np.ndarray) -> None:
        """Checkpoint a unit in progress: the rows so far under a new name, then the state that names them.

        The state file is replaced last and atomically, so whatever instant a crash happens, the checkpoint on
        disk pairs a state with exactly the rows logged up to it.
        """
        rows_name = f"rows-{done:06d}.parquet"
        write_parquet_verified(path.parent / rows_name, pd.concat(frames, ignore_index=True), self.store.identity)
        save_checkpoint(path, states, {"done": done, "episodes": episodes.tolist(), "rows": rows_name,
                                       "identity": self.store.identity}, compress="integers")
        for old in path.parent.glob("rows-*.parquet"):
            if old.name != rows_name:
                remove_verified(old)


def _chunk(n: int, preferred: int) -> int:
    """The largest divisor of ``n`` not above ``preferred`` (one compiled chunk length for the whole phase)."""
    for c in range(min(preferred, n), 0, -1):
        if n % c == 0:
            return c
    return 1


def run_experiment(exp: Experiment, out: str | Path = "runs", *, force: bool = False, progress: bool = True,
                   log: Callable[[str], None] = print, gifs: bool = False) -> pd.DataFrame:
    """Run ``exp`` into ``out/<exp.name>/`` (skipping finished units, resuming an interrupted one); ``gifs``: also
    record each condition's learner for the report (``experiments.gifs``)."""
    return Runner(exp, out, force=force, progress=progress, log=log, gifs=gifs).run()
