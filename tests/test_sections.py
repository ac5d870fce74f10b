"""The numbers in the report's section tables, recomputed independently.

For each section (Fig 1 "kept" and Welch rows, Fig 3 per-size table and Spearman line, Fig 4b summary and
Student/Welch rows, Fig 5 per-map means and model rows, Fig 6 trend) a synthetic long
results table is rendered with the section's own builder (``sections.SECTIONS[name]``, the blocks the report
renders from), and every number shown is compared with a value computed here with plain pandas / numpy /
scipy.stats / statsmodels from the raw rows. A displayed number is checked to its displayed precision (``shows``):
a wrong statistic, a swapped column, a mean over the wrong rows or a wrong sign fails. One test per section also
checks the rendered Markdown row, so the blocks are what the reader sees.

Sign convention: every comparison is printed as "a − b" with t of mean(a) - mean(b); in Fig 4b and claim 3 that is
"isr − frozen" (positive when the ISR is better; the paper's t is shown in that orientation): one test, one sign.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats as sps

from internalize.analysis import paper
from internalize.analysis.claims import claims
from internalize.analysis.report import write_report
from internalize.analysis.sections import SECTIONS, Table, Text
from test_report import ROLLOUT, _rows, fig3_table, fig4b_table, fig6_table

MINUS = "\u2212"


# ---- helpers -----------------------------------------------------------------------------------------

def section(name: str, df: pd.DataFrame, tmp_path) -> list:
    """The blocks of report section ``name`` built from ``df`` (figures go to ``tmp_path``)."""
    return SECTIONS[name][1](df, tmp_path)


def tables(blocks) -> list[list[dict[str, str]]]:
    """Every Table block as a list of {header: cell} rows."""
    return [[dict(zip(b.headers, r, strict=True)) for r in b.rows] for b in blocks if isinstance(b, Table)]


def texts(blocks) -> list[str]:
    return [b.text for b in blocks if isinstance(b, Text)]


def shows(cell: str, x: float, digits: int = 3) -> None:
    """``cell`` displays ``x`` to ``digits`` significant digits: within half a unit in its last place."""
    assert cell not in ("", "–"), f"cell {cell!r} shows nothing, expected {x!r}"
    got = float(cell)
    if x == 0:
        assert got == 0, (cell, x)
        return
    ulp = 10.0 ** (math.floor(math.log10(abs(x))) - digits + 1)
    assert abs(got - x) <= 0.5 * ulp * (1 + 1e-9) + 1e-300, f"shown {cell!r}, recomputed {x!r} ({digits} sig. digits)"


def shows_mean_sem(cell: str, v) -> None:
    """'mean (SEM)': mean to 3 significant digits, SEM (ddof 1) to 2."""
    m = re.fullmatch(r"(\S+) \((\S+)\)", cell)
    assert m, cell
    v = np.asarray(v, float)
    shows(m.group(1), v.mean(), 3)
    shows(m.group(2), v.std(ddof=1) / np.sqrt(v.size), 2)


def tail_mean(values: pd.Series, frac: float = 0.1) -> float:
    """Mean of the last ceil(frac * n) logged points ("end of a phase", at least one point)."""
    k = max(1, math.ceil(frac * len(values)))
    return float(values.iloc[-k:].mean())


def md_row(md: str, first_cells: str) -> str:
    """The one Markdown table line that starts with ``first_cells``."""
    found = [line for line in md.splitlines() if line.startswith(first_cells)]
    assert len(found) == 1, (first_cells, found)
    return found[0]


# ---- Fig 1 / Fig 7: end of each phase, "kept", Welch rows ------------------------------------------------

def _end_of_phase(df: pd.DataFrame, phase: str) -> pd.DataFrame:
    rows = df[(df["phase"] == phase) & (df["metric"] == "goals_per_episode")].sort_values("step")
    return rows.groupby(["condition", "seed"])["value"].apply(tail_mean).reset_index()


def fig1_hetero(experiment: str = "fig1") -> pd.DataFrame:
    """5 seeds whose socialization ends differ (1.0 .. 3.0 goals/episode) and whose autonomy ends do not follow
    them, so the ratio of the means over seeds and the mean of per-seed ratios differ in the first digit."""
    rng = np.random.default_rng(3)
    soc_end = np.array([1.0, 1.5, 2.0, 2.5, 3.0])
    aut_end = {"none": [0.9, 0.2, 0.3, 0.1, 0.2], "isr": [1.1, 1.4, 1.5, 2.0, 2.2], "caregiver": soc_end + 0.1}
    soc, aut = np.arange(1, 21) * ROLLOUT, np.arange(21, 41) * ROLLOUT
    parts = []
    for cond, ends in aut_end.items():
        for s in range(5):
            parts.append(_rows(experiment, cond, "blocks-3", s, "socialization", soc, "goals_per_episode",
                               np.linspace(0.2, soc_end[s], 20) + rng.normal(0, 0.02, 20)))
            parts.append(_rows(experiment, cond, "blocks-3", s, "autonomy", aut, "goals_per_episode",
                               np.linspace(soc_end[s], ends[s], 20) + rng.normal(0, 0.02, 20)))
    return pd.concat(parts, ignore_index=True)


@pytest.mark.parametrize("experiment", ["fig1", "fig7"])
def test_fig1_end_of_phase_kept_and_welch_rows(experiment, tmp_path):
    df = fig1_hetero(experiment)
    blocks = section(experiment, df, tmp_path)
    summary, welch = tables(blocks)
    soc, aut = _end_of_phase(df, "socialization"), _end_of_phase(df, "autonomy")
    assert [r["condition"] for r in summary] == ["none", "isr", "caregiver"]
    for r in summary:
        s = soc.loc[soc["condition"] == r["condition"], "value"]
        a = aut.loc[aut["condition"] == r["condition"], "value"]
        shows_mean_sem(r["end of socialization"], s)
        shows_mean_sem(r["end of autonomy"], a)
        # 'kept' is the ratio of the means over seeds (as claims 1/2 judge it), not a mean of per-seed ratios.
        shows(r["kept"], a.mean() / s.mean(), 2)
        assert (r["n"], r["seeds"]) == ("5", "0–4")
    # The two ways of averaging differ here (none: 0.19 vs 0.27), so the check above pins the ratio of means.
    none_s, none_a = (x.loc[x["condition"] == "none", "value"].to_numpy() for x in (soc, aut))
    assert abs((none_a / none_s).mean() - none_a.mean() / none_s.mean()) > 0.05
    assert [r["comparison"] for r in welch] == [f"isr {MINUS} caregiver", f"none {MINUS} caregiver"]
    care = aut.loc[aut["condition"] == "caregiver", "value"]
    for r, cond in zip(welch, ("isr", "none"), strict=True):
        ref = sps.ttest_ind(aut.loc[aut["condition"] == cond, "value"], care, equal_var=False)
        shows(r["t"], ref.statistic)
        shows(r["df"], ref.df)
        shows(r["p"], ref.pvalue)
        assert r["n"] == "5+5"
    assert ref.statistic < 0  # none ends far below the caregiver: the t is of none - caregiver


def test_fig1_rendered_row_and_agreement_with_claim_2(tmp_path):
    df = fig1_hetero()
    blocks = section("fig1", df, tmp_path)
    summary, welch = tables(blocks)
    res = write_report(tmp_path / "rep", {"fig1": df}, {})
    md = res.md.read_text()
    r = summary[1]
    assert md_row(md, "| isr |") == (f"| isr | {r['end of socialization']} | {r['end of autonomy']} | {r['kept']} "
                                     "| 5 | 0–4 |")
    # Claim 2 runs the same Welch test (isr vs caregiver at end of autonomy): the same t, whatever its rounding.
    c2 = next(c for c in res.claims if c.number == 2)
    t = float(re.search(r"Welch t = (\S+),", c2.evidence).group(1))
    shows(welch[0]["t"], t, 2)


def test_fig1_with_two_worlds_per_seed_tests_seeds_as_claim_2_does(tmp_path):
    second = fig1_hetero().assign(world="blocks-4")
    second["value"] *= 1.1
    df = pd.concat([fig1_hetero(), second], ignore_index=True)
    (summary, welch) = tables(section("fig1", df, tmp_path))
    c2 = next(c for c in claims({"fig1": df}) if c.number == 2)
    t2 = float(re.search(r"Welch t = (\S+),", c2.evidence).group(1))
    assert summary[1]["n"] == "5"
    assert welch[0]["n"] == "5+5" and float(welch[0]["t"]) == pytest.approx(t2, abs=0.01), (welch[0], t2)


# ---- Fig 3: held-out MSE per training-set size, Spearman ------------------------------------------------

def test_fig3_table_and_spearman(tmp_path):
    df = fig3_table()
    blocks = section("fig3", df, tmp_path)
    (rows,) = tables(blocks)
    # One point per run: its held-out MSE and training-set size at its last logged update.
    last = df[df["phase"] == "isr"].sort_values("step").groupby(["condition", "seed", "metric"])["value"].last()
    runs = last.unstack("metric").reset_index()
    updates = df[df["metric"] == "isr_heldout_mse"].groupby(["condition", "seed"])["step"].max()
    assert [r["training transitions"] for r in rows] == ["9216", "18432", "36864"]
    for r in rows:
        g = runs[runs["isr_n_train"] == float(r["training transitions"])]
        shows_mean_sem(r["this run"], g["isr_heldout_mse"])
        assert r["updates"] == ", ".join(str(u) for u in sorted(set(updates.loc[g["condition"].iloc[0]])))
        assert (r["n"], r["seeds"]) == (str(len(g)), "0–3")
        ref_mean, ref_sem = paper.FIG3B_HELDOUT_MSE[int(r["training transitions"])]
        assert r["paper"] == f"{ref_mean:.3g} ({ref_sem:.2g})"
    ref = sps.spearmanr(runs["isr_n_train"], runs["isr_heldout_mse"])
    (line,) = [t for t in texts(blocks) if t.startswith("Spearman")]
    m = re.fullmatch(r"Spearman rho\(transitions, MSE\) = (\S+), p = (\S+), n = (\d+) runs\.", line)
    assert m, line
    shows(m.group(1), ref.statistic)
    shows(m.group(2), ref.pvalue)
    assert int(m.group(3)) == len(runs) == 12 and ref.statistic < 0


# ---- Fig 4b: per-condition summary and the paper's Student / Welch tests ---------------------------------

def _fig4b_unequal() -> pd.DataFrame:
    """Per-seed OOD return with unequal spreads and sizes, so Student and Welch differ in every digit."""
    rng = np.random.default_rng(4)
    vals = {"frozen": 0.50 + 0.02 * rng.normal(size=8), "isr": 0.60 + 0.08 * rng.normal(size=12),
            "caregiver": 0.65 + 0.03 * rng.normal(size=10)}
    return pd.concat([_rows("fig4b", c, "blocks-5", s, "evaluation", [245_760], "caregiver_return", [x])
                      for c, v in vals.items() for s, x in enumerate(v)], ignore_index=True)


def _per_seed(df: pd.DataFrame) -> dict[str, pd.Series]:
    ev = df[(df["phase"] == "evaluation") & (df["metric"] == "caregiver_return")]
    return {c: g.set_index("seed")["value"].sort_index() for c, g in ev.groupby("condition")}


@pytest.mark.parametrize("table", ["paper", "unequal"])
def test_fig4b_summary_and_student_welch_rows(table, tmp_path):
    df = fig4b_table() if table == "paper" else _fig4b_unequal()
    blocks = section("fig4b", df, tmp_path)
    summary, tests = tables(blocks)
    v = _per_seed(df)
    assert [r["condition"] for r in summary] == ["frozen", "isr", "caregiver"]
    for r in summary:
        x = v[r["condition"]].to_numpy()
        shows_mean_sem(r["mean (SEM)"], x)
        # 68% percentile bootstrap of the mean, 10,000 resamples from default_rng(0).
        idx = np.random.default_rng(0).integers(0, x.size, size=(10_000, x.size))
        lo, hi = np.percentile(x[idx].mean(axis=1), [16, 84])
        m = re.fullmatch(r"\[(\S+), (\S+)\]", r["68% CI"])
        shows(m.group(1), lo)
        shows(m.group(2), hi)
        assert r["n"] == str(x.size)
        ref_mean, ref_sem = paper.FIG4B_MEANS["oracle" if r["condition"] == "caregiver" else r["condition"]]
        assert r["paper mean (SEM)"] == f"{ref_mean} ({ref_sem})"
    expected = [(f"isr {MINUS} frozen", "Student"), (f"isr {MINUS} frozen", "Welch"),
                (f"isr {MINUS} caregiver", "Student"), (f"isr {MINUS} caregiver", "Welch")]
    assert [(r["comparison"], r["test"]) for r in tests] == expected
    for r in tests:
        a, b = r["comparison"].split(f" {MINUS} ")
        ref = sps.ttest_ind(v[a], v[b], equal_var=r["test"] == "Student")
        # The effect with its 95% CI (Student or Welch, as the test), in the comparison's own orientation.
        m = re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", r["difference [95% CI]"])
        ci = ref.confidence_interval(0.95)
        for cell, value in zip(m.groups(), (v[a].mean() - v[b].mean(), ci.low, ci.high), strict=True):
            shows(cell.replace(MINUS, "-"), value)
        shows(r["t"], ref.statistic, 4)
        shows(r["df"], ref.df)
        shows(r["p"], ref.pvalue, 4)
        assert r["n"] == f"{v[a].size}+{v[b].size}"
    paper_cells = [r["paper"] for r in tests]
    assert paper_cells == ["t = 2.377, p = 0.0287", "–", "t = -1.024, p = 0.3196", "–"]
    if table == "paper":  # the packaged per-seed values reproduce the paper's Student tests
        assert (tests[0]["t"], tests[0]["p"], tests[2]["t"], tests[2]["p"]) == ("2.377", "0.02872", "-1.024", "0.3196")
    else:  # unequal n and spread: the Welch df is not n_a + n_b - 2
        assert tests[0]["df"] == "18" and tests[1]["df"] != "18"


def test_fig4b_rendered_rows(tmp_path):
    df = _fig4b_unequal()
    summary, tests = tables(section("fig4b", df, tmp_path))
    md = write_report(tmp_path / "rep", {"fig4b": df}, {}).md.read_text()
    r = tests[1]
    assert md_row(md, f"| isr {MINUS} frozen | Welch |") == (
        f"| isr {MINUS} frozen | Welch | {r['difference [95% CI]']} | {r['t']} | {r['df']} | {r['p']} | 12+8 | – |")
    assert md_row(md, "| isr | ") == "| " + " | ".join(summary[1].values()) + " |"


def _claim3_t(df: pd.DataFrame) -> float:
    c3 = next(c for c in claims({"fig4b": df}) if c.number == 3)
    return float(re.search(r"t\(\d+\) = (\S+) \(isr", c3.evidence).group(1).replace(MINUS, "-"))


def test_fig4b_and_claim3_print_one_test_with_one_sign(tmp_path):
    # Both tables name the comparison "isr − frozen" and print the t of isr - frozen (positive: the ISR is better).
    df = fig4b_table()
    v = _per_seed(df)
    (_, tests) = tables(section("fig4b", df, tmp_path))
    student = float(tests[0]["t"])
    assert tests[0]["comparison"] == f"isr {MINUS} frozen"
    assert np.sign(student) == np.sign(v["isr"].mean() - v["frozen"].mean()) == 1
    assert np.sign(_claim3_t(df)) == np.sign(v["isr"].mean() - v["frozen"].mean())


def test_fig4b_table_and_claims_table_show_the_same_signed_student_t(tmp_path):
    df = fig4b_table()
    (_, tests) = tables(section("fig4b", df, tmp_path))
    student = next(r for r in tests if {*r["comparison"].split(f" {MINUS} ")} == {"frozen", "isr"}
                   and r["test"] == "Student")
    assert float(student["t"]) == pytest.approx(_claim3_t(df), abs=5e-4), (student["t"], _claim3_t(df))


# ---- Fig 5: per-map means and the model rows -------------------------------------------------------------

MAPS5 = {"plus": 0.5, "x": 0.3, "U": 0.4, "T": 0.5, "four_rooms": 0.8}
COND5 = {"frozen": -0.15, "isr": 0.0, "caregiver": 0.03}


def fig5_runs(seeds: int = 6) -> pd.DataFrame:
    """One value per (condition, map, seed): map + condition + seed effects and noise; T's isr effect is larger
    so the per-map OLS (map T) and the additive OLS differ."""
    rng = np.random.default_rng(21)
    seed_fx = rng.normal(0, 0.08, seeds)
    rows = [dict(condition=c, world=w, seed=s,
                 value=base + fx + (0.1 if (w, c) == ("T", "isr") else 0.0) + seed_fx[s] + rng.normal(0, 0.05))
            for w, base in MAPS5.items() for c, fx in COND5.items() for s in range(seeds)]
    return pd.DataFrame(rows)


def fig5_long(runs: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([_rows("fig5", r.condition, r.world, r.seed, "evaluation", [360_448], "caregiver_return",
                            [r.value]) for r in runs.itertuples()], ignore_index=True)


def _coef(fit, var: str, level: str) -> str:
    (name,) = [n for n in fit.params.index if ":" not in n and n.startswith(f"C({var}") and n.endswith(f"[T.{level}]")]
    return name


def test_fig5_per_map_means(tmp_path):
    runs = fig5_runs()
    (means, _) = tables(section("fig5", fig5_long(runs), tmp_path))
    assert [r["map"] for r in means] == list(MAPS5)
    ref = runs.groupby(["world", "condition"])["value"].mean()
    for r in means:
        for c in ("frozen", "isr", "caregiver"):
            ours, theirs = r[c].split(" / ")
            shows(ours, ref[(r["map"], c)])
            shows(theirs, paper.FIG5_MEANS[r["map"]]["oracle" if c == "caregiver" else c])


def test_fig5_model_rows(tmp_path):
    runs = fig5_runs()
    blocks = section("fig5", fig5_long(runs), tmp_path)
    (_, models) = tables(blocks)
    # Mixed model, ISR as reference: frozen - isr is the frozen coefficient, isr - caregiver minus the caregiver one.
    mm = smf.mixedlm("value ~ C(condition, Treatment('isr')) + C(world)", runs, groups=runs["seed"]).fit(reml=True)
    expect = {}
    for a, b, level, sign in (("frozen", "isr", "frozen", 1.0), ("isr", "caregiver", "caregiver", -1.0)):
        name = _coef(mm, "condition", level)
        est, se = sign * mm.fe_params[name], mm.bse_fe[name]
        expect[("mixed", a, b)] = (est, "z", est / se, 2 * sps.norm.sf(abs(est / se)), len(runs))
    # The authors' pairwise OLS (rows of the two conditions only, reference level b), with interaction
    # (the effect in map T, the reference map) and additive.
    for a, b in (("frozen", "isr"), ("isr", "caregiver")):
        sub = runs[runs["condition"].isin([a, b])]
        for key, rhs in (("ols", " * C(world, Treatment('T'))"), ("add", " + C(world)")):
            fit = smf.ols(f"value ~ C(condition, Treatment('{b}')){rhs}", sub).fit()
            name = _coef(fit, "condition", a)
            expect[(key, a, b)] = (fit.params[name], "t", fit.tvalues[name], fit.pvalues[name], len(sub))
    keys = [("mixed", "frozen", "isr"), ("mixed", "isr", "caregiver"), ("ols", "frozen", "isr"),
            ("ols", "isr", "caregiver"), ("add", "frozen", "isr"), ("add", "isr", "caregiver")]
    assert len(models) == len(keys)
    for r, key in zip(models, keys, strict=True):
        est, stat_name, stat, p, n = expect[key]
        assert r["model"].startswith({"mixed": "MixedLM", "ols": "OLS", "add": "OLS"}[key[0]]), r["model"]
        assert ("(map T)" in r["model"]) == (key[0] == "ols") and ("*" in r["model"]) == (key[0] == "ols")
        assert r["contrast"] == f"{key[1]} - {key[2]}"
        shows(r["estimate"], est)
        name, value = r["statistic"].split(" = ")
        assert name == stat_name
        shows(value, stat, 4)
        shows(r["p"], p)
        assert (r["n"], r["seeds"]) == (str(n), "0–5")
    # Map T's isr bonus makes its simple effect larger than the additive one: the rows are not interchangeable.
    assert expect[("ols", "frozen", "isr")][0] < expect[("add", "frozen", "isr")][0] - 0.05
    assert [r["paper"] for r in models] == ["–", "–", "t = -3.662, p = 0.0004", "t = -1.121, p = 0.265",
                                            "t = -6.843, p = 7.8e-10", "t = -2.589, p = 0.0112"]
    md = write_report(tmp_path / "rep", {"fig5": fig5_long(runs)}, {}).md.read_text()
    r = models[2]
    assert md_row(md, f"| {r['model']} | frozen - isr |") == "| " + " | ".join(r.values()) + " |"


# ---- Fig 6: trend over autonomy -------------------------------------------------------------------------

def test_fig6_trend_over_several_seeds(tmp_path):
    # Three seeds with different noise; the section averages them per step before ranking.
    df = pd.concat([fig6_table(goals_fall=True).assign(seed=s, value=lambda d, s=s: d["value"] + 0.03 * s
                                                       * np.sin(np.arange(len(d))))
                    for s in range(3)], ignore_index=True)
    blocks = section("fig6", df, tmp_path)
    (rows,) = tables(blocks)
    assert [r["metric"] for r in rows] == ["internal_return", "goals_per_episode"]
    for r in rows:
        cur = df[(df["phase"] == "autonomy") & (df["metric"] == r["metric"])].groupby("step")["value"].mean()
        k = max(1, len(cur) // 10)
        shows(r["start"], cur.iloc[:k].mean())
        shows(r["end"], cur.iloc[-k:].mean())
        ref = sps.spearmanr(cur.index, cur.to_numpy())
        shows(r["Spearman rho"], ref.statistic)
        shows(r["p"], ref.pvalue)
        assert r["points"] == str(len(cur)) == "120"
    assert float(rows[0]["Spearman rho"]) > 0 > float(rows[1]["Spearman rho"])
    assert "3 seed(s): 0–2." in " ".join(texts(blocks))
    md = write_report(tmp_path / "rep", {"fig6": df}, {}).md.read_text()
    assert md_row(md, "| goals_per_episode |") == "| " + " | ".join(rows[1].values()) + " |"


def test_fig6_trend_is_the_isr_condition_as_claim_7_reads_it(tmp_path):
    df = pd.concat([fig6_table(goals_fall=True), fig6_table(goals_fall=False).assign(condition="caregiver")],
                   ignore_index=True)
    (rows,) = tables(section("fig6", df, tmp_path))
    c7 = next(c for c in claims({"fig6": df}) if c.number == 7)
    goals_rho = float(re.search(r"goals rho = (\S+) ", c7.evidence).group(1))
    assert float(rows[1]["Spearman rho"]) == pytest.approx(goals_rho, abs=0.01), (rows[1], c7.evidence)
