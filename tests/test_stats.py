"""Statistics against scipy/statsmodels called directly, and against the paper's published numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats as sps

from internalize.analysis import paper
from internalize.analysis.stats import (
    bootstrap_ci, fig5_mixed_model, fig5_reference_ols, reference_world_level, sem, spearman, ttest,
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
    for got, want in zip((fi, io, afi, aio), (*paper.FIG5_REFERENCE_OLS, *paper.FIG5_ADDITIVE_OLS)):
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
