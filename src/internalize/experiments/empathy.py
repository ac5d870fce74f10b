"""The ``empathy`` study: does an ISR reward another agent's goal reaching, and does that change behaviour?

Beyond the paper. For every peer similarity level x observation view (``internalize.worlds.peer``) it runs one
ordinary :class:`~internalize.experiments.spec.Experiment` -- socialization with the goal caregiver, the ISR, and
an autonomous phase with and without the ISR (the behavioural consequence: does the ISR-driven learner let the
peer reach goals, ``peer_goals_per_episode``?) -- into ``OUT/<name>/runs/<name>-<similarity>-<view>/``. Then the
``empathy`` unit trains further ISRs of other widths on the same socialization data (ISR capacity), scores every
ISR on matched held-out stimuli (``internalize.analysis.empathy``) and writes one table, ``OUT/<name>/``, which
the report's empathy section reads.

Randomness: every sub-experiment derives from its seeds as any experiment does; a seed's stimuli come from
``fold_in(key(seed), STIMULUS_TAG)``, a key no training phase uses, identical across similarity levels, views
and widths (paired comparisons on the same layouts).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd

from internalize.agents.isr import check_isr_data, isr_reward, train_isr
from internalize.agents.isr_config import IsrConfig
from internalize.agents.isr_metrics import isr_metrics
from internalize.agents.ppo_config import PPOConfig
from internalize.analysis import empathy as probe
from internalize.experiments import phases
from internalize.experiments.paper import PAPER_PHASE, PAPER_SEEDS, QUICK_ISR, QUICK_LEARNER, QUICK_PHASE
from internalize.experiments.results import ResultsStore, rows_frame
from internalize.experiments.runner import Runner
from internalize.experiments.spec import PEER_BLOCKS, Experiment, WorldSpec, learner_config
from internalize.seeding import offset_seeds
from internalize.seeding import seed_offset as env_seed_offset
from internalize.worlds.peer import SIMILARITIES, VIEWS

STIMULUS_TAG = 0x5EE  # folded into a seed's root key for its held-out stimuli
#: Behavioural metrics copied from the sub-experiments' evaluations.
BEHAVIOUR = ("goals_per_episode", "peer_goals_per_episode", "peer_blocked_per_episode")


def _choices(name: str, values: tuple, allowed: tuple) -> None:
    if not values or len(set(values)) != len(values) or any(v not in allowed for v in values):
        raise ValueError(f"{name}: got {values!r}; allowed: distinct values among {' | '.join(allowed)}.")


@dataclass(frozen=True)
class EmpathyStudy:
    """The empathy probe as data; validated at construction (see the module docstring).

    Attributes:
      name: output sub-directory and table label.
      similarities: peer similarity levels (identical | colour | kind).
      views: observation views (egocentric | allocentric).
      isr_widths: ISR capacities probed (hidden-width multipliers); ``isr.width`` is the behaviour run's ISR and
        must be among them.
      conditions: autonomous-phase conditions for the behavioural consequence (none | isr | caregiver).
      n_blocks / peer_noise: the peer world's random blocks and the peer's random-action probability.
      socialization_steps / autonomy_steps / seeds / evaluation_episodes / learner / isr / chunk_rollouts: as in
        :class:`~internalize.experiments.spec.Experiment`, for every sub-experiment.
      n_stimuli: matched stimuli of each kind per (seed, world).
    """

    name: str = "empathy"
    title: str = "Empathy probe: does the ISR reward another agent's goal reaching?"
    similarities: tuple[str, ...] = SIMILARITIES
    views: tuple[str, ...] = VIEWS
    isr_widths: tuple[float, ...] = (0.25, 1.0, 4.0)
    conditions: tuple[str, ...] = ("none", "isr")
    n_blocks: int = PEER_BLOCKS
    peer_noise: float = 0.2
    socialization_steps: int = PAPER_PHASE
    autonomy_steps: int = PAPER_PHASE
    seeds: tuple[int, ...] = PAPER_SEEDS
    evaluation_episodes: int = 100
    n_stimuli: int = 256
    learner: PPOConfig = field(default_factory=learner_config)
    isr: IsrConfig = field(default_factory=lambda: IsrConfig(network="reference", encoding="onehot"))
    chunk_rollouts: int = 10
    figures: tuple[str, ...] = ("empathy",)

    def __post_init__(self) -> None:
        _choices("similarities", self.similarities, SIMILARITIES)
        _choices("views", self.views, VIEWS)
        if self.conditions:  # empty = no autonomous phase: the probe alone
            _choices("conditions", self.conditions, ("none", "isr", "caregiver"))
        if not self.isr_widths or any(not isinstance(w, (int, float)) or isinstance(w, bool) or not 0 < w <= 64
                                      for w in self.isr_widths) or len(set(self.isr_widths)) != len(self.isr_widths):
            raise ValueError(f"isr_widths: got {self.isr_widths!r}; allowed: distinct numbers in (0, 64].")
        if self.isr.width not in self.isr_widths:
            raise ValueError(f"isr.width: got {self.isr.width!r}; allowed: one of isr_widths {self.isr_widths!r} "
                             "(the behaviour run's ISR is also probed).")
        if self.isr.network == "policy" and set(self.isr_widths) != {1.0}:
            raise ValueError(f"isr.network: got 'policy' with isr_widths {self.isr_widths!r}; allowed: 'reference' "
                             "or 'mlp' (the policy network has one size), or isr_widths = (1.0,).")
        if not isinstance(self.n_stimuli, int) or isinstance(self.n_stimuli, bool) or self.n_stimuli < 1:
            raise ValueError(f"n_stimuli: got {self.n_stimuli!r}; allowed: a positive integer.")
        if len(self.seeds) < 2:
            raise ValueError(f"seeds: got {self.seeds!r}; allowed: at least 2 seeds (CIs and paired tests).")
        for exp in self.experiments():  # validates worlds, budgets and seeds now, before anything runs
            del exp

    def world(self, similarity: str, view: str) -> WorldSpec:
        return WorldSpec(f"peer-{similarity}-{view}", kind="peer", n_blocks=self.n_blocks, similarity=similarity,
                         view=view, peer_noise=self.peer_noise)

    def experiment(self, similarity: str, view: str) -> Experiment:
        w = self.world(similarity, view)
        return Experiment(
            name=f"{self.name}-{similarity}-{view}", title=f"{self.title} ({w.name})", socialization_world=w,
            autonomy_worlds=(w,), conditions=self.conditions, socialization_steps=self.socialization_steps,
            autonomy_steps=self.autonomy_steps, seeds=self.seeds, evaluation_episodes=self.evaluation_episodes,
            learner=self.learner, isr=self.isr, chunk_rollouts=self.chunk_rollouts, figures=("empathy-run",),
        )

    def experiments(self) -> list[Experiment]:
        return [self.experiment(s, v) for s in self.similarities for v in self.views]

    def with_seeds(self, n: int) -> EmpathyStudy:
        """The same study with the first ``n`` seeds (or more, continuing the sequence)."""
        return dataclasses.replace(self, seeds=self.experiment(self.similarities[0], self.views[0]).with_seeds(n).seeds)

    def to_dict(self) -> dict[str, Any]:
        # The worlds, named as the manifest's readers expect (one socialization world per similarity x view).
        worlds = [{"name": self.world(s, v).name} for s in self.similarities for v in self.views]
        return {**dataclasses.asdict(self), "socialization_world": {"name": "each of " + ", ".join(
            w["name"] for w in worlds)}, "autonomy_worlds": worlds if self.conditions else []}


def empathy_study(preset: str = "quick", seed_offset: int | None = None) -> EmpathyStudy:
    """The study under ``preset``: ``paper`` (the paper's learner and budgets, 10 seeds) or ``quick`` (minutes).

    ``seed_offset`` K shifts every seed by K (None: ``$INTERNALIZE_SEED_OFFSET``, default 0), as
    :func:`~internalize.experiments.paper.paper_experiment` does.
    """
    k = env_seed_offset() if seed_offset is None else env_seed_offset(seed_offset)
    if preset == "paper":
        return EmpathyStudy(seeds=offset_seeds(PAPER_SEEDS, k))
    if preset == "quick":
        # Six worlds of about 1.5 minutes each on 2 CPU cores; one extra (narrower) ISR per world keeps the probe cheap.
        return EmpathyStudy(socialization_steps=QUICK_PHASE, autonomy_steps=QUICK_PHASE,
                            seeds=offset_seeds(PAPER_SEEDS[:4], k),
                            isr_widths=(0.5, 1.0), evaluation_episodes=50, n_stimuli=128,
                            learner=QUICK_LEARNER, isr=QUICK_ISR)
    raise ValueError(f"preset: unknown preset {preset!r}; allowed: quick | paper.")


def stimulus_key(seed: int) -> jax.Array:
    return jax.random.fold_in(jax.random.key(seed), STIMULUS_TAG)


def _probe_rows(study: EmpathyStudy, exp: Experiment, runner: Runner, soc: Any, main_params: Any) -> list[dict]:
    """Rows of every ISR width x seed of one world: the index, its parts, and the ISR's held-out fit."""
    world, params = exp.socialization_world, exp.socialization_world.params()
    buffers = soc.actors.reward_state.buffer
    stimuli = [probe.build_stimuli(params, stimulus_key(s), study.n_stimuli) for s in exp.seeds]
    rows: list[dict] = []

    def add(condition: str, seed: int, metric: str, value: float) -> None:
        rows.append({"experiment": study.name, "condition": condition, "world": world.name, "seed": seed,
                     "phase": "empathy", "step": 0, "episode": np.nan, "metric": metric, "value": float(value)})

    stacked = {k: np.stack([st.obs[k] for st in stimuli]) for k in probe.KINDS}
    marks = {k: np.stack([st.mark[k] for st in stimuli]) for k in probe.KINDS}
    action = np.stack([st.action for st in stimuli])
    for width in study.isr_widths:
        wexp = dataclasses.replace(exp, isr=dataclasses.replace(exp.isr, width=float(width)))
        n_train = int(np.min(check_isr_data(phases.isr_config(wexp), buffers)["n_train"]))
        cfg = phases.isr_config(wexp, None, n_train, curve_points=10)
        if width == exp.isr.width:
            isr_params = main_params  # the behaviour run's own ISR
        else:
            isr_params, _, _ = jax.jit(jax.vmap(lambda b, k: train_isr(cfg, b, k)))(buffers, runner.keys.isr)
        fit = jax.device_get(jax.jit(jax.vmap(lambda p, b: isr_metrics(cfg, p, b)))(isr_params, buffers))
        # Every seed's ISR on that seed's stimuli, all seeds in one program.
        model = jax.jit(jax.vmap(lambda p, o, a, m: isr_reward(cfg, p, o, a, m)))
        rewards = {k: np.asarray(model(isr_params, stacked[k], action, marks[k]), np.float64) for k in probe.KINDS}
        label = f"isr-width-{width:g}"
        for i, seed in enumerate(exp.seeds):
            s = probe.empathy_index({k: rewards[k][i] for k in probe.KINDS})
            add(label, seed, "empathy_index", s.index)
            add(label, seed, "empathy_own", s.own)
            add(label, seed, "empathy_other", s.other)
            for kind, v in s.means.items():
                add(label, seed, f"isr_{kind}", v)
            add(label, seed, "isr_heldout_corr", fit["holdout/pearson"][i])
    # Calibration: hand-built models of index 0 and 1 on the same stimuli (the any-agent model reads the
    # peer's direction, which a ball does not show).
    calib = [("oracle-own", probe.own_goal_model(world.view))]
    if world.similarity != "kind":
        calib.append(("oracle-any", probe.any_agent_goal_model(world.view)))
    for label, model in calib:
        for i, seed in enumerate(exp.seeds):
            add(label, seed, "empathy_index", probe.empathy_index(probe.score(model, stimuli[i])).index)
    return rows


def _behaviour_rows(study: EmpathyStudy, df: pd.DataFrame) -> pd.DataFrame:
    """The sub-experiment's evaluation (behaviour) and goal curves, relabelled to the study."""
    keep = (df["phase"].eq("evaluation") & df["metric"].isin(BEHAVIOUR)) | df["metric"].eq("goals_per_episode")
    return df[keep].assign(experiment=study.name)


def run_empathy(study: EmpathyStudy, out: str | Path = "runs", *, force: bool = False, progress: bool = True,
                log: Callable[[str], None] = print) -> pd.DataFrame:
    """Run ``study`` into ``out/<study.name>/`` (sub-experiments under ``runs/``); returns its table.

    Finished sub-experiments and a finished study are loaded, not recomputed (``force`` recomputes all).
    """
    store = ResultsStore(out, study.name)
    with store.lock():
        return _run_empathy(study, store, force=force, progress=progress, log=log)


def _run_empathy(study: EmpathyStudy, store: ResultsStore, *, force: bool, progress: bool,
                 log: Callable[[str], None]) -> pd.DataFrame:
    store.claim(study.to_dict(), force=force)
    if store.is_complete():
        log(f"{study.name}: complete in {store.dir}, skipped (use --force to recompute)")
        return store.read_table()
    runs = store.dir / "runs"
    frames, probes, computed = [], [], 0.0
    for exp in study.experiments():
        started = time.perf_counter()
        runner = Runner(exp, runs, force=force, progress=progress, log=log)
        frames.append(_behaviour_rows(study, runner.run()))
        log(f"{exp.name}: {time.perf_counter() - started:.1f} s")
        probes.append((exp, runner))
        # What the sub-experiment's units took to compute (a loaded one keeps its recorded time).
        computed += sum((runner.store.read_manifest() or {}).get("timings", {}).values())
    unit = "empathy"
    if not store.unit_done(unit):
        started, rows = time.perf_counter(), []
        for exp, runner in probes:
            # The finished units load from their checkpoints: socialization data and the behaviour run's ISR.
            runner.units = []
            soc = runner.socialization()
            rows += _probe_rows(study, exp, runner, soc, runner.isr(soc))
        store.write_unit(unit, rows_frame(rows), time.perf_counter() - started)
    store.write_unit("behaviour", pd.concat(frames, ignore_index=True), computed)
    df = store.finish([unit, "behaviour"])
    log(f"{study.name}: {len(df)} rows -> {store.table_path}")
    return df
