"""Caregivers and conditions as data, end to end: TOML experiments whose caregiver fades or pays unreliably, two
caregivers paying for different events on their own schedules, and a condition of the file's own, run through
the runner; the table's presence and paid-reward metrics must match
the configured schedule and rates within sampling error.

Budgets are tiny (16 envs x 64 steps per rollout, 20-step episodes: about 50 presence draws per rollout), so
every check compares with the *configured* value and a tolerance of four standard errors of what was sampled.
"""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from internalize.experiments.config_file import load_experiment
from internalize.experiments.runner import run_experiment
from internalize.experiments.spec import Experiment

ROLLOUT = 16 * 64  # env steps per rollout (n_envs x n_steps)
EPISODE = 20  # navigation's episode length: presence is drawn once per episode


def _toml(tmp_path: Path, name: str, caregiver: str, extra: str = "", conditions: str = '["caregiver", "none"]',
          socialization_rollouts: int = 24, autonomy_rollouts: int = 8, world: str = "blocks-1",
          learning_rate: float = 1e-3) -> Path:
    text = textwrap.dedent(f"""
        [experiment]
        name = "{name}"
        seeds = [3]
        socialization_world = "{world}"
        autonomy_worlds = ["{world}"]
        conditions = {conditions}
        socialization_steps = {socialization_rollouts * ROLLOUT}
        autonomy_steps = {autonomy_rollouts * ROLLOUT}
        evaluation_episodes = 4
        chunk_rollouts = 8

        [learner]
        n_envs = 16
        n_steps = 64
        batch_size = 256
        n_epochs = 2
        learning_rate = {learning_rate}
    """) + textwrap.dedent(caregiver) + textwrap.dedent(extra)
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def _run(path: Path, out: Path) -> pd.DataFrame:
    return run_experiment(load_experiment(path), out, progress=False, log=lambda _: None)


def _series(df: pd.DataFrame, phase: str, metric: str, condition: str) -> pd.DataFrame:
    rows = df[(df.phase == phase) & (df.metric == metric) & (df.condition == condition)]
    return rows.sort_values("step")[["step", "value"]].reset_index(drop=True)


def _check_rates(observed: np.ndarray, expected: np.ndarray) -> None:
    """Per-rollout presence rates against the schedule: overall within 4 standard errors of the episode draws,
    and the first and last quarters of the phase each within 4 of theirs."""
    draws_per_rollout = ROLLOUT / EPISODE
    q = len(observed) // 4
    for part in (slice(None), slice(0, q), slice(-q, None)):
        o, e = observed[part], expected[part]
        se = math.sqrt(max(np.mean(e * (1 - e)), 0.02) / (draws_per_rollout * len(e)))
        assert abs(o.mean() - e.mean()) < 4 * se + 0.02, (part, o.mean(), e.mean(), se)


@pytest.mark.expensive
def test_linearly_fading_caregiver_and_a_fading_condition_of_the_files_own(tmp_path):
    path = _toml(tmp_path, "fading", """
        [caregiver.presence]
        kind = "linear"
        p0 = 1.0
        p1 = 0.0
        end = 24576
    """, extra="""
        [conditions.leaving]
        presence = { kind = "linear", p0 = 1.0, p1 = 0.0, end = 8192 }
        isr = true

        [conditions.weaned]
        presence = { kind = "linear", p0 = 1.0, p1 = 0.0, end = 8192 }
        isr = true
        internalizes = true
    """, conditions='["caregiver", "none", "leaving", "weaned"]', autonomy_rollouts=12)
    df = _run(path, tmp_path / "out")

    soc = _series(df, "socialization", "presence_rate", "caregiver")
    # Rollout r covers steps [r * ROLLOUT, (r + 1) * ROLLOUT); an episode's draw uses its first step.
    mid = soc.step.to_numpy() - ROLLOUT / 2
    _check_rates(soc.value.to_numpy(), np.clip(1 - mid / 24576, 0, 1))

    # The condition's own schedule counts from the start of the autonomous phase (not from step 0).
    aut = _series(df, "autonomy", "presence_rate", "leaving")
    start = 24 * ROLLOUT
    mid = aut.step.to_numpy() - start - ROLLOUT / 2
    _check_rates(aut.value.to_numpy(), np.clip(1 - mid / 8192, 0, 1))
    assert (_series(df, "autonomy", "presence_rate", "caregiver").value == 1).all()
    assert (_series(df, "autonomy", "presence_rate", "none").value == 0).all()
    # The named conditions ran together in one unit; the fading one alone, in a unit of its own.
    assert set(df[df.phase == "autonomy"].condition) == {"caregiver", "none", "leaving", "weaned"}
    units = {p.stem for p in (tmp_path / "out" / "fading" / "units").glob("*.parquet")}
    assert {"autonomy-blocks-1", "autonomy-blocks-1-leaving", "autonomy-blocks-1-weaned"} <= units, units
    # The weaned learner's ISR keeps training exactly in the rollouts a caregiver came to; the other ISR does not.
    weaned = _series(df, "autonomy", "presence_rate", "weaned").merge(
        _series(df, "autonomy", "isr_loss", "weaned"), on="step", how="left", suffixes=("_p", "_loss"))
    there = weaned.value_p > 0
    assert there.sum() >= 3 and (~there).sum() >= 3, weaned
    assert np.isfinite(weaned.value_loss[there]).all() and weaned.value_loss[~there].isna().all(), weaned
    assert _series(df, "autonomy", "isr_loss", "leaving").empty
    # Nothing is paid while the caregiver is away, and the ISR's R_i reaches the learner.
    assert (_series(df, "autonomy", "paid_return", "none").value == 0).all()
    assert _series(df, "autonomy", "internal_return", "leaving").value.abs().sum() > 0


@pytest.mark.expensive
def test_noisy_inconsistent_caregiver_pays_three_quarters_of_the_deserved_rewards(tmp_path):
    # A small room, where an untrained learner finds the goal in about a third of its episodes, and a learning
    # rate too small to change that (a learner would soon stop walking, at 0.045 per step): many events.
    path = _toml(tmp_path, "unreliable", """
        [caregiver]
        noise = 0.1
        miss = 0.25
    """, extra="""
        [worlds.room]
        map = '''
        #######
        #.....#
        #.....#
        #######
        #######
        #######
        #######
        '''
    """, conditions='["none"]', autonomy_rollouts=1, world="room", learning_rate=1e-7)
    df = _run(path, tmp_path / "out")

    soc = df[(df.phase == "socialization") & (df.condition == "none")]
    wide = soc.pivot_table(index="step", columns="metric", values="value")
    # Per-episode means x episodes = the rollout's sums; social_return is the noise-free 0.4 per deserved event.
    deserved = float((wide["social_return"] * wide["episodes"]).sum()) / 0.4
    paid = float((wide["paid_return"] * wide["episodes"]).sum())
    assert deserved > 300, f"too few goals to measure a rate ({deserved:.0f})"
    ratio = paid / (0.4 * deserved)
    # Binomial spread of the misses plus the payments' noise (0.1 / 0.4 per payment).
    se = math.sqrt(0.75 * 0.25 / deserved + (0.1 / 0.4) ** 2 * 0.75 / deserved)
    assert abs(ratio - 0.75) < 4 * se, (ratio, se, deserved)
    # The hidden true reward is untouched: social_return is a whole number of 0.4 rewards per episode.
    assert np.allclose(wide["social_return"] / 0.4 * wide["episodes"],
                       np.round(wide["social_return"] / 0.4 * wide["episodes"]), atol=1e-3)


@pytest.mark.expensive
def test_two_caregivers_in_the_prosocial_world_pay_for_their_own_events_on_their_own_schedules(tmp_path):
    # One pays 0.4 whenever the helped agent reaches its goal and is always there; the other pays 0.1 for each
    # boulder lift and comes to half the episodes. A learning rate too small to change the random policy keeps
    # many lifts in every rollout.
    path = _toml(tmp_path, "two", """
        [[caregiver]]
        event = "helped_goal"

        [[caregiver]]
        event = "boulder_lift"
        reward = 0.1
        presence = { kind = "random", rate = 0.5 }

        [conditions.keep-first]
        caregivers = [{ kind = "always" }, { kind = "never" }]
    """, world="prosocial", socialization_rollouts=12, autonomy_rollouts=4, learning_rate=1e-7,
        conditions='["caregiver", "none", "keep-first"]')
    exp = load_experiment(path)
    assert [(c.event, c.reward, c.presence.kind) for c in exp.caregiver] == [
        ("helped_goal", 0.4, "always"), ("boulder_lift", 0.1, "random")]
    # A manifest's config gives the same experiment back (``internalize watch`` rebuilds it from there).
    assert Experiment.from_dict(json.loads(json.dumps(exp.to_dict(), default=str))) == exp
    df = _run(path, tmp_path / "out")

    def sums(phase: str, condition: str) -> pd.DataFrame:
        rows = df[(df.phase == phase) & (df.condition == condition)]
        wide = rows.pivot_table(index="step", columns="metric", values="value")
        # Per-episode means x episodes = the rollout's sums.
        return wide[["social_return", "paid_return", "goals_per_episode"]].multiply(wide["episodes"], axis=0).sum()

    soc = sums("socialization", "none")
    helped_pay = 0.4 * soc["goals_per_episode"]  # the first caregiver is always there: paid = deserved
    true_lifts, paid_lifts = soc["social_return"] - helped_pay, soc["paid_return"] - helped_pay
    lifts = true_lifts / 0.1
    assert soc["goals_per_episode"] >= 5 and lifts > 60, (soc, lifts)
    assert abs(lifts - round(lifts)) < 1e-3 * lifts, "the true R_s holds whole 0.1 lift rewards"
    # Half of them are paid. Presence is drawn per episode, so with m lifts per episode (about Poisson) the
    # share paid has variance 0.25 (1 + 1/m) / episodes; 4 standard errors.
    episodes = df[(df.phase == "socialization") & (df.condition == "none") & (df.metric == "episodes")].value.sum()
    se = math.sqrt(0.25 * (1 + episodes / lifts) / episodes)
    assert abs(paid_lifts / true_lifts - 0.5) < 4 * se, (paid_lifts / true_lifts, se)
    # In the autonomous phase both follow the condition: all paid while they stay, nothing once they leave.
    stay, leave = sums("autonomy", "caregiver"), sums("autonomy", "none")
    assert stay["social_return"] > 0 and abs(stay["paid_return"] - stay["social_return"]) < 1e-3
    assert leave["paid_return"] == 0 and leave["social_return"] > 0
    # Each caregiver's own payments and presence: they add up to the totals, the first (always there) was present
    # on every step and paid 0.4 per helped goal, the second came to half the episodes.
    rows = df[(df.phase == "socialization") & (df.condition == "none")]
    wide = rows.pivot_table(index="step", columns="metric", values="value")
    per_episode = ["paid_return/caregiver[0]", "paid_return/caregiver[1]", "presence_return/caregiver[0]",
                   "presence_return/caregiver[1]", "paid_return", "presence_return"]
    total = wide[per_episode].multiply(wide["episodes"], axis=0).sum()
    assert total["paid_return/caregiver[0]"] == pytest.approx(0.4 * soc["goals_per_episode"], rel=1e-4)
    assert total["paid_return/caregiver[1]"] == pytest.approx(paid_lifts, rel=1e-3, abs=1e-3)
    assert total["presence_return/caregiver[0]"] == pytest.approx(total["presence_return"])
    share = total["presence_return/caregiver[1]"] / total["presence_return/caregiver[0]"]
    assert abs(share - 0.5) < 4 * math.sqrt(0.25 / episodes), share
    assert wide["presence_rate/caregiver[0]"].eq(1.0).all()
    rate = wide["presence_rate/caregiver[1]"].mean()
    assert abs(rate - 0.5) < 4 * math.sqrt(0.25 / episodes), rate
    # A condition of the file's own keeps the first caregiver and lets the second go: each on its own schedule.
    kept = df[(df.phase == "autonomy") & (df.condition == "keep-first")].pivot_table(
        index="step", columns="metric", values="value")
    assert kept["presence_rate/caregiver[0]"].eq(1.0).all() and kept["presence_rate/caregiver[1]"].eq(0.0).all()
    ended = kept["paid_return/caregiver[1]"].dropna()  # NaN: no episode ended in that rollout
    assert len(ended) >= 2 and ended.eq(0.0).all()
    np.testing.assert_allclose(kept["paid_return"], kept["paid_return/caregiver[0]"], rtol=1e-6)


@pytest.mark.parametrize("table, message", [
    ('[caregiver]\nmiss = 1.5\n', "line 20: caregiver.miss: got 1.5; allowed: a probability in [0, 1]."),
    ('[caregiver]\npresence = { kind = "sometimes" }\n',
     "line 20: caregiver.presence.kind: must be one of always, never, until, linear, exponential, random, got "
     "'sometimes'."),
    ('[caregiver]\nevent = "peer_goal"\n',
     "line 20: caregiver.event: got 'peer_goal'; allowed: goal (or empty: goal)."),
    ('[[caregiver]]\nreward = 0.2\n\n[[caregiver]]\nreward = 0.2\nevent = "lift"\n',
     "line 24: caregiver[1].event: got 'lift'; allowed: goal (or empty: goal)."),
    ('[[caregiver]]\nreward = 0.2\n[[caregiver]]\nmiss = 2\n',
     "line 22: caregiver[1].miss: got 2; allowed: a probability in [0, 1]."),
    ('[conditions.odd]\nworld = "moon"\n',
     "line 20: conditions.odd.world: got 'moon'; allowed: autonomy | socialization."),
    ('[conditions.odd]\npresence = { kind = "until", switch_step = 99999 }\n',
     "line 20: conditions.odd.presence: switch_step: 99999 is beyond the phase budget of 8192 steps; the caregiver "
     "would never leave. Use a switch_step in 0..8192 (or kind='always')."),
    ('[conditions.odd]\ncaregivers = [{ kind = "always" }, { kind = "never" }]\n',
     "line 20: conditions.odd.caregivers: 2 schedule(s) for 1 caregiver(s); allowed: one per [[caregiver]] table."),
    ('[conditions.odd]\npresence = { kind = "always" }\ncaregivers = [{ kind = "always" }]\n',
     "line 21: conditions.odd.caregivers: give presence (all caregivers) or caregivers (each its own), not both."),
    ('[conditions.odd]\ninternalizes = true\n',
     "line 20: conditions.odd.internalizes: true needs isr = true (an ISR to keep training)."),
    ('[conditions.odd]\ncaregivers = [{ kind = "often" }]\n',
     "line 20: conditions.odd.caregivers.kind: must be one of always, never, until, linear, exponential, random, "
     "got 'often'."),
])
def test_malformed_caregiver_or_condition_is_refused_before_compute(tmp_path, table, message):
    from internalize.experiments.config_file import ExperimentFileError

    conditions = '["none", "odd"]' if "conditions." in table else '["none"]'
    path = _toml(tmp_path, "bad", "", extra=table, conditions=conditions)
    with pytest.raises(ExperimentFileError) as err:
        load_experiment(path)
    assert str(err.value) == f"{path}, {message}"
