"""The studies as data: each names its file, its question and prediction, its presets and its report section.

``quick`` is the study's file as shipped (2-core CPU, at most about 20 minutes, at least 8 seeds); ``paper`` adds
``--set``/``--grid`` settings for the paper's budgets (Figures 4b and 7), 10 seeds and the full grid, with the same
learner and ISR (a study compares its cells with each other, not with the paper's numbers). Running a study is
running its sweep (``experiments.sweep``) with the study's section recorded in the sweep's manifest, so the report
of the output directory draws it.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from internalize.experiments.sweep import Sweep, load_sweep

PRESETS = ("quick", "paper")


@dataclass(frozen=True)
class Study:
    """One study: ``name`` (its file ``NAME.toml`` here and its output sub-directory), a one-line ``title``, the
    ``question`` and ``prediction`` stated before any result, and the ``paper`` preset's ``--set`` and ``--grid``
    options. Its report section is ``internalize.studies.<module>:section``."""

    name: str
    module: str
    title: str
    question: str
    prediction: str
    paper_set: tuple[str, ...] = ()
    paper_grid: tuple[str, ...] = ()

    @property
    def file(self) -> Path:
        return Path(str(resources.files("internalize.studies").joinpath(f"{self.module}.toml")))

    @property
    def section(self) -> str:
        return f"internalize.studies.{self.module}:section"

    def sweep(self, preset: str = "quick") -> Sweep:
        """The study's sweep under ``preset`` (``ValueError`` naming the allowed presets for another)."""
        if preset not in PRESETS:
            raise ValueError(f"--preset: got {preset!r}; allowed: {' | '.join(PRESETS)}.")
        grid, fixed = (self.paper_grid, self.paper_set) if preset == "paper" else ((), ())
        return load_sweep(self.file, grid, fixed, section=self.section)


UNRELIABLE = Study(
    name="unreliable", module="unreliable",
    title="An unreliable caregiver: noisy and missed payments",
    question="Does a learned reward model average a caregiver's noise away: is the ISR better aligned with the "
             "true, noise-free social reward than the caregiver's own payments were?",
    prediction="Yes wherever the caregiver is unreliable: on held-out socialization transitions the ISR's "
               "correlation with the true reward exceeds the payments' (regressing on the payments averages "
               "zero-mean noise and scales misses away), in every unreliable cell. With an exact caregiver the "
               "payments are the true reward (correlation 1): the instrument's control.",
    paper_set=("experiment.n_seeds=10", "experiment.socialization_steps=120832",
               "experiment.autonomy_steps=120832"),
    paper_grid=("caregiver.noise=0,0.1,0.2,0.4", "caregiver.miss=0,0.25,0.5"),
)

MEANS_ENDS = Study(
    name="means-ends", module="means_ends",
    title="Rewarding the means (lifting the boulder) or the end (the other agent's success)",
    question="A caregiver who pays for the means, lifting the boulder, instead of the end, the helped agent "
             "reaching its goal: after it leaves, does its learner keep lifting as an end in itself?",
    prediction="Yes: with the ISR, the learner taught by paying for lifts lifts more often, and more often "
               "pointlessly (lifts that open no path the helped agent lacked), than the learner taught by paying "
               "for the end, and it keeps lifting pointlessly more than its own no-ISR counterpart, which unlearns.",
    paper_set=("experiment.n_seeds=10", "experiment.socialization_steps=393216",
               "experiment.autonomy_steps=241664"),
)

STUDIES = {s.name: s for s in (UNRELIABLE, MEANS_ENDS)}


def study(name: str) -> Study:
    """The study ``name`` (``ValueError`` naming the studies for another)."""
    if name not in STUDIES:
        raise ValueError(f"study: got {name!r}; allowed: {' | '.join(STUDIES)}.")
    return STUDIES[name]
