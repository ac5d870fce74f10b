"""The studies as data: each names its file, its question and prediction, its presets and its report section.

``quick`` is the study's file as shipped (2-core CPU, at most about 20 minutes, at least 8 seeds); ``paper`` adds
``--set``/``--grid`` settings for the paper's budgets (Figures 4b and 7), 10 seeds and the full grid, with the same
learner and ISR (a study compares its cells with each other, not with the paper's numbers). Running a study is
running its sweep (``experiments.sweep``) with the study's section recorded in the sweep's manifest, so the report
of the output directory draws it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from internalize.analysis.blocks import Block, Heading, Table, Text, fmt, seed_list
from internalize.analysis.directional import ALPHA, Directional
from internalize.experiments.sweep import Sweep, load_sweep
from internalize.seeding import offset_seeds
from internalize.seeding import seed_offset as resolve_seed_offset

PRESETS = ("quick", "paper")
#: A learner's behaviour at the end of socialization is the mean of its last this many rollouts.
LAST_ROLLOUTS = 16


def end_of_socialization(df: pd.DataFrame, metric: str, by: list[str]) -> pd.Series:
    """``metric`` at the end of socialization, the mean of the last :data:`LAST_ROLLOUTS` rollouts, per ``by``
    (the swept keys and ``seed``); what a study's precondition "the learner learned" reads. ``ValueError`` when
    the table has no socialization rows of ``metric``."""
    soc = df[(df["phase"] == "socialization") & (df["metric"] == metric)]
    if soc.empty:
        raise ValueError(f"no socialization rows of {metric}: the study's precondition cannot be checked")
    soc = soc[soc["condition"] == soc["condition"].iloc[0]]  # socialization rows repeat under every condition
    return soc.sort_values("step").groupby(by)["value"].apply(
        lambda v: float(v.dropna().iloc[-LAST_ROLLOUTS:].mean()))


def effect_ci(t: Directional) -> str:
    """A test's effect and its 95% CI, as the studies' tables print it."""
    return f"{fmt(t.effect)} [{fmt(t.ci_low)}, {fmt(t.ci_high)}]"


def verdict_table(found: list[Directional], read: bool = True, label: str = "prediction",
                  effect: str = "effect (95% CI)") -> Table:
    """A study's tests: effect and CI, test, one-sided and Holm p, n (pairs, or both group sizes) and the verdict;
    every verdict "not measurable" unless ``read`` (the study's controls and preconditions held)."""
    return Table((label, effect, "test", "one-sided p", "Holm p", "n", "verdict"), tuple(
        (t.label, effect_ci(t), t.test, fmt(t.p), fmt(t.p_holm), " and ".join(map(str, t.n)),
         t.verdict if read else "not measurable") for t in found))


def reads_as_required(t: Directional) -> bool:
    """A control test reads its known value: measurable and one-sided p < ALPHA (uncorrected: each control must
    hold on its own)."""
    return t.measurable and t.p < ALPHA


def control_table(controls: list[Directional]) -> Table:
    """A study's control tests and whether each reads its known value (:func:`reads_as_required`)."""
    return Table(("control", "effect (95% CI)", "test", "one-sided p", "n", "reads"), tuple(
        (t.label, effect_ci(t), t.test, fmt(t.p), str(t.n[0]),
         "as required" if reads_as_required(t) else "NOT as required") for t in controls))


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
    single: bool = False  # one experiment (conditions compared), not a grid
    paper_product: bool = False  # the paper preset runs the product of its grid even where the file zips the lists

    @property
    def file(self) -> Path:
        return Path(str(resources.files("internalize.studies").joinpath(f"{self.module}.toml")))

    @property
    def section(self) -> str:
        return f"internalize.studies.{self.module}:section"

    def sweep(self, preset: str = "quick", seed_offset: int | None = None) -> Sweep:
        """The study's sweep under ``preset`` (``ValueError`` naming the allowed presets for another), its seeds
        shifted by ``seed_offset`` (None: ``$INTERNALIZE_SEED_OFFSET``, default 0), as a preset's are: a study is
        the library's, and its verdicts are checked on other seed sets too."""
        if preset not in PRESETS:
            raise ValueError(f"--preset: got {preset!r}; allowed: {' | '.join(PRESETS)}.")
        grid, fixed = (self.paper_grid, self.paper_set) if preset == "paper" else ((), ())
        zip_lists = False if preset == "paper" and self.paper_product else None
        plan = load_sweep(self.file, grid, fixed, section=self.section, single=self.single, zip_lists=zip_lists)
        k = resolve_seed_offset(seed_offset)
        if not k:
            return plan
        return dataclasses.replace(plan, points=tuple(
            dataclasses.replace(p, experiment=dataclasses.replace(p.experiment, seeds=offset_seeds(
                p.experiment.seeds, k))) for p in plan.points))

    def intro(self, name: str, seeds: list[int], how: str) -> list[Block]:
        """The head of the study's report section: title, question and prediction (stated before any result),
        and how it was run (``how``: what its numbers are)."""
        return [Heading(f"{name} — study: {self.title}", 2), Text(f"Question: {self.question}"),
                Text(f"Prediction (stated before the run): {self.prediction}"),
                Text(f"Command: internalize study {self.name} --preset quick|paper. Seeds {seed_list(seeds)}; {how}")]
