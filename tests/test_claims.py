"""The "ISR matches the oracle" claims (2, 4, 5, 9) are equivalence tests against a stated margin.

Synthetic long results tables put isr - oracle just inside the margin, just outside it, and reverse the
effect the margin is built from; every verdict is checked word for word, and the ``effect`` and ``margin``
strings are checked against numbers recomputed here with scipy / statsmodels directly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats as sps

from internalize.analysis.claims import (
    BOOTSTRAP_SEED, EQUIV_FRACTION, KEEP_MIN_RATIO, N_BOOT, NOT_REPRODUCED, NOT_RUN, REPRODUCED, claims,
)
from test_report import ROLLOUT, _rows

T90_Z = sps.norm.ppf(0.95)  # the TOST CI at alpha 0.05 is a 90% CI


def fmt(x: float) -> str:
    """As the claims print numbers: 3 decimals, typographic minus."""
    return f"{x:.3f}".replace("-", "\u2212")


def _claim(tables, number):
    return next(c for c in claims(tables) if c.number == number)


def _standard(n: int, seed: int) -> np.ndarray:
    """n offsets with mean exactly 0 and sample sd exactly 1."""
    z = np.random.default_rng(seed).normal(size=n)
    return (z - z.mean()) / z.std(ddof=1)


def test_margin_fraction_is_a_quarter_of_the_advantage():
    assert EQUIV_FRACTION == 0.25 and KEEP_MIN_RATIO == 0.8 and N_BOOT == 10_000


# ---- claim 4: Fig 4b, Student TOST of per-seed OOD return -------------------------------------------

N4, SD4, FROZEN4, ORACLE4 = 10, 0.02, 0.40, 0.60


def fig4b_values(isr_minus_oracle: float, frozen: float = FROZEN4) -> dict[str, np.ndarray]:
    return {"frozen": frozen + SD4 * _standard(N4, 1), "caregiver": ORACLE4 + SD4 * _standard(N4, 2),
            "isr": ORACLE4 + isr_minus_oracle + SD4 * _standard(N4, 3)}


def fig4b_table(values: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.concat([_rows("fig4b", c, "blocks-5", s, "evaluation", [245_760], "caregiver_return", [v])
                      for c, vals in values.items() for s, v in enumerate(vals)], ignore_index=True)


def _edge4() -> tuple[float, float]:
    """(margin, |isr - oracle| at which the Student 90% CI touches the margin)."""
    margin = EQUIV_FRACTION * (ORACLE4 - FROZEN4)
    half = sps.t.ppf(0.95, 2 * N4 - 2) * SD4 * np.sqrt(2 / N4)
    return margin, margin - half


@pytest.mark.parametrize("sign", [-1.0, 1.0])
@pytest.mark.parametrize("offset, verdict", [(-0.002, REPRODUCED), (0.002, NOT_REPRODUCED)])
def test_claim4_just_inside_and_just_outside_the_margin(sign, offset, verdict):
    margin, edge = _edge4()
    v = fig4b_values(sign * (edge + offset))
    c = _claim({"fig4b": fig4b_table(v)}, 4)
    assert c.verdict == verdict
    # Recompute: the Student 90% CI of isr - oracle against ±25% of (oracle - frozen).
    ref = sps.ttest_ind(v["isr"], v["caregiver"], equal_var=True)
    lo90, hi90 = ref.confidence_interval(0.90)
    assert (-margin < lo90 and hi90 < margin) == (verdict == REPRODUCED)
    lo, hi = ref.confidence_interval(0.95)
    diff = v["isr"].mean() - v["caregiver"].mean()
    assert f"isr \u2212 caregiver = {fmt(diff)} [{fmt(lo)}, {fmt(hi)}]" in c.effect
    adv = v["caregiver"].mean() - v["frozen"].mean()
    assert f"±{fmt(EQUIV_FRACTION * adv)}" in c.margin and f"caregiver \u2212 frozen = {fmt(adv)}" in c.margin
    # The paper's Student t-test stays in the evidence, beside the TOST.
    assert f"p = {ref.pvalue:.3g}" in c.evidence and "TOST" in c.evidence
    assert c.n == 2 * N4 and c.seeds == tuple(range(N4))


def test_claim4_significant_difference_can_still_be_equivalent():
    # Just inside the margin the Student t-test is significant: "p >= 0.05" would have said not reproduced.
    _, edge = _edge4()
    v = fig4b_values(-(edge - 0.002))
    assert sps.ttest_ind(v["isr"], v["caregiver"]).pvalue < 0.05
    assert _claim({"fig4b": fig4b_table(v)}, 4).verdict == REPRODUCED


def test_claim4_no_significant_difference_is_not_equivalence():
    # 3 seeds with a huge spread: the t-test finds nothing, and equivalence is not shown.
    rng = np.random.default_rng(0)
    v = {"frozen": FROZEN4 + 0.3 * _standard(3, 1), "caregiver": ORACLE4 + 0.3 * _standard(3, 2),
         "isr": ORACLE4 + 0.3 * _standard(3, 3) + rng.normal(0, 0.01)}
    assert sps.ttest_ind(v["isr"], v["caregiver"]).pvalue > 0.5
    c = _claim({"fig4b": fig4b_table(v)}, 4)
    assert c.verdict == NOT_REPRODUCED and "not equivalent" in c.evidence


def test_claim4_reversed_advantage_leaves_equivalence_undefined():
    v = fig4b_values(0.0, frozen=ORACLE4 + 0.05)  # frozen beats the oracle: nothing for the ISR to recover
    c = _claim({"fig4b": fig4b_table(v)}, 4)
    assert c.verdict == NOT_REPRODUCED
    assert "equivalence undefined" in c.evidence and "undefined" in c.margin
    assert fmt(v["caregiver"].mean() - v["frozen"].mean()) in c.margin


def test_claim4_needs_the_frozen_baseline_for_its_margin():
    v = fig4b_values(0.0)
    del v["frozen"]
    c = _claim({"fig4b": fig4b_table(v)}, 4)
    assert c.verdict == NOT_RUN and "frozen" in c.evidence and c.effect == ""


# ---- claims 2 and 9: retention ratio and Welch TOST at the end of autonomy --------------------------

N2, SOC_END = 8, 2.0
LEVELS2 = {"caregiver": (2.2, 0.03), "none": (0.6, 0.10), "isr": (None, 0.05)}  # (end level, sd over seeds)


def retention_values(isr_level: float, caregiver: float = 2.2, none: float = 0.6) -> dict[str, np.ndarray]:
    """Per-seed end-of-autonomy goals/episode (the last 2 of 20 logged points, constant by construction)."""
    levels = {"caregiver": caregiver, "none": none, "isr": isr_level}
    return {c: levels[c] + LEVELS2[c][1] * _standard(N2, k) for k, c in enumerate(levels)}


def retention_table(end: dict[str, np.ndarray], experiment: str = "fig1") -> pd.DataFrame:
    soc, aut = np.arange(1, 21) * ROLLOUT, np.arange(21, 41) * ROLLOUT
    parts = []
    for cond, vals in end.items():
        for s, v in enumerate(vals):
            parts.append(_rows(experiment, cond, "blocks-3", s, "socialization", soc, "goals_per_episode",
                               np.r_[np.linspace(0.2, SOC_END, 18), SOC_END, SOC_END]))
            parts.append(_rows(experiment, cond, "blocks-3", s, "autonomy", aut, "goals_per_episode",
                               np.r_[np.linspace(SOC_END, v, 18), v, v]))
    return pd.concat(parts, ignore_index=True)


def _edge2(caregiver: float = 2.2, none: float = 0.6) -> tuple[float, float]:
    margin = EQUIV_FRACTION * (caregiver - none)
    sa, sb = LEVELS2["isr"][1], LEVELS2["caregiver"][1]
    df = (sa**2 / N2 + sb**2 / N2) ** 2 / ((sa**2 / N2) ** 2 / (N2 - 1) + (sb**2 / N2) ** 2 / (N2 - 1))
    return margin, margin - sps.t.ppf(0.95, df) * np.sqrt(sa**2 / N2 + sb**2 / N2)


def _bootstrap_ratio(aut: np.ndarray) -> tuple[float, float]:
    """The spec'd percentile bootstrap over seeds (socialization ends at SOC_END for every seed)."""
    idx = np.random.default_rng(BOOTSTRAP_SEED).integers(0, aut.size, size=(N_BOOT, aut.size))
    lo, hi = np.percentile(aut[idx].mean(axis=1) / SOC_END, [2.5, 97.5])
    return float(lo), float(hi)


@pytest.mark.parametrize("experiment, number", [("fig1", 2), ("fig7", 9)])
@pytest.mark.parametrize("offset, verdict", [(-0.002, REPRODUCED), (0.002, NOT_REPRODUCED)])
def test_keeping_just_inside_and_just_outside_the_margin(experiment, number, offset, verdict):
    margin, edge = _edge2()
    end = retention_values(2.2 - (edge + offset))
    c = _claim({experiment: retention_table(end, experiment)}, number)
    assert c.verdict == verdict
    ref = sps.ttest_ind(end["isr"], end["caregiver"], equal_var=False)
    lo90, hi90 = ref.confidence_interval(0.90)
    assert (-margin < lo90 and hi90 < margin) == (verdict == REPRODUCED)
    ratio = end["isr"].mean() / SOC_END
    assert ratio >= KEEP_MIN_RATIO  # the ratio holds in both: the margin decides
    lo, hi = ref.confidence_interval(0.95)
    assert f"isr \u2212 caregiver = {fmt(end['isr'].mean() - end['caregiver'].mean())} [{fmt(lo)}, {fmt(hi)}]" \
        in c.effect
    blo, bhi = _bootstrap_ratio(end["isr"])
    assert f"= {fmt(ratio)} [{fmt(blo)}, {fmt(bhi)}]" in c.effect
    adv = end["caregiver"].mean() - end["none"].mean()
    assert f"ratio >= {KEEP_MIN_RATIO:.2f}" in c.margin and f"±{fmt(EQUIV_FRACTION * adv)}" in c.margin
    assert f"caregiver \u2212 none = {fmt(adv)}" in c.margin
    assert f"Welch t = {ref.statistic:.2f}, p = {ref.pvalue:.3g}" in c.evidence and "TOST" in c.evidence


def test_keeping_reversed_advantage_leaves_equivalence_undefined():
    end = retention_values(2.2, caregiver=2.2, none=2.4)  # 'none' beats the oracle at end of autonomy
    c = _claim({"fig1": retention_table(end)}, 2)
    assert c.verdict == NOT_REPRODUCED and "equivalence undefined" in c.evidence and "undefined" in c.margin


def test_keeping_needs_the_ratio_even_when_equivalent():
    # The oracle itself drops in autonomy; the ISR matches it but keeps only 70% of its behaviour.
    end = retention_values(1.4, caregiver=1.4, none=0.2)
    c = _claim({"fig1": retention_table(end)}, 2)
    assert "(equivalent)" in c.evidence and c.verdict == NOT_REPRODUCED


def test_keeping_without_an_oracle_is_judged_on_the_ratio_alone():
    end = retention_values(1.9)
    del end["caregiver"]
    c = _claim({"fig1": retention_table(end)}, 2)
    assert c.verdict == REPRODUCED and "no oracle condition" in c.evidence and "ratio alone" in c.evidence
    assert c.margin == f"ratio >= {KEEP_MIN_RATIO:.2f}" and "\u2212 caregiver" not in c.effect


def test_unlearning_effect_is_the_bootstrapped_ratio():
    end = retention_values(1.9)
    c = _claim({"fig1": retention_table(end)}, 1)
    blo, bhi = _bootstrap_ratio(end["none"])
    assert c.verdict == REPRODUCED and c.margin == "ratio <= 0.50"
    assert f"= {fmt(end['none'].mean() / SOC_END)} [{fmt(blo)}, {fmt(bhi)}]" in c.effect


# ---- claim 5: Fig 5 mixed model, Wald-z TOST with the model's own SEs --------------------------------

MAPS = {"plus": 0.5, "x": 0.3, "U": 0.4, "T": 0.5, "four_rooms": 0.8}


def fig5_values(frozen_effect: float = -0.2, isr_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(55)
    seed_fx = rng.normal(0, 0.06, 8)
    rows = [dict(condition=cond, world=w, seed=s, value=base + fx + seed_fx[s] + rng.normal(0, 0.05))
            for w, base in MAPS.items()
            for cond, fx in (("frozen", frozen_effect), ("isr", isr_shift), ("caregiver", 0.0)) for s in range(8)]
    return pd.DataFrame(rows)


def fig5_table(v: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([_rows("fig5", r.condition, r.world, r.seed, "evaluation", [360_448], "caregiver_return",
                            [r.value]) for r in v.itertuples()], ignore_index=True)


def _direct_mixed(v: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """statsmodels MixedLM with the oracle as reference: {condition: (estimate - oracle, SE)}."""
    fit = smf.mixedlm("value ~ C(condition, Treatment('caregiver')) + C(world)", v, groups=v["seed"]).fit(reml=True)
    name = "C(condition, Treatment('caregiver'))[T.{}]"
    return {c: (float(fit.fe_params[name.format(c)]), float(fit.bse_fe[name.format(c)])) for c in ("isr", "frozen")}


@pytest.mark.filterwarnings("ignore:The MLE may be on the boundary")  # statsmodels: any variance < 0.01
@pytest.mark.parametrize("offset, verdict", [(-0.15, REPRODUCED), (0.15, NOT_REPRODUCED)])
def test_claim5_just_inside_and_just_outside_the_margin(offset, verdict):
    base = _direct_mixed(fig5_values())
    est0, se = base["isr"]
    margin = EQUIV_FRACTION * -base["frozen"][0]
    # Shifting every isr value moves only the isr coefficient: put the 90% CI's lower end at the margin ± a bit.
    target = -(margin - T90_Z * se) - offset * se
    v = fig5_values(isr_shift=target - est0)
    c = _claim({"fig5": fig5_table(v)}, 5)
    assert c.verdict == verdict
    got = _direct_mixed(v)
    est, se = got["isr"]
    adv = -got["frozen"][0]
    assert est == pytest.approx(target, abs=1e-5) and adv == pytest.approx(-base["frozen"][0], abs=1e-5)
    assert (-margin < est - T90_Z * se and est + T90_Z * se < margin) == (verdict == REPRODUCED)
    q = sps.norm.ppf(0.975)
    assert f"isr \u2212 caregiver = {fmt(est)} [{fmt(est - q * se)}, {fmt(est + q * se)}]" in c.effect
    assert f"isr \u2212 frozen = {fmt(est - got['frozen'][0])}" in c.effect
    assert f"±{fmt(EQUIV_FRACTION * adv)}" in c.margin and f"= {fmt(adv)})" in c.margin
    assert "isr - caregiver z = " in c.evidence and "TOST Wald z" in c.evidence and c.n == len(v)


def test_claim5_reversed_advantage_leaves_equivalence_undefined():
    c = _claim({"fig5": fig5_table(fig5_values(frozen_effect=0.1))}, 5)
    assert c.verdict == NOT_REPRODUCED and "equivalence undefined" in c.evidence and "undefined" in c.margin
