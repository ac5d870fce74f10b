"""Claims on synthetic tables (each verdict flips with the data), figures, and the written report.

The report's verdicts are read back cell by cell (the Markdown claims table and the HTML verdict cells), never by
substring: "reproduced" is a substring of "not reproduced", so ``"reproduced" in page`` holds whatever the verdicts.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from internalize.analysis import paper, plots
from internalize.analysis.claim import fraction_text
from internalize.analysis.claims import NOT_REPRODUCED, NOT_RUN, REPRODUCED, claims
from internalize.analysis.report import write_report
from internalize.analysis.table import COLUMNS

ROLLOUT = 2048  # env steps per logged rollout
EPISODE_STEPS = 20


def _rows(experiment, condition, world, seed, phase, steps, metric, values, episodes=True):
    steps = np.asarray(steps)
    return pd.DataFrame({
        "experiment": experiment, "condition": condition, "world": world, "seed": seed, "phase": phase,
        "step": steps.astype(int), "episode": steps / EPISODE_STEPS if episodes else np.nan,
        "metric": metric, "value": np.asarray(values, dtype=float)})


def fig1_table(none_end: float = 0.2, isr_end: float = 1.9, seeds: int = 4) -> pd.DataFrame:
    """Goals/episode rise to 2 while the caregiver is present, then go to ``*_end`` in autonomy."""
    rng = np.random.default_rng(0)
    soc, aut = np.arange(1, 21) * ROLLOUT, np.arange(21, 41) * ROLLOUT
    parts = []
    for s in range(seeds):
        for cond, end in (("caregiver", 2.0), ("none", none_end), ("isr", isr_end)):
            parts.append(_rows("fig1", cond, "blocks-3", s, "socialization", soc, "goals_per_episode",
                               np.linspace(0.2, 2.0, 20) + rng.normal(0, 0.02, 20)))
            parts.append(_rows("fig1", cond, "blocks-3", s, "autonomy", aut, "goals_per_episode",
                               np.linspace(2.0, end, 20) + rng.normal(0, 0.02, 20)))
    return pd.concat(parts, ignore_index=True)


def fig4b_table(isr_shift: float = 0.0, oracle_shift: float = 0.0, spread: float = 1.0) -> pd.DataFrame:
    """The paper's per-seed Fig 4b values as evaluation rows (oracle named 'caregiver'); ``spread`` scales
    each condition's deviations from its mean."""
    d = paper.fig4b_per_seed()
    d["value"] = d.groupby("condition")["value"].transform(lambda v: v.mean() + spread * (v - v.mean()))
    parts = []
    for row in d.itertuples():
        cond = "caregiver" if row.condition == "oracle" else row.condition
        v = row.value + (isr_shift if cond == "isr" else oracle_shift if cond == "caregiver" else 0.0)
        parts.append(_rows("fig4b", cond, "blocks-5", row.seed, "evaluation", [245_760], "caregiver_return", [v]))
    return pd.concat(parts, ignore_index=True)


def fig5_table(frozen_effect: float = -0.2, oracle_effect: float = 0.0) -> pd.DataFrame:
    """Additive map + condition + seed effects with noise, 8 seeds x 3 conditions x 5 maps."""
    rng = np.random.default_rng(5)
    maps = {"plus": 0.5, "x": 0.3, "U": 0.4, "T": 0.5, "four_rooms": 0.8}
    seed_fx = rng.normal(0, 0.02, 8)
    parts = []
    for world, base in maps.items():
        for cond, fx in (("frozen", frozen_effect), ("isr", 0.0), ("caregiver", oracle_effect)):
            for s in range(8):
                v = base + fx + seed_fx[s] + rng.normal(0, 0.05)
                parts.append(_rows("fig5", cond, world, s, "evaluation", [360_448], "caregiver_return", [v]))
    return pd.concat(parts, ignore_index=True)


def fig3_table(decreasing: bool = True, shared: bool = False) -> pd.DataFrame:
    """ISR runs at 3 data sizes x 4 seeds; final held-out MSE ~ 1/n (or rising with n).

    ``shared``: all sizes under condition 'isr' in successive update ranges, else one condition each.
    """
    rng = np.random.default_rng(7)
    parts = []
    for k, n in enumerate((9216, 18432, 36864)):
        final = (10.0 / n if decreasing else n * 1e-8) * np.exp(rng.normal(0, 0.1, 4))
        for s in range(4):
            upd = np.arange(1, 31)
            decay = final[s] * (1 + 5 * np.exp(-upd / 8))
            cond = "isr" if shared else f"n{n}"
            upd = upd + 100 * k if shared else upd
            parts += [_rows("fig3", cond, "blocks-3", s, "isr", upd, "isr_train_mse", decay * 0.9, episodes=False),
                      _rows("fig3", cond, "blocks-3", s, "isr", upd, "isr_heldout_mse", decay, episodes=False),
                      _rows("fig3", cond, "blocks-3", s, "isr", upd, "isr_n_train", np.full(30, n), episodes=False)]
    return pd.concat(parts, ignore_index=True)


def fig6_table(goals_fall: bool = True) -> pd.DataFrame:
    """One undertrained ISR run: internal return rises over autonomy; goals fall (or rise)."""
    rng = np.random.default_rng(11)
    steps = np.arange(60, 180) * ROLLOUT
    t = np.linspace(0, 1, steps.size)
    goals = (1.0 - 0.4 * t if goals_fall else 0.6 + 0.4 * t) + rng.normal(0, 0.02, t.size)
    return pd.concat([
        _rows("fig6", "isr", "x", 1235, "autonomy", steps, "internal_return",
              0.4 + 0.2 * t + rng.normal(0, 0.01, t.size)),
        _rows("fig6", "isr", "x", 1235, "autonomy", steps, "goals_per_episode", goals)], ignore_index=True)


def _verdicts(tables) -> dict[int, str]:
    return {c.number: c.verdict for c in claims(tables)}


# ---- claims -----------------------------------------------------------------------------------

def test_no_tables_means_every_claim_not_run():
    found = claims({})
    assert [c.number for c in found] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert all(c.verdict == NOT_RUN for c in found)


@pytest.mark.parametrize("number, holds, fails", [
    (1, {"fig1": fig1_table(none_end=0.2)}, {"fig1": fig1_table(none_end=1.8)}),
    (2, {"fig1": fig1_table(isr_end=1.9)}, {"fig1": fig1_table(isr_end=0.5)}),
    (3, {"fig4b": fig4b_table()}, {"fig4b": fig4b_table(isr_shift=-0.09)}),
    # Equivalence, not "p >= 0.05": the paper's own spread (10 seeds) cannot show it at the 25% margin.
    (4, {"fig4b": fig4b_table(isr_shift=0.042, spread=0.25)}, {"fig4b": fig4b_table()}),
    (4, {"fig4b": fig4b_table(isr_shift=0.042, spread=0.25)}, {"fig4b": fig4b_table(oracle_shift=0.2)}),
    (5, {"fig5": fig5_table()}, {"fig5": fig5_table(frozen_effect=0.0)}),
    (5, {"fig5": fig5_table()}, {"fig5": fig5_table(oracle_effect=0.1)}),
    (6, {"fig3": fig3_table(True)}, {"fig3": fig3_table(False)}),
    (6, {"fig3": fig3_table(True, shared=True)}, {"fig3": fig3_table(False, shared=True)}),
    (7, {"fig6": fig6_table(True)}, {"fig6": fig6_table(False)}),
    # Figure 7's claims read the fig7 table (the helped agent's goals), not fig1's.
    (8, {"fig7": fig1_table(none_end=0.2)}, {"fig7": fig1_table(none_end=1.8)}),
    (9, {"fig7": fig1_table(isr_end=1.9)}, {"fig7": fig1_table(isr_end=0.5)}),
])
def test_each_claim_flips_with_the_data(number, holds, fails):
    assert _verdicts(holds)[number] == REPRODUCED
    assert _verdicts(fails)[number] == NOT_REPRODUCED


def test_fig4b_claims_on_the_paper_data_report_its_numbers():
    found = {c.number: c for c in claims({"fig4b": fig4b_table()})}
    assert "t(18) = 2.377 (isr \u2212 frozen)" in found[3].evidence and "p = 0.0287" in found[3].evidence
    assert "p = 0.32" in found[4].evidence and found[3].n == 20 and found[3].seeds == tuple(range(10))
    # On the paper's own data the Student t-test is not significant, yet non-inferiority is not shown either: the
    # ISR's mean falls short of the oracle's by more than the margin, so no number of seeds would show it.
    c4 = found[4]
    assert c4.verdict == NOT_REPRODUCED and "not shown non-inferior" in c4.evidence
    assert c4.effect_value < -c4.margin_value and c4.seeds_needed == "not reachable" and c4.also_equivalent is False


def test_claims_group_panel_names():
    # fig4a is the same experiment as fig1; claims 1-2 read it under either name.
    assert _verdicts({"fig4a": fig1_table()})[1] == REPRODUCED


# ---- figures ----------------------------------------------------------------------------------

def test_plots_write_png_atomically(tmp_path):
    out = plots.learning_curves(fig1_table(), "goals_per_episode", tmp_path / "a" / "c.png",
                                switch_step=20 * ROLLOUT)
    b = plots.bars(fig5_table(), "caregiver_return", tmp_path / "b.png", ci=0.68)
    h = plots.hacking(fig6_table(), tmp_path / "h.png")
    for p in (out, b, h):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in p.with_suffix(".svg").read_bytes()[:400], "a vector copy beside each PNG"
    # No temp files left.
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b.png", "b.svg", "c.png", "c.svg", "h.png", "h.svg"]
    with pytest.raises(ValueError, match="no rows with metric 'nope'"):
        plots.learning_curves(fig1_table(), "nope", tmp_path / "x.png")


def test_figures_say_what_every_line_band_and_axis_is(tmp_path):
    svg = lambda p: p.with_suffix(".svg").read_text()  # noqa: E731 - local (matplotlib writes text as <!-- comments -->)
    curves = svg(plots.learning_curves(fig1_table(), "goals_per_episode", tmp_path / "c.png",
                                       switch_step=20 * ROLLOUT))
    for text in ("Goals reached per episode", "socialization (caregiver present)", "none", "isr", "caregiver",
                 "min–max over seeds", "caregiver leaves", "Env steps"):
        assert f"<!-- {text}" in curves or f"<!-- {text} -->" in curves, text
    assert "goals_per_episode" not in curves, "no raw metric names on a figure"
    helped = svg(plots.learning_curves(fig1_table(), "goals_per_episode", tmp_path / "h.png", ylabel="Helped "
                                       "agent's goals per episode", smooth=plots.PAPER_EMA))
    assert "<!-- Helped agent's goals per episode -->" in helped and "EMA 0.8" in helped
    bars = svg(plots.bars(fig5_table(), "caregiver_return", tmp_path / "b.png", ci=0.68))
    assert "Caregiver's reward per episode" in bars and "68% bootstrap CI" in bars
    hack = svg(plots.hacking(fig6_table(), tmp_path / "k.png"))
    assert "Internal reward per episode (R_i)" in hack and "min–max over seeds" in hack
    # Each condition has one colour in every figure, from the colour-blind-safe palette.
    for cond, colour in (("none", "#d55e00"), ("isr", "#009e73"), ("caregiver", "#0072b2")):
        assert f"stroke: {colour}" in curves, cond
    for cond, colour in (("frozen", "#999999"), ("isr", "#009e73"), ("caregiver", "#0072b2")):
        assert f"fill: {colour}" in bars, cond


def test_smoothing_is_the_authors_ema():
    x = pd.Series([1.0, 0.0, np.nan, 0.0])
    # s0 = x0; s1 = 0.8 s0 + 0.2 x1; a NaN keeps the running value; s3 = 0.8 s2 + 0.2 x3.
    np.testing.assert_allclose(plots._ema(x, 0.8), [1.0, 0.8, 0.8, 0.64])
    np.testing.assert_array_equal(plots._ema(x, 0.0), x.to_numpy())
    # Continuing a running value (autonomy after socialization): s0 = 0.8 start + 0.2 x0.
    np.testing.assert_allclose(plots._ema(x, 0.8, start=0.5), [0.6, 0.48, 0.48, 0.384])


def test_mixed_model_warnings_are_sentences():
    from internalize.analysis.sections import explain_model_warning

    sentence = explain_model_warning("The MLE may be on the boundary of the parameter space.")
    assert "between-seed variance" in sentence and "MLE" not in sentence
    assert explain_model_warning("something new").endswith("(statsmodels): something new")


# ---- report -----------------------------------------------------------------------------------

def test_write_report_md_and_self_contained_html(tmp_path):
    tables = {"fig1": fig1_table(), "fig3": fig3_table(), "fig4b": fig4b_table(), "fig5": fig5_table(),
              "custom": fig1_table().assign(experiment="custom")}
    meta = {"preset": "quick", "git_commit": "abc123",
            "experiments": {"fig4b": {"learner": "ppo", "budget": "120832+120832 steps", "preset": "quick"}}}
    res = write_report(tmp_path / "rep", tables, meta)
    md, page = res.md.read_text(), res.html.read_text()
    assert res.md.name == "report.md" and res.html.name == "report.html"
    assert "Paper claims vs this run" in md and "Fig 6 — reward hacking" in md
    assert ("| criterion | margin | effect (95% CI) | fraction of the oracle's advantage recovered (95% CI) | "
            "seeds needed (80% power) | also equivalent | verdict |") in md
    c3 = next(c for c in res.claims if c.number == 3)
    assert c3.effect and c3.margin and c3.effect in md and c3.margin in md
    # The claims table is built from the same records as `internalize claims`: claim 4's fraction and seeds.
    c4 = next(c for c in res.claims if c.number == 4)
    row4 = next(line for line in md.splitlines() if line.startswith("| 4 | Fig 4b |"))
    assert fraction_text(c4.fraction) in row4 and f"| {c4.seeds_needed} |" in row4
    fig6 = md.split("Fig 6 — reward hacking")[1].split("\n## ")[0]
    # The section's whole text is one line: not run, and how to add it.
    assert "\nnot run (`internalize run fig6 --out OUT`, then `internalize report OUT`, adds it)\n" in fig6
    assert "learner = ppo" in md and "budget = 120832+120832 steps" in md
    for path in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
        assert (tmp_path / "rep" / path).is_file()
    assert len(res.figures) >= 6
    assert page.count("data:image/png;base64,") == len(res.figures)
    assert set(re.findall(r'src="([a-z]+):', page)) == {"data"}
    assert "href=" not in page and "<link" not in page and ".png" not in page
    verdicts = {c.number: c.verdict for c in res.claims}
    assert verdicts[7] == NOT_RUN and verdicts[3] == REPRODUCED
    # The verdicts as written, cell by cell: the Markdown claims table and the HTML verdict cells (whose class
    # colours them) both say exactly what claims() decided, claim 3 "reproduced" and claim 7 "not run".
    md_rows = claims_table_rows(md)
    assert [r["#"] for r in md_rows] == [str(c.number) for c in res.claims]
    assert {int(r["#"]): r["verdict"] for r in md_rows} == verdicts
    assert md_rows[2]["verdict"] == "reproduced" and md_rows[6]["verdict"] == "not run"
    assert html_verdicts(page) == [(v.replace(" ", "-"), v) for v in verdicts.values()]
    assert html_verdicts(page)[2] == ("reproduced", "reproduced")
    assert "<td>t = -3.662, p = 0.0004</td>" in page  # the paper's Fig 5 OLS beside ours


def test_report_verdict_cells_distinguish_reproduced_from_not_reproduced(tmp_path):
    # Claim 3 fails on this table (isr 0.09 below the paper's mean); a substring check for "reproduced" would
    # still pass, the cell-exact checks do not.
    res = write_report(tmp_path / "rep", {"fig4b": fig4b_table(isr_shift=-0.09)}, {})
    md, page = res.md.read_text(), res.html.read_text()
    rows = {int(r["#"]): r["verdict"] for r in claims_table_rows(md)}
    assert rows[3] == NOT_REPRODUCED and rows[1] == NOT_RUN, rows
    assert REPRODUCED not in rows.values(), rows
    assert html_verdicts(page)[2] == ("not-reproduced", "not reproduced")
    assert ("reproduced", "reproduced") not in html_verdicts(page)


def claims_table_rows(md: str) -> list[dict[str, str]]:
    """The Markdown 'Paper claims vs this run' table as one dict per row (header -> cell text, unescaped)."""
    lines = md.split("## Paper claims vs this run\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    header, body = _md_cells(lines[0]), lines[2:]
    assert header[0] == "#" and "verdict" in header, header
    return [dict(zip(header, _md_cells(line), strict=True)) for line in body]


def _md_cells(line: str) -> list[str]:
    # Cells are separated by unescaped "|"; the report escapes "|" inside a cell as "\|".
    cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
    return [c.strip().replace("\\|", "|") for c in cells]


def html_verdicts(page: str) -> list[tuple[str, str]]:
    """(class, text) of every verdict cell of the HTML page, in order."""
    return re.findall(r'<td class="([a-z-]+)">([^<]*)</td>', page)


def test_write_report_rejects_bad_tables(tmp_path):
    with pytest.raises(ValueError, match=r"missing column\(s\) \['seed'\]"):
        write_report(tmp_path, {"fig1": fig1_table().drop(columns="seed")}, {})
    bad = fig1_table()
    bad.loc[0, "phase"] = "warmup"
    with pytest.raises(ValueError, match="'warmup'.*allowed"):
        write_report(tmp_path, {"fig1": bad}, {})
    with pytest.raises(ValueError, match="meta"):
        write_report(tmp_path, {}, meta=None)
    assert list(COLUMNS) == list(fig1_table().columns)


def test_produced_by_states_the_budget_of_each_phase_the_experiment_had():
    """The 'Produced by' line of an experiment without autonomy (Fig 3) says so instead of "0 steps on -"."""
    from internalize.experiments.reproduce import _describe

    config = {"socialization_steps": 98304, "socialization_world": {"name": "blocks-3"}, "seeds": [1, 2],
              "learner": {"torso": "mlp"}, "isr": {"updates_fraction": 1.0}}
    fig3 = _describe({**config, "autonomy_steps": 0, "autonomy_worlds": []}, {})
    assert fig3["budget"] == "socialization 98,304 steps on blocks-3; no autonomy phase"
    fig4a = _describe({**config, "autonomy_steps": 49152, "autonomy_worlds": [{"name": "blocks-3"}],
                       "evaluation_episodes": 100}, {})
    assert fig4a["budget"] == ("socialization 98,304 steps on blocks-3; autonomy 49,152 steps on blocks-3; 100 "
                               "held-out episodes")
