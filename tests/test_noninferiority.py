"""What the "ISR matches the oracle" claims print beside their verdict, against direct computations.

- the fraction of the oracle's advantage the ISR recovers: its point value on a hand-made table, and its
  bootstrap CI against the same resampling written out here with numpy;
- seeds needed: the least n per condition whose power (statsmodels' noncentral-t ``TTestIndPower.power``,
  a closed form) reaches 80% at the observed difference and spread, and "not reachable" at or below -margin;
- the non-inferiority reading of a TOST: its p is the lower one-sided test's, at the boundary on both sides.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.power import TTestIndPower

from internalize.analysis.claim import NOT_REACHABLE
from internalize.analysis.claims import ALPHA, BOOTSTRAP_SEED, EQUIV_FRACTION, N_BOOT, claims
from internalize.analysis.noninferiority import (
    fraction_recovered,
    non_inferiority,
    seeds_needed,
    seeds_needed_wald,
)
from internalize.analysis.stats import tost_ind
from test_claims import fig4b_table

# A hand-made Fig 4b table: 6 seeds per condition, the oracle 0.30 above frozen, the ISR 0.24 above it.
FROZEN = np.array([0.40, 0.45, 0.38, 0.50, 0.42, 0.47])
ORACLE = np.array([0.70, 0.74, 0.69, 0.78, 0.72, 0.73])
ISR = np.array([0.62, 0.70, 0.66, 0.71, 0.64, 0.70])


def _claim4(isr=ISR, oracle=ORACLE, frozen=FROZEN):
    table = fig4b_table({"frozen": frozen, "caregiver": oracle, "isr": isr})
    return next(c for c in claims({"fig4b": table}) if c.number == 4)


def test_fraction_recovered_on_a_hand_made_table_matches_a_direct_computation():
    c = _claim4()
    point = (ISR.mean() - FROZEN.mean()) / (ORACLE.mean() - FROZEN.mean())
    assert c.fraction.point == pytest.approx(point, rel=1e-12)
    # The bootstrap, written out: each condition's seeds resampled on their own, isr then oracle then baseline.
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    m = [v[rng.integers(0, v.size, size=(N_BOOT, v.size))].mean(axis=1) for v in (ISR, ORACLE, FROZEN)]
    ok = m[1] > m[2]
    lo, hi = np.percentile((m[0] - m[2])[ok] / (m[1] - m[2])[ok], [2.5, 97.5])
    assert (c.fraction.low, c.fraction.high) == pytest.approx((lo, hi), rel=1e-12)
    assert c.fraction.low < point < c.fraction.high and c.fraction.n_used == N_BOOT
    # Seeded: the same table gives the same CI; another seed gives another one.
    assert _claim4().fraction == c.fraction
    other = fraction_recovered(ISR, ORACLE, FROZEN, n_boot=N_BOOT, seed=BOOTSTRAP_SEED + 1)
    assert (other.low, other.high) != (c.fraction.low, c.fraction.high)


def test_fraction_ci_narrows_with_more_seeds():
    rng = np.random.default_rng(3)
    widths = []
    for n in (5, 40):
        f = fraction_recovered(0.8 + 0.1 * rng.normal(size=n), 1.0 + 0.1 * rng.normal(size=n),
                               0.0 + 0.1 * rng.normal(size=n))
        widths.append(f.high - f.low)
    assert widths[1] < widths[0] / 2


def _power(d: float, n: int) -> float:
    return float(TTestIndPower().power(effect_size=d, nobs1=n, alpha=ALPHA, ratio=1.0, alternative="larger"))


def test_seeds_needed_on_a_claim_is_the_least_n_with_80_percent_power():
    c = _claim4()
    margin = EQUIV_FRACTION * (ORACLE.mean() - FROZEN.mean())
    diff = ISR.mean() - ORACLE.mean()
    sd = math.sqrt((ISR.var(ddof=1) + ORACLE.var(ddof=1)) / 2)
    d = (diff + margin) / sd
    n = c.seeds_needed
    assert isinstance(n, int) and n > 2
    assert _power(d, n) >= 0.8 > _power(d, n - 1)


@pytest.mark.parametrize("diff, sd, margin", [(-0.05, 0.1, 0.1), (0.0, 0.3, 0.1), (0.02, 0.02, 0.01),
                                              (-0.099, 0.05, 0.1)])
def test_seeds_needed_against_the_noncentral_t_power(diff, sd, margin):
    n = seeds_needed(diff, sd, margin, alpha=ALPHA)
    d = (diff + margin) / sd
    assert _power(d, n) >= 0.8
    assert n == 2 or _power(d, n - 1) < 0.8
    # The normal approximation 2 ((z_a + z_b) / d)^2 is close (within a few seeds) for moderate n.
    approx = 2 * ((sps.norm.ppf(1 - ALPHA) + sps.norm.ppf(0.8)) / d) ** 2
    assert abs(n - approx) <= max(3, 0.05 * approx)


@pytest.mark.parametrize("diff", [-0.1, -0.2])
def test_seeds_needed_is_not_reachable_at_or_below_minus_margin(diff):
    assert seeds_needed(diff, 0.05, 0.1) is None and seeds_needed_wald(diff, 0.05, 10, 0.1) is None


def test_claim_reads_not_reachable_where_the_isr_falls_short_by_more_than_the_margin():
    c = _claim4(isr=FROZEN + 0.01)  # the ISR recovers almost nothing
    assert c.verdict == "not reproduced" and c.seeds_needed == NOT_REACHABLE
    assert "the whole CI lies below" in c.evidence  # far below: a contradiction, not a run that cannot tell
    assert c.fraction.point == pytest.approx(0.01 / (ORACLE.mean() - FROZEN.mean()))


def test_a_ci_across_minus_margin_around_a_point_below_it_says_which_way_more_seeds_lean():
    # isr - oracle = -0.09 against a margin of 0.075: the CI crosses -margin, but its centre is below it.
    c = _claim4(isr=ORACLE - 0.09 + np.array([0.1, -0.1, 0.08, -0.08, 0.0, 0.0]))
    assert c.verdict == "not reproduced" and c.seeds_needed == NOT_REACHABLE
    assert "inconclusive at n = 6 + 6, but the observed difference is itself below" in c.evidence
    assert "could decide either way" not in c.evidence


def test_seeds_needed_wald_matches_its_closed_form():
    n = seeds_needed_wald(-0.02, 0.03, 10, 0.08)
    exact = 10 * ((sps.norm.ppf(0.95) + sps.norm.ppf(0.8)) * 0.03 / 0.06) ** 2
    assert n == math.ceil(exact)
    # At that n the SE has shrunk enough: the z test of diff > -margin has at least 80% power.
    se_n = 0.03 * math.sqrt(10 / n)
    assert sps.norm.sf(sps.norm.ppf(0.95) - 0.06 / se_n) >= 0.8


@pytest.mark.parametrize("lower_shift, non_inferior", [(1e-3, True), (-1e-3, False)])
def test_non_inferiority_at_its_boundary(lower_shift, non_inferior):
    # Put the lower end of the Student 90% CI a hair above / below -margin and read the one-sided test.
    rng = np.random.default_rng(1)
    a0, b = rng.normal(size=8), rng.normal(size=8)
    margin = 0.5
    lo90 = sps.ttest_ind(a0, b, equal_var=True).confidence_interval(0.90).low
    a = a0 + (-margin - lo90) + lower_shift
    ni = non_inferiority(tost_ind(a, b, -margin, margin, usevar="pooled", alpha=ALPHA))
    assert ni.non_inferior is non_inferior and (ni.p < ALPHA) is non_inferior
    assert ni.lower == pytest.approx(-margin + lower_shift, abs=1e-9)
    # The one-sided p, recomputed: P(T > (diff + margin) / se) under H0 diff = -margin.
    se = math.sqrt(((a.var(ddof=1) + b.var(ddof=1)) / 2) * (2 / 8))
    assert ni.p == pytest.approx(sps.t.sf((a.mean() - b.mean() + margin) / se, 14), rel=1e-9)


def test_non_inferiority_needs_a_symmetric_margin():
    eq = tost_ind([1.0, 2.0, 3.0], [1.0, 2.5, 3.5], -0.5, 1.0)
    with pytest.raises(ValueError, match="symmetric"):
        non_inferiority(eq)
