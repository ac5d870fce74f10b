"""The ``unreliable`` study's report section: is the ISR better aligned with the true reward than the payments?

A cell is one setting of the caregiver's ``noise``, ``miss`` and ``false_reward`` (those the sweep varies; the
shipped file, the quick preset, varies one at a time from the exact caregiver, its lists zipped; the paper preset
runs their full product). False praise is set per step without
the event, scaled to how often the event happens: ``false_reward = f * r / (1 - r)`` gives about f false payments
per true one when a fraction r of steps earns a true one (:func:`false_reward_rate`); the section reports the
realised ratio. Per cell and seed, the table holds at the ISR's last update ``isr_heldout_true_corr`` (the
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
from internalize.studies.study import LAST_ROLLOUTS, Study, end_of_socialization, verdict_table

NOISE, MISS, FALSE = "caregiver.noise", "caregiver.miss", "caregiver.false_reward"
FACTORS = (NOISE, MISS, FALSE)
SHORT = {NOISE: "noise", MISS: "miss", FALSE: "false"}
LEARNED_GOALS = 1.0
#: Steps that earn a true payment, for an exact caregiver's learned learner (about 3 goals per 20-step episode).
EVENT_RATE = 0.15


def false_reward_rate(per_true: float, event_rate: float = EVENT_RATE) -> float:
    """The per-step false-praise probability giving about ``per_true`` false payments per true one when a fraction
    ``event_rate`` of steps earns a true one: per_true * r / (1 - r), rounded to 4 places."""
    return round(per_true * event_rate / (1.0 - event_rate), 4)


STUDY = Study(
    name="unreliable", module="unreliable",
    title="An unreliable caregiver: noisy, missed and false payments",
    question="Does a learned reward model average a caregiver's noise away: is the ISR better aligned with the "
             "true, noise-free social reward than the caregiver's own payments were?",
    prediction="Yes wherever the caregiver is unreliable: on held-out socialization transitions the ISR's "
               "correlation with the true reward exceeds the payments' (regressing on the payments averages "
               "zero-mean noise and scales misses away; false praise on random steps is unpredictable, so it "
               "averages into a small constant), in every unreliable cell. With an exact caregiver the payments are "
               "the true reward (correlation 1): the instrument's control.",
    paper_set=("experiment.n_seeds=10", "experiment.socialization_steps=120832",
               "experiment.autonomy_steps=120832"),
    # The paper preset runs the full product at the paper's budgets: noise x miss x false praise, 36 cells.
    paper_grid=("caregiver.noise=0,0.1,0.2,0.4", "caregiver.miss=0,0.25,0.5",
                f"caregiver.false_reward=0,{false_reward_rate(0.1)},{false_reward_rate(0.25)}"),
    paper_product=True,
)

def keys(df: pd.DataFrame) -> list[str]:
    """The caregiver factors the table's sweep varies, in :data:`FACTORS` order."""
    return [k for k in FACTORS if k in df.columns]


def cell_label(values: tuple, names: list[str]) -> str:
    return ", ".join(f"{SHORT[k]} {v:g}" for k, v in zip(names, values, strict=True))


def _exact(frame: pd.DataFrame, names: list[str]) -> pd.Series:
    return np.all([frame[k] == 0 for k in names], axis=0) if names else pd.Series(True, index=frame.index)


def learned(df: pd.DataFrame) -> pd.Series:
    """Per (cell, seed): goals per episode over the learner's last 16 socialization rollouts."""
    return end_of_socialization(df, "goals_per_episode", [*keys(df), "seed"])


def false_per_true(df: pd.DataFrame) -> pd.Series:
    """Per (cell, seed): false payments per true one over the last 16 socialization rollouts, read where the cell
    neither adds noise nor misses: (paid − true R_s) / true R_s (NaN elsewhere, or without false praise)."""
    names = keys(df)
    if FALSE not in names:
        return pd.Series(np.nan, index=learned(df).index)
    paid = end_of_socialization(df, "paid_return", [*names, "seed"])
    true = end_of_socialization(df, "social_return", [*names, "seed"])
    ratio = (paid - true) / true.where(true > 0)
    frame = ratio.reset_index()
    clean = np.all([frame[k].to_numpy() == 0 for k in names if k != FALSE] + [frame[FALSE].to_numpy() > 0], axis=0)
    return ratio.where(clean)


def _wide(df: pd.DataFrame, metric: str, phase: str, condition: str) -> pd.Series:
    """``metric``'s last value per (cell, seed) of ``condition`` in ``phase`` (worlds averaged)."""
    per = outcome_per_seed(df, metric, phase)
    per = per[per["condition"] == condition]
    return per.set_index([*keys(df), "seed"])["value"]


def alignment_tests(df: pd.DataFrame) -> tuple[pd.DataFrame, list[Directional], bool]:
    """Per cell: the payments' and the ISR's correlation with the true reward per seed, and for each unreliable
    cell the directional test ISR > payments (Holm over the cells); and whether the control (the exact cell's
    payments read r = 1 on every seed) holds."""
    names = keys(df)
    isr = _wide(df, "isr_heldout_true_corr", "isr", "isr")
    paid = _wide(df, "paid_heldout_true_corr", "isr", "isr")
    both = pd.DataFrame({"isr": isr, "paid": paid, "goals": learned(df)}).reset_index()
    both["learned"] = both["goals"] >= LEARNED_GOALS
    exact = both[_exact(both, names)]
    control = len(exact) > 0 and bool(np.all(np.abs(exact["paid"] - 1.0) < 1e-5))
    tests = []
    for values, g in both.groupby(names, sort=True):
        if not any(values):
            continue
        g = g[g["learned"]]
        tests.append(paired(cell_label(values, names), g["isr"], g["paid"], greater=True))
    return both, holm(tests), control


def retention_tests(df: pd.DataFrame) -> list[Directional]:
    """Per cell: held-out caregiver return after departure, the ISR learner minus the one without (paired by seed),
    predicted > 0; Holm over the cells."""
    names = keys(df)
    isr = _wide(df, "caregiver_return", "evaluation", "isr")
    none = _wide(df, "caregiver_return", "evaluation", "none")
    both = pd.DataFrame({"isr": isr, "none": none, "goals": learned(df)}).reset_index()
    both = both[both["goals"] >= LEARNED_GOALS]
    return holm([paired(cell_label(values, names), g["isr"], g["none"], greater=True)
                 for values, g in both.groupby(names, sort=True)])


def _plot(both: pd.DataFrame, names: list[str], out: Path) -> Path:
    both = both[both["learned"]]
    cells = [(values, g) for values, g in both.groupby(names, sort=True)]
    many = len(cells) > 10  # the paper preset's 36 cells: one rotated line per label
    fig = Figure(figsize=(min(16.0, max(5.0, 1.0 + 0.9 * len(cells))), 4.6 if many else 3.8))
    ax = fig.add_subplot(1, 1, 1)
    for j, (what, color, text) in enumerate((("paid", "#D55E00", "payments"), ("isr", "#0072B2", "ISR"))):
        stats = [mean_ci(g[what].dropna()) if len(g) else (np.nan,) * 3 for _, g in cells]
        m, lo, hi = (np.array(v, float) for v in zip(*stats, strict=True)) if stats else ([], [], [])
        x = np.arange(len(cells)) + (j - 0.5) * 0.38
        ax.bar(x, m, 0.38, yerr=np.nan_to_num([m - lo, hi - m]), capsize=3, color=color, label=text)
    labels = [cell_label(v, names) if many else cell_label(v, names).replace(", ", "\n") for v, _ in cells]
    ax.set_xticks(np.arange(len(cells)), labels, fontsize=6 if many else 8, rotation=90 if many else 0)
    ax.set_ylabel("correlation with the true R_s (held out)")
    ax.set_ylim(0.0, 1.05)
    ax.legend(frameon=False, fontsize=8, title="mean and 95% CI over seeds that learned (a cell without any: no bar)",
              title_fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2)
    fig.tight_layout()
    return _save(fig, out)


def section(name: str, df: pd.DataFrame, fig_dir: Path) -> list[Block]:
    """The study's section: question and prediction, the control, the verdict per cell and overall, the figure,
    the learners after departure, then the sweep's generic view of the held-out return."""
    names = keys(df)
    both, tests, control = alignment_tests(df)
    seeds = sorted(both["seed"].unique())
    blocks = STUDY.intro(name, seeds, "per cell and seed, the correlations are read at the ISR's last update on "
                                      "its held-out socialization transitions.")
    exact = both[_exact(both, names)]
    if not control:
        blocks.append(Text("Control FAILED: with an exact caregiver the payments must correlate 1 with the true "
                           f"reward on every seed; they read {', '.join(fmt(v, 4) for v in exact['paid'])}. The "
                           "instrument is broken: no verdict is read from the cells below."))
    else:
        blocks.append(Text(f"Control passed: with an exact caregiver the payments correlate 1 with the true reward on "
                           f"all {len(exact)} seeds (the ISR there: {fmt(exact['isr'].mean())})."))
    cells = [(k, g) for k, g in both.groupby(names, sort=True)]
    ratio = false_per_true(df)
    blocks.append(Text(f"Precondition: the learner learned while socialized (>= {LEARNED_GOALS:g} goals per episode "
                       f"over its last {LAST_ROLLOUTS} rollouts); the tests use those seeds only."))
    def realised(values: tuple) -> str:
        sel = ratio.xs(values, level=list(range(len(names)))) if names else ratio
        return "{} [{}, {}]".format(*map(fmt, mean_ci(sel.dropna()))) if sel.notna().any() else "–"

    blocks.append(Table(("cell", "goals per episode at the end of socialization: min, median", "seeds that learned",
                         "false payments per true one", "payments r (95% CI)", "ISR r (95% CI)"), tuple(
        (cell_label(v, names), f"{fmt(g['goals'].min())}, {fmt(g['goals'].median())}",
         f"{int(g['learned'].sum())} of {len(g)}", realised(v),
         "{} [{}, {}]".format(*map(fmt, mean_ci(g.loc[g['learned'], 'paid'].dropna()))),
         "{} [{}, {}]".format(*map(fmt, mean_ci(g.loc[g['learned'], 'isr'].dropna())))) for v, g in cells)))
    blocks.append(verdict_table(tests, label="cell", effect="ISR − payments: r with the true reward (95% CI)"))
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
    blocks.append(Image(f"{name}: the ISR's and the payments' correlation with the true reward, per cell",
                        _plot(both, names, fig_dir / f"study_{name}_alignment.png")))
    retention = retention_tests(df)
    blocks += [Heading("After the caregiver left: held-out caregiver return, with the ISR minus without (seeds that "
                       "learned)", 3),
               verdict_table(retention, label="cell", effect="ISR − no ISR (95% CI)")]
    return blocks + sweep_section(name, df, "caregiver_return", "evaluation", fig_dir)[1:]
