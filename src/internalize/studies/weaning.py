"""The ``weaning`` study: abrupt departure vs gradual weaning at matched caregiver exposure, with and without the ISR.

Four schedules of the autonomous phase (length L steps per seed) give the caregiver the same expected exposure
E = ∫P = L/4: ``abrupt`` (present until E, then gone: the paper's departure, delayed), ``linear`` (1 -> 0 over 2E),
``exponential`` (from 1, the half-life h with h/ln 2 (1 - 2^(-L/h)) = E) and ``random`` (present in each episode with
probability E/L). :func:`schedules` computes them; the quick file's values are checked against it. Each schedule runs
without the ISR (``-none``) and with it, the ISR then training on while the caregiver is there (``-isr``,
``internalizes``).

The instrument's control is the realised exposure: each condition's presence rate over the phase, times L, must lie
within 15% of E on average over seeds, or no verdict is read. The outcome is held-out caregiver return after the
phase. The tests, one Holm family: without the ISR, each gradual schedule beats abrupt (paired by seed: the same
socialization); and the gain of each gradual schedule over abrupt is larger without the ISR than with it (the
difference of paired differences, > 0).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from internalize.analysis.blocks import Block, Image, Table, Text, fmt
from internalize.analysis.directional import Directional, holm, paired
from internalize.analysis.plots import _save
from internalize.analysis.sweep_section import mean_ci, outcome_per_seed
from internalize.studies.study import Study, verdict_table

SCHEDULES = ("abrupt", "linear", "exponential", "random")
GRADUAL = SCHEDULES[1:]
EXPOSURE_SHARE = 0.25
EXPOSURE_TOLERANCE = 0.15
FLOOR_SHARE = 0.1  # the no-ISR arm is at floor when its best mean is below a tenth of the ISR arm's worst


def half_life(exposure: float, length: int) -> float:
    """The exponential schedule's half-life h (steps) with ∫_0^length 2^(-t/h) dt = exposure (bisection)."""
    lo, hi = 1.0, 100.0 * length
    for _ in range(200):
        h = (lo + hi) / 2
        lo, hi = (h, hi) if h / math.log(2) * (1 - 0.5 ** (length / h)) < exposure else (lo, h)
    return (lo + hi) / 2


def schedules(length: int) -> dict[str, dict[str, float | int | str]]:
    """Each schedule's presence table for an autonomous phase of ``length`` steps at exposure ``length / 4``."""
    exposure = EXPOSURE_SHARE * length
    return {"abrupt": {"kind": "until", "switch_step": int(round(exposure))},
            "linear": {"kind": "linear", "p0": 1.0, "p1": 0.0, "end": int(round(2 * exposure))},
            "exponential": {"kind": "exponential", "p0": 1.0, "half_life": int(round(half_life(exposure, length)))},
            "random": {"kind": "random", "rate": EXPOSURE_SHARE}}


def paper_settings(length: int) -> tuple[str, ...]:
    """``--set`` options that put every condition's schedule at exposure ``length / 4``."""
    out = []
    for name, table in schedules(length).items():
        for arm in ("none", "isr"):
            out += [f"conditions.{name}-{arm}.presence.{k}={v}" for k, v in table.items() if k != "kind"]
    return tuple(out)


STUDY = Study(
    name="weaning", module="weaning",
    title="Gradual weaning vs abrupt departure at matched caregiver exposure, with and without the ISR",
    question="Does weaning a learner gradually (the caregiver's presence falling linearly, exponentially, or at "
             "random per episode) keep more of its value than an abrupt departure at the same expected exposure, "
             "and does that still matter for a learner with an ISR that keeps internalizing while the caregiver "
             "is there?",
    prediction="Without an ISR, each gradual schedule ends with a higher held-out caregiver return than the "
               "abrupt departure; with the ISR the schedule matters less: each gradual schedule's gain over abrupt "
               "is smaller with the ISR than without it.",
    paper_set=("experiment.n_seeds=10", "experiment.socialization_steps=120832",
               "experiment.autonomy_steps=120832", *paper_settings(120_832)),
    single=True,
)


def exposure(df: pd.DataFrame) -> pd.DataFrame:
    """Per condition: the realised exposure (mean presence rate over the autonomous rollouts x the phase's
    steps, per seed, then over seeds) against the target."""
    aut = df[(df["phase"] == "autonomy") & (df["metric"] == "presence_rate")]
    rows = []
    for cond, g in aut.groupby("condition"):
        steps = g.groupby("seed")["step"].agg(lambda s: s.max() - s.min() + (s.sort_values().diff().median()))
        per_seed = g.groupby("seed")["value"].mean() * steps
        rows.append({"condition": cond, "realised": float(per_seed.mean()),
                     "target": EXPOSURE_SHARE * float(steps.mean()), "n": len(per_seed)})
    out = pd.DataFrame(rows)
    out["ok"] = (out["realised"] - out["target"]).abs() <= EXPOSURE_TOLERANCE * out["target"]
    return out


def tests(df: pd.DataFrame) -> list[Directional]:
    """The six predictions, Holm-corrected together (see the module docstring)."""
    ret = outcome_per_seed(df, "caregiver_return", "evaluation").pivot_table(index="seed", columns="condition",
                                                                             values="value")
    found = []
    for g in GRADUAL:
        found.append(paired(f"without the ISR: {g} > abrupt", ret[f"{g}-none"], ret["abrupt-none"]))
    for g in GRADUAL:
        gain_none = ret[f"{g}-none"] - ret["abrupt-none"]
        gain_isr = ret[f"{g}-isr"] - ret["abrupt-isr"]
        found.append(paired(f"{g} vs abrupt: gain without the ISR > gain with it", gain_none, gain_isr))
    return holm(found)


def _plot(df: pd.DataFrame, path: Path) -> Path:
    per = outcome_per_seed(df, "caregiver_return", "evaluation")
    fig = Figure(figsize=(6.4, 3.4))
    ax = fig.add_subplot(1, 1, 1)
    for j, (arm, color) in enumerate((("none", "#D55E00"), ("isr", "#009E73"))):
        stats = [mean_ci(per.loc[per["condition"] == f"{s}-{arm}", "value"]) for s in SCHEDULES]
        m, lo, hi = (np.array(v, float) for v in zip(*stats, strict=True))
        x = np.arange(len(SCHEDULES)) + (j - 0.5) * 0.38
        ax.bar(x, m, 0.38, yerr=np.nan_to_num([m - lo, hi - m]), capsize=3, color=color,
               label="without the ISR" if arm == "none" else "with the ISR (internalizing while present)")
    ax.set_xticks(np.arange(len(SCHEDULES)), SCHEDULES)
    ax.set_ylabel("held-out caregiver return (R_e + R_s)")
    ax.legend(frameon=False, fontsize=8, title="mean, 95% CI over seeds", title_fontsize=8, loc="lower center",
              bbox_to_anchor=(0.5, 1.0), ncol=2)
    fig.tight_layout()
    return _save(fig, path)


def section(name: str, df: pd.DataFrame, fig_dir: Path) -> list[Block]:
    """Question and prediction, the exposure control, the verdicts, the outcome per condition and its figure."""
    exp = exposure(df)
    seeds = sorted(df["seed"].unique())
    blocks = STUDY.intro(name, seeds, f"every schedule gives the caregiver {EXPOSURE_SHARE:.0%} of the autonomous "
                                      "phase in expectation.")
    blocks += [
        Table(("condition", "realised exposure (steps)", "target", "n", "within 15%"), tuple(
            (r.condition, f"{r.realised:,.0f}", f"{r.target:,.0f}", str(r.n), "yes" if r.ok else "NO")
            for r in exp.itertuples())),
    ]
    control = bool(len(exp) == 2 * len(SCHEDULES) and exp["ok"].all())
    blocks.append(Text("Control " + ("passed: every schedule's realised exposure is within 15% of the target."
                                     if control else "FAILED: a schedule's realised exposure is off its target (or a "
                                     "condition is missing); no verdict is read.")))
    found = tests(df)
    blocks.append(verdict_table(found, control))
    first, second = found[:len(GRADUAL)], found[len(GRADUAL):]

    def summary(part: list[Directional]) -> str:
        k = sum(t.verdict == "supported" for t in part)
        return f"{k} of {len(part)} schedules"

    verdict = (f"gradual weaning helps a learner without an ISR in {summary(first)}; the ISR shrinks that gain in "
               f"{summary(second)}" if control else "not measurable (the exposure control failed)")
    blocks.append(Text(f"Verdict: {verdict} (one-sided paired t across seeds, Holm over the six tests, alpha 0.05)."))
    per = outcome_per_seed(df, "caregiver_return", "evaluation")
    means = per.groupby("condition")["value"].mean()
    none_top = max(abs(means.get(f"{s}-none", np.nan)) for s in SCHEDULES)
    isr_low = min(means.get(f"{s}-isr", np.nan) for s in SCHEDULES)
    if np.isfinite(none_top) and np.isfinite(isr_low) and isr_low > 0 and none_top < FLOOR_SHARE * isr_low:
        blocks.append(Text(f"Floor: every learner without the ISR ended at about nothing (|mean| <= {fmt(none_top)}, "
                           f"against >= {fmt(isr_low)} with the ISR), whatever its schedule: at this exposure and "
                           "budget the caregiver-free rest of the phase unlearns them all, so the schedules cannot "
                           "differ there. A larger exposure or a shorter phase would be needed to see weaning help."))
    blocks.append(Table(("condition", "held-out caregiver return (95% CI)", "n"), tuple(
        (c, "{} [{}, {}]".format(*map(fmt, mean_ci(g["value"]))), str(len(g)))
        for c, g in per.groupby("condition", sort=False))))
    blocks.append(Image(f"{name}: held-out caregiver return after each schedule, with and without the ISR",
                        _plot(df, fig_dir / f"study_{name}.png")))
    return blocks
