"""The studies (``internalize study``): their files load as sweeps with at least 8 seeds under both presets, and
each report section's statistics are the direct computation from a hand-made table; a failed control or an unmet
precondition reads "not measurable", never a verdict."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import scipy.stats as sps
from typer.testing import CliRunner

from internalize.analysis.blocks import Table, Text
from internalize.analysis.directional import equivalent, holm, paired, welch
from internalize.cli import app
from internalize.schema import COLUMNS
from internalize.studies import conflicting, means_ends, unreliable, weaning
from internalize.studies.registry import STUDIES, study

SEEDS = range(8)


@pytest.mark.parametrize("name", sorted(STUDIES))
@pytest.mark.parametrize("preset", ["quick", "paper"])
def test_every_study_is_a_sweep_of_at_least_8_seeds_with_its_section(name, preset):
    plan = study(name).sweep(preset)
    assert (len(plan.points) == 1 if study(name).single else len(plan.points) >= 2)
    assert all(len(p.experiment.seeds) >= 8 for p in plan.points)
    assert plan.manifest()["section"] == f"internalize.studies.{study(name).module}:section"


def test_unreliable_quick_varies_one_factor_at_a_time_and_paper_runs_the_full_product():
    quick, paper = study("unreliable").sweep("quick"), study("unreliable").sweep("paper")
    cells = [dict(p.values) for p in quick.points]
    assert quick.spec.zip and len(cells) == 8 and all(sum(v != 0 for v in c.values()) <= 1 for c in cells)
    grid = dict(paper.spec.grid)
    assert not paper.spec.zip and len(paper.points) == 36 == len(grid["caregiver.noise"]) * len(
        grid["caregiver.miss"]) * len(grid["caregiver.false_reward"])
    assert {tuple(dict(p.values).values()) for p in paper.points} >= {tuple(c.values()) for c in cells}
    assert all(len(p.experiment.seeds) == 10 and p.experiment.socialization_steps == 120_832 for p in paper.points)


def test_an_unknown_study_or_preset_is_one_line():
    result = CliRunner().invoke(app, ["study", "nope"])
    assert result.exit_code == 2 and result.output.strip() == \
        "error: study: got 'nope'; allowed: weaning | unreliable | conflicting | means-ends | hacking | readiness."
    result = CliRunner().invoke(app, ["study", "unreliable", "--preset", "huge"])
    assert result.exit_code == 2 and "allowed: quick | paper" in result.output


def _row(**kw) -> dict:
    base = dict(experiment="s", world="w", step=10, episode=np.nan)
    return base | kw


def _unreliable_table(exact_paid: float = 1.0, unlearned: tuple = ()) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for noise, miss, seed in itertools.product((0.0, 0.2), (0.0, 0.5), SEEDS):
        goals = 0.1 if ((noise, miss) in unlearned and seed < 3) else 3.0
        rows += [_row(condition="isr", seed=seed, phase="socialization", step=step, metric="goals_per_episode",
                      value=goals, **{"caregiver.noise": noise, "caregiver.miss": miss}) for step in range(20)]
        paid = exact_paid if (noise, miss) == (0.0, 0.0) else 0.6 + 0.05 * rng.normal()
        isr = paid + (0.2 if noise > 0 else -0.1) + 0.02 * rng.normal()  # better under noise, worse under misses
        keys = {"caregiver.noise": noise, "caregiver.miss": miss}
        rows += [_row(condition="isr", seed=seed, phase="isr", metric="isr_heldout_true_corr", value=isr, **keys),
                 _row(condition="isr", seed=seed, phase="isr", metric="paid_heldout_true_corr", value=paid, **keys)]
        for cond, ret in (("isr", 1.0), ("none", 0.5)):
            rows.append(_row(condition=cond, seed=seed, phase="evaluation", metric="caregiver_return",
                             value=ret + 0.1 * rng.normal(), **keys))
    return pd.DataFrame(rows)[[*COLUMNS, "caregiver.noise", "caregiver.miss"]]


def test_unreliable_alignment_tests_are_the_paired_differences_and_the_control_gates_the_verdict(tmp_path):
    df = _unreliable_table()
    both, tests, control = unreliable.alignment_tests(df)
    assert control and [t.label for t in tests] == ["noise 0, miss 0.5", "noise 0.2, miss 0", "noise 0.2, miss 0.5"]
    cell = both[(both["caregiver.noise"] == 0.2) & (both["caregiver.miss"] == 0.5)].sort_values("seed")
    d = (cell["isr"] - cell["paid"]).to_numpy()
    ci = sps.ttest_1samp(d, 0).confidence_interval(0.95)
    assert tests[2].effect == pytest.approx(d.mean()) and (tests[2].ci_low, tests[2].ci_high) == pytest.approx(ci)
    assert [t.verdict for t in tests] == ["contradicted", "supported", "supported"]
    text = " ".join(b.text for b in unreliable.section("unreliable", df, tmp_path) if isinstance(b, Text))
    assert "Control passed" in text and "Verdict: partly supported: in 2 of 3 measurable cells" in text
    broken = unreliable.section("unreliable", _unreliable_table(exact_paid=0.9), tmp_path)
    text = " ".join(b.text for b in broken if isinstance(b, Text))
    assert "Control FAILED" in text and "Verdict: not measurable" in text
    # Three of eight learners in a cell never learned to reach the goal: five left, the cell is not measurable.
    _, tests, _ = unreliable.alignment_tests(_unreliable_table(unlearned=((0.2, 0.5),)))
    assert tests[2].n == (5,) and tests[2].verdict == "not measurable" and tests[1].verdict == "supported"


def _means_ends_table(lift_learned: float = 2.0) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    rows = []
    for event, seed in itertools.product(("boulder_lift", "helped_goal"), SEEDS):
        keys = {"caregiver.event": event}
        for step in range(20):  # socialization, listed under both conditions
            for cond in ("isr", "none"):
                rows.append(_row(condition=cond, seed=seed, phase="socialization", step=step,
                                 metric="lifts_per_episode", value=lift_learned if event == "boulder_lift" else 0.5,
                                 **keys))
                rows.append(_row(condition=cond, seed=seed, phase="socialization", step=step,
                                 metric="helped_goals_per_episode", value=1.5, **keys))
        for cond in ("isr", "none"):
            lifting = event == "boulder_lift" and cond == "isr"
            values = {"helped_goals_per_episode": 1.0 + 0.1 * rng.normal(),
                      "lifts_per_episode": (5.0 if lifting else 1.0) + 0.3 * rng.normal(),
                      "pointless_lifts_per_episode": (4.0 if lifting else 0.2) + 0.3 * rng.normal()}
            rows += [_row(condition=cond, seed=seed, phase="evaluation", metric=m, value=v, **keys)
                     for m, v in values.items()]
    return pd.DataFrame(rows)[[*COLUMNS, "caregiver.event"]]


def test_means_ends_tests_are_welch_and_paired_on_the_table_and_need_the_learners_to_have_learned(tmp_path):
    df = _means_ends_table()
    out = means_ends.outcomes(df)
    found = means_ends.tests(out)

    def arm(event, cond):
        return out[(out["caregiver.event"] == event) & (out.condition == cond)].sort_values("seed")

    a, b, c = arm("boulder_lift", "isr"), arm("helped_goal", "isr"), arm("boulder_lift", "none")
    direct = holm([welch("x", a.pointless_lifts_per_episode, b.pointless_lifts_per_episode),
                   welch("y", a.lifts_per_episode, b.lifts_per_episode),
                   paired("z", a.pointless_lifts_per_episode.to_numpy(), c.pointless_lifts_per_episode.to_numpy())])
    for got, want in zip(found, direct, strict=True):
        assert (got.effect, got.ci_low, got.ci_high, got.p_holm) == pytest.approx(
            (want.effect, want.ci_low, want.ci_high, want.p_holm))
    assert found[0].effect == pytest.approx(a.pointless_lifts_per_episode.mean() - b.pointless_lifts_per_episode.mean())
    blocks = means_ends.section("means-ends", df, tmp_path)
    assert "Verdict: supported" in " ".join(b.text for b in blocks if isinstance(b, Text))
    # A lift-paid learner that never learned to lift: no verdict is read.
    blocks = means_ends.section("means-ends", _means_ends_table(lift_learned=0.3), tmp_path)
    assert "Verdict: not measurable" in " ".join(b.text for b in blocks if isinstance(b, Text))
    verdicts = [r[-1] for b in blocks if isinstance(b, Table) and b.headers[0] == "prediction" for r in b.rows]
    assert verdicts == ["not measurable"] * 3


@pytest.mark.parametrize("preset, length", [("quick", 49_152), ("paper", 120_832)])
def test_weaning_schedules_give_every_condition_a_quarter_of_the_phase_in_expectation(preset, length):
    from internalize.social.presence import presence_probability

    exp = study("weaning").sweep(preset).points[0].experiment
    assert exp.autonomy_steps == length
    want = weaning.schedules(length)
    for c in exp.defined_conditions:
        kind = c.name.rsplit("-", 1)[0]
        p = c.presence
        assert {k: getattr(p, k) for k in want[kind]} == want[kind], c.name
        assert c.isr == c.internalizes == c.name.endswith("-isr")
        expected = float(np.mean(np.asarray(presence_probability(p, np.arange(0, length, 20)))) * length)
        assert expected == pytest.approx(length / 4, rel=0.01), (c.name, expected)


def _weaning_table(rate_scale: float = 1.0, none_level: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    steps = np.arange(1, 9) * 1024  # 8 rollouts of 1,024 steps: an 8,192-step phase
    for seed in SEEDS:
        for kind in weaning.SCHEDULES:
            for arm in ("none", "isr"):
                cond = f"{kind}-{arm}"
                for step in steps:
                    rows.append(_row(condition=cond, seed=seed, phase="autonomy", step=int(step),
                                     metric="presence_rate", value=0.25 * rate_scale))
                gain = 0.3 if (arm == "none" and kind != "abrupt") else 0.0
                level = none_level if arm == "none" else 1.0
                rows.append(_row(condition=cond, seed=seed, phase="evaluation", step=99, metric="caregiver_return",
                                 value=level + gain * none_level + 0.05 * rng.normal()))
    return pd.DataFrame(rows)[list(COLUMNS)]


def test_weaning_section_checks_exposure_then_tests_the_paired_gains(tmp_path):
    df = _weaning_table()
    exp = weaning.exposure(df)
    assert exp["ok"].all() and exp["realised"].tolist() == pytest.approx([0.25 * 8192] * 8)
    found = weaning.tests(df)
    ret = df[df.phase == "evaluation"].pivot_table(index="seed", columns="condition", values="value")
    d = ret["linear-none"] - ret["abrupt-none"]
    assert found[0].effect == pytest.approx(d.mean()) and found[0].verdict == "supported"
    interaction = d - (ret["linear-isr"] - ret["abrupt-isr"])
    assert found[3].effect == pytest.approx(interaction.mean()) and found[3].verdict == "supported"
    text = " ".join(b.text for b in weaning.section("weaning", df, tmp_path) if isinstance(b, Text))
    assert "Control passed" in text and "helps a learner without an ISR in 3 of 3 schedules" in text
    assert "Floor:" not in text
    text = " ".join(b.text for b in weaning.section("weaning", _weaning_table(none_level=0.0), tmp_path)
                    if isinstance(b, Text))
    assert "Floor: every learner without the ISR ended at about nothing" in text
    text = " ".join(b.text for b in weaning.section("weaning", _weaning_table(0.5), tmp_path) if isinstance(b, Text))
    assert "Control FAILED" in text and "Verdict: not measurable" in text


def test_a_study_table_without_socialization_rows_says_so_in_the_report(tmp_path):
    from internalize.analysis.report import SweepTable, write_report

    df = _means_ends_table()
    df = df[df.phase != "socialization"]
    files = write_report(tmp_path, {}, {}, {"means-ends": SweepTable(df, "lifts_per_episode", "evaluation",
                                                                      means_ends.section)})
    assert "Could not compute this section: no socialization rows of" in files.md.read_text()


P_KEY, Q_KEY = "caregiver[0].presence.rate", "caregiver[1].presence.rate"


def _conflicting_table(blue_at_1: float = 0.02, value_bias: float = 0.0) -> pd.DataFrame:
    """Values that are a compromise (share p + value_bias) and a majority-leaning ISR learner; the no-ISR learner
    keeps reaching goals (so its goal share is defined)."""
    rng = np.random.default_rng(3)
    rows = []
    for p, seed in itertools.product((1.0, 0.75, 0.5), SEEDS):
        keys = {P_KEY: p, Q_KEY: 1.0 - p}
        rows += [_row(condition=c, seed=seed, phase="socialization", step=s, metric="goals_per_episode", value=3.0,
                      **keys) for s in range(20) for c in ("isr", "none")]
        share = min(p + value_bias + 0.02 * rng.normal(), 1.0)
        green = 0.4 * share if p < 1 else 0.4
        blue = 0.4 * (1 - share) if p < 1 else blue_at_1
        for metric, v in (("isr_goal_green", green), ("isr_goal_blue", blue), ("isr_forward", 0.005 * rng.normal())):
            rows.append(_row(condition="isr", seed=seed, phase="goal_values", step=0, metric=metric, value=v, **keys))
        for cond, lean in (("isr", 0.12), ("none", 0.0)):
            g = min(p + (lean if p == 0.75 else 0.0) + 0.03 * rng.normal(), 1.0)
            rows += [_row(condition=cond, seed=seed, phase="evaluation", metric="green_goals_per_episode",
                          value=3.0 * g, **keys),
                     _row(condition=cond, seed=seed, phase="evaluation", metric="blue_goals_per_episode",
                          value=3.0 * (1 - g), **keys)]
    return pd.DataFrame(rows)[[*COLUMNS, P_KEY, Q_KEY]]


def test_conflicting_tests_read_the_value_and_goal_shares_of_the_table_and_the_controls_gate_them(tmp_path):
    df = _conflicting_table()
    vals = conflicting.values(df)
    shares = conflicting.goal_shares(df, vals)
    # The value share is green / (green + blue) per seed; the goal share green / (green + blue) goals.
    at75 = vals[vals[P_KEY] == 0.75].sort_values("seed")
    share = at75["isr_goal_green"] / (at75["isr_goal_green"] + at75["isr_goal_blue"])
    assert at75["value_share"].to_numpy() == pytest.approx(share.to_numpy())
    found = conflicting.tests(vals, shares)
    direct = equivalent("v", share, 0.75, 0.1)
    assert (found[0].effect, found[0].ci_low, found[0].ci_high) == pytest.approx(
        (direct.effect, direct.ci_low, direct.ci_high))
    isr75 = shares[(shares[P_KEY] == 0.75) & (shares.condition == "isr")].sort_values("seed")
    none75 = shares[(shares[P_KEY] == 0.75) & (shares.condition == "none")].sort_values("seed")
    assert found[2].effect == pytest.approx(isr75["goal_share"].mean() - 0.75)
    assert found[4].effect == pytest.approx((isr75["goal_share"].to_numpy() - none75["goal_share"].to_numpy()).mean())
    assert [t.verdict for t in found] == ["supported"] * 5
    text = " ".join(b.text for b in conflicting.section("conflicting", df, tmp_path) if isinstance(b, Text))
    assert "Verdict: supported; values: a presence-weighted compromise at both shares" in text
    # Values 0.3 off the presence share: the equivalence tests are contradicted, not "supported".
    found = conflicting.tests(*(lambda v: (v, conflicting.goal_shares(df, v)))(
        conflicting.values(_conflicting_table(value_bias=-0.3))))
    assert [t.verdict for t in found[:2]] == ["contradicted", "contradicted"]
    # The ISR valuing the never-paid blue goal at p = 1: a negative control fails and no verdict is read.
    blocks = conflicting.section("conflicting", _conflicting_table(blue_at_1=0.2), tmp_path)
    assert "Verdict: not measurable: a control failed" in " ".join(b.text for b in blocks if isinstance(b, Text))


def test_equivalence_is_tost_against_the_margin():
    rng = np.random.default_rng(4)
    close = 0.52 + 0.02 * rng.normal(size=10)
    t = equivalent("close", close, 0.5, 0.1)
    low = sps.ttest_1samp(close - 0.5, -0.1, alternative="greater").pvalue
    high = sps.ttest_1samp(close - 0.5, 0.1, alternative="less").pvalue
    assert t.p == pytest.approx(max(low, high)) and t.p < 0.001
    far = 0.8 + 0.02 * rng.normal(size=10)
    assert equivalent("far", far, 0.5, 0.1).p > 0.5 and equivalent("far", far, 0.5, 0.1).p_against < 0.001
    # Wide spread around the target: neither inside nor outside is shown.
    wide = holm([equivalent("wide", 0.5 + 0.3 * rng.normal(size=8), 0.5, 0.1)])[0]
    assert wide.verdict == "not shown"


def test_unreliable_false_praise_is_scaled_to_the_event_rate_and_its_realised_ratio_is_read_from_the_table(tmp_path):
    # The shipped file's false-praise rates are about 0.1 and 0.25 false payments per true one at a 15% event rate.
    rates = dict(study("unreliable").sweep("quick").spec.grid)["caregiver.false_reward"]
    assert sorted(set(rates) - {0.0}) == [unreliable.false_reward_rate(0.1), unreliable.false_reward_rate(0.25)]
    r = unreliable.EVENT_RATE
    assert unreliable.false_reward_rate(0.25) * (1 - r) / r == pytest.approx(0.25, abs=1e-3)
    rows = []
    for (noise, false), seed in itertools.product(((0.0, 0.0), (0.2, 0.0), (0.0, 0.0441)), SEEDS):
        keys = {"caregiver.noise": noise, "caregiver.false_reward": false}
        true = 1.2 + 0.01 * seed
        paid = true * (1.25 if false else 1.0)
        for step in range(20):
            rows += [_row(condition="isr", seed=seed, phase="socialization", step=step, metric=m, value=v, **keys)
                     for m, v in (("goals_per_episode", 3.0), ("social_return", true), ("paid_return", paid))]
        rows += [_row(condition="isr", seed=seed, phase="isr", metric="isr_heldout_true_corr", value=0.95, **keys),
                 _row(condition="isr", seed=seed, phase="isr", metric="paid_heldout_true_corr",
                      value=1.0 if (noise, false) == (0.0, 0.0) else 0.8 + 0.01 * seed, **keys)]
        rows += [_row(condition=c, seed=seed, phase="evaluation", metric="caregiver_return", value=v, **keys)
                 for c, v in (("isr", 1.0 + 0.01 * seed), ("none", 0.2))]
    df = pd.DataFrame(rows)[[*COLUMNS, "caregiver.noise", "caregiver.false_reward"]]
    ratio = unreliable.false_per_true(df)
    assert ratio.xs((0.0, 0.0441), level=[0, 1]).to_numpy() == pytest.approx([0.25] * 8)
    assert ratio.xs((0.2, 0.0), level=[0, 1]).isna().all() and ratio.xs((0.0, 0.0), level=[0, 1]).isna().all()
    _, tests, control = unreliable.alignment_tests(df)
    assert control and [t.label for t in tests] == ["noise 0, false 0.0441", "noise 0.2, false 0"]
    blocks = unreliable.section("unreliable", df, tmp_path)
    cells = next(b for b in blocks if isinstance(b, Table) and b.headers[0] == "cell" and "seeds that learned"
                 in b.headers)
    assert [row[3] for row in cells.rows] == ["–", "0.25 [0.25, 0.25]", "–"]
