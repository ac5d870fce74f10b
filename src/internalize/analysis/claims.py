"""The paper's claims, checked against a run's results tables.

:func:`claims` turns ``{experiment: long results table}`` into one :class:`Claim` per paper claim,
each with a verdict ("reproduced", "not reproduced", "not run"), the effect it is judged on (with a
95% CI), the threshold or equivalence margin it is judged against, and the tests it rests on. The
criteria are stated here once, as constants, so a report can print them next to each verdict.

"ISR matches the oracle" (claims 2, 4, 5, 9) is an equivalence test (TOST) against a stated margin,
never "no significant difference": a non-significant p is absence of evidence, and more seeds or a
lucky seed set flips it either way. The paper's own t-tests stay in the evidence, beside the TOST.
Rendering lives in :mod:`internalize.analysis.report`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from . import paper
from .stats import (
    Equivalence, contrast_equivalence, fig5_mixed_model, fig5_reference_ols, mean_diff_ci,
    ratio_bootstrap_ci, spearman, spearman_ci, tost_ind, ttest,
)
from .table import (
    FROZEN_NAMES, ORACLE_NAMES, across_seeds, end_of_phase, final_per_seed, group_tables,
    isr_final_per_run, pick_condition, select,
)

__all__ = ["Claim", "claims", "isr_condition", "REPRODUCED", "NOT_REPRODUCED", "NOT_RUN",
           "UNLEARN_MAX_RATIO", "KEEP_MIN_RATIO", "END_FRACTION", "ALPHA", "EQUIV_FRACTION",
           "EFFECT_LEVEL", "N_BOOT", "BOOTSTRAP_SEED"]

REPRODUCED, NOT_REPRODUCED, NOT_RUN = "reproduced", "not reproduced", "not run"
ALPHA: float = paper.ALPHA
# Claim 1: "unlearns" = end-of-autonomy goals/episode at most half the end-of-socialization value.
UNLEARN_MAX_RATIO: float = 0.5
# Claim 2: "keeps its behaviour" = end-of-autonomy goals/episode at least 80% of end-of-socialization.
KEEP_MIN_RATIO: float = 0.8
# "End of a phase" = mean over the last 10% of that phase's logged points, per seed.
END_FRACTION: float = 0.1
# Claims 2, 4, 5, 9 ("ISR matches the oracle"): equivalence margin = ±EQUIV_FRACTION x the oracle's advantage
# over the baseline without a caregiver (mean(oracle) - mean(baseline); baseline 'none' at the end of autonomy
# for claims 2/9, 'frozen' OOD for claims 4/5), i.e. "the ISR recovers at least 75% of what keeping the
# caregiver buys". Relative to that gap, so the margin is in each experiment's own units and scales with what
# there is to recover; 25% because an ISR losing more than a quarter of the oracle's advantage does not "match"
# it, while a much tighter margin could not be shown with ~10 seeds at the paper's seed spread. The advantage
# is estimated from the same run and then treated as fixed (its own uncertainty is not propagated); if it is
# <= 0 there is nothing to recover and equivalence is undefined (verdict "not reproduced"). The TOST runs at
# ALPHA: equivalent iff the 90% CI of isr - oracle lies inside the margin.
EQUIV_FRACTION: float = 0.25
# Every claim's effect is shown with a 95% CI; ratios (claims 1, 2, 8, 9) get a percentile bootstrap over
# seeds with N_BOOT resamples from np.random.default_rng(BOOTSTRAP_SEED), so a report is reproducible.
EFFECT_LEVEL: float = 0.95
N_BOOT: int = 10_000
BOOTSTRAP_SEED: int = 0
_GOALS, _OOD = "goals_per_episode", "caregiver_return"
_MINUS = "\u2212"


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
    # The quantity judged, with its 95% CI (e.g. "isr − caregiver = −0.051 [−0.130, 0.028]"), and the
    # threshold or equivalence margin it is judged against, as numbers. Not run: no effect, and the margin
    # states the rule only (an equivalence margin is a number only once the run's oracle advantage is known).
    effect: str = ""
    margin: str = ""


def _seeds(s: pd.Series) -> tuple[int, ...]:
    return tuple(int(x) for x in sorted(set(s)))


def _f(x: float, digits: int = 3) -> str:
    """``x`` with ``digits`` decimals and a typographic minus (as the report prints effects)."""
    return f"{x:.{digits}f}".replace("-", _MINUS)


def _ci(lo: float, hi: float, digits: int = 3) -> str:
    return f"[{_f(lo, digits)}, {_f(hi, digits)}]"


def _pct(level: float) -> str:
    return f"{level:.0%}"


def _retention(df: pd.DataFrame | None, cond: str) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]] | None:
    """Per seed (averaged over worlds), end-of-socialization and end-of-autonomy goals/episode of
    ``cond`` over the seeds with both phases, and those seeds."""
    if df is None:
        return None
    rows = select(df, condition=cond)
    soc = end_of_phase(rows, _GOALS, "socialization", END_FRACTION)
    aut = end_of_phase(rows, _GOALS, "autonomy", END_FRACTION)
    both = soc.merge(aut, on=["condition", "world", "seed"], suffixes=("_soc", "_aut"))
    if both.empty:
        return None
    per_seed = both.groupby("seed")[["value_soc", "value_aut"]].mean()
    return (per_seed["value_soc"].to_numpy(float), per_seed["value_aut"].to_numpy(float),
            _seeds(per_seed.index))


def _ratio_effect(cond: str, soc: np.ndarray, aut: np.ndarray) -> str:
    """'cond end of autonomy / end of socialization = r [lo, hi] (95% bootstrap …)'."""
    ci = ratio_bootstrap_ci(aut, soc, level=EFFECT_LEVEL, n_boot=N_BOOT, seed=BOOTSTRAP_SEED)
    return (f"{cond} end-of-autonomy / end-of-socialization = {_f(ci.mean)} {_ci(ci.low, ci.high)} "
            f"({_pct(EFFECT_LEVEL)} percentile bootstrap over {ci.n} seeds, {N_BOOT:,} resamples)")


def _margin_text(oracle: str, baseline: str, advantage: float, where: str = "") -> str:
    return (f"±{_f(EQUIV_FRACTION * advantage)} ({EQUIV_FRACTION:.0%} of {oracle} {_MINUS} {baseline}"
            f"{where} = {_f(advantage)})")


def _tost_text(eq: Equivalence) -> str:
    lo, hi = eq.ci_tost
    text = (f"{eq.method} {eq.label_a} {_MINUS} {eq.label_b}: {_pct(eq.tost_level)} CI {_ci(lo, hi)} "
            f"{'inside' if eq.equivalent else 'not inside'} ±{_f(eq.margin[1])}, p = {eq.p:.3g} "
            f"({'equivalent' if eq.equivalent else 'not equivalent'})")
    return text if eq.equivalent else f"{text}; {_not_equivalent_reading(eq)}"


def _not_equivalent_reading(eq: Equivalence) -> str:
    """What a failed TOST means: a CI that crosses the margin cannot tell (more seeds could decide either
    way); one wholly outside it shows a difference larger than the margin, which contradicts the claim."""
    (lo, hi), (m_lo, m_hi) = eq.ci_tost, eq.margin
    if hi <= m_lo or lo >= m_hi:
        return (f"the CI lies wholly outside the margin: {eq.label_a} differs from {eq.label_b} by more than "
                "the margin (contradicts the claim)")
    return (f"the CI crosses the margin: inconclusive at n = {eq.n_a} + {eq.n_b} (more seeds could decide "
            "either way)")


def _claim_unlearning(t: pd.DataFrame | None, number: int = 1, figure: str = "Fig 1b",
                      statement: str = "Without an ISR the learner unlearns after the caregiver leaves",
                      paper: str = "goals reached 'rapidly drops to zero' (qualitative)") -> Claim:
    base = dict(number=number, figure=figure, statement=statement,
                criterion=f"'none': mean end-of-autonomy / mean end-of-socialization goals/episode "
                          f"(over seeds) <= {UNLEARN_MAX_RATIO:.0%}",
                paper=paper, margin=f"ratio <= {UNLEARN_MAX_RATIO:.2f}")
    r = _retention(t, "none")
    if r is None:
        return Claim(**base, verdict=NOT_RUN, evidence="no 'none' goals_per_episode in both phases")
    soc_s, aut_s, seeds = r
    soc, aut = float(soc_s.mean()), float(aut_s.mean())
    if soc <= 0:
        return Claim(**base, verdict=NOT_REPRODUCED, n=len(seeds), seeds=seeds,
                     evidence=f"nothing to unlearn: {soc:.3f} goals/episode at end of socialization")
    ratio = aut / soc
    ok = ratio <= UNLEARN_MAX_RATIO
    return Claim(**base, verdict=REPRODUCED if ok else NOT_REPRODUCED, n=len(seeds), seeds=seeds,
                 effect=_ratio_effect("none", soc_s, aut_s),
                 evidence=f"none: {soc:.3f} -> {aut:.3f} goals/episode ({ratio - 1:+.0%}), {len(seeds)} seeds")


def _autonomy_by_seed(t: pd.DataFrame, cond: str) -> pd.Series:
    """Per-seed end-of-autonomy goals/episode of ``cond`` (averaged over worlds if several)."""
    return end_of_phase(select(t, condition=cond), _GOALS, "autonomy", END_FRACTION).groupby("seed")["value"].mean()


def _claim_keeping(t: pd.DataFrame | None, number: int = 2, figure: str = "Fig 4a",
                   statement: str = "With an ISR the learner keeps its behaviour after the caregiver leaves",
                   paper: str = "ISR curve stays level with the caregiver's (qualitative)") -> Claim:
    base = dict(number=number, figure=figure, statement=statement,
                criterion=f"'isr': end-of-autonomy / end-of-socialization goals/episode >= {KEEP_MIN_RATIO:.0%}, "
                          f"and equivalent to the oracle at end of autonomy: Welch TOST at alpha {ALPHA}, margin "
                          f"±{EQUIV_FRACTION:.0%} of (oracle {_MINUS} none) (ratio alone if no oracle ran)",
                paper=paper,
                margin=f"ratio >= {KEEP_MIN_RATIO:.2f}; ±{EQUIV_FRACTION:.0%} of (oracle {_MINUS} none)")
    r = _retention(t, "isr")
    if r is None:
        return Claim(**base, verdict=NOT_RUN, evidence="no 'isr' goals_per_episode in both phases")
    soc_s, aut_s, seeds = r
    soc, aut = float(soc_s.mean()), float(aut_s.mean())
    ratio = aut / soc if soc > 0 else float("nan")
    ok = soc > 0 and ratio >= KEEP_MIN_RATIO
    evidence = f"isr: {soc:.3f} -> {aut:.3f} goals/episode ({ratio:.0%} kept), {len(seeds)} seeds"
    effect = (_ratio_effect("isr", soc_s, aut_s) if soc > 0
              else f"isr: nothing to keep ({_f(soc)} at end of socialization)")
    margin = f"ratio >= {KEEP_MIN_RATIO:.2f}"
    oracle = pick_condition(t["condition"], ORACLE_NAMES)
    a = _autonomy_by_seed(t, "isr")
    b = _autonomy_by_seed(t, oracle) if oracle is not None else pd.Series(dtype=float)
    z = _autonomy_by_seed(t, "none")
    if oracle is None:
        evidence += "; no oracle condition in the table: equivalence not tested, verdict on the ratio alone"
    elif len(a) < 2 or len(b) < 2 or z.empty:
        evidence += (f"; equivalence to {oracle} not tested (needs >= 2 seeds of isr and {oracle} and a 'none' "
                     f"baseline; have {len(a)}, {len(b)}, {len(z)}): verdict on the ratio alone")
    else:
        w = ttest(a, b, equal_var=False, label_a="isr", label_b=oracle)
        advantage = float(b.mean() - z.mean())
        lo, hi = mean_diff_ci(a, b, equal_var=False, level=EFFECT_LEVEL)
        effect += (f"; isr {_MINUS} {oracle} = {_f(w.mean_a - w.mean_b)} {_ci(lo, hi)} "
                   f"(Welch {_pct(EFFECT_LEVEL)} CI, end of autonomy)")
        evidence += f"; vs {oracle} at end of autonomy: Welch t = {w.t:.2f}, p = {w.p:.3g}"
        if advantage <= 0:
            ok = False
            margin += f"; equivalence undefined ({oracle} {_MINUS} none = {_f(advantage)} <= 0)"
            evidence += (f"; equivalence undefined: {oracle} does not beat 'none' at end of autonomy "
                         f"({oracle} {_MINUS} none = {advantage:.3f} <= 0)")
        else:
            m = EQUIV_FRACTION * advantage
            eq = tost_ind(a, b, -m, m, usevar="unequal", alpha=ALPHA, label_a="isr", label_b=oracle)
            ok = ok and eq.equivalent
            margin += "; " + _margin_text(oracle, "none", advantage)
            evidence += "; " + _tost_text(eq)
    return Claim(**base | dict(margin=margin), verdict=REPRODUCED if ok else NOT_REPRODUCED, n=len(seeds),
                 seeds=seeds, evidence=evidence, effect=effect)


def _ood_by_seed(t: pd.DataFrame, cond: str) -> pd.Series:
    """Per-seed OOD caregiver return of ``cond`` (averaged over worlds if several)."""
    runs = final_per_seed(select(t, condition=cond), _OOD)
    return runs.groupby("seed")["value"].mean()


def _claims_fig4b(t: pd.DataFrame | None) -> list[Claim]:
    c3 = dict(number=3, figure="Fig 4b", statement="ISR generalizes better than frozen (OOD caregiver return)",
              criterion=f"Student t-test, mean(isr) > mean(frozen) and p < {ALPHA}",
              paper="p < 0.05 (recomputed: t = 2.377, p = 0.0287, 10 vs 10 seeds)",
              margin=f"isr {_MINUS} frozen > 0, p < {ALPHA}")
    c4 = dict(number=4, figure="Fig 4b", statement="ISR generalizes as well as the caregiver-present oracle",
              criterion=f"TOST (two one-sided Student t-tests, pooled variance as the paper's test) at alpha "
                        f"{ALPHA}: the 90% CI of isr {_MINUS} oracle inside ±{EQUIV_FRACTION:.0%} of "
                        f"(oracle {_MINUS} frozen), per-seed OOD caregiver return",
              paper="p = 0.32 (recomputed: t = -1.024, p = 0.3196)",
              margin=f"±{EQUIV_FRACTION:.0%} of (oracle {_MINUS} frozen)")
    conds = [] if t is None else list(select(t, metric=_OOD, phase="evaluation")["condition"].unique())
    frozen, oracle = pick_condition(conds, FROZEN_NAMES), pick_condition(conds, ORACLE_NAMES)
    return [_claim_isr_vs_frozen(t, c3, conds, frozen), _claim_isr_matches_oracle(t, c4, conds, frozen, oracle)]


def _claim_isr_vs_frozen(t: pd.DataFrame | None, base: dict, conds: list, frozen: str | None) -> Claim:
    if "isr" not in conds or frozen is None:
        return Claim(**base, verdict=NOT_RUN,
                     evidence=f"needs evaluation {_OOD} of isr and one of {list(FROZEN_NAMES)}")
    a, b = _ood_by_seed(t, "isr"), _ood_by_seed(t, frozen)
    if len(a) < 2 or len(b) < 2:
        return Claim(**base, verdict=NOT_RUN, evidence=f"fewer than 2 seeds (isr {len(a)}, {frozen} {len(b)})")
    # One sign everywhere (this row, the Fig 4b table): the difference and its t are isr - frozen.
    r = ttest(a, b, equal_var=True, seeds_a=a.index, seeds_b=b.index, label_a="isr", label_b=frozen)
    lo, hi = mean_diff_ci(a, b, equal_var=True, level=EFFECT_LEVEL)
    ok = r.t > 0 and r.p < ALPHA
    return Claim(**base, verdict=REPRODUCED if ok else NOT_REPRODUCED, n=r.n_a + r.n_b,
                 seeds=tuple(sorted(set(a.index) | set(b.index))),
                 effect=f"isr {_MINUS} {frozen} = {_f(r.mean_a - r.mean_b)} {_ci(lo, hi)} "
                        f"(Student {_pct(EFFECT_LEVEL)} CI)",
                 evidence=f"isr {r.mean_a:.3f} vs {frozen} {r.mean_b:.3f}: Student t({r.df:.0f}) = "
                          f"{r.t:.3f} (isr {_MINUS} {frozen}), p = {r.p:.3g}, n = {r.n_a}+{r.n_b}")


def _claim_isr_matches_oracle(t: pd.DataFrame | None, base: dict, conds: list, frozen: str | None,
                              oracle: str | None) -> Claim:
    if "isr" not in conds or oracle is None or frozen is None:
        return Claim(**base, verdict=NOT_RUN,
                     evidence=f"needs evaluation {_OOD} of isr, one of {list(ORACLE_NAMES)} and one of "
                              f"{list(FROZEN_NAMES)} (the margin's baseline)")
    a, b, f = _ood_by_seed(t, "isr"), _ood_by_seed(t, oracle), _ood_by_seed(t, frozen)
    if len(a) < 2 or len(b) < 2:
        return Claim(**base, verdict=NOT_RUN, evidence=f"fewer than 2 seeds (isr {len(a)}, {oracle} {len(b)})")
    r = ttest(a, b, equal_var=True, seeds_a=a.index, seeds_b=b.index, label_a="isr", label_b=oracle)
    lo, hi = mean_diff_ci(a, b, equal_var=True, level=EFFECT_LEVEL)
    seeds = tuple(sorted(set(a.index) | set(b.index) | set(f.index)))
    effect = f"isr {_MINUS} {oracle} = {_f(r.mean_a - r.mean_b)} {_ci(lo, hi)} (Student {_pct(EFFECT_LEVEL)} CI)"
    evidence = (f"isr {r.mean_a:.3f} vs {oracle} {r.mean_b:.3f}: Student t({r.df:.0f}) = {r.t:.3f}, "
                f"p = {r.p:.3g}, n = {r.n_a}+{r.n_b}")
    advantage = float(b.mean() - f.mean())
    if advantage <= 0:
        return Claim(**base | dict(margin=f"undefined ({oracle} {_MINUS} {frozen} = {_f(advantage)} <= 0)"),
                     verdict=NOT_REPRODUCED, n=r.n_a + r.n_b, seeds=seeds, effect=effect,
                     evidence=evidence + f"; equivalence undefined: {oracle} does not beat {frozen} "
                                         f"({oracle} {_MINUS} {frozen} = {advantage:.3f} <= 0)")
    m = EQUIV_FRACTION * advantage
    eq = tost_ind(a, b, -m, m, usevar="pooled", alpha=ALPHA, label_a="isr", label_b=oracle)
    return Claim(**base | dict(margin=_margin_text(oracle, frozen, advantage)),
                 verdict=REPRODUCED if eq.equivalent else NOT_REPRODUCED, n=r.n_a + r.n_b, seeds=seeds,
                 effect=effect, evidence=evidence + "; " + _tost_text(eq))


def _claim_fig5(t: pd.DataFrame | None) -> Claim:
    base = dict(number=5, figure="Fig 5",
                statement="Across hand-picked maps ISR beats frozen and matches the oracle",
                criterion=f"mixed model (map fixed, seed random): isr {_MINUS} frozen > 0 with p < {ALPHA}, and "
                          f"TOST (Wald z, the model's SEs) at alpha {ALPHA}: the 90% CI of isr {_MINUS} oracle inside "
                          f"±{EQUIV_FRACTION:.0%} of the model's oracle {_MINUS} frozen",
                paper=f"{paper.FIG5_PAPER_TEXT}; really OLS simple effects in map T "
                      "(additive OLS: isr < oracle, p = 0.011)",
                margin=f"isr {_MINUS} frozen > 0, p < {ALPHA}; ±{EQUIV_FRACTION:.0%} of (oracle {_MINUS} frozen)")
    frame = pd.DataFrame() if t is None else final_per_seed(t, _OOD)
    conds = list(frame["condition"].unique()) if not frame.empty else []
    frozen, oracle = pick_condition(conds, FROZEN_NAMES), pick_condition(conds, ORACLE_NAMES)
    if "isr" not in conds or frozen is None or oracle is None:
        return Claim(**base, verdict=NOT_RUN,
                     evidence="needs evaluation caregiver_return of frozen, isr and oracle")
    pairs = ((frozen, "isr"), ("isr", oracle))
    seeds = _seeds(frame["seed"])
    try:
        mm = fig5_mixed_model(frame, (*pairs, (oracle, frozen)))
    except (ValueError, np.linalg.LinAlgError) as exc:
        return Claim(**base, verdict=NOT_REPRODUCED, n=len(frame), seeds=seeds,
                     evidence=f"mixed model failed: {exc}")
    fi, io, of = mm.contrast(*pairs[0]), mm.contrast(*pairs[1]), mm.contrast(oracle, frozen)
    q = float(sps.norm.ppf(0.5 + EFFECT_LEVEL / 2.0))
    effect = (f"isr {_MINUS} {frozen} = {_f(-fi.estimate)} {_ci(-fi.estimate - q * fi.se, -fi.estimate + q * fi.se)}; "
              f"isr {_MINUS} {oracle} = {_f(io.estimate)} {_ci(io.estimate - q * io.se, io.estimate + q * io.se)} "
              f"(mixed model, Wald z {_pct(EFFECT_LEVEL)} CIs)")
    beats = fi.estimate < 0 and fi.p < ALPHA
    evidence = (f"mixed model: {frozen} {_MINUS} isr z = {fi.stat:.2f}, p = {fi.p:.3g}; isr {_MINUS} {oracle} "
                f"z = {io.stat:.2f}, "
                f"p = {io.p:.3g}; n = {fi.n} runs, {frame['world'].nunique()} maps")
    margin = f"isr {_MINUS} {frozen} > 0, p < {ALPHA}; "
    if of.estimate <= 0:
        ok = False
        margin += f"equivalence undefined ({oracle} {_MINUS} {frozen} = {_f(of.estimate)} <= 0)"
        evidence += (f"; equivalence undefined: {oracle} does not beat {frozen} in the mixed model "
                     f"({oracle} {_MINUS} {frozen} = {of.estimate:.3f} <= 0)")
    else:
        m = EQUIV_FRACTION * of.estimate
        try:
            eq = contrast_equivalence(io, -m, m, alpha=ALPHA)
        except ValueError as exc:  # a degenerate fit (SE not finite or 0)
            return Claim(**base, verdict=NOT_REPRODUCED, n=fi.n, seeds=seeds, effect=effect,
                         evidence=evidence + f"; equivalence test failed: {exc}")
        ok = beats and eq.equivalent
        margin += _margin_text(oracle, frozen, of.estimate, ", mixed model")
        evidence += "; " + _tost_text(eq)
    try:
        ols = fig5_reference_ols(frame, pairs)
        a, b = ols.interaction.contrasts
        evidence += f"; authors' OLS in map {ols.reference_world}: t = {a.stat:.2f}, {b.stat:.2f}"
    except (ValueError, KeyError, np.linalg.LinAlgError):
        pass  # the reference OLS is supplementary; the verdict rests on the mixed model
    return Claim(**base | dict(margin=margin), verdict=REPRODUCED if ok else NOT_REPRODUCED, n=fi.n, seeds=seeds,
                 effect=effect, evidence=evidence)


def _claim_fig3(t: pd.DataFrame | None) -> Claim:
    base = dict(number=6, figure="Fig 3b", statement="Held-out ISR error falls with more socialization data",
                criterion=f"Spearman rho(training transitions, held-out MSE) < 0 with p < {ALPHA}",
                paper="MSE 1.25e-3 at 9,216 -> 5.48e-6 at 108,748 transitions (leaky test loss)",
                margin=f"rho < 0, p < {ALPHA}")
    runs = pd.DataFrame() if t is None else isr_final_per_run(t)
    if len(runs) < 3 or runs["n_train"].nunique() < 2:
        return Claim(**base, verdict=NOT_RUN, evidence="needs >= 3 ISR runs with >= 2 training-set sizes")
    c = spearman(runs["n_train"], runs["mse"])
    means = runs.groupby("n_train")["mse"].mean()
    ok = c.rho < 0 and c.p < ALPHA
    return Claim(**base, verdict=REPRODUCED if ok else NOT_REPRODUCED, n=c.n, seeds=_seeds(runs["seed"]),
                 effect=f"Spearman rho = {_f(c.rho)} {_ci(*spearman_ci(c, EFFECT_LEVEL))} "
                        f"(Fisher z {_pct(EFFECT_LEVEL)} CI, {c.n} runs)",
                 evidence=f"rho = {c.rho:.2f}, p = {c.p:.3g}, {c.n} runs; MSE {means.iloc[0]:.3g} at "
                          f"{means.index[0]:.0f} -> {means.iloc[-1]:.3g} at {means.index[-1]:.0f}")


def isr_condition(conditions) -> str | None:
    """The ISR condition whose autonomy a Fig 6 trend reads: ``isr``, else the first ``isr*`` name, else None."""
    conds = sorted(conditions)
    return "isr" if "isr" in conds else next((c for c in conds if c.startswith("isr")), None)


def _claim_fig6(t: pd.DataFrame | None) -> Claim:
    base = dict(number=7, figure="Fig 6",
                statement="An undertrained ISR is hacked: internal return rises while goals fall",
                criterion="over autonomy, Spearman rho(step, internal_return) > 0 and "
                          f"rho(step, goals/episode) < 0, both p < {ALPHA}",
                paper="internal return rises, goals reached falls (single run, seed 1235, map x)",
                margin=f"internal rho > 0 and goals rho < 0, p < {ALPHA} each")
    rows = pd.DataFrame() if t is None else select(t, phase="autonomy")
    cond = isr_condition(rows["condition"].unique() if not rows.empty else [])
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
                 effect=f"{cond}: internal-return rho = {_f(ri.rho)} {_ci(*spearman_ci(ri, EFFECT_LEVEL))}, "
                        f"goals rho = {_f(rg.rho)} {_ci(*spearman_ci(rg, EFFECT_LEVEL))} "
                        f"(Fisher z {_pct(EFFECT_LEVEL)} CIs, {ri.n} points)",
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
