"""The paper's claims, checked against a run's results tables.

:func:`claims` turns ``{experiment: long results table}`` into one :class:`Claim` per paper claim,
each with a verdict ("reproduced", "not reproduced", "not run") and the number it rests on. The
criteria are stated here once, as constants, so a report can print them next to each verdict.
Rendering lives in :mod:`internalize.analysis.report`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import paper
from .stats import fig5_mixed_model, fig5_reference_ols, spearman, ttest
from .table import (
    FROZEN_NAMES, ORACLE_NAMES, across_seeds, end_of_phase, final_per_seed, group_tables,
    isr_final_per_run, pick_condition, select,
)

__all__ = ["Claim", "claims", "REPRODUCED", "NOT_REPRODUCED", "NOT_RUN",
           "UNLEARN_MAX_RATIO", "KEEP_MIN_RATIO", "END_FRACTION", "ALPHA"]

REPRODUCED, NOT_REPRODUCED, NOT_RUN = "reproduced", "not reproduced", "not run"
ALPHA: float = paper.ALPHA
# Claim 1: "unlearns" = end-of-autonomy goals/episode at most half the end-of-socialization value.
UNLEARN_MAX_RATIO: float = 0.5
# Claim 2: "keeps its behaviour" = end-of-autonomy goals/episode at least 80% of end-of-socialization.
KEEP_MIN_RATIO: float = 0.8
# "End of a phase" = mean over the last 10% of that phase's logged points, per seed.
END_FRACTION: float = 0.1
_GOALS, _OOD = "goals_per_episode", "caregiver_return"


@dataclass(frozen=True)
class Claim:
    """One paper claim and what this run says about it (``n``: seeds or runs the evidence uses)."""

    number: int
    figure: str
    statement: str
    criterion: str
    paper: str
    verdict: str
    evidence: str
    n: int = 0
    seeds: tuple[int, ...] = ()


def _seeds(s: pd.Series) -> tuple[int, ...]:
    return tuple(int(x) for x in sorted(set(s)))


def _retention(df: pd.DataFrame | None, cond: str) -> tuple[float, float, tuple[int, ...]] | None:
    """(end-of-socialization, end-of-autonomy) mean goals/episode of ``cond`` over seeds with both."""
    if df is None:
        return None
    rows = select(df, condition=cond)
    soc = end_of_phase(rows, _GOALS, "socialization", END_FRACTION)
    aut = end_of_phase(rows, _GOALS, "autonomy", END_FRACTION)
    both = soc.merge(aut, on=["condition", "world", "seed"], suffixes=("_soc", "_aut"))
    if both.empty:
        return None
    return float(both["value_soc"].mean()), float(both["value_aut"].mean()), _seeds(both["seed"])


def _claim_unlearning(t: pd.DataFrame | None, number: int = 1, figure: str = "Fig 1b",
                      statement: str = "Without an ISR the learner unlearns after the caregiver leaves",
                      paper: str = "goals reached 'rapidly drops to zero' (qualitative)") -> Claim:
    base = dict(number=number, figure=figure, statement=statement,
                criterion=f"'none': end-of-autonomy goals/episode <= {UNLEARN_MAX_RATIO:.0%} "
                          "of end of socialization",
                paper=paper)
    r = _retention(t, "none")
    if r is None:
        return Claim(**base, verdict=NOT_RUN, evidence="no 'none' goals_per_episode in both phases")
    soc, aut, seeds = r
    if soc <= 0:
        return Claim(**base, verdict=NOT_REPRODUCED, n=len(seeds), seeds=seeds,
                     evidence=f"nothing to unlearn: {soc:.3f} goals/episode at end of socialization")
    ratio = aut / soc
    ok = ratio <= UNLEARN_MAX_RATIO
    return Claim(**base, verdict=REPRODUCED if ok else NOT_REPRODUCED, n=len(seeds), seeds=seeds,
                 evidence=f"none: {soc:.3f} -> {aut:.3f} goals/episode ({ratio - 1:+.0%}), {len(seeds)} seeds")


def _claim_keeping(t: pd.DataFrame | None, number: int = 2, figure: str = "Fig 4a",
                   statement: str = "With an ISR the learner keeps its behaviour after the caregiver leaves",
                   paper: str = "ISR curve stays level with the caregiver's (qualitative)") -> Claim:
    base = dict(number=number, figure=figure, statement=statement,
                criterion=f"'isr': end-of-autonomy goals/episode >= {KEEP_MIN_RATIO:.0%} of end of socialization",
                paper=paper)
    r = _retention(t, "isr")
    if r is None:
        return Claim(**base, verdict=NOT_RUN, evidence="no 'isr' goals_per_episode in both phases")
    soc, aut, seeds = r
    ratio = aut / soc if soc > 0 else float("nan")
    ok = soc > 0 and ratio >= KEEP_MIN_RATIO
    evidence = f"isr: {soc:.3f} -> {aut:.3f} goals/episode ({ratio:.0%} kept), {len(seeds)} seeds"
    oracle = pick_condition(t["condition"], ORACLE_NAMES)
    if oracle is not None:
        a = end_of_phase(select(t, condition="isr"), _GOALS, "autonomy", END_FRACTION)
        b = end_of_phase(select(t, condition=oracle), _GOALS, "autonomy", END_FRACTION)
        if len(a) >= 2 and len(b) >= 2:
            w = ttest(a["value"], b["value"], equal_var=False, label_a="isr", label_b=oracle)
            evidence += f"; vs {oracle} at end of autonomy: Welch t = {w.t:.2f}, p = {w.p:.3g}"
    return Claim(**base, verdict=REPRODUCED if ok else NOT_REPRODUCED, n=len(seeds), seeds=seeds,
                 evidence=evidence)


def _ood_by_seed(t: pd.DataFrame, cond: str) -> pd.Series:
    """Per-seed OOD caregiver return of ``cond`` (averaged over worlds if several)."""
    runs = final_per_seed(select(t, condition=cond), _OOD)
    return runs.groupby("seed")["value"].mean()


def _claims_fig4b(t: pd.DataFrame | None) -> list[Claim]:
    c3 = dict(number=3, figure="Fig 4b", statement="ISR generalizes better than frozen (OOD caregiver return)",
              criterion=f"Student t-test, mean(isr) > mean(frozen) and p < {ALPHA}",
              paper="p < 0.05 (recomputed: t = 2.377, p = 0.0287, 10 vs 10 seeds)")
    c4 = dict(number=4, figure="Fig 4b", statement="ISR generalizes as well as the caregiver-present oracle",
              criterion=f"Student t-test isr vs oracle, p >= {ALPHA}",
              paper="p = 0.32 (recomputed: t = -1.024, p = 0.3196)")
    conds = [] if t is None else list(select(t, metric=_OOD, phase="evaluation")["condition"].unique())
    out = []
    for base, other_names in ((c3, FROZEN_NAMES), (c4, ORACLE_NAMES)):
        other = pick_condition(conds, other_names)
        if "isr" not in conds or other is None:
            out.append(Claim(**base, verdict=NOT_RUN,
                             evidence=f"needs evaluation {_OOD} of isr and one of {list(other_names)}"))
            continue
        a, b = _ood_by_seed(t, "isr"), _ood_by_seed(t, other)
        if len(a) < 2 or len(b) < 2:
            out.append(Claim(**base, verdict=NOT_RUN,
                             evidence=f"fewer than 2 seeds (isr {len(a)}, {other} {len(b)})"))
            continue
        r = ttest(a, b, equal_var=True, seeds_a=a.index, seeds_b=b.index, label_a="isr", label_b=other)
        ok = (r.t > 0 and r.p < ALPHA) if base is c3 else (r.p >= ALPHA)
        seeds = tuple(sorted(set(a.index) | set(b.index)))
        out.append(Claim(**base, verdict=REPRODUCED if ok else NOT_REPRODUCED, n=r.n_a + r.n_b, seeds=seeds,
                         evidence=f"isr {r.mean_a:.3f} vs {other} {r.mean_b:.3f}: t({r.df:.0f}) = {r.t:.3f}, "
                                  f"p = {r.p:.3g}, n = {r.n_a}+{r.n_b}"))
    return out


def _claim_fig5(t: pd.DataFrame | None) -> Claim:
    base = dict(number=5, figure="Fig 5",
                statement="Across hand-picked maps ISR beats frozen and matches the oracle",
                criterion=f"mixed model (map fixed, seed random): isr - frozen > 0 with p < {ALPHA}, "
                          f"and isr vs oracle p >= {ALPHA}",
                paper=f"{paper.FIG5_PAPER_TEXT}; really OLS simple effects in map T "
                      "(additive OLS: isr < oracle, p = 0.011)")
    frame = pd.DataFrame() if t is None else final_per_seed(t, _OOD)
    conds = list(frame["condition"].unique()) if not frame.empty else []
    frozen, oracle = pick_condition(conds, FROZEN_NAMES), pick_condition(conds, ORACLE_NAMES)
    if "isr" not in conds or frozen is None or oracle is None:
        return Claim(**base, verdict=NOT_RUN,
                     evidence="needs evaluation caregiver_return of frozen, isr and oracle")
    pairs = ((frozen, "isr"), ("isr", oracle))
    seeds = _seeds(frame["seed"])
    try:
        mm = fig5_mixed_model(frame, pairs)
    except (ValueError, np.linalg.LinAlgError) as exc:
        return Claim(**base, verdict=NOT_REPRODUCED, n=len(frame), seeds=seeds,
                     evidence=f"mixed model failed: {exc}")
    fi, io = mm.contrast(*pairs[0]), mm.contrast(*pairs[1])
    ok = fi.estimate < 0 and fi.p < ALPHA and io.p >= ALPHA
    evidence = (f"mixed model: {frozen} - isr z = {fi.stat:.2f}, p = {fi.p:.3g}; isr - {oracle} z = {io.stat:.2f}, "
                f"p = {io.p:.3g}; n = {fi.n} runs, {frame['world'].nunique()} maps")
    try:
        ols = fig5_reference_ols(frame, pairs)
        a, b = ols.interaction.contrasts
        evidence += f"; authors' OLS in map {ols.reference_world}: t = {a.stat:.2f}, {b.stat:.2f}"
    except (ValueError, KeyError, np.linalg.LinAlgError):
        pass  # the reference OLS is supplementary; the verdict rests on the mixed model
    return Claim(**base, verdict=REPRODUCED if ok else NOT_REPRODUCED, n=fi.n, seeds=seeds, evidence=evidence)


def _claim_fig3(t: pd.DataFrame | None) -> Claim:
    base = dict(number=6, figure="Fig 3b", statement="Held-out ISR error falls with more socialization data",
                criterion=f"Spearman rho(training transitions, held-out MSE) < 0 with p < {ALPHA}",
                paper="MSE 1.25e-3 at 9,216 -> 5.48e-6 at 108,748 transitions (leaky test loss)")
    runs = pd.DataFrame() if t is None else isr_final_per_run(t)
    if len(runs) < 3 or runs["n_train"].nunique() < 2:
        return Claim(**base, verdict=NOT_RUN, evidence="needs >= 3 ISR runs with >= 2 training-set sizes")
    c = spearman(runs["n_train"], runs["mse"])
    means = runs.groupby("n_train")["mse"].mean()
    ok = c.rho < 0 and c.p < ALPHA
    return Claim(**base, verdict=REPRODUCED if ok else NOT_REPRODUCED, n=c.n, seeds=_seeds(runs["seed"]),
                 evidence=f"rho = {c.rho:.2f}, p = {c.p:.3g}, {c.n} runs; MSE {means.iloc[0]:.3g} at "
                          f"{means.index[0]:.0f} -> {means.iloc[-1]:.3g} at {means.index[-1]:.0f}")


def _claim_fig6(t: pd.DataFrame | None) -> Claim:
    base = dict(number=7, figure="Fig 6",
                statement="An undertrained ISR is hacked: internal return rises while goals fall",
                criterion="over autonomy, Spearman rho(step, internal_return) > 0 and "
                          f"rho(step, goals/episode) < 0, both p < {ALPHA}",
                paper="internal return rises, goals reached falls (single run, seed 1235, map x)")
    rows = pd.DataFrame() if t is None else select(t, phase="autonomy")
    conds = sorted(rows["condition"].unique()) if not rows.empty else []
    cond = "isr" if "isr" in conds else next((c for c in conds if c.startswith("isr")), None)
    if cond is None:
        return Claim(**base, verdict=NOT_RUN, evidence="no autonomy rows of an ISR condition")
    rows = select(rows, condition=cond)
    res = {}
    for metric in ("internal_return", _GOALS):
        m = select(rows, metric=metric)
        if m["step"].nunique() < 3:
            return Claim(**base, verdict=NOT_RUN, evidence=f"fewer than 3 logged autonomy points of {metric}")
        cur = across_seeds(m, metric)
        res[metric] = spearman(cur["step"], cur["mean"])
    ri, rg = res["internal_return"], res[_GOALS]
    ok = ri.rho > 0 and ri.p < ALPHA and rg.rho < 0 and rg.p < ALPHA
    seeds = _seeds(rows["seed"])
    return Claim(**base, verdict=REPRODUCED if ok else NOT_REPRODUCED, n=len(seeds), seeds=seeds,
                 evidence=f"{cond}: internal rho = {ri.rho:+.2f} (p = {ri.p:.3g}), goals rho = {rg.rho:+.2f} "
                          f"(p = {rg.p:.3g}) over {ri.n} points, {len(seeds)} seed(s)")


def claims(tables: Mapping[str, pd.DataFrame]) -> list[Claim]:
    """Check the paper's nine claims against ``tables`` (experiment name -> long results table).

    Names are grouped as in :data:`internalize.analysis.table.EXPERIMENT_ALIASES` (fig1b/fig4a ->
    fig1, fig3a/fig3b -> fig3). A claim whose experiment is absent is "not run".
    """
    g = group_tables(tables)
    return [_claim_unlearning(g.get("fig1")), _claim_keeping(g.get("fig1")), *_claims_fig4b(g.get("fig4b")),
            _claim_fig5(g.get("fig5")), _claim_fig3(g.get("fig3")), _claim_fig6(g.get("fig6")),
            # Figure 7: the same two claims about a value concerning another agent ("goals" = the helped agent's).
            _claim_unlearning(g.get("fig7"), 8, "Fig 7",
                              "Without an ISR the learner stops helping the other agent after the caregiver leaves",
                              "the no-ISR learner's helping drops (qualitative)"),
            _claim_keeping(g.get("fig7"), 9, "Fig 7",
                           "With an ISR the learner keeps helping the other agent after the caregiver leaves",
                           "the ISR learner keeps helping like the caregiver-present one (qualitative)")]
