"""The ``conflicting`` study: two caregivers who disagree — does the learner compromise, follow the majority, or
end up an unstable mixture?

In the two-goal world caregiver A pays for entering the green goal, B for the blue one; A is present in an episode
with probability p, B with 1 − p (independent draws). Each point of the sweep is one share p (1, 0.75, 0.5: the two
rates zipped). Per seed the table holds:

* the ISR's value of each goal (the goal-values probe, ``studies.goal_values``): ``isr_goal_green``,
  ``isr_goal_blue`` and ``isr_forward`` (a step onto plain floor, which nobody pays for), on the same held-out
  layouts at every p; the **value share** is green / (green + blue), each clipped at 0;
* after both caregivers left, with the ISR (``isr``) and without (``none``): the held-out episodes' green and blue
  goals per episode; the **goal share** is green / (green + blue).

Controls before any verdict, at p = 1 (only A ever pays): the ISR must value the green goal (at least half the
reward, 0.2: positive control) and neither the blue goal nor plain floor (|value| < 0.05: negative controls).
Preconditions per seed: the learner learned to reach goals while socialized (at least 1 goal per episode over its
last 16 rollouts), the ISR values the goals at all (green + blue >= 0.1, else no value share) and the learner
reaches goals after departure (>= 0.5 per episode, else no goal share). A test with fewer than six such seeds is not
measurable.

The prediction's five tests, one Holm family: the value share equals p within ±0.1 at p = 0.75 and at p = 0.5
(TOST); the ISR learner's goal share exceeds 0.75 at p = 0.75 (one-sample t against p) and equals 0.5 within ±0.1
at p = 0.5 (TOST); at p = 0.75 the ISR learner's goal share exceeds the no-ISR learner's (paired by seed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from internalize.analysis.blocks import Block, Image, Table, Text, fmt
from internalize.analysis.directional import MIN_SEEDS, Directional, equivalent, holm, paired
from internalize.analysis.plots import _color, _save
from internalize.analysis.sweep_section import mean_ci, outcome_per_seed
from internalize.studies.study import LAST_ROLLOUTS, Study, end_of_socialization

STUDY = Study(
    name="conflicting", module="conflicting",
    title="Two caregivers who disagree (green vs blue goal, present p and 1 − p of the episodes)",
    question="When two caregivers reward different goals and are present in shares p and 1 − p, what does the "
             "learner keep once both have left: a compromise weighted by presence, the majority's value, or an "
             "unstable mixture?",
    prediction="Its learnt values are a compromise weighted by presence: the ISR's value share of the green goal "
               "equals p within ±0.1 at p = 0.75 and 0.5 (it regresses on what was paid). Its behaviour leans to "
               "the majority: at p = 0.75 the ISR learner's share of green goals after departure exceeds 0.75 (a "
               "policy maximises the expected payment rather than matching it), at p = 0.5 it is 0.5 within ±0.1; "
               "and at p = 0.75 the ISR learner keeps a larger green share than the learner without an ISR.",
    paper_set=("experiment.n_seeds=10", "experiment.socialization_steps=241664",
               "experiment.autonomy_steps=120832"),
)

SHARE = "caregiver[0].presence.rate"
MARGIN = 0.1
LEARNED_GOALS = 1.0
MIN_VALUE = 0.1  # green + blue value below this: the ISR values no goal, a share of it means nothing
MIN_GOALS = 0.5  # goals per episode after departure below this: no goal share
POSITIVE, NEGATIVE = 0.2, 0.05


def _per_seed(df: pd.DataFrame, metric: str, phase: str) -> pd.DataFrame:
    per = outcome_per_seed(df, metric, phase)
    return per[[SHARE, "condition", "seed", "value"]].rename(columns={"value": metric})


def values(df: pd.DataFrame) -> pd.DataFrame:
    """Per (p, seed): the ISR's value of each goal and of plain floor, whether the learner learned, the value share
    (NaN where green + blue < MIN_VALUE or the learner did not learn)."""
    parts = [_per_seed(df, m, "goal_values") for m in ("isr_goal_green", "isr_goal_blue", "isr_forward")]
    out = parts[0].merge(parts[1], on=[SHARE, "condition", "seed"]).merge(parts[2], on=[SHARE, "condition", "seed"])
    goals = end_of_socialization(df, "goals_per_episode", [SHARE, "seed"]).rename("soc_goals").reset_index()
    out = out.merge(goals, on=[SHARE, "seed"])
    out["learned"] = out["soc_goals"] >= LEARNED_GOALS
    g, b = out["isr_goal_green"].clip(lower=0), out["isr_goal_blue"].clip(lower=0)
    out["value_share"] = np.where(out["learned"] & (g + b >= MIN_VALUE), g / (g + b).where(g + b > 0), np.nan)
    return out.drop(columns="condition").sort_values([SHARE, "seed"]).reset_index(drop=True)


def goal_shares(df: pd.DataFrame, learned: pd.DataFrame) -> pd.DataFrame:
    """Per (p, condition, seed): green and blue goals per episode after departure, and the goal share (NaN where
    fewer than MIN_GOALS goals per episode, or the learner did not learn while socialized)."""
    green = _per_seed(df, "green_goals_per_episode", "evaluation")
    out = green.merge(_per_seed(df, "blue_goals_per_episode", "evaluation"), on=[SHARE, "condition", "seed"])
    out = out.merge(learned[[SHARE, "seed", "learned"]], on=[SHARE, "seed"])
    total = out["green_goals_per_episode"] + out["blue_goals_per_episode"]
    out["goal_share"] = np.where(out["learned"] & (total >= MIN_GOALS), out["green_goals_per_episode"] / total,
                                 np.nan)
    return out.sort_values([SHARE, "condition", "seed"]).reset_index(drop=True)


def controls(vals: pd.DataFrame) -> list[tuple[str, float, str, bool]]:
    """The instrument's controls at p = 1: (what, mean over learned seeds, the bar, passed)."""
    base = vals[(vals[SHARE] == 1.0) & vals["learned"]]
    if len(base) < MIN_SEEDS:
        return [("learners at p = 1 that learned", float(len(base)), f">= {MIN_SEEDS}", False)]
    green, blue, floor = (float(base[m].mean()) for m in ("isr_goal_green", "isr_goal_blue", "isr_forward"))
    return [("ISR value of the green goal (positive)", green, f">= {POSITIVE:g}", green >= POSITIVE),
            ("ISR value of the blue goal (negative)", blue, f"|v| < {NEGATIVE:g}", abs(blue) < NEGATIVE),
            ("ISR value of plain floor (negative)", floor, f"|v| < {NEGATIVE:g}", abs(floor) < NEGATIVE)]


def tests(vals: pd.DataFrame, shares: pd.DataFrame) -> list[Directional]:
    """The prediction's five tests (see the module docstring), Holm-corrected together."""
    def at(frame: pd.DataFrame, p: float, condition: str | None = None) -> pd.DataFrame:
        sel = frame[np.isclose(frame[SHARE], p)]
        return sel if condition is None else sel[sel["condition"] == condition]

    isr75, none75 = at(shares, 0.75, "isr"), at(shares, 0.75, "none")
    both = isr75.merge(none75, on="seed", suffixes=("", "_none"))
    return holm([
        equivalent("values: ISR value share = p at p = 0.75", at(vals, 0.75)["value_share"], 0.75, MARGIN),
        equivalent("values: ISR value share = p at p = 0.5", at(vals, 0.5)["value_share"], 0.5, MARGIN),
        paired("behaviour: ISR learner's green goal share > 0.75 at p = 0.75", isr75["goal_share"],
               np.full(len(isr75), 0.75)),
        equivalent("behaviour: ISR learner's green goal share = 0.5 at p = 0.5", at(shares, 0.5, "isr")["goal_share"],
                   0.5, MARGIN),
        paired("after departure: green goal share, ISR > no ISR at p = 0.75", both["goal_share"],
               both["goal_share_none"]),
    ])


def _ci(values_: pd.Series) -> str:
    return "{} [{}, {}]".format(*map(fmt, mean_ci(values_.dropna())))


def _plot(vals: pd.DataFrame, shares: pd.DataFrame, path: Path) -> Path:
    fig = Figure(figsize=(8.4, 3.5))
    ps = sorted(vals[SHARE].unique())
    panels = (("the ISR's value share of the green goal", [("ISR", vals["value_share"], vals[SHARE], 0)]),
              ("share of green goals after departure",
               [(c, shares.loc[shares["condition"] == c, "goal_share"], shares.loc[shares["condition"] == c, SHARE],
                 i) for i, c in enumerate(("isr", "none"))]))
    for k, (title, series) in enumerate(panels):
        ax = fig.add_subplot(1, 2, k + 1)
        ax.plot([0.45, 1.02], [0.45, 1.02], color="0.6", linestyle=":", label="compromise (= p)")
        for label_, y, x, i in series:
            if y.dropna().empty:  # e.g. learners without an ISR that no longer reach goals: no share to draw
                continue
            stats = [mean_ci(y[np.isclose(x, p)].dropna()) for p in ps]
            m, lo, hi = (np.array(v, float) for v in zip(*stats, strict=True))
            ax.errorbar(np.array(ps) + (i - 0.5) * 0.012, m, yerr=np.nan_to_num([m - lo, hi - m]), marker="o",
                        capsize=3, color=_color(label_.lower(), i), label=label_)
        ax.set_xlabel("p: caregiver A's (green) presence share")
        ax.set_title(title, fontsize=9)
        ax.set_ylim(0.0, 1.05)
        ax.legend(frameon=False, fontsize=8, title="mean, 95% CI over seeds", title_fontsize=8, loc="lower right")
    fig.tight_layout()
    return _save(fig, path)


def section(name: str, df: pd.DataFrame, fig_dir: Path) -> list[Block]:
    """Question and prediction, the controls and preconditions, the five tests and the verdict, the table, the
    figure."""
    vals = values(df)
    shares = goal_shares(df, vals)
    blocks = STUDY.intro(name, sorted(vals["seed"].unique()), "values are the goal-values probe's on held-out "
                         "layouts; goal shares the held-out evaluation after the autonomous phase.")
    checks = controls(vals)
    passed = all(ok for *_, ok in checks)
    blocks += [Text("Controls at p = 1 (only the green caregiver ever pays), over the seeds that learned:"),
               Table(("control", "mean", "bar", "result"),
                     tuple((what, fmt(v), bar, "passed" if ok else "FAILED") for what, v, bar, ok in checks)),
               Text(f"Preconditions per seed: the learner learned while socialized (>= {LEARNED_GOALS:g} goals per "
                    f"episode over its last {LAST_ROLLOUTS} rollouts); a value share needs green + blue value >= "
                    f"{MIN_VALUE:g}; a goal share needs >= {MIN_GOALS:g} goals per episode after departure.")]
    rows = []
    for p, g in vals.groupby(SHARE, sort=False):
        s = shares[np.isclose(shares[SHARE], p)]
        isr, none = s[s["condition"] == "isr"]["goal_share"], s[s["condition"] == "none"]["goal_share"]
        rows.append((f"{p:g}", f"{int(g['learned'].sum())} of {len(g)}", _ci(g["isr_goal_green"]),
                     _ci(g["isr_goal_blue"]), _ci(g["value_share"]), _ci(isr), fmt(isr.std(ddof=1)), _ci(none)))
    blocks.append(Table(("p", "learned", "ISR value: green", "ISR value: blue", "value share (green)",
                         "goal share: ISR learner", "sd over seeds", "goal share: no ISR"), tuple(rows)))
    found = tests(vals, shares)
    blocks.append(Table(("prediction", "effect (95% CI)", "test", "p", "Holm p", "n", "verdict"), tuple(
        (t.label, f"{fmt(t.effect)} [{fmt(t.ci_low)}, {fmt(t.ci_high)}]", t.test, fmt(t.p), fmt(t.p_holm),
         str(t.n[0]), t.verdict if passed else "not measurable") for t in found)))
    blocks.append(Text(f"Verdict: {_verdict(found, passed)} (Holm over the five tests, alpha 0.05; an effect is "
                       "the mean minus its prediction, or the paired difference)."))
    blocks.append(Image(f"{name}: the ISR's value share and the learners' share of green goals against p",
                        _plot(vals, shares, fig_dir / f"study_{name}.png")))
    return blocks


def _verdict(found: list[Directional], passed: bool) -> str:
    if not passed:
        return "not measurable: a control failed (table above)"
    measured = [t for t in found if t.measurable]
    if not measured:
        return "not measurable: too few seeds met the preconditions"
    values_ok = [t.verdict == "supported" for t in found[:2]]
    majority = found[2].verdict == "supported"
    parts = ["values: " + ("a presence-weighted compromise at both shares" if all(values_ok) else
                           f"a compromise shown at {sum(values_ok)} of 2 shares"),
             "behaviour at p = 0.75: " + ("the majority's (above p)" if majority else
                                          f"majority not shown ({found[2].verdict})")]
    n_sup = sum(t.verdict == "supported" for t in found)
    head = "supported" if n_sup == len(found) else f"partly supported ({n_sup} of {len(found)} tests)" if n_sup \
        else "not supported (no test supports it)"
    return f"{head}; {'; '.join(parts)}"
