"""The ``unreliable`` study's report section: is the ISR better aligned with the true reward than the payments?

Per cell of the grid (noise x miss) and seed, the table holds at the ISR's last update ``isr_heldout_true_corr`` (the
ISR's prediction against the true, noise-free R_s on held-out socialization transitions) and
``paid_heldout_true_corr`` (the payments against the same true R_s, on the same transitions). The prediction is
tested per unreliable cell as a paired difference across seeds, one-sided, Holm-corrected over the cells. The exact
cell is the instrument's control: its payments are the true reward, so their correlation must read 1 on every
seed, or no verdict is read. What the learner then does after the caregiver left (held-out caregiver return with
the ISR vs without) is a second family, reported beside it.

Precondition, per cell and seed: the learner learned to reach the goal while socialized (at least
:data:`LEARNED_GOALS` goals per episode over its last 16 socialization rollouts; an exact caregiver's learner reaches
about 3). An unreliable caregiver's learner that did not learn gives the ISR almost no rewarded transitions, and its
correlations say nothing about averaging noise away; such seeds are left out, and a cell with fewer than six
learned seeds is not measurable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from internalize.analysis.blocks import Block, Heading, Image, Table, Text, fmt
from internalize.analysis.directional import Directional, holm, paired
from internalize.analysis.plots import _save
from internalize.analysis.sweep_section import mean_ci, outcome_per_seed, sweep_section
from internalize.studies.study import LAST_ROLLOUTS, Study, end_of_socialization

STUDY = Study(
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

NOISE, MISS = "caregiver.noise", "caregiver.miss"
KEYS = (NOISE, MISS)
LEARNED_GOALS = 1.0


def learned(df: pd.DataFrame) -> pd.Series:
    """Per (noise, miss, seed): goals per episode over the learner's last 16 socialization rollouts."""
    return end_of_socialization(df, "goals_per_episode", [*KEYS, "seed"])


def _wide(df: pd.DataFrame, metric: str, phase: str, condition: str) -> pd.Series:
    """``metric``'s last value per (noise, miss, seed) of ``condition`` in ``phase`` (worlds averaged)."""
    per = outcome_per_seed(df, metric, phase)
    per = per[per["condition"] == condition]
    return per.set_index([*KEYS, "seed"])["value"]


def alignment_tests(df: pd.DataFrame) -> tuple[pd.DataFrame, list[Directional], bool]:
    """Per cell: the payments' and the ISR's correlation with the true reward per seed, and for each unreliable
    cell the directional test ISR > payments (Holm over the cells); and whether the control (the exact cell's
    payments read r = 1 on every seed) holds."""
    isr = _wide(df, "isr_heldout_true_corr", "isr", "isr")
    paid = _wide(df, "paid_heldout_true_corr", "isr", "isr")
    both = pd.DataFrame({"isr": isr, "paid": paid, "goals": learned(df)}).reset_index()
    both["learned"] = both["goals"] >= LEARNED_GOALS
    exact = both[(both[NOISE] == 0) & (both[MISS] == 0)]
    control = len(exact) > 0 and bool(np.all(np.abs(exact["paid"] - 1.0) < 1e-5))
    tests = []
    for (noise, miss), g in both.groupby(list(KEYS), sort=True):
        if noise == 0 and miss == 0:
            continue
        g = g[g["learned"]]
        tests.append(paired(f"noise {noise:g}, miss {miss:g}", g["isr"], g["paid"], greater=True))
    return both, holm(tests), control


def retention_tests(df: pd.DataFrame) -> list[Directional]:
    """Per cell: held-out caregiver return after departure, the ISR learner minus the one without (paired by seed),
    predicted > 0; Holm over the cells."""
    isr = _wide(df, "caregiver_return", "evaluation", "isr")
    none = _wide(df, "caregiver_return", "evaluation", "none")
    both = pd.DataFrame({"isr": isr, "none": none, "goals": learned(df)}).reset_index()
    both = both[both["goals"] >= LEARNED_GOALS]
    return holm([paired(f"noise {n:g}, miss {m:g}", g["isr"], g["none"], greater=True)
                 for (n, m), g in both.groupby(list(KEYS), sort=True)])


def _plot(both: pd.DataFrame, out: Path) -> Path:
    both = both[both["learned"]]
    fig = Figure(figsize=(6.2, 3.8))
    ax = fig.add_subplot(1, 1, 1)
    colors = ("#0072B2", "#D55E00", "#009E73", "#CC79A7")
    for i, (miss, g) in enumerate(both.groupby(MISS, sort=True)):
        for what, style in (("isr", "-"), ("paid", "--")):
            stats = [(noise, *mean_ci(h[what].dropna())) for noise, h in g.groupby(NOISE, sort=True)]
            x, m, lo, hi = (np.array(v, float) for v in zip(*stats, strict=True))
            ax.errorbar(x + (0.004 if what == "isr" else -0.004), m, yerr=np.nan_to_num([m - lo, hi - m]),
                        linestyle=style, marker="o", capsize=3, color=colors[i % len(colors)],
                        label=f"{'ISR' if what == 'isr' else 'payments'}, miss {miss:g}")
    ax.set_xlabel("caregiver.noise (sd of the noise on each payment)")
    ax.set_ylabel("correlation with the true R_s (held out)")
    ax.legend(frameon=False, fontsize=8, title="mean and 95% CI over seeds", title_fontsize=8)
    fig.tight_layout()
    return _save(fig, out)


def _rows(tests: list[Directional]) -> tuple[tuple[str, ...], ...]:
    return tuple((t.label, f"{fmt(t.effect)} [{fmt(t.ci_low)}, {fmt(t.ci_high)}]", t.test, fmt(t.p), fmt(t.p_holm),
                  str(t.n[0]), t.verdict) for t in tests)


def section(name: str, df: pd.DataFrame, fig_dir: Path) -> list[Block]:
    """The study's section: question and prediction, the control, the verdict per cell and overall, the figure,
    the learners after departure, then the sweep's generic view of the held-out return."""
    both, tests, control = alignment_tests(df)
    seeds = sorted(both["seed"].unique())
    blocks = STUDY.intro(name, seeds, "per cell and seed, the correlations are read at the ISR's last update on "
                                      "its held-out socialization transitions.")
    exact = both[(both[NOISE] == 0) & (both[MISS] == 0)]
    if not control:
        blocks.append(Text("Control FAILED: with an exact caregiver the payments must correlate 1 with the true "
                           f"reward on every seed; they read {', '.join(fmt(v, 4) for v in exact['paid'])}. The "
                           "instrument is broken: no verdict is read from the cells below."))
    else:
        blocks.append(Text(f"Control passed: with an exact caregiver the payments correlate 1 with the true reward on "
                           f"all {len(exact)} seeds (the ISR there: {fmt(exact['isr'].mean())})."))
    cells = [(k, g) for k, g in both.groupby(list(KEYS), sort=True)]
    blocks.append(Text(f"Precondition: the learner learned while socialized (>= {LEARNED_GOALS:g} goals per episode "
                       f"over its last {LAST_ROLLOUTS} rollouts); the tests use those seeds only."))
    blocks.append(Table(("noise", "miss", "goals per episode at the end of socialization: min, median",
                         "seeds that learned", "payments r (95% CI)", "ISR r (95% CI)"), tuple(
        (f"{n:g}", f"{m:g}", f"{fmt(g['goals'].min())}, {fmt(g['goals'].median())}",
         f"{int(g['learned'].sum())} of {len(g)}",
         "{} [{}, {}]".format(*map(fmt, mean_ci(g.loc[g['learned'], 'paid'].dropna()))),
         "{} [{}, {}]".format(*map(fmt, mean_ci(g.loc[g['learned'], 'isr'].dropna())))) for (n, m), g in cells)))
    blocks.append(Table(
        ("cell", "ISR − payments: r with the true reward (95% CI)", "test", "one-sided p", "Holm p", "n", "verdict"),
        _rows(tests)))
    measured = [t for t in tests if t.measurable]
    supported = [t for t in measured if t.verdict == "supported"]
    unmeasured = len(tests) - len(measured)
    tail = f"; {unmeasured} of {len(tests)} not measurable" if unmeasured else ""
    if not control or not measured:
        verdict = "not measurable (see the control and the cells' learners)"
    elif len(supported) == len(measured):
        verdict = f"supported in every measurable cell ({len(supported)} of {len(measured)}{tail})"
    elif supported:
        verdict = f"partly supported: in {len(supported)} of {len(measured)} measurable cells{tail}"
    else:
        verdict = f"not supported: in none of the {len(measured)} measurable cells{tail}"
    blocks.append(Text(f"Verdict: {verdict} (one-sided paired t across seeds, Holm-corrected over the cells, "
                       "alpha 0.05)."))
    blocks.append(Image(f"{name}: the ISR's and the payments' correlation with the true reward against the noise, "
                        "per miss rate", _plot(both, fig_dir / f"study_{name}_alignment.png")))
    retention = retention_tests(df)
    blocks += [Heading("After the caregiver left: held-out caregiver return, with the ISR minus without (seeds that "
                       "learned)", 3),
               Table(("cell", "ISR − no ISR (95% CI)", "test", "one-sided p", "Holm p", "n", "verdict"),
                     _rows(retention))]
    return blocks + sweep_section(name, df, "caregiver_return", "evaluation", fig_dir)[1:]
