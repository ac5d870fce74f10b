"""The goal-values probe's stimuli (``studies.goal_values``): the learner faces the green goal, the blue goal, or
plain floor, and a forward step from each stimulus does what its name says; the probe refuses other worlds."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from internalize.config_error import ConfigError
from internalize.experiments.spec import Experiment, world
from internalize.studies.goal_values import GoalValuesProbe, _facing, build_stimuli
from internalize.worlds import grid, two_goal


def test_each_stimulus_faces_what_it_names_and_a_forward_step_enters_it():
    params = two_goal.make_params(n_blocks=3)
    stimuli = build_stimuli(params, jax.random.key(0), 128)
    view = grid.view_size(7)
    ahead = (view // 2 - 1, view // 2)  # the cell in front of the learner in its egocentric crop
    for kind, channel in (("goal_green", 3), ("goal_blue", 4), ("forward", None)):
        obs, valid = (np.asarray(x) for x in stimuli[kind])
        assert obs.shape == (128, view, view, 5) and valid.mean() > 0.95, kind
        front = obs[valid][:, ahead[0], ahead[1]]
        if channel is None:
            assert np.all(front[:, 0] == grid.EMPTY), "plain floor ahead"
        else:
            assert np.all(front[:, channel] == 1) and np.all(front[:, 0] == grid.GOAL), kind
    # A stimulus state stepped forward enters the goal it names.
    world = two_goal.TwoGoal()
    for seed in range(20):
        _, state = world.reset(jax.random.key(seed), params)
        goals = np.zeros((7, 7), bool)
        goals[int(state.green_pos[1]), int(state.green_pos[0])] = goals[int(state.blue_pos[1]),
                                                                         int(state.blue_pos[0])] = True
        for target, event in ((state.green_pos, "goal_green"), (state.blue_pos, "goal_blue")):
            facing, ok = _facing(state, target, goals, jax.random.uniform(jax.random.key(seed), (4,)))
            if bool(ok):
                _, _, channels, _ = world.step(jax.random.key(1), facing, grid.FORWARD, params)
                assert bool(channels.events[event]) and float(channels.social) == pytest.approx(0.4)


def test_the_probe_needs_a_two_goal_world():
    base = dict(name="t", title="t", autonomy_worlds=(world("blocks-1"),), conditions=("isr",),
                socialization_steps=64, autonomy_steps=64, seeds=(0,))
    with pytest.raises(ConfigError, match="allowed: a two-goal world"):
        Experiment(socialization_world=world("blocks-1"), probes=(GoalValuesProbe(),), **base)
    exp = Experiment(**{**base, "autonomy_worlds": (world("two-goal"),)}, socialization_world=world("two-goal"),
                     probes=(GoalValuesProbe(n_stimuli=8),))
    assert exp.probes[0].n_stimuli == 8
    with pytest.raises(ConfigError, match="n_stimuli"):
        GoalValuesProbe(n_stimuli=0)
