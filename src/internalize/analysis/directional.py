"""Directional tests across seeds for the studies: a predicted sign, tested one-sided, Holm-corrected over a study's
family of tests, reported with the effect and its two-sided 95% CI.

A study states its prediction before its result (``internalize.studies``); each prediction is one test here: a
paired difference (the same seeds in both arms: :func:`paired`), two independent groups (:func:`welch`) or, for
a prediction of "no more than a stated margin apart", an equivalence test (:func:`equivalent`, TOST). The
verdict of a test is read from its Holm-adjusted one-sided p (:func:`holm`) at ``ALPHA``: *supported* when the
effect has the predicted sign and p_holm < ALPHA, *contradicted* when the opposite one-sided test is significant
the same way, else *not shown*. Fewer than ``MIN_SEEDS`` seeds with a defined value is *not measurable*, never a
number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import scipy.stats as sps
from statsmodels.stats.multitest import multipletests

ALPHA = 0.05
MIN_SEEDS = 6


@dataclass(frozen=True)
class Directional:
    """One directional test: ``effect`` = mean difference (a − b), its 95% CI, the one-sided p in the predicted
    direction (``p``) and against it (``p_against``), the Holm-adjusted ones once :func:`holm` ran, ``n``
    (pairs, or the two group sizes), and the test's name."""

    label: str
    effect: float
    ci_low: float
    ci_high: float
    p: float
    p_against: float
    n: tuple[int, ...]
    test: str
    p_holm: float = float("nan")
    p_against_holm: float = float("nan")

    @property
    def measurable(self) -> bool:
        return min(self.n) >= MIN_SEEDS and np.isfinite(self.effect)

    @property
    def verdict(self) -> str:
        if not self.measurable:
            return "not measurable"
        if self.p_holm < ALPHA:
            return "supported"
        if self.p_against_holm < ALPHA:
            return "contradicted"
        return "not shown"


def _finite(x: Sequence[float]) -> np.ndarray:
    v = np.asarray(x, dtype=float)
    return v[np.isfinite(v)]


def paired(label: str, a: Sequence[float], b: Sequence[float], greater: bool = True) -> Directional:
    """Paired t on a − b (one pair per seed; pairs with a NaN dropped); predicted a > b (``greater``) or a < b."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = (a - b)[np.isfinite(a) & np.isfinite(b)]
    if d.size < 2:
        return Directional(label, float("nan"), float("nan"), float("nan"), float("nan"), float("nan"),
                           (int(d.size),), "paired t")
    if np.all(d == d[0]):  # no spread: t is infinite in the sign of the difference (or undefined at 0)
        m = float(d[0])
        p_up = 0.0 if m > 0 else 1.0
        p_down = 0.0 if m < 0 else 1.0
        p, q = (p_up, p_down) if greater else (p_down, p_up)
        return Directional(label, m, m, m, p, q, (int(d.size),), "paired t")
    res = sps.ttest_1samp(d, 0.0)
    ci = res.confidence_interval(0.95)
    half = 0.5 * float(res.pvalue)
    p_up = half if res.statistic > 0 else 1 - half
    p, q = (p_up, 1 - p_up) if greater else (1 - p_up, p_up)
    return Directional(label, float(d.mean()), float(ci.low), float(ci.high), p, q, (int(d.size),), "paired t")


def welch(label: str, a: Sequence[float], b: Sequence[float], greater: bool = True) -> Directional:
    """Welch's t on mean(a) − mean(b) (independent groups; NaNs dropped); predicted a > b or a < b."""
    x, y = _finite(a), _finite(b)
    if x.size < 2 or y.size < 2:
        return Directional(label, float("nan"), float("nan"), float("nan"), float("nan"), float("nan"),
                           (int(x.size), int(y.size)), "Welch t")
    res = sps.ttest_ind(x, y, equal_var=False)
    ci = res.confidence_interval(0.95)
    half = 0.5 * float(res.pvalue)
    p_up = half if res.statistic > 0 else 1 - half
    p, q = (p_up, 1 - p_up) if greater else (1 - p_up, p_up)
    return Directional(label, float(x.mean() - y.mean()), float(ci.low), float(ci.high), p, q,
                       (int(x.size), int(y.size)), "Welch t")


def equivalent(label: str, x: Sequence[float], target: float, margin: float) -> Directional:
    """Equivalence of mean(x) to ``target`` within ±``margin`` (TOST: two one-sided one-sample t tests; NaNs
    dropped). ``p`` is the larger of the two one-sided p (supported: the mean lies inside the margin), ``p_against``
    the one-sided p that it lies beyond the margin on the side of the observed mean (contradicted); the effect is
    mean(x) − target with its two-sided 95% CI."""
    d = _finite(x) - target
    test = f"TOST, margin ±{margin:g}"
    if d.size < 2:
        return Directional(label, float("nan"), float("nan"), float("nan"), float("nan"), float("nan"),
                           (int(d.size),), test)
    m = float(d.mean())
    if np.all(d == d[0]):  # no spread: inside or outside the margin for certain
        inside = abs(m) < margin
        return Directional(label, m, m, m, 0.0 if inside else 1.0, 1.0 if inside else 0.0, (int(d.size),), test)
    p_low = float(sps.ttest_1samp(d, -margin, alternative="greater").pvalue)
    p_high = float(sps.ttest_1samp(d, margin, alternative="less").pvalue)
    edge = margin if m >= 0 else -margin
    p_out = float(sps.ttest_1samp(d, edge, alternative="greater" if m >= 0 else "less").pvalue)
    ci = sps.ttest_1samp(d, 0.0).confidence_interval(0.95)
    return Directional(label, m, float(ci.low), float(ci.high), max(p_low, p_high), p_out, (int(d.size),), test)


def holm(tests: Sequence[Directional]) -> list[Directional]:
    """The tests with Holm-adjusted p in both directions, over the measurable ones (the study's family)."""
    idx = [i for i, t in enumerate(tests) if t.measurable and np.isfinite(t.p)]
    out = list(tests)
    if not idx:
        return out
    for attr, src in (("p_holm", "p"), ("p_against_holm", "p_against")):
        adjusted = multipletests([getattr(tests[i], src) for i in idx], method="holm")[1]
        for i, p in zip(idx, adjusted, strict=True):
            out[i] = replace(out[i], **{attr: float(p)})
    return out
