"""The empathy index with non-zero near-miss rewards, and the empathy study's verdict logic.

What this pins:

* ``analysis.empathy.empathy_index`` is ``(mean R(peer_goal) - mean R(peer_near)) /
  (mean R(learner_goal) - mean R(learner_near))``: checked on hand-made rewards whose near misses are *not* 0
  (so dropping the near-miss subtraction changes the number), with a negative peer gap (a negative index), a
  baseline shared by every stimulus (index unchanged), and the ``min_own`` cut-off (NaN at or below it).
* The same on the probe's real stimuli, scored by hand-built reward models with a constant baseline and a
  bonus for "the learner is the actor" (the learner's near miss earns more than the peer's); the expected
  index follows from which stimuli each component rewards.
* ``analysis.empathy_section``: the instrument's controls gate the index predictions; a cell with fewer than 6
  seeds meeting the preconditions is *not measurable*; predictions are per-seed slopes and paired arms, one-sided,
  Holm-corrected; "no empathy" only by equivalence (TOST).
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


# ---- the study's section: controls, preconditions, predictions -----------------------------------------

CELLS = [(a, 0.0) for a in (0.0, 0.25, 0.5, 0.75, 1.0)] + [(1.0, i) for i in (0.25, 0.5, 0.75, 1.0)]
SEEDS = range(8)


def _study_table(index, unmet=(), controls=(1.0, 0.0), widths=(0.5, 1.0, 2.0)) -> pd.DataFrame:
    """A synthetic study table: ``index(model, arm, width, a, i, step, seed)``; ``unmet`` (model, a, i, seed)
    tuples miss a precondition; the learned controls read ``controls`` (positive, negative) in the main cell."""
    rows = []

    def add(model, width, arm, a, i, step, seed, value, met=1.0):
        cond = f"{model};width={width:g};arm={arm};appearance={a:g};identity={i:g}"
        key = dict(experiment="empathy", condition=cond, world="peer-rgb-allocentric", seed=seed, phase="empathy",
                   step=step, episode=np.nan)
        metrics = {"empathy_index": value, "precondition_met": met, "own_gap": 0.3, "peer_gap": 0.3 * value,
                   "vicarious_gap": 0.01 * (seed + 1), "self_other_distance": a + (1 - i) * 0.1,
                   "event_alignment": 0.9, "linear_cka": 0.8, "input_distance": a + (1 - i), "own_gap_ci_low": 0.2}
        rows.extend(key | dict(metric=m, value=float(v)) for m, v in metrics.items())

    rng = np.random.default_rng(0)
    for s in SEEDS:
        for a, i in CELLS:
            for w in widths:
                for step in ((1000, 2000) if w == 1.0 else (2000,)):
                    for arm in (("exposed", "naive") if w == 1.0 else ("exposed",)):
                        met = 0.0 if ("isr", a, i, s) in unmet else 1.0
                        add("isr", w, arm, a, i, step, s, index("isr", arm, w, a, i, step, s) + rng.normal(0, .01),
                            met)
            for model, level in zip(("positive-control", "negative-control"), controls, strict=True):
                add(model, 1.0, "exposed", a, i, 2000, s, level + rng.normal(0, 0.02))
            add("oracle-own", 0, "exposed", a, i, 0, s, 1.0 if i == 1.0 else 0.0)
            add("oracle-any", 0, "exposed", a, i, 0, s, 1.0)
    return pd.DataFrame(rows)


def _index(model, arm, width, a, i, step, seed):
    # Falls with appearance (distance), rises with the marker, rises with capacity, higher early and when naive.
    return 0.6 - 0.4 * a + 0.3 * i + 0.05 * np.log2(width) + (0.1 if step == 1000 else 0) + (
        0.1 if arm == "naive" else 0) + 0.01 * seed


def _blocks(df):
    blocks = S.empathy_section(df, Path(tempfile.mkdtemp()))
    text = " ".join(b.text for b in blocks if isinstance(b, S.Text))
    tables = [b for b in blocks if isinstance(b, S.Table)]
    return text, tables


def test_predictions_read_per_seed_slopes_and_paired_arms_with_holm_and_the_right_verdicts():
    df = _study_table(_index)
    w = S.frame(df)
    preds = {p.split(" ")[0]: t for p, _, t in S.predictions(w, 1.0)}
    # Appearance: per-seed slopes of the index on the appearance level, fitted directly.
    isr = w[(w["probe_model"] == "isr") & (w["arm"] == "exposed") & (w["width"] == 1.0) & w["final"]]
    slopes = [np.polyfit(g["appearance"], g["index"], 1)[0] for _, g in isr[isr["identity"] == 0].groupby("seed")]
    assert preds["3."].effect == pytest.approx(np.mean(slopes)) and preds["3."].effect < -0.3
    assert preds["3."].p == pytest.approx(sps.ttest_1samp(slopes, 0.0, alternative="less").pvalue)
    for key in ("3.", "4.", "5.", "7a.", "7b."):
        assert preds[key].verdict == "supported", (key, preds[key])
        assert preds[key].p_holm >= preds[key].p
    assert preds["6."] is None  # no world model: not testable here
    text, tables = _blocks(df)
    assert "Instrument controls passed" in text
    pred_rows = {r[0].split(" ")[0]: r for r in tables[-1].rows}
    assert pred_rows["3."][-1] == "supported" and pred_rows["6."][-1] == "not testable here"


def test_a_learned_control_that_misreads_voids_the_index_predictions():
    for controls in ((0.3, 0.0), (1.0, 0.6)):
        text, tables = _blocks(_study_table(_index, controls=controls))
        assert "Instrument controls FAILED" in text and "FAILED." in text
        rows = {r[0].split(" ")[0]: r for r in tables[-1].rows}
        for key in ("2.", "3.", "4.", "5.", "7a.", "7b."):
            assert rows[key][-1] == "not measurable (controls failed)", rows[key]
        assert rows["1."][-1] == "supported"  # a latent reading, not the index


def test_a_cell_where_fewer_than_6_seeds_meet_the_preconditions_is_not_measurable():
    unmet = {("isr", 0.5, 0.0, s) for s in (0, 1, 2)}
    _, tables = _blocks(_study_table(_index, unmet=unmet))
    table = next(t for t in tables if "appearance" in t.headers)
    cells = {(r[0], r[1], r[2], r[3]): r for r in table.rows}
    row = cells[("isr", "exposed", "0.5", "0")]
    assert row[5] == "not measurable (5 of 8 seeds)" and row[6] == "5/8"
    # A measurable cell shows the mean over its seeds and their bootstrap CI, recomputed here from the raw rows.
    df = _study_table(_index, unmet=unmet)
    raw = df[(df["condition"] == "isr;width=1;arm=exposed;appearance=0.25;identity=0") & (df["step"] == 2000)
             & (df["metric"] == "empathy_index")]["value"].to_numpy()
    shown = cells[("isr", "exposed", "0.25", "0")][5]
    assert shown.split(" ")[0] == S.fmt(raw.mean()), (shown, raw.mean())
    low, high = (float(x) for x in shown[shown.index("[") + 1:-1].split(", "))
    assert low < raw.mean() < high and high - low < 4 * raw.std(ddof=1)


def test_no_empathy_is_claimed_only_by_equivalence():
    flat = lambda *args: 0.01 * (args[-1] % 3 - 1)  # noqa: E731 - an index of 0 +- 0.01 everywhere
    text, _ = _blocks(_study_table(flat))
    assert "TOST" in text and "equivalent to 0" in text
    text, _ = _blocks(_study_table(_index))
    assert "equivalent to 0" not in text
