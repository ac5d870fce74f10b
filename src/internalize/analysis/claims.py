"""The paper's claims, checked against a run's results tables.

:func:`claims` turns ``{experiment: long results table}`` into one :class:`Claim` per paper claim,
each with a verdict ("reproduced", "not reproduced", "not run"), the effect it is judged on (with a
95% CI), the threshold or equivalence margin it is judged against, and the tests it rests on. The
criteria are stated here once, as constants, so a report can print them next to each verdict.

"ISR matches the oracle" (claims 2, 4, 5, 9) is a non-inferiority test against a stated margin
(:mod:`internalize.analysis.noninferiority`): the paper's claims are directional (the ISR does not fall short of the
oracle), so an ISR that does better than the oracle supports them, and "no significant difference" is never taken
for a match. The two-sided equivalence test (TOST), the fraction of the oracle's advantage the ISR recovers and
the seeds the test would need are shown beside it, and the paper's own t-tests stay in the evidence.
Rendering lives in :mod:`internalize.analysis.report`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats as sps

from . import paper
from .claim import NOT_REACHABLE, NOT_REPRODUCED, NOT_RUN, REPRODUCED, Claim, ci_text, fmt
from .noninferiority import (
    FractionCI,
    NonInferiority,
    fraction_recovered,
    non_inferiority,
    seeds_needed,
    seeds_needed_wald,
)
from .stats import (
    contrast_equivalence,
    fig5_mixed_model,
    fig5_reference_ols,
    mean_diff_ci,
    ratio_bootstrap_ci,
    spearman,
    spearman_ci,
    tost_ind,
    ttest,
)
from .table import (
    FROZEN_NAMES,
    ORACLE_NAMES,
    across_seeds,
    end_of_phase,
    final_per_seed,
    group_tables,
    isr_final_per_run,
    pick_condition,
    select,
)

__all__ = ["Claim", "claims", "isr_condition", "REPRODUCED", "NOT_REPRODUCED", "NOT_RUN",
           "UNLEARN_MAX_RATIO", "KEEP_MIN_RATIO", "END_FRACTION", "ALPHA", "EQUIV_FRACTION",
           "EFFECT_LEVEL", "N_BOOT", "BOOTSTRAP_SEED"]

ALPHA: float = paper.ALPHA
# Claim 1: "unlearns" = end-of-autonomy goals/episode at most half the end-of-socialization value.
UNLEARN_MAX_RATIO: float = 0.5
# Claim 2: "keeps its behaviour" = end-of-autonomy goals/episode at least 80% of end-of-socialization.
KEEP_MIN_RATIO: float = 0.8
# "End of a phase" = mean over the last 10% of that phase's logged points, per seed.
END_FRACTION: float = 0.1
# Claims 2, 4, 5, 9 ("ISR matches the oracle"): non-inferiority margin m = EQUIV_FRACTION x the oracle's advantage
# over the baseline without a caregiver (mean(oracle) - mean(baseline); baseline 'none' at the end of autonomy
# for claims 2/9, 'frozen' OOD for claims 4/5), i.e. "the ISR recovers at least 75% of what keeping the
# caregiver buys". Relative to that gap, so the margin is in each experiment's own units and scales with what
# there is to recover; 25% because an ISR losing more than a quarter of the oracle's advantage does not "match"
# it, while a much tighter margin could not be shown with ~10 seeds at the paper's seed spread. The advantage
# is estimated from the same run and then treated as fixed (its own uncertainty is not propagated); if it is
# <= 0 there is nothing to recover and the test is undefined (verdict "not reproduced"). Reproduced iff the
# one-sided test at ALPHA rejects "isr - oracle <= -m": the lower end of the 90% CI of isr - oracle lies above
# -m. Doing better than the oracle is not held against the ISR; the two-sided TOST against ±m is shown beside.
EQUIV_FRACTION: float = 0.25
# Every claim's effect is shown with a 95% CI; ratios (claims 1, 2, 8, 9) get a percentile bootstrap over
# seeds with N_BOOT resamples from np.random.default_rng(BOOTSTRAP_SEED), so a report is reproducible.
EFFECT_LEVEL: float = 0.95
N_BOOT: int = 10_000
BOOTSTRAP_SEED: int = 0
_GOALS, _OOD = "goals_per_episode", "caregiver_return"
_MINUS = "\u2212"


def _seeds(s: pd.Series) -> tuple[int, ...]:
    return tuple(int(x) for x in sorted(set(s)))


_f, _ci = fmt, ci_text


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


def _ratio_effect(cond: str, soc: np.ndarray, aut: np.ndarray, threshold: float) -> dict:
    """Claim fields of a retention ratio: the text 'cond end of autonomy / end of socialization = r [lo, hi]
    (95% bootstrap …)' and the same numbers, judged against ``threshold``."""
    ci = ratio_bootstrap_ci(aut, soc, level=EFFECT_LEVEL, n_boot=N_BOOT, seed=BOOTSTRAP_SEED)
    return dict(effect=f"{cond} end-of-autonomy / end-of-socialization = {_f(ci.mean)} {_ci(ci.low, ci.high)} "
                       f"({_pct(EFFECT_LEVEL)} percentile bootstrap over {ci.n} seeds, {N_BOOT:,} resamples)",
                effect_value=ci.mean, ci_low=ci.low, ci_high=ci.high, margin_value=threshold)


def _margin_text(oracle: str, baseline: str, advantage: float, where: str = "") -> str:
    return (f"isr {_MINUS} {oracle} > {_MINUS}{_f(EQUIV_FRACTION * advantage)} ({EQUIV_FRACTION:.0%} of {oracle} "
            f"{_MINUS} {baseline}{where} = {_f(advantage)})")


def _ni_text(ni: NonInferiority) -> str:
    """The verdict's test (one-sided, non-inferiority) and, after it, the two-sided TOST as secondary."""
    eq = ni.equivalence
    lo, hi = ni.lower, ni.upper
    text = (f"{ni.method} {eq.label_a} {_MINUS} {eq.label_b}: {_pct(ni.level)} CI {_ci(lo, hi)}, lower bound "
            f"{'above' if ni.non_inferior else 'not above'} {_MINUS}{_f(ni.margin)}, one-sided p = {ni.p:.3g} "
            f"({'non-inferior' if ni.non_inferior else 'not shown non-inferior'})")
    if not ni.non_inferior:
        text += "; " + (f"the whole CI lies below {_MINUS}{_f(ni.margin)}: {eq.label_a} falls short of "
                        f"{eq.label_b} by more than the margin (contradicts the claim)" if ni.contradicts else
                        f"inconclusive at n = {eq.n_a} + {eq.n_b} (more seeds could decide either way)"
                        if ni.diff > -ni.margin else
                        f"inconclusive at n = {eq.n_a} + {eq.n_b}, but the observed difference is itself below "
                        f"{_MINUS}{_f(ni.margin)}: more seeds would more likely show {eq.label_a} falling short")
    return text + f"; also equivalent (TOST, ±{_f(ni.margin)}, p = {eq.p:.3g}): {'yes' if eq.equivalent else 'no'}"


def _oracle_fields(a: pd.Series, b: pd.Series, z: pd.Series, ni: NonInferiority) -> dict:
    """Claim fields for "the ISR matches the oracle" from per-seed isr (``a``), oracle (``b``) and baseline
    (``z``) values and the non-inferiority test ``ni`` of isr - oracle: the fraction recovered (seeded bootstrap),
    seeds needed for 80% power (pooled per-seed sd, equal n) and the two-sided equivalence result."""
    sd = float(np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2.0))
    need = seeds_needed(ni.diff, sd, ni.margin, alpha=ALPHA)
    return dict(fraction=fraction_recovered(a.to_numpy(float), b.to_numpy(float), z.to_numpy(float),
                                            level=EFFECT_LEVEL, n_boot=N_BOOT, seed=BOOTSTRAP_SEED),
                seeds_needed=NOT_REACHABLE if need is None else need, also_equivalent=ni.equivalence.equivalent,
                margin_value=ni.margin)


def _undefined_fraction(a: pd.Series, b: pd.Series, z: pd.Series) -> FractionCI | None:
    """The fraction where the oracle does not beat the baseline: undefined (point None), if computable."""
    if min(len(a), len(b), len(z)) < 2:
        return None
    return fraction_recovered(a.to_numpy(float), b.to_numpy(float), z.to_numpy(float), level=EFFECT_LEVEL,
                              n_boot=N_BOOT, seed=BOOTSTRAP_SEED)


def _claim_unlearning(t: pd.DataFrame | None, number: int = 1, figure: str = "Fig 1b", experiment: str = "fig1",
                      statement: str = "Without an ISR the learner unlearns after the caregiver leaves",
                      paper: str = "goals reached 'rapidly drops to zero' (qualitative)") -> Claim:
    base = dict(number=number, figure=figure, statement=statement,
                criterion=f"'none': mean end-of-autonomy / mean end-of-socialization goals/episode "
                          f"(over seeds) <= {UNLEARN_MAX_RATIO:.0%}",
                paper=paper, margin=f"ratio <= {UNLEARN_MAX_RATIO:.2f}", experiment=experiment,
                test="retention ratio <= threshold (percentile bootstrap CI)")
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
                 **_ratio_effect("none", soc_s, aut_s, UNLEARN_MAX_RATIO),
                 evidence=f"none: {soc:.3f} -> {aut:.3f} goals/episode ({ratio - 1:+.0%}), {len(seeds)} seeds")


def _autonomy_by_seed(t: pd.DataFrame, cond: str) -> pd.Series:
    """Per-seed end-of-autonomy goals/episode of ``cond`` (averaged over worlds if several)."""
    return end_of_phase(select(t, condition=cond), _GOALS, "autonomy", END_FRACTION).groupby("seed")["value"].mean()


def _claim_keeping(t: pd.DataFrame | None, number: int = 2, figure: str = "Fig 4a", experiment: str = "fig1",
                   statement: str = "With an ISR the learner keeps its behaviour after the caregiver leaves",
                   paper: str = "ISR curve stays level with the caregiver's (qualitative)") -> Claim:
    base = dict(number=number, figure=figure, statement=statement, experiment=experiment,
                criterion=f"'isr': end-of-autonomy / end-of-socialization goals/episode >= {KEEP_MIN_RATIO:.0%}, "
                          f"and not worse than the oracle by more than the margin at end of autonomy: one-sided "
                          f"Welch t-test (non-inferiority) at alpha {ALPHA}, the lower end of the 90% CI of isr "
                          f"{_MINUS} oracle above {_MINUS}{EQUIV_FRACTION:.0%} of (oracle {_MINUS} none), i.e. the "
                          f"ISR recovers at least {1 - EQUIV_FRACTION:.0%} of what keeping the caregiver buys "
                          "(ratio alone if no oracle ran)",
                paper=paper,
                margin=f"ratio >= {KEEP_MIN_RATIO:.2f}; isr {_MINUS} oracle > {_MINUS}{EQUIV_FRACTION:.0%} of "
                       f"(oracle {_MINUS} none)")
    r = _retention(t, "isr")
    if r is None:
        return Claim(**base, verdict=NOT_RUN, evidence="no 'isr' goals_per_episode in both phases")
    soc_s, aut_s, seeds = r
    soc, aut = float(soc_s.mean()), float(aut_s.mean())
    ratio = aut / soc if soc > 0 else float("nan")
    ok = soc > 0 and ratio >= KEEP_MIN_RATIO
    evidence = f"isr: {soc:.3f} -> {aut:.3f} goals/episode ({ratio:.0%} kept), {len(seeds)} seeds"
    fields = (_ratio_effect("isr", soc_s, aut_s, KEEP_MIN_RATIO) if soc > 0
              else dict(effect=f"isr: nothing to keep ({_f(soc)} at end of socialization)"))
    fields["test"] = "retention ratio >= threshold (percentile bootstrap CI)"
    margin = f"ratio >= {KEEP_MIN_RATIO:.2f}"
    oracle = pick_condition(t["condition"], ORACLE_NAMES)
    a = _autonomy_by_seed(t, "isr")
    b = _autonomy_by_seed(t, oracle) if oracle is not None else pd.Series(dtype=float)
    z = _autonomy_by_seed(t, "none")
    if oracle is None:
        evidence += "; no oracle condition in the table: non-inferiority not tested, verdict on the ratio alone"
    elif len(a) < 2 or len(b) < 2 or z.empty:
        evidence += (f"; non-inferiority to {oracle} not tested (needs >= 2 seeds of isr and {oracle} and a 'none' "
                     f"baseline; have {len(a)}, {len(b)}, {len(z)}): verdict on the ratio alone")
    else:
        # From here the judged quantity is isr - oracle (the ratio stays a condition, printed in the effect).
        w = ttest(a, b, equal_var=False, label_a="isr", label_b=oracle)
        advantage = float(b.mean() - z.mean())
        lo, hi = mean_diff_ci(a, b, equal_var=False, level=EFFECT_LEVEL)
        fields |= dict(effect=fields["effect"] + f"; isr {_MINUS} {oracle} = {_f(w.mean_a - w.mean_b)} "
                                                 f"{_ci(lo, hi)} (Welch {_pct(EFFECT_LEVEL)} CI, end of autonomy)",
                       effect_value=w.mean_a - w.mean_b, ci_low=lo, ci_high=hi,
                       test=f"retention ratio >= {KEEP_MIN_RATIO:.2f} and non-inferiority Welch t (one-sided)")
        evidence += f"; vs {oracle} at end of autonomy: Welch t = {w.t:.2f}, p = {w.p:.3g}"
        if advantage <= 0:
            ok = False
            margin += f"; non-inferiority undefined ({oracle} {_MINUS} none = {_f(advantage)} <= 0)"
            evidence += (f"; non-inferiority undefined: {oracle} does not beat 'none' at end of autonomy "
                         f"({oracle} {_MINUS} none = {advantage:.3f} <= 0)")
            fields |= dict(fraction=_undefined_fraction(a, b, z), margin_value=None)
        else:
            m = EQUIV_FRACTION * advantage
            ni = non_inferiority(tost_ind(a, b, -m, m, usevar="unequal", alpha=ALPHA, label_a="isr", label_b=oracle))
            ok = ok and ni.non_inferior
            margin += "; " + _margin_text(oracle, "none", advantage)
            evidence += "; " + _ni_text(ni)
            fields |= _oracle_fields(a, b, z, ni)
    return Claim(**base | dict(margin=margin), verdict=REPRODUCED if ok else NOT_REPRODUCED, n=len(seeds),
                 seeds=seeds, evidence=evidence, **fields)


def _ood_by_seed(t: pd.DataFrame, cond: str) -> pd.Series:
    """Per-seed OOD caregiver return of ``cond`` (averaged over worlds if several)."""
    runs = final_per_seed(select(t, condition=cond), _OOD)
    return runs.groupby("seed")["value"].mean()


def _claims_fig4b(t: pd.DataFrame | None) -> list[Claim]:
    c3 = dict(number=3, figure="Fig 4b", statement="ISR generalizes better than frozen (OOD caregiver return)",
              criterion=f"Student t-test, mean(isr) > mean(frozen) and p < {ALPHA}",
              paper="p < 0.05 (recomputed: t = 2.377, p = 0.0287, 10 vs 10 seeds)",
              margin=f"isr {_MINUS} frozen > 0, p < {ALPHA}", experiment="fig4b",
              test="Student t (two-sided), isr > frozen")
    c4 = dict(number=4, figure="Fig 4b", statement="ISR generalizes as well as the caregiver-present oracle",
              criterion=f"non-inferiority: one-sided Student t-test (pooled variance, as the paper's test) at "
                        f"alpha {ALPHA}, the lower end of the 90% CI of isr {_MINUS} oracle above "
                        f"{_MINUS}{EQUIV_FRACTION:.0%} of (oracle {_MINUS} frozen), per-seed OOD caregiver "
                        f"return: the ISR recovers at least {1 - EQUIV_FRACTION:.0%} of the oracle's advantage",
              paper="p = 0.32 (recomputed: t = -1.024, p = 0.3196)",
              margin=f"isr {_MINUS} oracle > {_MINUS}{EQUIV_FRACTION:.0%} of (oracle {_MINUS} frozen)",
              experiment="fig4b", test="non-inferiority Student t (one-sided)")
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
                 seeds=tuple(sorted(set(a.index) | set(b.index))), effect_value=r.mean_a - r.mean_b, ci_low=lo,
                 ci_high=hi, margin_value=0.0,
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
    nums = dict(effect_value=r.mean_a - r.mean_b, ci_low=lo, ci_high=hi)
    if advantage <= 0:
        return Claim(**base | dict(margin=f"undefined ({oracle} {_MINUS} {frozen} = {_f(advantage)} <= 0)"),
                     verdict=NOT_REPRODUCED, n=r.n_a + r.n_b, seeds=seeds, effect=effect, **nums,
                     fraction=_undefined_fraction(a, b, f),
                     evidence=evidence + f"; non-inferiority undefined: {oracle} does not beat {frozen} "
                                         f"({oracle} {_MINUS} {frozen} = {advantage:.3f} <= 0)")
    m = EQUIV_FRACTION * advantage
    ni = non_inferiority(tost_ind(a, b, -m, m, usevar="pooled", alpha=ALPHA, label_a="isr", label_b=oracle))
    return Claim(**base | dict(margin=_margin_text(oracle, frozen, advantage)),
                 verdict=REPRODUCED if ni.non_inferior else NOT_REPRODUCED, n=r.n_a + r.n_b,
                 seeds=seeds, effect=effect, evidence=evidence + "; " + _ni_text(ni), **nums,
                 **_oracle_fields(a, b, f, ni))


def _claim_fig5(t: pd.DataFrame | None) -> Claim:
    base = dict(number=5, figure="Fig 5",
                statement="Across hand-picked maps ISR beats frozen and matches the oracle",
                criterion=f"mixed model (map fixed, seed random): isr {_MINUS} frozen > 0 with p < {ALPHA}, and "
                          f"non-inferiority (one-sided Wald z, the model's SEs) at alpha {ALPHA}: the lower end of "
                          f"the 90% CI of isr {_MINUS} oracle above {_MINUS}{EQUIV_FRACTION:.0%} of the model's "
                          f"oracle {_MINUS} frozen",
                paper=f"{paper.FIG5_PAPER_TEXT}; really OLS simple effects in map T "
                      "(additive OLS: isr < oracle, p = 0.011)",
                margin=f"isr {_MINUS} frozen > 0, p < {ALPHA}; isr {_MINUS} oracle > {_MINUS}{EQUIV_FRACTION:.0%} of "
                       f"(oracle {_MINUS} frozen)", experiment="fig5",
                test="mixed model: Wald z isr > frozen (two-sided) and non-inferiority Wald z (one-sided)")
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
    nums = dict(effect_value=io.estimate, ci_low=io.estimate - q * io.se, ci_high=io.estimate + q * io.se)
    beats = fi.estimate < 0 and fi.p < ALPHA
    evidence = (f"mixed model: {frozen} {_MINUS} isr z = {fi.stat:.2f}, p = {fi.p:.3g}; isr {_MINUS} {oracle} "
                f"z = {io.stat:.2f}, "
                f"p = {io.p:.3g}; n = {fi.n} runs, {frame['world'].nunique()} maps")
    margin = f"isr {_MINUS} {frozen} > 0, p < {ALPHA}; "
    if of.estimate <= 0:
        ok = False
        margin += f"non-inferiority undefined ({oracle} {_MINUS} {frozen} = {_f(of.estimate)} <= 0)"
        evidence += (f"; non-inferiority undefined: {oracle} does not beat {frozen} in the mixed model "
                     f"({oracle} {_MINUS} {frozen} = {of.estimate:.3f} <= 0)")
    else:
        m = EQUIV_FRACTION * of.estimate
        try:
            eq = contrast_equivalence(io, -m, m, alpha=ALPHA)
        except ValueError as exc:  # a degenerate fit (SE not finite or 0)
            return Claim(**base, verdict=NOT_REPRODUCED, n=fi.n, seeds=seeds, effect=effect, **nums,
                         evidence=evidence + f"; non-inferiority test failed: {exc}")
        ni = non_inferiority(eq)
        ok = beats and ni.non_inferior
        margin += _margin_text(oracle, frozen, of.estimate, ", mixed model")
        evidence += "; " + _ni_text(ni)
        # Fraction recovered from per-seed means over maps (each condition's seeds resampled on their own);
        # seeds needed from the model's SE, which shrinks as 1 / sqrt(seeds).
        per_seed = frame.groupby(["condition", "seed"])["value"].mean()
        need = seeds_needed_wald(ni.diff, io.se, frame["seed"].nunique(), ni.margin, alpha=ALPHA)
        nums |= dict(margin_value=ni.margin, also_equivalent=eq.equivalent,
                     seeds_needed=NOT_REACHABLE if need is None else need,
                     fraction=fraction_recovered(per_seed["isr"].to_numpy(float), per_seed[oracle].to_numpy(float),
                                                 per_seed[frozen].to_numpy(float), level=EFFECT_LEVEL,
                                                 n_boot=N_BOOT, seed=BOOTSTRAP_SEED))
    try:
        ols = fig5_reference_ols(frame, pairs)
        a, b = ols.interaction.contrasts
        evidence += f"; authors' OLS in map {ols.reference_world}: t = {a.stat:.2f}, {b.stat:.2f}"
    except (ValueError, KeyError, np.linalg.LinAlgError):
        pass  # the reference OLS is supplementary; the verdict rests on the mixed model
    return Claim(**base | dict(margin=margin), verdict=REPRODUCED if ok else NOT_REPRODUCED, n=fi.n, seeds=seeds,
                 effect=effect, evidence=evidence, **nums)


def _claim_fig3(t: pd.DataFrame | None) -> Claim:
    base = dict(number=6, figure="Fig 3b", statement="Held-out ISR error falls with more socialization data",
                criterion=f"Spearman rho(training transitions, held-out MSE) < 0 with p < {ALPHA}",
                paper="MSE 1.25e-3 at 9,216 -> 5.48e-6 at 108,748 transitions (leaky test loss)",
                margin=f"rho < 0, p < {ALPHA}", experiment="fig3", test="Spearman rho (two-sided)", margin_value=0.0)
    runs = pd.DataFrame() if t is None else isr_final_per_run(t)
    if len(runs) < 3 or runs["n_train"].nunique() < 2:
        return Claim(**base, verdict=NOT_RUN, evidence="needs >= 3 ISR runs with >= 2 training-set sizes")
    c = spearman(runs["n_train"], runs["mse"])
    means = runs.groupby("n_train")["mse"].mean()
    ok = c.rho < 0 and c.p < ALPHA
    lo, hi = spearman_ci(c, EFFECT_LEVEL)
    return Claim(**base, verdict=REPRODUCED if ok else NOT_REPRODUCED, n=c.n, seeds=_seeds(runs["seed"]),
                 effect_value=c.rho, ci_low=lo, ci_high=hi,
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
                margin=f"internal rho > 0 and goals rho < 0, p < {ALPHA} each", experiment="fig6",
                test="Spearman rho (two-sided) of internal return and of goals over autonomy; effect: internal "
                     "return's", margin_value=0.0)
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
    lo, hi = spearman_ci(ri, EFFECT_LEVEL)
    return Claim(**base, verdict=REPRODUCED if ok else NOT_REPRODUCED, n=len(seeds), seeds=seeds,
                 effect_value=ri.rho, ci_low=lo, ci_high=hi,
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
            _claim_unlearning(g.get("fig7"), 8, "Fig 7", "fig7",
                              "Without an ISR the learner stops helping the other agent after the caregiver leaves",
                              "the no-ISR learner's helping drops (qualitative)"),
            _claim_keeping(g.get("fig7"), 9, "Fig 7", "fig7",
                           "With an ISR the learner keeps helping the other agent after the caregiver leaves",
                           "the ISR learner keeps helping like the caregiver-present one (qualitative)")]
