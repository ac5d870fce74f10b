"""The prosocial world's per-episode counts: lifts, and pointless lifts (a lift that did not open a path the
helped agent lacked), on scripted trajectories; and the training rollouts' sums of them."""

from __future__ import annotations

import jax
import numpy as np

from internalize.agents.ppo import PPOConfig, make_train
from internalize.agents.reward import caregiver_present
from internalize.agents.rollout import collect_rollout
from internalize.worlds.prosocial import make_params
from test_prosocial import CLEAR, CORRIDOR, PICKUP, TWO_ROUTES, WORLD, _run, _state


def _counts(out) -> tuple[list[bool], list[bool]]:
    return ([bool(ch.events["boulder_lift"]) for _, _, ch, _ in out],
            [bool(ch.events["pointless_lift"]) for _, _, ch, _ in out])


def test_a_lift_that_frees_the_corridor_counts_and_a_second_lift_off_the_path_is_pointless():
    # CLEAR[:7]: up, turn, lift the boulder out of the helped agent's corridor (it had no path), turn, step back,
    # drop it below the corridor. Then lift it again from there: the helped agent's way is open already.
    out = _run(_state(CORRIDOR), CLEAR[:7] + [PICKUP], make_params(layout=CORRIDOR))
    lifts, pointless = _counts(out)
    assert lifts == [False] * 3 + [True] + [False] * 3 + [True]
    assert pointless == [False] * 7 + [True]
    last = out[-1][1]
    assert int(last.lifts) == 2 and int(last.pointless_lifts) == 1
    stats = WORLD.episode_stats(last)
    assert (float(stats["lifts_per_episode"]), float(stats["pointless_lifts_per_episode"])) == (2.0, 1.0)


def test_a_lift_beside_two_free_routes_is_pointless():
    # TWO_ROUTES: the learner faces the boulder below it (south, 1); the helped agent has two routes around it.
    out = _run(_state(TWO_ROUTES, learner_dir=1), [PICKUP], make_params(layout=TWO_ROUTES))
    assert _counts(out) == ([True], [True])


def test_training_rollouts_sum_lifts_and_pointless_lifts_per_finished_episode():
    params = make_params(layout=CORRIDOR, max_steps=50)
    config = PPOConfig(n_steps=100, n_envs=64, batch_size=64, torso="mlp")
    learner = make_train(config, WORLD, params)
    state = jax.jit(learner.init)(jax.random.key(0))
    collect = jax.jit(lambda s, k: collect_rollout(learner.network.apply, s.params, WORLD, params,
                                                   caregiver_present(), 0.99, 100, s.actors, k))
    _, ro, totals = collect(state, jax.random.key(1))
    assert float(totals["episodes"]) == 128.0  # every env finished two 50-step episodes
    lifts = np.asarray(ro.channels.events["boulder_lift"]).sum()
    pointless = np.asarray(ro.channels.events["pointless_lift"]).sum()
    assert lifts > pointless > 0, "a random learner lifts, and sometimes pointlessly"
    assert float(totals["lifts"]) == lifts and float(totals["pointless_lifts"]) == pointless
    assert float(totals["helped_goals"]) == np.asarray(ro.channels.events["helped_goal"]).sum()
