"""The ``means-ends`` study's report section: does a learner paid for lifting keep lifting for its own sake?

Two cells, the caregiver's ``event``: ``boulder_lift`` (the means) and ``helped_goal`` (the end). Outcomes after the
caregiver left are the held-out evaluation's per-episode ``helped_goals``, ``lifts`` and ``pointless_lifts`` (a lift
that opened no path the helped agent lacked), with the ISR and without. Before any verdict, each cell's learner must
have learned what it was paid for by the end of socialization (mean of its last 16 rollouts): at least one lift per
episode where lifts were paid, at least 0.85 helped goals per episode (twice the in-place policy's, the bar of the
Figure 7 learning test) where the end was; a cell with fewer than six such seeds is not measurable.

The prediction's three tests, one family (Holm): the means-taught ISR learner lifts more, and more pointlessly, than
the end-taught one (Welch's t: different socializations), and lifts pointlessly more than its own no-ISR
counterpart (paired by seed: the same socialization).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from internalize.analysis.blocks import Block, Image, Table, Text, fmt
from internalize.analysis.directional import MIN_SEEDS, holm, paired, welch
from internalize.analysis.plots import _color, _save
from internalize.analysis.sweep_section import mean_ci, outcome_per_seed
from internalize.studies.study import LAST_ROLLOUTS, Study, end_of_socialization, verdict_table

STUDY = Study(
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

EVENT = "caregiver.event"
MEANS, END = "boulder_lift", "helped_goal"
OUTCOMES = ("helped_goals_per_episode", "lifts_per_episode", "pointless_lifts_per_episode")
LEARNED = {MEANS: ("lifts_per_episode", 1.0), END: ("helped_goals_per_episode", 0.85)}


def learned(df: pd.DataFrame) -> pd.DataFrame:
    """Per (event, seed): the paid-for behaviour at the end of socialization (mean of the last 16 rollouts) and
    whether it clears its bar (:data:`LEARNED`)."""
    rows = []
    for event, (metric, bar) in LEARNED.items():
        values = end_of_socialization(df[df[EVENT] == event], metric, [EVENT, "seed"])
        rows += [{EVENT: event, "seed": int(seed), "metric": metric, "value": value, "bar": bar,
                  "passed": bool(value >= bar)} for (_, seed), value in values.items()]
    return pd.DataFrame(rows)


def outcomes(df: pd.DataFrame) -> pd.DataFrame:
    """Per (event, condition, seed): the three held-out per-episode outcomes (columns)."""
    parts = [outcome_per_seed(df, m, "evaluation").assign(metric=m) for m in OUTCOMES]
    return pd.concat(parts).pivot_table(index=[EVENT, "condition", "seed"], columns="metric",
                                        values="value").reset_index()


def tests(out: pd.DataFrame) -> list:
    """The prediction's three directional tests, Holm-corrected together."""
    def arm(event: str, condition: str) -> pd.DataFrame:
        return out[(out[EVENT] == event) & (out["condition"] == condition)].sort_values("seed")

    means_isr, end_isr, means_none = arm(MEANS, "isr"), arm(END, "isr"), arm(MEANS, "none")
    paired_none = means_isr.merge(means_none, on="seed", suffixes=("", "_none"))
    return holm([
        welch("pointless lifts: means-taught ISR > end-taught ISR", means_isr["pointless_lifts_per_episode"],
              end_isr["pointless_lifts_per_episode"]),
        welch("lifts: means-taught ISR > end-taught ISR", means_isr["lifts_per_episode"],
              end_isr["lifts_per_episode"]),
        paired("pointless lifts: means-taught ISR > means-taught, no ISR", paired_none["pointless_lifts_per_episode"],
               paired_none["pointless_lifts_per_episode_none"]),
    ])


def _plot(out: pd.DataFrame, path: Path) -> Path:
    fig = Figure(figsize=(9.0, 3.4))
    for i, metric in enumerate(OUTCOMES):
        ax = fig.add_subplot(1, 3, i + 1)
        for j, cond in enumerate(("isr", "none")):
            stats = [mean_ci(out[(out[EVENT] == e) & (out["condition"] == cond)][metric]) for e in (MEANS, END)]
            m, lo, hi = (np.array(v, float) for v in zip(*stats, strict=True))
            x = np.arange(2) + (j - 0.5) * 0.35
            ax.bar(x, m, 0.35, yerr=np.nan_to_num([m - lo, hi - m]), capsize=3, color=_color(cond, j), label=cond)
        ax.set_xticks(np.arange(2), ["paid for lifts", "paid for the end"])
        ax.set_title(metric.replace("_", " "), fontsize=9)
    fig.axes[-1].legend(frameon=False, fontsize=8, title="after departure (95% CI)", title_fontsize=8,
                        loc="upper right")
    fig.tight_layout()
    return _save(fig, path)


def section(name: str, df: pd.DataFrame, fig_dir: Path) -> list[Block]:
    """Question and prediction, the learning precondition, the verdicts, the outcome table and figure."""
    learnt = learned(df)
    out = outcomes(df)
    blocks = STUDY.intro(name, sorted(out["seed"].unique()), "outcomes are the held-out evaluation after the "
                                                             "autonomous phase.")
    ok = {}
    rows = []
    for event, g in learnt.groupby(EVENT):
        ok[event] = int(g["passed"].sum()) >= MIN_SEEDS
        rows.append((event, g["metric"].iloc[0], f">= {g['bar'].iloc[0]:g}", fmt(g["value"].min()),
                     fmt(g["value"].median()), f"{int(g['passed'].sum())} of {len(g)}",
                     "met" if ok[event] else "NOT MET"))
    blocks += [Text("Precondition: each learner learned what it was paid for by the end of socialization (mean of "
                    f"its last {LAST_ROLLOUTS} rollouts), on at least {MIN_SEEDS} seeds."),
               Table(("paid for", "behaviour", "bar", "min", "median", "seeds over the bar", "precondition"),
                     tuple(rows))]
    found = tests(out)
    measurable = all(ok.get(e, False) for e in (MEANS, END))
    blocks.append(verdict_table(found, measurable))
    if not measurable:
        verdict = "not measurable: a learner did not learn what it was paid for (precondition above)"
    else:
        n_sup = sum(t.verdict == "supported" for t in found)
        verdict = ("supported" if n_sup == len(found) else f"partly supported ({n_sup} of {len(found)} tests)"
                   if n_sup else "not supported (no test supports it)")
    blocks.append(Text(f"Verdict: {verdict} (Holm over the three tests, alpha 0.05)."))
    table_rows = []
    for (event, cond), g in out.groupby([EVENT, "condition"]):
        table_rows.append((event, cond, *("{} [{}, {}]".format(*map(fmt, mean_ci(g[m]))) for m in OUTCOMES),
                           str(len(g))))
    blocks += [Table(("paid for", "condition", *OUTCOMES, "n"), tuple(table_rows)),
               Image(f"{name}: per-episode helped goals, lifts and pointless lifts after the caregiver left",
                     _plot(out, fig_dir / f"study_{name}.png"))]
    return blocks
