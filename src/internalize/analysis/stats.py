"""Statistics for the paper's comparisons: t-tests, bootstrap CIs, SEM, Spearman and the Fig 5 models.

Every result carries its sample sizes and the seeds it used, so a report can always say what a
number rests on. Randomness (bootstrap) comes from a ``numpy.random.Generator`` built from an explicit
seed, never from the global RNG.

Fig 5 inputs are frames with one row per run: columns ``condition``, ``world`` (the map), ``seed``,
``value`` (as :func:`internalize.analysis.table.final_per_seed` returns them).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import stats as sps
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW, ttost_ind

from .table import require_columns

__all__ = [
    "TTest", "BootstrapCI", "Correlation", "Contrast", "ModelFit", "Fig5OLS",
    "ttest", "sem", "bootstrap_ci", "spearman", "reference_world_level",
    "fig5_mixed_model", "fig5_reference_ols", "FIG5_CONTRASTS",
    "Equivalence", "tost_ind", "wald_equivalence", "contrast_equivalence", "mean_diff_ci",
    "ratio_bootstrap_ci", "spearman_ci",
]

# The paper's two Fig 5 comparisons, as (a, b): estimate = mean(a) - mean(b).
FIG5_CONTRASTS: tuple[tuple[str, str], ...] = (("frozen", "isr"), ("isr", "oracle"))
_FIG5_COLUMNS = ("condition", "world", "seed", "value")


@dataclass(frozen=True)
class TTest:
    """Two-sample t-test of ``mean(a) - mean(b)``; ``p`` two-sided; ``df`` Welch–Satterthwaite if
    ``equal_var`` is False."""

    t: float
    p: float
    df: float
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    equal_var: bool
    label_a: str = "a"
    label_b: str = "b"
    seeds_a: tuple[int, ...] | None = None
    seeds_b: tuple[int, ...] | None = None

    def summary(self) -> str:
        kind = "Student" if self.equal_var else "Welch"
        return (f"{kind} t({self.df:.1f}) = {self.t:.3f}, p = {self.p:.4g} "
                f"({self.label_a} {self.mean_a:.3f}, n={self.n_a} vs {self.label_b} "
                f"{self.mean_b:.3f}, n={self.n_b})")


@dataclass(frozen=True)
class BootstrapCI:
    """Percentile bootstrap CI of the mean at ``level`` from ``n_boot`` resamples drawn with ``seed``."""

    low: float
    high: float
    mean: float
    level: float
    n: int
    n_boot: int
    seed: int


@dataclass(frozen=True)
class Correlation:
    """Spearman rank correlation ``rho`` with two-sided ``p`` over ``n`` pairs."""

    rho: float
    p: float
    n: int


@dataclass(frozen=True)
class Contrast:
    """One model coefficient coding ``mean(a) - mean(b)``.

    ``stat`` is a t (OLS, with residual ``df``) or a z (mixed model, ``df`` None); ``world`` is the map
    the effect is evaluated in (None: the effect across maps). ``n`` counts rows in the fitted model.
    """

    a: str
    b: str
    estimate: float
    se: float
    stat: float
    stat_name: str
    p: float
    df: float | None
    n: int
    n_a: int
    n_b: int
    seeds: tuple[int, ...]
    model: str
    world: str | None = None

    def summary(self) -> str:
        dof = f"({self.df:.0f})" if self.df is not None else ""
        where = f" in map {self.world}" if self.world is not None else ""
        return (f"{self.a} - {self.b}{where}: {self.estimate:+.3f} (SE {self.se:.3f}), "
                f"{self.stat_name}{dof} = {self.stat:.3f}, p = {self.p:.4g}, n = {self.n}")


@dataclass(frozen=True)
class ModelFit:
    """The contrasts of one model family, with what it was fitted on and any fitting warnings."""

    model: str
    contrasts: tuple[Contrast, ...]
    seeds: tuple[int, ...]
    converged: bool = True
    warnings: tuple[str, ...] = ()

    def contrast(self, a: str, b: str) -> Contrast:
        """The contrast ``a - b``; ``KeyError`` if the model did not estimate it."""
        for c in self.contrasts:
            if (c.a, c.b) == (a, b):
                return c
        raise KeyError(f"no contrast {a!r} - {b!r}; have {[(c.a, c.b) for c in self.contrasts]}")


@dataclass(frozen=True)
class Fig5OLS:
    """The authors' pairwise OLS with interaction (effect in ``reference_world``) and the additive one."""

    interaction: ModelFit
    additive: ModelFit
    reference_world: str


def _sample(values: Sequence[float] | np.ndarray, name: str, min_n: int) -> np.ndarray:
    """``values`` as a finite 1-D float array with at least ``min_n`` entries, else ``ValueError``."""
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D sequence, got shape {x.shape}")
    if x.size < min_n:
        raise ValueError(f"{name}: needs at least {min_n} values, got {x.size}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: contains non-finite values {x[~np.isfinite(x)].tolist()}")
    return x


def _seeds(seeds: Sequence[int] | None, n: int, name: str) -> tuple[int, ...] | None:
    if seeds is None:
        return None
    out = tuple(int(s) for s in seeds)
    if len(out) != n:
        raise ValueError(f"{name}: {len(out)} seeds given for {n} values")
    return out


def ttest(a: Sequence[float], b: Sequence[float], equal_var: bool, *,
          seeds_a: Sequence[int] | None = None, seeds_b: Sequence[int] | None = None,
          label_a: str = "a", label_b: str = "b") -> TTest:
    """Student (``equal_var=True``) or Welch two-sample t-test of ``mean(a) - mean(b)``.

    ``a``, ``b``: 1-D samples (one value per seed), at least 2 each. Zero variance in both samples
    gives t = ±inf (or NaN for equal means), as scipy does.
    """
    x, y = _sample(a, label_a, 2), _sample(b, label_b, 2)
    na, nb = x.size, y.size
    va, vb = x.var(ddof=1), y.var(ddof=1)
    diff = x.mean() - y.mean()
    if equal_var:
        dof = float(na + nb - 2)
        pooled = ((na - 1) * va + (nb - 1) * vb) / dof
        se2 = pooled * (1.0 / na + 1.0 / nb)
    else:
        qa, qb = va / na, vb / nb
        se2 = qa + qb
        with np.errstate(divide="ignore", invalid="ignore"):
            dof = float(se2**2 / (qa**2 / (na - 1) + qb**2 / (nb - 1)))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = float(diff / np.sqrt(se2))
    p = float(2.0 * sps.t.sf(abs(t), dof)) if np.isfinite(dof) else float("nan")
    return TTest(t=t, p=p, df=dof, n_a=na, n_b=nb, mean_a=float(x.mean()), mean_b=float(y.mean()),
                 equal_var=bool(equal_var), label_a=label_a, label_b=label_b,
                 seeds_a=_seeds(seeds_a, na, label_a), seeds_b=_seeds(seeds_b, nb, label_b))


def paired_ttest(a: Sequence[float], b: Sequence[float], *, seeds: Sequence[int] | None = None,
                 label_a: str = "a", label_b: str = "b") -> TTest:
    """Paired t-test of ``mean(a - b)`` (one pair per seed, ``a[i]`` and ``b[i]`` from the same seed).

    ``df`` = n - 1; at least 2 pairs. Zero variance of the differences gives t = ±inf (NaN for no difference).
    """
    x, y = _sample(a, label_a, 2), _sample(b, label_b, 2)
    if x.size != y.size:
        raise ValueError(f"paired_ttest: {label_a} has {x.size} values but {label_b} has {y.size}; pairs needed")
    d = x - y
    n = d.size
    with np.errstate(divide="ignore", invalid="ignore"):
        t = float(d.mean() / (d.std(ddof=1) / np.sqrt(n)))
    p = float(2.0 * sps.t.sf(abs(t), n - 1)) if not np.isnan(t) else float("nan")
    seeds_t = _seeds(seeds, n, label_a)
    return TTest(t=t, p=p, df=float(n - 1), n_a=n, n_b=n, mean_a=float(x.mean()), mean_b=float(y.mean()),
                 equal_var=True, label_a=label_a, label_b=label_b, seeds_a=seeds_t, seeds_b=seeds_t)


def sem(values: Sequence[float]) -> float:
    """Standard error of the mean, ``std(ddof=1) / sqrt(n)``; needs at least 2 values."""
    x = _sample(values, "values", 2)
    return float(x.std(ddof=1) / np.sqrt(x.size))


def bootstrap_ci(values: Sequence[float], level: float = 0.68, n_boot: int = 10_000,
                 seed: int = 0) -> BootstrapCI:
    """Percentile bootstrap CI of the mean (seaborn's ``errorbar=('ci', 68)`` is ``level=0.68``).

    ``values``: 1-D sample; ``n_boot`` resamples of size n with replacement from
    ``np.random.default_rng(seed)``, so the same inputs always give the same interval.
    """
    x = _sample(values, "values", 1)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level!r}: must be in (0, 1), e.g. 0.68 or 0.95")
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot={n_boot!r}: must be a positive integer")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed={seed!r}: must be an int (the bootstrap never uses the global RNG)")
    rng = np.random.default_rng(int(seed))
    means = x[rng.integers(0, x.size, size=(int(n_boot), x.size))].mean(axis=1)
    tail = 50.0 * (1.0 - level)
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return BootstrapCI(low=float(low), high=float(high), mean=float(x.mean()), level=float(level),
                       n=int(x.size), n_boot=int(n_boot), seed=int(seed))


def spearman(x: Sequence[float], y: Sequence[float]) -> Correlation:
    """Spearman rank correlation of paired samples ``x``, ``y`` (at least 3 pairs)."""
    a, b = _sample(x, "x", 3), _sample(y, "y", 3)
    if a.size != b.size:
        raise ValueError(f"x and y must pair up: {a.size} vs {b.size} values")
    res = sps.spearmanr(a, b)
    return Correlation(rho=float(res.statistic), p=float(res.pvalue), n=int(a.size))


def reference_world_level(worlds: Sequence[str]) -> str:
    """The map the authors' interaction OLS used as reference level.

    Their script labels maps '"plus"', '"x"', '"U"', '"T"' (with the quotes) and '4 rooms'; the
    formula's reference is the label that sorts first, which is '"T"'. Same rule for any map set.
    """
    def label(w: str) -> str:
        return "4 rooms" if w == "four_rooms" else f'"{w}"'
    uniq = sorted(set(worlds), key=label)
    if not uniq:
        raise ValueError("worlds: empty")
    return uniq[0]


def _fig5_frame(df: pd.DataFrame, contrasts: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """Validate a Fig 5 frame: columns, one row per (condition, world, seed), contrast levels present."""
    require_columns(df, _FIG5_COLUMNS, "Fig 5 frame")
    d = df.loc[:, list(_FIG5_COLUMNS)].copy()
    d["condition"] = d["condition"].astype(str)
    d["world"] = d["world"].astype(str)
    dup = d.duplicated(["condition", "world", "seed"])
    if dup.any():
        first = d.loc[dup].iloc[0]
        raise ValueError(f"Fig 5 frame: several rows for condition={first['condition']!r}, "
                         f"world={first['world']!r}, seed={first['seed']!r}; reduce to one per run")
    present = set(d["condition"])
    for a, b in contrasts:
        for level in (a, b):
            if level not in present:
                raise ValueError(f"Fig 5 frame: column 'condition' lacks {level!r}; present: {sorted(present)}")
    _sample(d["value"], "Fig 5 column 'value'", 2)
    return d


def _categorical(col: pd.Series, first: str) -> pd.Categorical:
    """``col`` as a categorical whose first category (the formula's reference level) is ``first``."""
    rest = sorted(set(col) - {first})
    return pd.Categorical(col, categories=[first, *rest])


def _coef_name(params: pd.Index, var: str, level: str) -> str:
    """The coefficient name of ``level`` of categorical ``var`` (main effect, not an interaction)."""
    for name in params:
        if ":" not in name and name.startswith(f"C({var}") and name.endswith(f"[T.{level}]"):
            return name
    raise KeyError(f"no coefficient for {var}={level!r} in {list(params)}")


def _seed_tuple(d: pd.DataFrame) -> tuple[int, ...]:
    return tuple(int(s) for s in sorted(d["seed"].unique()))


def fig5_mixed_model(df: pd.DataFrame,
                     contrasts: Sequence[tuple[str, str]] = FIG5_CONTRASTS) -> ModelFit:
    """Linear mixed model ``value ~ C(condition) + C(world)`` with a random intercept per seed.

    What the paper says it ran ("environment as a fixed effect"). Fitted once by REML (statsmodels
    MixedLM) on all conditions present; each contrast ``a - b`` is ``L·β`` with its Wald z and
    two-sided normal p. Needs the seed to identify the same training seed across conditions and maps.
    """
    d = _fig5_frame(df, contrasts)
    ref = contrasts[0][1]
    d["condition"] = _categorical(d["condition"], ref)
    model = "MixedLM value ~ C(condition) + C(world) + (1 | seed)"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = smf.mixedlm("value ~ C(condition) + C(world)", d, groups=d["seed"]).fit(reml=True)
    fe = res.fe_params
    cov = res.cov_params().loc[fe.index, fe.index].to_numpy()
    out = []
    for a, b in contrasts:
        L = np.zeros(len(fe))
        for level, sign in ((a, 1.0), (b, -1.0)):
            if level != ref:
                L[fe.index.get_loc(_coef_name(fe.index, "condition", level))] += sign
        est, se = float(L @ fe.to_numpy()), float(np.sqrt(L @ cov @ L))
        z = est / se
        out.append(Contrast(a=a, b=b, estimate=est, se=se, stat=z, stat_name="z",
                            p=float(2.0 * sps.norm.sf(abs(z))), df=None, n=len(d),
                            n_a=int((d["condition"] == a).sum()), n_b=int((d["condition"] == b).sum()),
                            seeds=_seed_tuple(d), model=model))
    return ModelFit(model=model, contrasts=tuple(out), seeds=_seed_tuple(d),
                    converged=bool(getattr(res, "converged", True)),
                    warnings=tuple(dict.fromkeys(str(w.message) for w in caught)))


def _pairwise_ols(d: pd.DataFrame, a: str, b: str, formula: str, model: str,
                  world: str | None) -> Contrast:
    """Fit ``formula`` on the rows of conditions a and b only (reference level b); return a - b."""
    sub = d.loc[d["condition"].isin([a, b])].copy()
    sub["condition"] = _categorical(sub["condition"], b)
    res = smf.ols(formula, sub).fit()
    name = _coef_name(res.params.index, "condition", a)
    return Contrast(a=a, b=b, estimate=float(res.params[name]), se=float(res.bse[name]),
                    stat=float(res.tvalues[name]), stat_name="t", p=float(res.pvalues[name]),
                    df=float(res.df_resid), n=len(sub), n_a=int((sub["condition"] == a).sum()),
                    n_b=int((sub["condition"] == b).sum()), seeds=_seed_tuple(sub), model=model,
                    world=world)


def fig5_reference_ols(df: pd.DataFrame,
                       contrasts: Sequence[tuple[str, str]] = FIG5_CONTRASTS,
                       reference_world: str | None = None) -> Fig5OLS:
    """The authors' Fig 5 statistics, recomputed: one OLS per pair of conditions.

    As their script did (commenting out the third condition's rows and renaming Frozen -> "Simple",
    ISR -> "Reward" so that the coefficient codes ``a - b``), each contrast ``(a, b)`` is fitted on the
    rows of ``a`` and ``b`` only:

    - ``interaction``: ``value ~ C(condition) * C(world)``; the condition coefficient is the simple
      effect in the reference map only ("T" for the paper's maps, see :func:`reference_world_level`);
    - ``additive``: ``value ~ C(condition) + C(world)``, the effect across maps.
    """
    d = _fig5_frame(df, contrasts)
    ref_world = reference_world if reference_world is not None else reference_world_level(d["world"])
    if ref_world not in set(d["world"]):
        raise ValueError(f"reference_world={ref_world!r} not in column 'world': {sorted(set(d['world']))}")
    d["world"] = _categorical(d["world"], ref_world)
    inter_model = "OLS value ~ C(condition) * C(world), per pair"
    add_model = "OLS value ~ C(condition) + C(world), per pair"
    inter = tuple(_pairwise_ols(d, a, b, "value ~ C(condition) * C(world)", inter_model, ref_world)
                  for a, b in contrasts)
    add = tuple(_pairwise_ols(d, a, b, "value ~ C(condition) + C(world)", add_model, None)
                for a, b in contrasts)
    seeds = _seed_tuple(d)
    return Fig5OLS(interaction=ModelFit(inter_model, inter, seeds),
                   additive=ModelFit(add_model, add, seeds), reference_world=ref_world)


# ---- equivalence (TOST) and effect-size intervals ---------------------------------------------------

@dataclass(frozen=True)
class Equivalence:
    """Equivalence test (TOST: two one-sided tests) of ``diff = mean(a) - mean(b)`` against ``margin``.

    H0: ``diff <= low`` or ``diff >= high``; H1: ``low < diff < high``. ``p`` is the larger of the two
    one-sided p-values (``p_low`` of ``diff > low``, ``p_high`` of ``diff < high``), and ``equivalent`` is
    ``p < alpha``, which is the same as ``ci_tost`` (the ``1 - 2 alpha`` CI: 90% at alpha 0.05) lying inside
    ``(low, high)``. ``ci95`` is the usual two-sided 95% CI of ``diff``, for display. ``method`` names the
    test ("TOST Student t", "TOST Welch t", "TOST Wald z", "TOST Wald t"); ``df`` is None for a z.
    """

    diff: float
    ci_tost: tuple[float, float]
    ci95: tuple[float, float]
    margin: tuple[float, float]
    p: float
    p_low: float
    p_high: float
    equivalent: bool
    alpha: float
    method: str
    df: float | None
    n_a: int
    n_b: int
    label_a: str = "a"
    label_b: str = "b"

    @property
    def tost_level(self) -> float:
        """Coverage of ``ci_tost``: ``1 - 2 alpha``."""
        return 1.0 - 2.0 * self.alpha

    def summary(self) -> str:
        lo, hi = self.ci_tost
        return (f"{self.method}: {self.label_a} - {self.label_b} = {self.diff:+.3f}, "
                f"{self.tost_level:.0%} CI [{lo:+.3f}, {hi:+.3f}] vs margin "
                f"({self.margin[0]:+.3f}, {self.margin[1]:+.3f}): p = {self.p:.3g}, "
                f"{'equivalent' if self.equivalent else 'not equivalent'}")


def _margin(low: float, high: float) -> tuple[float, float]:
    lo, hi = float(low), float(high)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"equivalence margin ({low!r}, {high!r}): needs finite low < high")
    return lo, hi


def _alpha(alpha: float) -> float:
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha={alpha!r}: must be in (0, 0.5) (the TOST CI has level 1 - 2 alpha)")
    return float(alpha)


def tost_ind(a: Sequence[float], b: Sequence[float], low: float, high: float, *,
             usevar: str = "unequal", alpha: float = 0.05, label_a: str = "a",
             label_b: str = "b") -> Equivalence:
    """TOST of ``mean(a) - mean(b)`` inside ``(low, high)`` for two independent samples.

    Built on :func:`statsmodels.stats.weightstats.ttost_ind`. ``usevar="pooled"``: Student t (df =
    n_a + n_b - 2); ``"unequal"``: Welch t with Satterthwaite df. The CIs come from statsmodels'
    ``CompareMeans.tconfint_diff`` with the same ``usevar``. With zero variance in both samples the
    difference is exact: p is 0 if it lies strictly inside the margin, else 1.
    """
    x, y = _sample(a, label_a, 2), _sample(b, label_b, 2)
    if usevar not in ("pooled", "unequal"):
        raise ValueError(f"usevar={usevar!r}: allowed 'pooled' (Student) or 'unequal' (Welch)")
    lo, hi = _margin(low, high)
    alpha = _alpha(alpha)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p, (_, p_low, dof), (_, p_high, _) = ttost_ind(x, y, lo, hi, usevar=usevar)
        cm = CompareMeans(DescrStatsW(x), DescrStatsW(y))
        ci_tost = cm.tconfint_diff(alpha=2.0 * alpha, usevar=usevar)
        ci95 = cm.tconfint_diff(alpha=0.05, usevar=usevar)
    diff = float(x.mean() - y.mean())
    if x.var() == 0.0 and y.var() == 0.0:  # no spread: the difference is known exactly
        p_low, p_high = float(diff <= lo), float(diff >= hi)
        p, ci_tost, ci95, dof = max(p_low, p_high), (diff, diff), (diff, diff), float(x.size + y.size - 2)
    p = float(p)
    return Equivalence(diff=diff, ci_tost=(float(ci_tost[0]), float(ci_tost[1])),
                       ci95=(float(ci95[0]), float(ci95[1])), margin=(lo, hi), p=p, p_low=float(p_low),
                       p_high=float(p_high), equivalent=bool(p < alpha), alpha=alpha,
                       method="TOST Student t" if usevar == "pooled" else "TOST Welch t", df=float(dof),
                       n_a=int(x.size), n_b=int(y.size), label_a=label_a, label_b=label_b)


def wald_equivalence(estimate: float, se: float, low: float, high: float, *, df: float | None = None,
                     alpha: float = 0.05, n_a: int = 0, n_b: int = 0, label_a: str = "a",
                     label_b: str = "b") -> Equivalence:
    """TOST from an estimate and its standard error (normal z if ``df`` is None, else t with ``df``).

    ``p_low = P(Z > (estimate - low) / se)``, ``p_high = P(Z < (estimate - high) / se)``; equivalent iff
    ``estimate ± q(1 - alpha) se`` (the 90% CI at alpha 0.05) lies inside ``(low, high)``.
    """
    est, s = float(estimate), float(se)
    if not np.isfinite(est):
        raise ValueError(f"estimate={estimate!r}: must be finite")
    if not (np.isfinite(s) and s > 0):
        raise ValueError(f"se={se!r}: must be finite and > 0")
    lo, hi = _margin(low, high)
    alpha = _alpha(alpha)
    dist = sps.norm() if df is None else sps.t(float(df))
    p_low, p_high = float(dist.sf((est - lo) / s)), float(dist.cdf((est - hi) / s))
    q, q95 = float(dist.ppf(1.0 - alpha)), float(dist.ppf(0.975))
    p = max(p_low, p_high)
    return Equivalence(diff=est, ci_tost=(est - q * s, est + q * s), ci95=(est - q95 * s, est + q95 * s),
                       margin=(lo, hi), p=p, p_low=p_low, p_high=p_high, equivalent=bool(p < alpha),
                       alpha=alpha, method="TOST Wald z" if df is None else "TOST Wald t",
                       df=None if df is None else float(df), n_a=int(n_a), n_b=int(n_b),
                       label_a=label_a, label_b=label_b)


def contrast_equivalence(contrast: Contrast, low: float, high: float, alpha: float = 0.05) -> Equivalence:
    """TOST of a model contrast ``a - b`` (e.g. :func:`fig5_mixed_model`'s isr - oracle) with the model's
    own standard error: a z for the mixed model (``df`` None), a t for OLS."""
    return wald_equivalence(contrast.estimate, contrast.se, low, high, df=contrast.df, alpha=alpha,
                            n_a=contrast.n_a, n_b=contrast.n_b, label_a=contrast.a, label_b=contrast.b)


def mean_diff_ci(a: Sequence[float], b: Sequence[float], equal_var: bool,
                 level: float = 0.95) -> tuple[float, float]:
    """Two-sided ``level`` CI of ``mean(a) - mean(b)``: Student (``equal_var``) or Welch, as :func:`ttest`."""
    x, y = _sample(a, "a", 2), _sample(b, "b", 2)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level!r}: must be in (0, 1)")
    with np.errstate(divide="ignore", invalid="ignore"):
        ci = sps.ttest_ind(x, y, equal_var=bool(equal_var)).confidence_interval(level)
    return float(ci.low), float(ci.high)


def ratio_bootstrap_ci(numer: Sequence[float], denom: Sequence[float], level: float = 0.95,
                       n_boot: int = 10_000, seed: int = 0) -> BootstrapCI:
    """Percentile bootstrap CI of ``mean(numer) / mean(denom)`` over paired units (one pair per seed).

    Each resample draws n pairs with replacement from ``np.random.default_rng(seed)``; the returned
    ``mean`` field holds the ratio on the full sample. Resamples whose denominator mean is 0 are dropped.
    """
    x, y = _sample(numer, "numer", 1), _sample(denom, "denom", 1)
    if x.size != y.size:
        raise ValueError(f"numer and denom must pair up: {x.size} vs {y.size} values")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level!r}: must be in (0, 1)")
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot={n_boot!r}: must be a positive integer")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed={seed!r}: must be an int (the bootstrap never uses the global RNG)")
    idx = np.random.default_rng(int(seed)).integers(0, x.size, size=(int(n_boot), x.size))
    num, den = x[idx].mean(axis=1), y[idx].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = num[den != 0] / den[den != 0]
        point = float(x.mean() / y.mean()) if y.mean() != 0 else float("nan")
    tail = 50.0 * (1.0 - level)
    low, high = np.percentile(ratios, [tail, 100.0 - tail]) if ratios.size else (np.nan, np.nan)
    return BootstrapCI(low=float(low), high=float(high), mean=point, level=float(level), n=int(x.size),
                       n_boot=int(n_boot), seed=int(seed))


def spearman_ci(c: Correlation, level: float = 0.95) -> tuple[float, float]:
    """Fisher-z CI of a Spearman ``rho``: ``tanh(atanh(rho) ± q se)``.

    ``se = sqrt((1 + rho**2 / 2) / (n - 3))`` (Bonett & Wright 2000): the Pearson ``1 / sqrt(n - 3)``
    is too narrow for a rank correlation. NaN bounds for n <= 3; a perfect rho gives a zero-width CI.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level!r}: must be in (0, 1)")
    if c.n <= 3 or not np.isfinite(c.rho):
        return float("nan"), float("nan")
    q = float(sps.norm.ppf(0.5 + level / 2.0))
    se = float(np.sqrt((1.0 + c.rho**2 / 2.0) / (c.n - 3)))
    with np.errstate(divide="ignore"):
        z = float(np.arctanh(np.clip(c.rho, -1.0, 1.0)))
    return float(np.tanh(z - q * se)), float(np.tanh(z + q * se))
