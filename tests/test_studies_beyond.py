"""The hacking and readiness studies' sections against hand-made tables: each statistic is the direct computation,
controls gate the verdicts ("not measurable" when one fails), and the sections' tables say what the tables hold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from internalize.analysis.blocks import Table, Text
from internalize.analysis.directional import paired
from internalize.schema import COLUMNS
from internalize.studies import hacking, readiness
from internalize.studies.registry import study

SEEDS = range(8)
F, K, R = hacking.FACTORS


def _row(**kw) -> dict:
    return dict(experiment="s", world="w", episode=np.nan) | kw


def _hacking_table(full_falls: bool = False) -> pd.DataFrame:
    """12 cells x 8 seeds x 10 autonomy rollouts. The 1/12 single ISR is hacked (caregiver return falls by 0.4,
    internal return rises by 1); ensembles fall half as far; whole-epoch ISRs keep their return (or fall too)."""
    rng = np.random.default_rng(0)
    cells = [(f, 1, "mean") for f in (1 / 12, 0.25, 1.0)] + [(f, 5, r) for r in hacking.REDUCTIONS
                                                             for f in (1 / 12, 0.25, 1.0)]
    rows = []
    for (f, k, r), seed in ((c, s) for c in cells for s in SEEDS):
        keys = {F: f, K: k, R: r}
        fall = 0.0 if (f == 1.0 and not full_falls) else (0.4 if k == 1 else 0.2)
        rows += [_row(condition="isr", seed=seed, phase="socialization", step=s, metric="goals_per_episode",
                      value=3.0, **keys) for s in range(20)]
        for t in range(10):
            true = -0.2 - fall * t / 9 + 0.01 * rng.normal()
            internal = 4.0 + (1.0 if fall else 0.0) * t / 9 + 0.01 * rng.normal()
            step = 1000 * (t + 1)
            rows += [_row(condition="isr", seed=seed, phase="autonomy", step=step, metric="social_return",
                          value=true + 0.8, **keys),
                     _row(condition="isr", seed=seed, phase="autonomy", step=step, metric="extrinsic_return",
                          value=-0.8, **keys),
                     _row(condition="isr", seed=seed, phase="autonomy", step=step, metric="internal_return",
                          value=internal, **keys),
                     _row(condition="isr", seed=seed, phase="autonomy", step=step, metric="kl_from_departure",
                          value=0.1 * t, **keys)]
        ev = {"caregiver_return": -0.2 - fall + 0.02 * rng.normal()}
        if k > 1:
            ev |= {"isr_detection_auroc": 0.7 + 0.05 * rng.normal(), "isr_wrong_rate": 0.3,
                   "isr_disagreement": 0.01}
        rows += [_row(condition="isr", seed=seed, phase="evaluation", step=99_000, metric=m, value=v, **keys)
                 for m, v in ev.items()]
    return pd.DataFrame(rows)[[*COLUMNS, F, K, R]]


def test_hacking_per_seed_reads_departure_and_end_and_the_tests_are_the_paired_differences():
    df = _hacking_table()
    cells = hacking.per_seed(df)
    one = cells[(cells[K] == 1) & np.isclose(cells[F], 1 / 12)].sort_values("seed")
    raw = df[(df["phase"] == "autonomy") & (df[K] == 1) & np.isclose(df[F], 1 / 12)]
    wide = raw.pivot_table(index=["seed", "step"], columns="metric", values="value")
    true = (wide["social_return"] + wide["extrinsic_return"]).groupby("seed")
    np.testing.assert_allclose(one["true_start"], true.apply(lambda v: v.iloc[:hacking.EDGE].mean()))
    np.testing.assert_allclose(one["true_end"], true.apply(lambda v: v.iloc[-hacking.EDGE:].mean()))
    ctrl, ok = hacking.controls(cells)
    assert ok and all(t.p < 0.05 for t in ctrl)
    found = hacking.tests(cells)
    ens = [t for t in found if "AUROC" not in t.label]
    assert len(ens) == 2 * 3  # two undertrained fractions x three reductions
    single = cells[(cells[K] == 1) & np.isclose(cells[F], 0.25)].set_index("seed")["caregiver_return"]
    mine = cells[(cells[K] == 5) & np.isclose(cells[F], 0.25) & (cells[R] == "min")].set_index("seed")
    direct = paired("x", mine["caregiver_return"], single)
    got = next(t for t in ens if t.label.startswith("1/4 epoch, K=5 min"))
    assert got.effect == pytest.approx(direct.effect) and got.p == pytest.approx(direct.p)
    assert got.effect == pytest.approx(0.2, abs=0.03) and got.verdict == "supported"
    auroc = [t for t in found if "AUROC" in t.label]
    assert len(auroc) == 9 and all(t.verdict == "supported" for t in auroc)


def test_hacking_section_reads_no_verdict_when_the_negative_control_fails(tmp_path):
    blocks = hacking.section("hacking", _hacking_table(full_falls=True), tmp_path)
    texts = " ".join(b.text for b in blocks if isinstance(b, Text))
    assert "Controls FAILED" in texts and "not measurable" in texts
    verdicts = [b for b in blocks if isinstance(b, Table) and "verdict" in b.headers][0]
    assert {row[-1] for row in verdicts.rows} == {"not measurable"}
    ok = hacking.section("hacking", _hacking_table(), tmp_path)
    assert "Controls passed" in " ".join(b.text for b in ok if isinstance(b, Text))
    assert (tmp_path / "study_hacking.png").stat().st_size > 10_000


POINTS = (1000, 2000, 3000, 4000, 6000, 12000)


def _benefit(n: float) -> float:
    return 1.5 * (1 - np.exp(-n / 3000))  # concave: diminishing returns


def _dip(n: float) -> float:
    return {1000: 1.0, 12000: 1.2}.get(n, 0.3)  # falls, then rises: no diminishing returns


def _readiness_table(no_isr_keeps: bool = False, benefit=_benefit) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    rows = []
    for n, seed in ((n, s) for n in POINTS for s in SEEDS):
        keys = {readiness.N: n}
        # Socialization: rollouts of 500 steps, 10 episodes each, paid 0.5 per episode.
        for step in range(500, n + 1, 500):
            rows += [_row(condition=c, seed=seed, phase="socialization", step=step, metric=m, value=v, **keys)
                     for c in ("isr", "none")
                     for m, v in (("paid_return", 0.5), ("episodes", 10.0), ("goals_per_episode", 2.5))]
        b = benefit(n) + 0.01 * rng.normal()
        rows += [_row(condition="isr", seed=seed, phase="evaluation", step=n + 1, metric="caregiver_return",
                      value=b, **keys),
                 _row(condition="none", seed=seed, phase="evaluation", step=n + 1, metric="caregiver_return",
                      value=b if no_isr_keeps else 0.1 + 0.01 * rng.normal(), **keys)]
        dis = 0.05 * np.exp(-n / 3000) + 0.001 * rng.normal()
        rows += [_row(condition="isr", seed=seed, phase="autonomy", step=n + 500 * (t + 1), metric="isr_disagreement",
                      value=dis, **keys) for t in range(4)]
    return pd.DataFrame(rows)[[*COLUMNS, readiness.N]]


def test_readiness_slopes_costs_and_readiness_points_are_the_direct_computation():
    out = readiness.outcomes(_readiness_table())
    # Paid up to n: 0.5 per episode x 10 episodes per 500-step rollout = n / 100.
    np.testing.assert_allclose(out["paid"], out[readiness.N] / 100)
    sl = readiness.slopes(out)
    g = sl[(sl["n0"] == 4000) & (sl["n1"] == 6000)]
    np.testing.assert_allclose(g["dpaid"], 0.01)
    b = out.pivot_table(index="seed", columns=readiness.N, values="B")
    np.testing.assert_allclose(g.set_index("seed")["dB"], (b[6000] - b[4000]) / 2000)
    # ∂C/∂n = c / 100; ∂B/∂n ~ 1.5/3000 exp(-n/3000): for each c the first interval whose mean falls below it.
    mids = {(a, b_): (_benefit(b_) - _benefit(a)) / (b_ - a) for a, b_ in zip(POINTS, POINTS[1:], strict=False)}
    for star in readiness.readiness_points(sl):
        want = next((k for k, v in mids.items() if v < star["cost"] / 100), None)
        assert star["n_star"] == want
    found = readiness.tests(out, sl)
    assert [t.verdict for t in found] == ["supported"] * 3


def test_readiness_section_reads_no_verdict_when_the_negative_control_fails(tmp_path):
    blocks = readiness.section("readiness", _readiness_table(no_isr_keeps=True), tmp_path)
    texts = " ".join(b.text for b in blocks if isinstance(b, Text))
    assert "Controls FAILED" in texts
    verdicts = [b for b in blocks if isinstance(b, Table) and "verdict" in b.headers][0]
    assert {row[-1] for row in verdicts.rows} == {"not measurable"}
    ok = readiness.section("readiness", _readiness_table(), tmp_path)
    assert "Controls passed" in " ".join(b.text for b in ok if isinstance(b, Text))
    stars = [b for b in ok if isinstance(b, Table) and b.headers[0] == "cost c"][0]
    assert not any(row[1].startswith("not measurable") for row in stars.rows)  # read: an interval or not reached
    dip = readiness.section("readiness", _readiness_table(benefit=_dip), tmp_path)
    assert "Controls passed" in " ".join(b.text for b in dip if isinstance(b, Text))
    stars = [b for b in dip if isinstance(b, Table) and b.headers[0] == "cost c"][0]
    assert all(row[1] == row[2] == "not measurable" for row in stars.rows)
    assert "n* is not measurable: B(n) does not rise" in " ".join(b.text for b in dip if isinstance(b, Text))


def test_both_studies_run_their_grids_on_one_base():
    hk = study("hacking").sweep("quick")
    cells = [tuple(dict(p.values).values()) for p in hk.points]
    assert len(cells) == 12 and len(set(cells)) == 12
    assert {p.experiment.socialization_steps for p in hk.points} == {49_152}
    rd = study("readiness").sweep("quick")
    steps = [p.experiment.socialization_steps for p in rd.points]
    assert len(steps) >= 6 and steps == sorted(steps) and all(s % 1024 == 0 for s in steps)
    assert all(p.experiment.isr.ensemble == 5 for p in rd.points)


def test_a_study_runs_on_another_seed_set(monkeypatch):
    base = study("hacking").sweep("quick")
    shifted = study("hacking").sweep("quick", 1000)
    assert [p.values for p in shifted.points] == [p.values for p in base.points]
    assert all(s.experiment.seeds == tuple(x + 1000 for x in b.experiment.seeds)
               for s, b in zip(shifted.points, base.points, strict=True))
    monkeypatch.setenv("INTERNALIZE_SEED_OFFSET", "1000")
    assert study("readiness").sweep("quick").points[0].experiment.seeds[0] == 1000
