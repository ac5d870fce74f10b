"""The ``empathy`` study: does an ISR reward another agent's goal reaching, and does that change behaviour?

Beyond the paper. For every peer similarity level x observation view (``internalize.worlds.peer``) it runs one
ordinary :class:`~internalize.experiments.spec.Experiment` -- socialization with the goal caregiver, the ISR, an
autonomous phase with and without the ISR (the behavioural consequence: does the ISR-driven learner let the
peer reach goals, ``peer_goals_per_episode``?) and the empathy probe unit (``empathy.unit``: ISRs of several
widths scored on matched held-out stimuli) -- into ``OUT/<name>/runs/<name>-<similarity>-<view>/``. The study
gathers their probe and behaviour rows into one table, ``OUT/<name>/``, which the report's empathy section reads.

The learned positive control (``positive_control``): per view, one more experiment in the identical-peer world whose
caregivers pay for the learner's goals *and* for the peer's (``peer_goal``); its ISR, probed on the same stimuli
(condition ``positive-control``), must read an index near 1, or the instrument cannot see a peer's reward when there
is one and the study says so.

Randomness: every sub-experiment derives from its seeds as any experiment does; the stimuli from keys no
training phase uses (``empathy.unit.stimulus_key``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from internalize.agents.isr_config import IsrConfig
from internalize.agents.ppo_config import PPOConfig
from internalize.empathy.unit import EmpathyProbe
from internalize.experiments.identity import identity, identity_fields
from internalize.experiments.paper import PAPER_PHASE, PAPER_SEEDS, QUICK_ISR, QUICK_LEARNER, QUICK_PHASE
from internalize.experiments.results import ResultsStore
from internalize.experiments.runner import Runner
from internalize.experiments.spec import Experiment, WorldSpec, dataclass_from_dict, learner_config
from internalize.seeding import offset_seeds
from internalize.seeding import seed_offset as env_seed_offset
from internalize.social.caregiver import Caregiver
from internalize.worlds.kinds import PEER_BLOCKS
from internalize.worlds.peer import SIMILARITIES, VIEWS

#: Behavioural metrics copied from the sub-experiments' evaluations.
BEHAVIOUR = ("goals_per_episode", "peer_goals_per_episode", "peer_blocked_per_episode")


def _choices(name: str, values: tuple, allowed: tuple) -> None:
    if not values or len(set(values)) != len(values) or any(v not in allowed for v in values):
        raise ValueError(f"{name}: got {values!r}; allowed: distinct values among {' | '.join(allowed)}.")


@dataclass(frozen=True)
class EmpathyStudy:
    """The empathy study as data; validated at construction (see the module docstring).

    Attributes:
      name: output sub-directory and table label.
      similarities: peer similarity levels (identical | colour | kind; kind is not run by default).
      views: observation views (egocentric | allocentric).
      isr_widths, n_stimuli: the probe of every sub-experiment (``empathy.unit.EmpathyProbe``); ``isr.width``, the
        behaviour run's ISR, must be among the widths.
      conditions: autonomous-phase conditions for the behavioural consequence (none | isr | caregiver).
      n_blocks / peer_noise: the peer world's random blocks and the peer's random-action probability.
      positive_control: run the learned positive control (see the module docstring).
      socialization_steps / autonomy_steps / seeds / evaluation_episodes / learner / isr / chunk_rollouts: as in
        :class:`~internalize.experiments.spec.Experiment`, for every sub-experiment.
    """

    name: str = "empathy"
    title: str = "Empathy probe: does the ISR reward another agent's goal reaching?"
    # A ball (similarity "kind") has no heading, so its peer-goal and peer-near stimuli are the same input and its
    # index can never be read (the probe's stimuli_distinct precondition): not run unless asked for.
    similarities: tuple[str, ...] = ("identical", "colour")
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
    positive_control: bool = True

    def __post_init__(self) -> None:
        _choices("similarities", self.similarities, SIMILARITIES)
        _choices("views", self.views, VIEWS)
        if self.conditions:  # empty = no autonomous phase: the probe alone
            _choices("conditions", self.conditions, ("none", "isr", "caregiver"))
        if len(self.seeds) < 2:
            raise ValueError(f"seeds: got {self.seeds!r}; allowed: at least 2 seeds (CIs and paired tests).")
        for exp in self.experiments():  # validates worlds, budgets, seeds and the probe now, before anything runs
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
            probes=(EmpathyProbe(isr_widths=self.isr_widths, n_stimuli=self.n_stimuli),),
        )

    def control(self, view: str) -> Experiment:
        """The learned positive control of ``view``: the identical peer, a caregiver paying for the learner's goals
        and one paying for the peer's; socialization, its ISR and the probe (no autonomous phase)."""
        w = self.world("identical", view)
        return Experiment(
            name=f"{self.name}-positive-control-{view}", title=f"{self.title} (positive control, {w.name})",
            socialization_world=w, autonomy_worlds=(w,), conditions=(), socialization_steps=self.socialization_steps,
            autonomy_steps=self.autonomy_steps, seeds=self.seeds, evaluation_episodes=0, learner=self.learner,
            isr=self.isr, chunk_rollouts=self.chunk_rollouts, figures=("empathy-run",),
            caregiver=(Caregiver(event="goal"), Caregiver(event="peer_goal")),
            probes=(EmpathyProbe(isr_widths=(self.isr.width,), n_stimuli=self.n_stimuli, label="positive-control"),),
        )

    def experiments(self) -> list[Experiment]:
        controls = [self.control(v) for v in self.views] if self.positive_control else []
        return [self.experiment(s, v) for s in self.similarities for v in self.views] + controls

    def with_seeds(self, n: int) -> EmpathyStudy:
        """The same study with the first ``n`` seeds (or more, continuing the sequence)."""
        return dataclasses.replace(self, seeds=self.experiment(self.similarities[0], self.views[0]).with_seeds(n).seeds)

    def to_dict(self) -> dict[str, Any]:
        """Every field's value, and the worlds named as the manifest's readers expect (one socialization world per
        similarity x view): what the study's manifest records."""
        worlds = [{"name": self.world(s, v).name} for s in self.similarities for v in self.views]
        return {**dataclasses.asdict(self), "socialization_world": {"name": "each of " + ", ".join(
            w["name"] for w in worlds)}, "autonomy_worlds": worlds if self.conditions else []}

    def identity(self) -> dict[str, Any]:
        """What decides whether the study's stored work belongs to it (``experiments.identity``): the values that
        differ from their defaults."""
        return identity(identity_fields(self))

    @classmethod
    def identity_of(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """The :meth:`identity` of the study a stored config (:meth:`to_dict`, as JSON) describes (its worlds are
        derived, for the reader, and left out); ``ValueError`` if this version cannot read it."""
        fields_ = {k: v for k, v in config.items() if k not in ("socialization_world", "autonomy_worlds")}
        return dataclass_from_dict(cls, fields_).identity()


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


def _behaviour_rows(study: EmpathyStudy, df: pd.DataFrame) -> pd.DataFrame:
    """The sub-experiment's evaluation (behaviour) and goal curves, relabelled to the study."""
    keep = (df["phase"].eq("evaluation") & df["metric"].isin(BEHAVIOUR)) | df["metric"].eq("goals_per_episode")
    return df[keep].assign(experiment=study.name)


def _probe_rows(study: EmpathyStudy, df: pd.DataFrame) -> pd.DataFrame:
    """The sub-experiment's empathy probe rows, relabelled to the study."""
    return df[df["phase"].eq(EmpathyProbe.kind)].assign(experiment=study.name)


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
    store.claim(study.to_dict(), force=force, identify=EmpathyStudy.identity_of)
    if store.is_complete():
        log(f"{study.name}: complete in {store.dir}, skipped (use --force to recompute)")
        return store.read_table()
    runs = store.dir / "runs"
    behaviour, probed, computed = [], [], {"empathy": 0.0, "behaviour": 0.0}
    for exp in study.experiments():
        started = time.perf_counter()
        runner = Runner(exp, runs, force=force, progress=progress, log=log)
        df = runner.run()
        if not any(p.label for p in exp.probes):  # a control's behaviour is not the study's question
            behaviour.append(_behaviour_rows(study, df))
        probed.append(_probe_rows(study, df))
        log(f"{exp.name}: {time.perf_counter() - started:.1f} s")
        # What the sub-experiment's units took to compute (a loaded one keeps its recorded time): its probe's to
        # the study's probe, the rest to its behaviour.
        for unit, seconds in (runner.store.read_manifest() or {}).get("timings", {}).items():
            computed["empathy" if unit == EmpathyProbe.kind else "behaviour"] += seconds
    store.write_unit("empathy", pd.concat(probed, ignore_index=True), computed["empathy"])
    store.write_unit("behaviour", pd.concat(behaviour, ignore_index=True), computed["behaviour"])
    df = store.finish(["empathy", "behaviour"])
    log(f"{study.name}: {len(df)} rows -> {store.table_path}")
    return df
