"""The sweep's report section against a hand-made combined table: every mean and CI it prints is the direct
computation from the table (last logged value per run, mean over worlds, other keys averaged within a seed,
Student-t over seeds)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import scipy.stats as sps

from internalize.analysis.blocks import Table
from internalize.analysis.report import SweepTable, write_report
from internalize.analysis.sweep_section import against_key, mean_ci, outcome_per_seed, sweep_section, swept_keys
from internalize.schema import COLUMNS

SEEDS = (0, 1, 2)


def _table() -> pd.DataFrame:
    """Two keys (noise: float, torso: str), two conditions, two worlds, two evaluation steps (only the last
    counts), and distractor rows in another phase and metric."""
    rng = np.random.default_rng(7)
    rows = []
    for noise, torso, cond, world, seed, step in itertools.product(
            (0.0, 0.2), ("mlp", "cnn"), ("caregiver", "isr"), ("a", "b"), SEEDS, (10, 20)):
        value = rng.normal() + (1.0 if step == 20 else -50.0)  # a stale step would show
        for phase, metric in (("evaluation", "caregiver_return"), ("evaluation", "goals_per_episode"),
                              ("autonomy", "caregiver_return")):
            rows.append(dict(experiment="s", condition=cond, world=world, seed=seed, phase=phase, step=step,
                             episode=np.nan, metric=metric, value=value if metric == "caregiver_return" else 99.0,
                             **{"caregiver.noise": noise, "learner.torso": torso}))
    return pd.DataFrame(rows)[[*COLUMNS, "caregiver.noise", "learner.torso"]]


def _direct(df: pd.DataFrame, noise: float, cond: str) -> list[float]:
    """Per seed: mean over torso and world of the value at the last evaluation step."""
    sel = df[(df.phase == "evaluation") & (df.metric == "caregiver_return") & (df.step == 20)
             & (df["caregiver.noise"] == noise) & (df.condition == cond)]
    return [sel[sel.seed == s].value.mean() for s in SEEDS]


def test_outcome_against_a_key_is_the_direct_computation():
    df = _table()
    assert swept_keys(df) == ["caregiver.noise", "learner.torso"]
    stats = against_key(outcome_per_seed(df, "caregiver_return", "evaluation"), "caregiver.noise")
    for noise, cond in itertools.product((0.0, 0.2), ("caregiver", "isr")):
        row = stats[(stats["caregiver.noise"] == noise) & (stats.condition == cond)].iloc[0]
        v = np.array(_direct(df, noise, cond))
        half = sps.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
        assert row["mean"] == pytest.approx(v.mean()) and row["n"] == len(SEEDS)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((v.mean() - half, v.mean() + half))


def test_the_section_prints_those_numbers_and_the_whole_grid(tmp_path):
    df = _table()
    blocks = sweep_section("s", df, "caregiver_return", "evaluation", tmp_path)
    tables = [b for b in blocks if isinstance(b, Table)]
    assert [t.headers[0] for t in tables] == ["caregiver.noise", "learner.torso", "caregiver.noise"]
    m, lo, hi = mean_ci(_direct(df, 0.2, "isr"))
    assert ("0.2", "isr", f"{m:.3g}", f"[{lo:.3g}, {hi:.3g}]", "3") in tables[0].rows
    assert len(tables[2].rows) == 2 * 2 * 2  # every point x condition
    assert (tmp_path / "sweep_s.png").exists()


def test_an_outcome_not_logged_is_named_with_what_is_and_the_report_keeps_going(tmp_path):
    df = _table()
    with pytest.raises(ValueError, match="'lifts' is not logged in phase 'evaluation'; logged there: "
                                         "caregiver_return, goals_per_episode"):
        outcome_per_seed(df, "lifts", "evaluation")
    files = write_report(tmp_path, {}, {}, {"s": SweepTable(df, "lifts", "evaluation")})
    text = files.md.read_text()
    assert "Could not compute this section: the outcome 'lifts'" in text
    # Only a sweep here: no table of the paper's claims (all of them "not run"), one line saying why.
    assert "Paper claims vs this run" not in text and "No experiment of the paper in this directory" in text
    assert "Fig 4b" not in text and files.claims and all(c.verdict == "not run" for c in files.claims)
