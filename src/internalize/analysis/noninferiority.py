"""Non-inferiority: "the ISR does not fall short of the oracle by more than a margin", with what a reader needs
beside the verdict.

The paper's "ISR matches the oracle" claims (Figs 4a, 4b, 5, 7) are directional: the ISR learner "maintains" the
caregiver's value, "performs closer to the oracle", is "not significantly different from" it. An ISR that does
*better* than the caregiver-present oracle does not contradict any of them. So the verdict is a one-sided test
of ``H0: isr - oracle <= -margin`` at ``alpha``: rejected iff the lower end of the ``1 - 2 alpha`` two-sided CI
of ``isr - oracle`` (the one-sided ``1 - alpha`` lower confidence bound) lies above ``-margin``. The two-sided
equivalence test (TOST) against ``±margin`` is kept as secondary information.

Beside the verdict: :func:`fraction_recovered`, ``(isr - baseline) / (oracle - baseline)`` with a percentile
bootstrap CI (each condition's seeds resampled on their own, from a fixed seed so a report is reproducible), and
:func:`seeds_needed` / :func:`seeds_needed_wald`, the seeds per condition this test would need for a stated power
at the observed difference and spread.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps
from statsmodels.stats.power import TTestIndPower

from .stats import Equivalence

__all__ = ["NonInferiority", "non_inferiority", "FractionCI", "fraction_recovered", "seeds_needed",
           "seeds_needed_wald", "POWER"]

POWER: float = 0.8  # "seeds needed" is the n per condition for this power at the observed difference and spread


@dataclass(frozen=True)
class NonInferiority:
    """One-sided test of ``diff = mean(a) - mean(b) > -margin`` (``margin > 0``), read off a TOST.

    ``lower`` is the one-sided ``1 - alpha`` lower confidence bound of ``diff`` (the lower end of the TOST's
    ``1 - 2 alpha`` CI), ``p`` the one-sided p-value of ``H0: diff <= -margin``; ``non_inferior`` is
    ``p < alpha``, the same as ``lower > -margin``. ``equivalence`` is the two-sided TOST against ``±margin``.
    """

    diff: float
    lower: float
    upper: float  # upper end of the same 1 - 2 alpha CI: below -margin, the ISR falls short by more than it
    margin: float
    p: float
    non_inferior: bool
    alpha: float
    method: str
    equivalence: Equivalence

    @property
    def level(self) -> float:
        """Coverage of ``(lower, upper)``: ``1 - 2 alpha`` (90% at alpha 0.05)."""
        return 1.0 - 2.0 * self.alpha

    @property
    def contradicts(self) -> bool:
        """The whole CI lies below ``-margin``: the ISR falls short of the oracle by more than the margin."""
        return self.upper <= -self.margin


def non_inferiority(eq: Equivalence) -> NonInferiority:
    """The non-inferiority half of a symmetric TOST ``eq`` (margin ``(-m, m)``): its lower one-sided test."""
    low, high = eq.margin
    if not math.isclose(-low, high, rel_tol=1e-12, abs_tol=0.0):
        raise ValueError(f"non-inferiority needs a symmetric margin, got ({low}, {high})")
    lower, upper = eq.ci_tost
    return NonInferiority(diff=eq.diff, lower=float(lower), upper=float(upper), margin=float(high), p=eq.p_low,
                          non_inferior=bool(eq.p_low < eq.alpha), alpha=eq.alpha,
                          method=eq.method.replace("TOST", "non-inferiority"), equivalence=eq)


@dataclass(frozen=True)
class FractionCI:
    """``(isr - baseline) / (oracle - baseline)`` on the full sample (``point``) and its percentile bootstrap CI.

    ``point`` is None when the oracle does not beat the baseline (nothing to recover). Resamples in which it
    does not are dropped; ``n_used`` says how many of ``n_boot`` were kept, and the CI is None when under half.
    """

    point: float | None
    low: float | None
    high: float | None
    level: float
    n_boot: int
    n_used: int
    seed: int


def _values(x: Sequence[float], name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float).ravel()
    if arr.size < 2 or not np.isfinite(arr).all():
        raise ValueError(f"{name}: needs >= 2 finite values, got {arr.size}")
    return arr


def fraction_recovered(isr: Sequence[float], oracle: Sequence[float], baseline: Sequence[float], *,
                       level: float = 0.95, n_boot: int = 10_000, seed: int = 0) -> FractionCI:
    """Fraction of the oracle's advantage over ``baseline`` that the ISR recovers, with a ``level`` CI.

    Inputs are per-seed values of each condition (independent samples, sizes may differ). Each bootstrap
    resample draws every condition's seeds with replacement from ``np.random.default_rng(seed)`` (isr, then
    oracle, then baseline, in one ``(n_boot, n)`` draw each), so the same inputs give the same CI.
    """
    a, b, z = _values(isr, "isr"), _values(oracle, "oracle"), _values(baseline, "baseline")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level!r}: must be in (0, 1)")
    rng = np.random.default_rng(int(seed))
    means = [v[rng.integers(0, v.size, size=(int(n_boot), v.size))].mean(axis=1) for v in (a, b, z)]
    num, den = means[0] - means[2], means[1] - means[2]
    keep = den > 0
    adv = float(b.mean() - z.mean())
    point = float((a.mean() - z.mean()) / adv) if adv > 0 else None
    if point is None or keep.sum() < n_boot / 2:
        return FractionCI(point, None, None, float(level), int(n_boot), int(keep.sum()), int(seed))
    tail = 50.0 * (1.0 - level)
    lo, hi = np.percentile(num[keep] / den[keep], [tail, 100.0 - tail])
    return FractionCI(point, float(lo), float(hi), float(level), int(n_boot), int(keep.sum()), int(seed))


def seeds_needed(diff: float, sd: float, margin: float, *, alpha: float = 0.05, power: float = POWER,
                 cap: int = 100_000) -> int | None:
    """Seeds per condition for a one-sided two-sample t-test of ``diff > -margin`` to reach ``power`` at ``alpha``,
    if the true difference were ``diff`` with per-seed standard deviation ``sd`` (equal n in both conditions).

    None ("not reachable") when ``diff <= -margin``: no number of seeds shows non-inferiority then. With
    ``sd == 0`` the difference is exact and 2 seeds (the least a t-test takes) suffice. Capped at ``cap``.
    """
    gap = float(diff) + float(margin)
    if not (np.isfinite(gap) and np.isfinite(sd)) or gap <= 0:
        return None
    if sd <= 0:
        return 2
    d = gap / float(sd)

    def power_at(n: int) -> float:  # statsmodels' noncentral-t power of the one-sided test, n seeds per group
        return float(TTestIndPower().power(effect_size=d, nobs1=n, alpha=alpha, ratio=1.0, alternative="larger"))

    # Start from the normal approximation, then walk to the least n whose power reaches the target (statsmodels'
    # solve_power fails to converge for the large effects a clear result has).
    n = max(2, min(cap, math.ceil(2.0 * ((sps.norm.ppf(1.0 - alpha) + sps.norm.ppf(power)) / d) ** 2)))
    while n > 2 and power_at(n - 1) >= power:
        n -= 1
    while n < cap and power_at(n) < power:
        n += 1
    return n


def seeds_needed_wald(diff: float, se: float, n_now: int, margin: float, *, alpha: float = 0.05,
                      power: float = POWER, cap: int = 100_000) -> int | None:
    """As :func:`seeds_needed` for a Wald z contrast (a mixed model's): the SE scales as ``1 / sqrt(n)``, so
    ``n = n_now * ((z(1 - alpha) + z(power)) * se / (diff + margin))**2`` (normal approximation)."""
    gap = float(diff) + float(margin)
    if not (np.isfinite(gap) and np.isfinite(se)) or gap <= 0:
        return None
    if se <= 0:
        return 2
    k = (sps.norm.ppf(1.0 - alpha) + sps.norm.ppf(power)) * float(se) / gap
    return int(min(cap, max(2, math.ceil(n_now * k * k - 1e-9))))
