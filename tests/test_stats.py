"""Statistics against scipy/statsmodels called directly, and against the paper's published numbers.

Also pinned: paired, Student and Welch t-tests against scipy on several data sets (t, df, p), and the Fig 5
mixed model's recovery of known condition effects from seeded simulations (truth inside its 95% CI)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats as sps

from internalize.analysis import paper
from internalize.analysis.stats import (
    FIG5_CONTRASTS,
    bootstrap_ci,
    contrast_equivalence,
    fig5_mixed_model,
    fig5_reference_ols,
    mean_diff_ci,
    paired_ttest,
    ratio_bootstrap_ci,
    reference_world_level,
    sem,
    spearman,
    spearman_ci,
    tost_ind,
    ttest,
    wald_equivalence,
)


def _fig4b() -> dict[str, np.ndarray]:
    df = paper.fig4b_per_seed()
    return {c: g["value"].to_numpy() for c, g in df.groupby("condition")}


# ---- paper data ---------------------------------------------------------------------------------

def test_paper_data_loads_and_matches_published_means():
    d4, d5 = paper.fig4b_per_seed(), paper.fig5_per_seed()
    assert d4.shape == (30, 3) and d5.shape == (150, 4)
    assert set(d5["world"]) == set(paper.FIG5_MEANS)
    for cond, (mean, se) in paper.FIG4B_MEANS.items():
        v = d4.loc[d4["condition"] == cond, "value"]
        assert v.mean() == pytest.approx(mean, abs=5e-4)
        assert sps.sem(v) == pytest.approx(se, abs=5e-4)
    cell = d5.groupby(["world", "condition"])["value"].mean()
    for world, by_cond in paper.FIG5_MEANS.items():
        for cond, mean in by_cond.items():
            assert cell[(world, cond)] == pytest.approx(mean, abs=5e-4)


# ---- t-tests, SEM, bootstrap, Spearman ------------------------------------------------------------

@pytest.mark.parametrize("a, b, t, p", [("frozen", "isr", -2.377, 0.0287), ("isr", "oracle", -1.024, 0.3196)])
def test_student_ttest_reproduces_fig4b(a, b, t, p):
    g = _fig4b()
    r = ttest(g[a], g[b], equal_var=True, seeds_a=range(10), seeds_b=range(10), label_a=a, label_b=b)
    assert r.t == pytest.approx(t, abs=5e-4) and r.p == pytest.approx(p, abs=5e-5)
    ref = sps.ttest_ind(g[a], g[b], equal_var=True)
    assert r.t == pytest.approx(ref.statistic, rel=1e-12) and r.p == pytest.approx(ref.pvalue, rel=1e-10)
    assert (r.df, r.n_a, r.n_b, r.seeds_a) == (18.0, 10, 10, tuple(range(10)))
    published = next(s for s in paper.FIG4B_TTESTS if (s.a, s.b) == (a, b))
    assert r.t == pytest.approx(published.t, abs=5e-4) and r.p == pytest.approx(published.p, abs=5e-5)


def test_welch_matches_scipy_and_differs_from_student():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 8), rng.normal(0.8, 3, 15)  # unequal n and variances
    welch, student = ttest(a, b, equal_var=False), ttest(a, b, equal_var=True)
    ref = sps.ttest_ind(a, b, equal_var=False)
    assert welch.t == pytest.approx(ref.statistic, rel=1e-12)
    assert welch.p == pytest.approx(ref.pvalue, rel=1e-10)
    assert welch.df == pytest.approx(ref.df, rel=1e-12)
    assert abs(welch.p - student.p) > 1e-3 and welch.df != student.df


@pytest.mark.parametrize("a, b, kw, match", [
    ([1.0], [1.0, 2.0], {}, "at least 2"),
    ([1.0, np.nan], [1.0, 2.0], {}, "non-finite"),
    ([1.0, 2.0], [1.0, 2.0], {"seeds_a": [1]}, "seeds"),
    ([[1.0, 2.0]], [1.0, 2.0], {}, "1-D"),
])
def test_ttest_rejects_bad_input(a, b, kw, match):
    with pytest.raises(ValueError, match=match):
        ttest(a, b, equal_var=True, **kw)


def test_sem_matches_scipy():
    v = np.random.default_rng(0).normal(size=17)
    assert sem(v) == pytest.approx(sps.sem(v), rel=1e-12)
    with pytest.raises(ValueError, match="at least 2"):
        sem([1.0])


def test_bootstrap_ci_deterministic_contains_mean_and_shrinks_with_n():
    rng = np.random.default_rng(1)
    small, large = rng.normal(size=10), rng.normal(size=1000)
    c1 = bootstrap_ci(small, level=0.68, n_boot=4000, seed=7)
    assert bootstrap_ci(small, level=0.68, n_boot=4000, seed=7) == c1
    assert bootstrap_ci(small, 0.68, 4000, seed=8) != c1  # the seed matters
    assert c1.low <= small.mean() <= c1.high and (c1.n, c1.level) == (10, 0.68)
    wide = bootstrap_ci(small, level=0.95, n_boot=4000, seed=7)
    assert wide.high - wide.low > c1.high - c1.low
    big = bootstrap_ci(large, level=0.68, n_boot=4000, seed=7)
    assert big.high - big.low < 0.5 * (c1.high - c1.low)
    # Agrees with scipy's percentile bootstrap up to resampling noise.
    ref = sps.bootstrap((small,), np.mean, confidence_level=0.68, n_resamples=20000, method="percentile",
                        rng=np.random.default_rng(0)).confidence_interval
    assert c1.low == pytest.approx(ref.low, abs=0.02) and c1.high == pytest.approx(ref.high, abs=0.02)


@pytest.mark.parametrize("kw, match", [({"level": 1.5}, "level"), ({"n_boot": 0}, "n_boot"),
                                       ({"seed": None}, "seed")])
def test_bootstrap_ci_rejects_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        bootstrap_ci([1.0, 2.0, 3.0], **kw)


def test_spearman_matches_scipy():
    x = np.arange(12.0)
    y = np.random.default_rng(2).normal(size=12) - 0.3 * x
    c, ref = spearman(x, y), sps.spearmanr(x, y)
    assert (c.rho, c.p, c.n) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue), 12)


# ---- Fig 5 models ---------------------------------------------------------------------------------

def test_reference_world_is_T_for_the_paper_maps():
    assert reference_world_level(["plus", "x", "U", "T", "four_rooms"]) == "T"


def test_fig5_reference_ols_reproduces_the_paper():
    res = fig5_reference_ols(paper.fig5_per_seed())
    assert res.reference_world == "T"
    fi, io = res.interaction.contrast("frozen", "isr"), res.interaction.contrast("isr", "oracle")
    assert fi.stat == pytest.approx(-3.662, abs=5e-4) and round(fi.p, 4) == 0.0004
    assert io.stat == pytest.approx(-1.121, abs=5e-4) and round(io.p, 3) == 0.265
    assert (fi.df, fi.n, fi.n_a, fi.n_b, fi.world, fi.seeds) == (90.0, 100, 50, 50, "T", tuple(range(10)))
    afi, aio = res.additive.contrast("frozen", "isr"), res.additive.contrast("isr", "oracle")
    assert afi.stat == pytest.approx(-6.84, abs=5e-3)
    assert aio.stat == pytest.approx(-2.59, abs=5e-3) and round(aio.p, 3) == 0.011
    for got, want in zip((fi, io, afi, aio), (*paper.FIG5_REFERENCE_OLS, *paper.FIG5_ADDITIVE_OLS), strict=True):
        assert got.stat == pytest.approx(want.t, abs=1e-3) and got.df == want.df


def test_fig5_reference_ols_equals_a_direct_statsmodels_fit():
    d = paper.fig5_per_seed()
    sub = d[d["condition"].isin(["isr", "oracle"])]
    direct = smf.ols("value ~ C(condition, Treatment('oracle')) * C(world, Treatment('T'))", sub).fit()
    name = "C(condition, Treatment('oracle'))[T.isr]"
    got = fig5_reference_ols(d).interaction.contrast("isr", "oracle")
    assert got.stat == pytest.approx(direct.tvalues[name], rel=1e-10)
    assert got.p == pytest.approx(direct.pvalues[name], rel=1e-8)


@pytest.mark.filterwarnings("ignore:The MLE may be on the boundary")
def test_fig5_mixed_model_equals_a_direct_statsmodels_fit():
    d = paper.fig5_per_seed()
    fit = fig5_mixed_model(d)
    direct = smf.mixedlm("value ~ C(condition, Treatment('isr')) + C(world)", d, groups=d["seed"]).fit(reml=True)
    frozen = direct.fe_params["C(condition, Treatment('isr'))[T.frozen]"]
    oracle = "C(condition, Treatment('isr'))[T.oracle]"
    fi, io = fit.contrast("frozen", "isr"), fit.contrast("isr", "oracle")
    assert fi.estimate == pytest.approx(frozen, rel=1e-6)
    assert fi.stat == pytest.approx(direct.tvalues["C(condition, Treatment('isr'))[T.frozen]"], rel=1e-5)
    # isr - oracle is minus the oracle coefficient: same |z|, same p.
    assert io.estimate == pytest.approx(-direct.fe_params[oracle], rel=1e-6)
    assert io.p == pytest.approx(direct.pvalues[oracle], rel=1e-5)
    assert (io.stat_name, io.df, io.n, io.seeds) == ("z", None, 150, tuple(range(10)))


def test_fig5_models_reject_bad_frames():
    d = paper.fig5_per_seed()
    with pytest.raises(ValueError, match="world"):
        fig5_mixed_model(d.drop(columns="world"))
    with pytest.raises(ValueError, match="several rows"):
        fig5_reference_ols(pd.concat([d, d.iloc[:1]]))
    with pytest.raises(ValueError, match="'oracle'"):
        fig5_reference_ols(d[d["condition"] != "oracle"])


# ---- equivalence (TOST) ---------------------------------------------------------------------------

def _tost_by_hand(a, b, low, high, equal_var):
    """Two one-sided scipy t-tests: diff > low and diff < high (shifting b moves the difference only)."""
    p_low = sps.ttest_ind(a, np.asarray(b) + low, equal_var=equal_var, alternative="greater").pvalue
    p_high = sps.ttest_ind(a, np.asarray(b) + high, equal_var=equal_var, alternative="less").pvalue
    return float(p_low), float(p_high)


@pytest.mark.parametrize("usevar, equal_var", [("pooled", True), ("unequal", False)])
def test_tost_matches_statsmodels_and_two_one_sided_scipy_tests(usevar, equal_var):
    from statsmodels.stats.weightstats import ttost_ind
    rng = np.random.default_rng(12)
    a, b = rng.normal(1.0, 0.3, 9), rng.normal(1.05, 0.6, 13)
    eq = tost_ind(a, b, -0.4, 0.3, usevar=usevar, label_a="isr", label_b="oracle")
    p, (_, p1, df1), (_, p2, _) = ttost_ind(a, b, -0.4, 0.3, usevar=usevar)
    assert (eq.p, eq.p_low, eq.p_high, eq.df) == (pytest.approx(p), pytest.approx(p1), pytest.approx(p2),
                                                  pytest.approx(df1))
    p_low, p_high = _tost_by_hand(a, b, -0.4, 0.3, equal_var)
    assert eq.p_low == pytest.approx(p_low, rel=1e-9) and eq.p_high == pytest.approx(p_high, rel=1e-9)
    assert eq.p == pytest.approx(max(p_low, p_high), rel=1e-9)
    ref = sps.ttest_ind(a, b, equal_var=equal_var)
    assert eq.df == pytest.approx(ref.df, rel=1e-9)
    for got, level in ((eq.ci_tost, 0.90), (eq.ci95, 0.95)):
        ci = ref.confidence_interval(level)
        assert got == (pytest.approx(ci.low, rel=1e-9), pytest.approx(ci.high, rel=1e-9))
    assert eq.diff == pytest.approx(a.mean() - b.mean()) and eq.margin == (-0.4, 0.3)
    assert (eq.n_a, eq.n_b, eq.alpha, eq.tost_level) == (9, 13, 0.05, pytest.approx(0.90))
    assert eq.method == ("TOST Student t" if equal_var else "TOST Welch t")
    # TOST at alpha rejects exactly when the 1 - 2 alpha CI lies inside the margin.
    assert eq.equivalent == (eq.p < 0.05) == (-0.4 < eq.ci_tost[0] and eq.ci_tost[1] < 0.3)


def test_tost_equivalent_and_not_equivalent():
    rng = np.random.default_rng(4)
    a, b = rng.normal(0.0, 0.1, 20), rng.normal(0.02, 0.1, 20)
    same = tost_ind(a, b, -0.1, 0.1)
    assert same.equivalent and same.p < 0.05
    assert -0.1 < same.ci_tost[0] < same.ci_tost[1] < 0.1
    far = tost_ind(a, b + 0.5, -0.1, 0.1)  # a large true difference
    assert not far.equivalent and far.p > 0.5 and far.ci95[1] < -0.1


def test_not_significantly_different_is_not_equivalent():
    # Tiny n and huge variance: the t-test finds no difference, and equivalence is far from shown.
    a, b = np.array([0.1, 2.9, -1.7]), np.array([1.5, -2.2, 0.4])
    t = ttest(a, b, equal_var=False)
    assert t.p > 0.5  # "no significant difference"
    eq = tost_ind(a, b, -0.5, 0.5, usevar="unequal")
    assert not eq.equivalent and eq.p > 0.3
    assert eq.ci_tost[0] < -0.5 and eq.ci_tost[1] > 0.5  # the CI covers both margins
    assert eq.p == pytest.approx(max(_tost_by_hand(a, b, -0.5, 0.5, False)), rel=1e-9)


def test_tost_edge_cases_and_bad_input():
    exact = tost_ind([1.0, 1.0], [1.2, 1.2], -0.5, 0.5)  # no spread: the difference is known
    assert exact.equivalent and exact.p == 0.0 and exact.ci_tost == (pytest.approx(-0.2), pytest.approx(-0.2))
    assert not tost_ind([1.0, 1.0], [2.0, 2.0], -0.5, 0.5).equivalent
    with pytest.raises(ValueError, match="margin"):
        tost_ind([1.0, 2.0], [1.0, 2.0], 0.5, -0.5)
    with pytest.raises(ValueError, match="usevar"):
        tost_ind([1.0, 2.0], [1.0, 2.0], -1, 1, usevar="welch")
    with pytest.raises(ValueError, match="at least 2"):
        tost_ind([1.0], [1.0, 2.0], -1, 1)


def test_wald_equivalence_by_hand():
    est, se = -0.03, 0.02
    eq = wald_equivalence(est, se, -0.08, 0.08)
    assert eq.p_low == pytest.approx(sps.norm.sf((est + 0.08) / se))
    assert eq.p_high == pytest.approx(sps.norm.cdf((est - 0.08) / se))
    assert eq.ci_tost == (pytest.approx(est - 1.6448536 * se), pytest.approx(est + 1.6448536 * se))
    assert eq.ci95 == (pytest.approx(est - 1.959964 * se), pytest.approx(est + 1.959964 * se))
    assert eq.equivalent and eq.method == "TOST Wald z" and eq.df is None
    # The 90% CI's lower end at -0.0629 sits inside -0.08 but outside -0.06: the verdict flips there.
    assert not wald_equivalence(est, se, -0.06, 0.06).equivalent
    t = wald_equivalence(est, se, -0.08, 0.08, df=5)
    assert t.p_low == pytest.approx(sps.t.sf((est + 0.08) / se, 5)) and t.method == "TOST Wald t"
    with pytest.raises(ValueError, match="se"):
        wald_equivalence(est, 0.0, -1, 1)


def _simulated_fig5(isr_minus_oracle: float, seed: int = 21, n_seeds: int = 10) -> pd.DataFrame:
    """Additive map + condition + random seed intercept + noise; known fixed effects."""
    rng = np.random.default_rng(seed)
    maps = {"plus": 0.5, "x": 0.3, "U": 0.4, "T": 0.5, "four_rooms": 0.8}
    fx = {"frozen": -0.25, "isr": isr_minus_oracle, "oracle": 0.0}
    seed_fx = rng.normal(0, 0.04, n_seeds)
    rows = [dict(condition=c, world=w, seed=s, value=base + fx[c] + seed_fx[s] + rng.normal(0, 0.05))
            for w, base in maps.items() for c in fx for s in range(n_seeds)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("true_effect, equivalent", [(0.0, True), (0.15, False), (-0.15, False)])
def test_mixed_model_equivalence_recovers_a_known_effect(true_effect, equivalent):
    d = _simulated_fig5(true_effect)
    fit = fig5_mixed_model(d, (("frozen", "isr"), ("isr", "oracle"), ("oracle", "frozen")))
    io, of = fit.contrast("isr", "oracle"), fit.contrast("oracle", "frozen")
    assert of.estimate == pytest.approx(0.25, abs=0.05)
    margin = 0.25 * of.estimate  # the claims' rule: 25% of the oracle's advantage over frozen
    eq = contrast_equivalence(io, -margin, margin)
    assert eq.ci95[0] < true_effect < eq.ci95[1]  # the model's own SEs cover the truth here
    assert eq.diff == io.estimate and eq.ci95 == (pytest.approx(io.estimate - 1.959964 * io.se),
                                                  pytest.approx(io.estimate + 1.959964 * io.se))
    inside = -margin < io.estimate - 1.6448536 * io.se and io.estimate + 1.6448536 * io.se < margin
    assert eq.equivalent == inside == equivalent
    # Not significantly different is not the criterion: at the truth 0 the z-test is not significant...
    if true_effect == 0.0:
        assert io.p > 0.05
        # ...and the same estimate with a 5x larger SE is still "not significant" but no longer equivalent.
        assert not wald_equivalence(io.estimate, 5 * io.se, -margin, margin).equivalent


# ---- effect-size intervals ------------------------------------------------------------------------

@pytest.mark.parametrize("equal_var", [True, False])
def test_mean_diff_ci_by_hand(equal_var):
    rng = np.random.default_rng(8)
    a, b = rng.normal(0, 1, 7), rng.normal(0.5, 2, 11)
    t = ttest(a, b, equal_var=equal_var)
    se = (t.mean_a - t.mean_b) / t.t
    q = sps.t.ppf(0.975, t.df)
    lo, hi = mean_diff_ci(a, b, equal_var=equal_var)
    assert (lo, hi) == (pytest.approx(t.mean_a - t.mean_b - q * se), pytest.approx(t.mean_a - t.mean_b + q * se))


def test_ratio_bootstrap_ci_is_seeded_and_matches_scipy():
    rng = np.random.default_rng(9)
    soc = rng.normal(2.0, 0.1, 12)
    aut = soc * rng.normal(0.6, 0.1, 12)
    ci = ratio_bootstrap_ci(aut, soc, level=0.95, n_boot=10_000, seed=0)
    assert ci == ratio_bootstrap_ci(aut, soc, level=0.95, n_boot=10_000, seed=0)
    assert ci != ratio_bootstrap_ci(aut, soc, level=0.95, n_boot=10_000, seed=1)
    assert ci.mean == pytest.approx(aut.mean() / soc.mean()) and ci.low < ci.mean < ci.high
    ref = sps.bootstrap((aut, soc), lambda x, y: x.mean() / y.mean(), paired=True, vectorized=False,
                        confidence_level=0.95, n_resamples=10_000, method="percentile",
                        rng=np.random.default_rng(3)).confidence_interval
    assert ci.low == pytest.approx(ref.low, abs=0.01) and ci.high == pytest.approx(ref.high, abs=0.01)
    with pytest.raises(ValueError, match="pair up"):
        ratio_bootstrap_ci([1.0, 2.0], [1.0])


def test_spearman_ci_fisher_z_and_coverage():
    x = np.arange(20.0)
    y = x + np.random.default_rng(5).normal(0, 6, 20)
    c = spearman(x, y)
    lo, hi = spearman_ci(c)
    se = np.sqrt((1 + c.rho**2 / 2) / (c.n - 3))
    assert (lo, hi) == (pytest.approx(np.tanh(np.arctanh(c.rho) - 1.959964 * se)),
                        pytest.approx(np.tanh(np.arctanh(c.rho) + 1.959964 * se)))
    assert -1 < lo < c.rho < hi < 1
    assert np.isnan(spearman_ci(spearman([1, 2, 3], [3, 1, 2]))).all()
    # Coverage of the population Spearman rho (bivariate normal, r = 0.6: rho_s = 6/pi asin(r/2)).
    rng = np.random.default_rng(6)
    truth = 6 / np.pi * np.arcsin(0.3)
    cov = [[1.0, 0.6], [0.6, 1.0]]
    hits = 0
    for _ in range(400):
        xy = rng.multivariate_normal([0, 0], cov, size=25)
        lo, hi = spearman_ci(spearman(xy[:, 0], xy[:, 1]))
        hits += lo < truth < hi
    assert 0.91 <= hits / 400 <= 0.99


# ---- t-tests against scipy on several datasets (paired, Student, Welch) ----------------------------
# What these pin: the statistic, its degrees of freedom and the two-sided p of ``paired_ttest`` and of
# ``ttest(equal_var=True/False)`` equal scipy's ``ttest_rel`` / ``ttest_ind`` on fixed and seeded data sets
# (small n, unequal n, unequal variances, negative differences, correlated pairs), plus one paired t by hand.

def _datasets() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Named (a, b) pairs of equal length (so they serve the paired test too); fixed or seeded."""
    rng = np.random.default_rng(2024)
    base = rng.normal(0.6, 0.2, 12)  # a shared per-seed level: a and b are correlated pairs
    return {
        "fixed-5": (np.array([0.61, 0.72, 0.55, 0.80, 0.66]), np.array([0.58, 0.70, 0.49, 0.81, 0.60])),
        "correlated-12": (base + rng.normal(0.05, 0.03, 12), base + rng.normal(0.0, 0.03, 12)),
        "negative-30": (rng.normal(-0.4, 1.0, 30), rng.normal(0.1, 1.0, 30)),
        "unequal-var-8": (rng.normal(1.0, 0.1, 8), rng.normal(0.7, 2.5, 8)),
        "two-pairs": (np.array([1.0, 3.0]), np.array([0.5, 1.0])),
    }


_UNPAIRED = {  # unequal sample sizes as well as unequal variances
    "n7-vs-15": (np.random.default_rng(11).normal(0.0, 1.0, 7), np.random.default_rng(12).normal(0.9, 3.0, 15)),
    "n3-vs-4": (np.array([2.1, 2.5, 1.9]), np.array([1.0, 3.8, 0.2, 2.9])),
    "n20-vs-6": (np.random.default_rng(13).normal(5.0, 0.5, 20), np.random.default_rng(14).normal(5.2, 0.1, 6)),
}


@pytest.mark.parametrize("name", sorted(_datasets()))
def test_paired_ttest_matches_scipy_ttest_rel(name):
    a, b = _datasets()[name]
    got, ref = paired_ttest(a, b), sps.ttest_rel(a, b)
    assert got.t == pytest.approx(ref.statistic, rel=1e-12), f"{name}: t {got.t} vs scipy {ref.statistic}"
    assert got.df == float(ref.df) == a.size - 1, f"{name}: df {got.df} vs scipy {ref.df}"
    assert got.p == pytest.approx(ref.pvalue, rel=1e-10), f"{name}: p {got.p} vs scipy {ref.pvalue}"
    assert (got.n_a, got.n_b) == (a.size, a.size)
    assert (got.mean_a, got.mean_b) == (pytest.approx(a.mean()), pytest.approx(b.mean()))


@pytest.mark.parametrize("equal_var", [True, False])
@pytest.mark.parametrize("name", sorted(_datasets()) + sorted(_UNPAIRED))
def test_unpaired_ttest_matches_scipy_ttest_ind(name, equal_var):
    a, b = {**_datasets(), **_UNPAIRED}[name]
    got, ref = ttest(a, b, equal_var=equal_var), sps.ttest_ind(a, b, equal_var=equal_var)
    kind = "Student" if equal_var else "Welch"
    assert got.t == pytest.approx(ref.statistic, rel=1e-12), f"{name} {kind}: t {got.t} vs scipy {ref.statistic}"
    assert got.df == pytest.approx(float(ref.df), rel=1e-12), f"{name} {kind}: df {got.df} vs scipy {ref.df}"
    assert got.p == pytest.approx(ref.pvalue, rel=1e-10), f"{name} {kind}: p {got.p} vs scipy {ref.pvalue}"
    if equal_var:
        assert got.df == a.size + b.size - 2
    assert got.equal_var is equal_var and (got.n_a, got.n_b) == (a.size, b.size)


def test_paired_ttest_by_hand_and_differs_from_unpaired_on_correlated_pairs():
    # d = a - b = [2, 3, 4, 5]: mean 3.5, sd = sqrt(5/3), t = 3.5 / (sd / 2), df = 3.
    a, b = [3.0, 5.0, 7.0, 9.0], [1.0, 2.0, 3.0, 4.0]
    t_hand = 3.5 / (np.sqrt(5.0 / 3.0) / 2.0)
    got = paired_ttest(a, b, seeds=[4, 5, 6, 7])
    assert got.t == pytest.approx(t_hand, rel=1e-12) and got.df == 3.0, (got.t, t_hand, got.df)
    assert got.p == pytest.approx(2 * sps.t.sf(t_hand, 3), rel=1e-10)
    assert got.seeds_a == got.seeds_b == (4, 5, 6, 7)
    # The sign follows a - b.
    assert paired_ttest(b, a).t == pytest.approx(-t_hand, rel=1e-12)
    # Pairing matters: on correlated pairs the paired |t| is far above the unpaired one.
    x, y = _datasets()["correlated-12"]
    paired, unpaired = paired_ttest(x, y), ttest(x, y, equal_var=True)
    assert abs(paired.t) > 2 * abs(unpaired.t), (paired.t, unpaired.t)
    with pytest.raises(ValueError, match="pairs needed"):
        paired_ttest([1.0, 2.0, 3.0], [1.0, 2.0])


# ---- Fig 5 mixed model: recovery of a known fixed effect from simulated data -----------------------
# What these pin: ``fig5_mixed_model`` (value ~ C(condition) + C(world) + (1 | seed), REML) recovers known
# condition effects from seeded simulations with large random seed intercepts: each true contrast lies in the
# model's 95% Wald CI, the point estimate is close, and a zero true effect gives a CI covering 0.
# Hand-derived references for the balanced design (every seed has every condition x map cell): the seed and
# map intercepts cancel in a condition contrast, so the GLS estimate equals the difference of raw condition
# means exactly (Zyskind's condition holds: the seed-sum of each design column is constant per seed), and its
# SE is sigma * sqrt(1/n_a + 1/n_b) with sigma the residual SD of the simulation.

_SIM_MAPS = {"plus": 0.5, "x": 0.3, "U": 0.4, "T": 0.55, "four_rooms": 0.8}


def _simulate_fig5(effects: dict[str, float], seed: int, n_seeds: int = 10, seed_sd: float = 0.3,
                   noise_sd: float = 0.05) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    seed_fx = rng.normal(0.0, seed_sd, n_seeds)  # random intercept per training seed, large vs the noise
    rows = [dict(condition=c, world=w, seed=100 + s, value=base + fx + seed_fx[s] + rng.normal(0.0, noise_sd))
            for w, base in _SIM_MAPS.items() for c, fx in effects.items() for s in range(n_seeds)]
    return pd.DataFrame(rows)


def _ci95(c) -> tuple[float, float]:
    q = sps.norm.ppf(0.975)
    return c.estimate - q * c.se, c.estimate + q * c.se


@pytest.mark.parametrize("data_seed", [1, 2, 3])
def test_fig5_mixed_model_recovers_known_condition_effects(data_seed):
    effects = {"frozen": -0.20, "isr": 0.0, "oracle": 0.10}  # truth: frozen - isr = -0.2, isr - oracle = -0.1
    d = _simulate_fig5(effects, data_seed)
    fit = fig5_mixed_model(d)
    assert fit.converged, fit.warnings
    sigma_se = 0.05 * np.sqrt(1 / 50 + 1 / 50)  # the design's SE of a contrast, from the simulation's noise SD
    for a, b in FIG5_CONTRASTS:
        c, truth = fit.contrast(a, b), effects[a] - effects[b]
        lo, hi = _ci95(c)
        assert lo < truth < hi, f"{a}-{b}: truth {truth} outside 95% CI [{lo:.4f}, {hi:.4f}] (est {c.estimate:.4f})"
        assert abs(c.estimate - truth) < 4 * sigma_se, f"{a}-{b}: estimate {c.estimate:.4f} vs truth {truth}"
        raw = d.loc[d["condition"] == a, "value"].mean() - d.loc[d["condition"] == b, "value"].mean()
        assert c.estimate == pytest.approx(raw, abs=1e-8), f"{a}-{b}: GLS {c.estimate} vs raw mean diff {raw}"
        # The seed intercepts (SD 0.3) are modelled: the SE is the residual one, not the seed-inflated one (~0.06).
        assert c.se == pytest.approx(sigma_se, rel=0.3), f"{a}-{b}: SE {c.se:.5f} vs design SE {sigma_se:.5f}"
        assert c.p == pytest.approx(2 * sps.norm.sf(abs(c.estimate / c.se)), rel=1e-9)
        assert (c.n, c.n_a, c.n_b, c.seeds) == (150, 50, 50, tuple(range(100, 110)))


@pytest.mark.parametrize("data_seed", [4, 5])
def test_fig5_mixed_model_zero_effect_ci_covers_zero(data_seed):
    effects = {"frozen": -0.20, "isr": 0.0, "oracle": 0.0}  # isr - oracle = 0
    fit = fig5_mixed_model(_simulate_fig5(effects, data_seed))
    c = fit.contrast("isr", "oracle")
    lo, hi = _ci95(c)
    assert lo < 0.0 < hi, f"isr-oracle: true 0 outside 95% CI [{lo:.4f}, {hi:.4f}]"
    assert abs(c.estimate) < 4 * 0.05 * np.sqrt(2 / 50), c.estimate
    assert c.p > 0.05 / 2, c.p  # no spurious effect (loose: the CI check above is the test)


def test_fig5_mixed_model_recovers_the_effect_when_runs_are_missing():
    # Unbalanced: a seeded 20% of runs dropped. Raw means are now biased by which seeds (intercept SD 0.3) are
    # missing where; the mixed model's within-seed comparison must still find the truth.
    effects = {"frozen": -0.20, "isr": 0.0, "oracle": 0.10}
    d = _simulate_fig5(effects, seed=6)
    d = d[np.random.default_rng(7).random(len(d)) > 0.2].reset_index(drop=True)
    fit = fig5_mixed_model(d)
    for a, b in FIG5_CONTRASTS:
        c, truth = fit.contrast(a, b), effects[a] - effects[b]
        lo, hi = _ci95(c)
        assert lo < truth < hi, f"{a}-{b}: truth {truth} outside 95% CI [{lo:.4f}, {hi:.4f}]"
        assert abs(c.estimate - truth) < 4 * 0.05 * np.sqrt(2 / 40), f"{a}-{b}: {c.estimate:.4f} vs {truth}"
        assert c.n == len(d)
