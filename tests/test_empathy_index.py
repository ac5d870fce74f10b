"""The empathy index with non-zero near-miss rewards, and the empathy study's verdict logic.

What this pins:

* ``analysis.empathy.empathy_index`` is ``(mean R(peer_goal) - mean R(peer_near)) /
  (mean R(learner_goal) - mean R(learner_near))``: checked on hand-made rewards whose near misses are *not* 0
  (so dropping the near-miss subtraction changes the number), with a negative peer gap (a negative index), a
  baseline shared by every stimulus (index unchanged), and the ``min_own`` cut-off (NaN at or below it).
* The same on the probe's real stimuli, scored by hand-built reward models with a constant baseline and a
  bonus for "the learner is the actor" (the learner's near miss earns more than the peer's); the expected
  index follows from which stimuli each component rewards.
* ``analysis.empathy_section``'s verdicts: *supported* (predicted sign, two-sided paired p < 0.05),
  *not supported (opposite effect)*, *not supported* (either sign, p >= 0.05, including just past the 0.05
  boundary), *undetermined* (fewer than two seeds with a defined index); pairs are matched by seed, not row
  order. Expected p-values come from ``scipy.stats.ttest_rel``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from internalize.analysis import empathy_section as S
from internalize.empathy import probe as E
from internalize.worlds.peer import SELF_CHANNEL, make_params


def _rewards(lg, ln, pg, pn) -> dict[str, np.ndarray]:
    return {"learner_goal": np.asarray(lg, float), "learner_near": np.asarray(ln, float),
            "peer_goal": np.asarray(pg, float), "peer_near": np.asarray(pn, float)}


# ---- the index on hand-made rewards ---------------------------------------------------------------

def test_index_subtracts_non_zero_near_misses():
    # Means: learner goal 1.0, learner near 0.4, peer goal 0.6, peer near 0.4.
    # own = 1.0 - 0.4 = 0.6, other = 0.6 - 0.4 = 0.2, index = 0.2 / 0.6 = 1/3.
    # (Without the near-miss subtraction it would be 0.6 / 1.0 = 0.6.)
    r = _rewards([0.9, 1.1, 1.0], [0.3, 0.5, 0.4], [0.7, 0.5, 0.6], [0.45, 0.35, 0.4])
    s = E.empathy_index(r)
    assert s.own == pytest.approx(0.6, abs=1e-12), f"own gap {s.own}, expected 0.6"
    assert s.other == pytest.approx(0.2, abs=1e-12), f"peer gap {s.other}, expected 0.2"
    assert s.index == pytest.approx(1 / 3, rel=1e-12), f"index {s.index}, expected 1/3"
    assert s.means == {"learner_goal": pytest.approx(1.0), "learner_near": pytest.approx(0.4),
                       "peer_goal": pytest.approx(0.6), "peer_near": pytest.approx(0.4)}


def test_negative_peer_gap_gives_a_negative_index():
    # The model rewards the peer's near miss (0.5) above the peer's goal event (0.2): other = -0.3;
    # own = 0.9 - 0.3 = 0.6; index = -0.3 / 0.6 = -0.5.
    s = E.empathy_index(_rewards([0.8, 1.0], [0.2, 0.4], [0.1, 0.3], [0.5, 0.5]))
    assert s.other == pytest.approx(-0.3, abs=1e-12) and s.own == pytest.approx(0.6, abs=1e-12), (s.own, s.other)
    assert s.index == pytest.approx(-0.5, rel=1e-12), f"index {s.index}, expected -0.5"


def test_near_miss_above_the_goal_for_the_learner_leaves_the_index_undefined():
    # own = 0.5 - 0.7 = -0.2 < 0: the model does not reward the learner's own goal event above its near miss.
    s = E.empathy_index(_rewards([0.5], [0.7], [0.9], [0.1]))
    assert s.own == pytest.approx(-0.2, abs=1e-12) and s.other == pytest.approx(0.8, abs=1e-12)
    assert np.isnan(s.index), f"index {s.index} should be NaN for a negative own gap"


def test_min_own_threshold_is_strict():
    # own = 0.75 - 0.5 = 0.25 exactly (binary fractions); other = 0.625 - 0.5 = 0.125; index 0.5 when defined.
    r = _rewards([0.75], [0.5], [0.625], [0.5])
    assert np.isnan(E.empathy_index(r, min_own=0.25).index), "own == min_own must give NaN (own > min_own)"
    assert E.empathy_index(r, min_own=0.2).index == 0.5
    assert E.empathy_index(r).index == 0.5  # default min_own 1e-3


@pytest.mark.parametrize("shift", [-2.0, 0.37, 5.0])
def test_a_baseline_shared_by_every_stimulus_does_not_move_the_index(shift):
    # Adding the same constant to all four kinds cancels in both gaps: index stays 0.2 / 0.6 = 1/3. (Without the
    # near-miss subtraction it would be (0.6 + shift) / (1.0 + shift), which moves with the shift.)
    base = _rewards([0.9, 1.1, 1.0], [0.3, 0.5, 0.4], [0.7, 0.5, 0.6], [0.45, 0.35, 0.4])
    s = E.empathy_index({k: v + shift for k, v in base.items()})
    assert s.index == pytest.approx(1 / 3, rel=1e-9), f"shift {shift}: index {s.index}, expected 1/3"


# ---- the index on the probe's stimuli, with hand-built models ---------------------------------------

@pytest.fixture(scope="module")
def stimuli():
    return E.build_stimuli(make_params(2, similarity="identical", view="egocentric"), jax.random.key(1), 64)


def _learner_is_actor(obs, mark):
    """(n,) float32: 1 where the marked actor is the learner (its cell carries the self channel)."""
    return jnp.any(mark & (obs[..., SELF_CHANNEL] == 1), axis=(1, 2)).astype(jnp.float32)


def test_index_on_stimuli_with_baseline_and_a_learner_actor_bonus(stimuli):
    own_goal, any_goal = E.own_goal_model("egocentric"), E.any_agent_goal_model("egocentric")

    def model(obs, action, mark):
        # 0.3 everywhere + 0.5 for the learner's goal event + 0.2 for anyone's goal event + 0.25 whenever the
        # learner is the actor (goal or near miss).
        return (0.3 + 0.5 * own_goal(obs, action, mark) + 0.2 * any_goal(obs, action, mark)
                + 0.25 * _learner_is_actor(obs, mark))

    s = E.empathy_index(E.score(model, stimuli))
    # By hand: learner_goal = 0.3 + 0.5 + 0.2 + 0.25 = 1.25; learner_near = 0.3 + 0.25 = 0.55;
    # peer_goal = 0.3 + 0.2 = 0.5; peer_near = 0.3. own = 0.7, other = 0.2, index = 2/7.
    # (Dropping the near misses would give 0.5 / 1.25 = 0.4.)
    want = {"learner_goal": 1.25, "learner_near": 0.55, "peer_goal": 0.5, "peer_near": 0.3}
    for k, v in want.items():
        assert s.means[k] == pytest.approx(v, abs=1e-6), f"{k}: mean reward {s.means[k]}, expected {v}"
    assert s.own == pytest.approx(0.7, abs=1e-6) and s.other == pytest.approx(0.2, abs=1e-6), (s.own, s.other)
    assert s.index == pytest.approx(2 / 7, abs=1e-6), f"index {s.index}, expected 2/7 = {2 / 7:.6f}"


def test_index_on_stimuli_with_a_peer_near_miss_reward(stimuli):
    any_goal = E.any_agent_goal_model("egocentric")

    def model(obs, action, mark):
        # 1 for anyone's goal event, plus 0.6 whenever the *peer* is the actor (goal or near miss): the peer's
        # gap is 1.6 - 0.6 = 1.0, the learner's 1 - 0 = 1, so the index is 1. Without the near-miss subtraction
        # it would be 1.6.
        return any_goal(obs, action, mark) + 0.6 * (1.0 - _learner_is_actor(obs, mark))

    s = E.empathy_index(E.score(model, stimuli))
    assert s.means["peer_near"] == pytest.approx(0.6, abs=1e-6) and s.means["peer_goal"] == pytest.approx(1.6, abs=1e-6)
    assert s.index == pytest.approx(1.0, abs=1e-6), f"index {s.index}, expected 1"


# ---- verdicts -----------------------------------------------------------------------------------------

def _pairs_with_t(t_target: float, mean_diff: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Three pairs whose differences are m + s * (-1, 0, 1): sd = s, t = m / (s / sqrt(3)), so s = m sqrt(3) / t."""
    s = abs(mean_diff) * np.sqrt(3) / t_target
    b = np.array([0.4, 0.55, 0.5])
    return b + mean_diff + s * np.array([-1.0, 0.0, 1.0]), b


def _check_row(row, a, b, seeds, verdict):
    ref = sps.ttest_rel(a, b)
    diff = float(np.mean(a) - np.mean(b))
    assert row[-1] == verdict, f"verdict {row[-1]!r}, expected {verdict!r} (diff {diff:+.4f}, p {ref.pvalue:.4g})"
    assert row[2] == S.fmt(diff), (row[2], diff)
    assert row[3] == f"t({len(seeds) - 1}) = {S.fmt(float(ref.statistic))}", row[3]
    assert row[4] == S.fmt(float(ref.pvalue)), (row[4], ref.pvalue)
    assert row[5] == str(len(seeds)) and row[6] == S.seed_list(seeds)


def test_verdict_supported_when_the_predicted_sign_is_significant():
    a = np.array([0.50, 0.60, 0.70, 0.55, 0.65])
    b = a - np.array([0.10, 0.12, 0.09, 0.11, 0.10])
    assert sps.ttest_rel(a, b).pvalue < 0.001
    _check_row(S._verdict("p", "x - y", a, b, [0, 1, 2, 3, 4]), a, b, [0, 1, 2, 3, 4], "supported")


def test_verdict_opposite_effect_when_the_other_sign_is_significant():
    a = np.array([0.50, 0.60, 0.70, 0.55, 0.65])
    b = a + np.array([0.10, 0.12, 0.09, 0.11, 0.10])
    _check_row(S._verdict("p", "x - y", a, b, [3, 5, 7, 9, 11]), a, b, [3, 5, 7, 9, 11],
               "not supported (opposite effect)")


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_verdict_not_supported_when_not_significant(sign):
    a = np.array([0.50, 0.60, 0.70, 0.55])
    b = a - sign * np.array([0.20, -0.15, 0.05, 0.02])  # mean diff +-0.03, large spread: p ~ 0.7
    assert sps.ttest_rel(a, b).pvalue > 0.5
    _check_row(S._verdict("p", "x - y", a, b, [0, 1, 2, 3]), a, b, [0, 1, 2, 3], "not supported")


@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize("factor, verdicts", [
    (1.02, ("supported", "not supported (opposite effect)")),  # |t| just above the two-sided 5% critical value
    (0.98, ("not supported", "not supported")),                # just below: two-sided p just above 0.05
])
def test_verdict_threshold_is_a_two_sided_p_of_0_05(sign, factor, verdicts):
    t_crit = sps.t.isf(0.025, 2)  # df = 2 for three pairs
    a, b = _pairs_with_t(factor * t_crit, mean_diff=sign * 0.1)
    p = sps.ttest_rel(a, b).pvalue
    assert (p < 0.05) == (factor > 1) and 0.04 < p < 0.06, p  # one-sided p would be ~0.025 either way
    _check_row(S._verdict("p", "x - y", a, b, [0, 1, 2]), a, b, [0, 1, 2], verdicts[0 if sign > 0 else 1])


def test_verdict_undetermined_below_two_seeds_and_pairs_matched_by_seed():
    def frame(seeds: list, values: list) -> pd.DataFrame:
        return pd.DataFrame({"seed": seeds, "value": values})

    # Only seed 0 has a defined index on both sides: one pair, undetermined.
    a, b, seeds = S._paired(frame([0, 1, 2], [0.5, np.nan, np.nan]), frame([0, 1, 2], [0.4, 0.3, np.nan]))
    assert seeds == [0] and a.tolist() == [0.5] and b.tolist() == [0.4]
    row = S._verdict("p", "x - y", a, b, seeds)
    assert row[-1].startswith("undetermined") and row[2:5] == ("-", "-", "-") and row[5] == "1", row
    assert S._verdict("p", "x - y", np.array([]), np.array([]), [])[-1].startswith("undetermined")
    # Rows in different orders are paired by seed: differences 0.5, 1.0, 1.5 (seeds 0, 1, 2); t by scipy.
    a, b, seeds = S._paired(frame([2, 0, 1], [3.5, 1.0, 2.0]), frame([0, 1, 2], [0.5, 1.0, 2.0]))
    order = np.argsort(seeds)
    assert (a - b)[order].tolist() == [0.5, 1.0, 1.5], (seeds, a, b)
    row = S._verdict("p", "x - y", a, b, seeds)
    _check_row(row, np.array([1.0, 2.0, 3.5]), np.array([0.5, 1.0, 2.0]), sorted(seeds), row[-1])
    p = sps.ttest_rel([1.0, 2.0, 3.5], [0.5, 1.0, 2.0]).pvalue
    assert row[-1] == ("supported" if p < 0.05 else "not supported"), (row[-1], p)


def _prediction_table(unmet: dict) -> tuple[pd.DataFrame, dict]:
    seeds = range(8)
    rng = np.random.default_rng(0)
    base = rng.normal(0.5, 0.2, 8)
    cells = {("identical", "isr-width-1"): base + 0.3 + rng.normal(0, 0.02, 8),  # more similar: higher
             ("kind", "isr-width-1"): base + rng.normal(0, 0.02, 8),
             ("identical", "isr-width-0.5"): base + 0.5 + rng.normal(0, 0.02, 8)}  # smaller ISR: higher (opposite)
    cells[("kind", "isr-width-1")][5] = np.nan  # one seed's index undefined: that pair is dropped
    rows = []
    for (sim, cond), v in cells.items():
        for i, s in enumerate(seeds):
            key = dict(experiment="e", condition=cond, world=f"peer-{sim}-egocentric", seed=s, phase="empathy",
                       step=0, episode=np.nan)
            rows += [key | dict(metric="empathy_index", value=float(v[i])),
                     key | dict(metric="precondition_met", value=0.0 if s in unmet.get((sim, cond), ()) else 1.0)]
    return pd.DataFrame(rows), cells


def test_predictions_compare_the_right_arms_with_the_right_sign_on_the_seeds_that_meet_the_preconditions():
    # identical vs kind at width 1 (prediction 1) and width 1 vs width 0.5 for the identical peer (prediction 2);
    # seed 7 of the identical width-1 ISR misses a precondition: its index is not read.
    df, cells = _prediction_table({("identical", "isr-width-1"): (7,)})
    d = S._index_frame(df)
    preds = {r[0][:2]: r for r in S._predictions(d, df, S._main_width(d))}
    sim, cap = preds["1."], preds["2."]
    kept = [0, 1, 2, 3, 4, 6]
    a1, b1 = cells[("identical", "isr-width-1")][kept], cells[("kind", "isr-width-1")][kept]
    _check_row(sim, a1, b1, kept, "supported")
    assert sim[1] == "identical - kind, egocentric"
    kept = list(range(7))
    a2, b2 = cells[("identical", "isr-width-1")][kept], cells[("identical", "isr-width-0.5")][kept]
    _check_row(cap, a2, b2, kept, "not supported (opposite effect)")
    assert cap[1] == "width 1 - 0.5, identical peer, egocentric"
    # Three more kind seeds miss a precondition: 3 pairs left, fewer than 6: not measurable, never a number.
    df, _ = _prediction_table({("identical", "isr-width-1"): (7,), ("kind", "isr-width-1"): (0, 1, 2)})
    d = S._index_frame(df)
    sim = {r[0][:2]: r for r in S._predictions(d, df, S._main_width(d))}["1."]
    assert sim[-1].startswith("not measurable") and sim[2:5] == ("-", "-", "-") and sim[5] == "3"
    table = next(b for b in S.empathy_section(df, Path(tempfile.mkdtemp())) if isinstance(b, S.Table))
    kind = next(r for r in table.rows if r[0] == "peer-kind-egocentric")
    assert kind[2].startswith("not measurable (5 of 8 seeds") and kind[4] == "5/8"


def test_the_own_gaps_bootstrap_bound_resamples_the_matched_stimuli():
    from internalize.empathy.unit import own_gap_ci_low

    rng = np.random.default_rng(5)
    near = rng.normal(0.0, 0.05, 200)
    clear = {"learner_goal": near + 0.3 + rng.normal(0, 0.05, 200), "learner_near": near}
    d = clear["learner_goal"] - clear["learner_near"]
    low = own_gap_ci_low(clear, seed=1)
    # The percentile bootstrap's lower end is close to the normal one, mean - 1.96 se, and reproducible.
    assert low == pytest.approx(d.mean() - 1.96 * d.std(ddof=1) / np.sqrt(d.size), abs=0.005)
    assert own_gap_ci_low(clear, seed=1) == low
    # No gap: the bound lies below 0 (the precondition fails).
    assert own_gap_ci_low({"learner_goal": near + rng.normal(0, 0.05, 200), "learner_near": near}, seed=1) < 0


def _with_positive_control(df: pd.DataFrame, level: float) -> pd.DataFrame:
    rng = np.random.default_rng(6)
    rows = []
    for s in range(8):
        key = dict(experiment="e", condition="positive-control", world="peer-identical-egocentric", seed=s,
                   phase="empathy", step=0, episode=np.nan)
        rows += [key | dict(metric="empathy_index", value=level + rng.normal(0, 0.03)),
                 key | dict(metric="precondition_met", value=1.0)]
    return pd.concat([df, pd.DataFrame(rows)], ignore_index=True)


def test_a_positive_control_that_reads_low_voids_the_index_predictions():
    df, _ = _prediction_table({})
    text = lambda blocks: " ".join(b.text for b in blocks if isinstance(b, S.Text))  # noqa: E731
    preds = lambda blocks: [r for b in blocks if isinstance(b, S.Table) and b.headers[0] == "prediction"  # noqa: E731
                            for r in b.rows]
    good = S.empathy_section(_with_positive_control(df, 1.0), Path(tempfile.mkdtemp()))
    assert "Learned positive control passed" in text(good)
    assert [r[-1] for r in preds(good)][:2] == ["supported", "not supported (opposite effect)"]
    low = _with_positive_control(df, 0.3)
    ok, sentence = S.positive_control(S._index_frame(low))
    assert ok is False and "FAILED" in sentence and "n = 8" in sentence
    bad = S.empathy_section(low, Path(tempfile.mkdtemp()))
    assert all(r[-1] == "not measurable (the positive control failed)" for r in preds(bad) if r[0][:2] in ("1.", "2."))
    assert S.positive_control(S._index_frame(df))[0] is None
