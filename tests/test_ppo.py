"""The PPO learner as a whole: pluggable reward, metrics, seeds (vmapped vs one by one), determinism,
phase continuation, in-process checkpoint resume and the NaN guard.

One small MLP configuration and one probe reward module serve every test, so the suite compiles few programs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.agents.checkpoint import load_checkpoint, save_checkpoint
from internalize.agents.ppo import PPOConfig, check_finite, make_seeds_runner, make_train
from internalize.agents.reward import Reward
from internalize.worlds.navigation import Navigation, make_params

# 16 vector steps of 4 envs per rollout: episodes (20 steps) end in every rollout but the first.
CONFIG = PPOConfig(n_steps=16, n_envs=4, batch_size=32, n_epochs=2, learning_rate=1e-3, torso="mlp")
PER_ROLLOUT = 16 * 4


def _probe_init(key, n_envs):
    del key
    return {"nan_at": jnp.int32(-1), "seen": jnp.float32(0.0)}


def _probe_reward(rstate, obs, action, channels, next_obs, new_episode, step, key):
    """Caregiver absent (U = R_e); NaN at global env step ``nan_at``; two info entries to be summed."""
    n_envs = action.shape[0]
    index = step + jnp.arange(n_envs)  # this vector step's global env-step indices
    utility = jnp.where(index == rstate["nan_at"], jnp.nan, channels.extrinsic)
    info = {"presence": jnp.ones((n_envs,)), "bonus": 2.0 * channels.social}
    return utility, rstate, info


def _probe_update(rstate, rollout, key):
    seen = rstate["seen"] + rollout.action.size
    return {**rstate, "seen": seen}, {"seen": seen, "starts": rollout.episode_start.sum().astype(jnp.float32)}


PROBE = Reward(_probe_init, _probe_reward, _probe_update)
LEARNER = make_train(CONFIG, Navigation(), make_params(n_blocks=3), PROBE)
INIT = jax.jit(LEARNER.init)
RUN = jax.jit(LEARNER.run, static_argnums=1)
SEEDS = make_seeds_runner(LEARNER)
KEYS = jax.random.split(jax.random.PRNGKey(42), 2)


def _with_nan_at(state, nan_at):
    rstate = {**state.actors.reward_state, "nan_at": jnp.asarray(nan_at, jnp.int32)}
    return state.replace(actors=state.actors._replace(reward_state=rstate))


def _chunks(state, n_chunks, run=RUN):
    out = []
    for _ in range(n_chunks):
        state, metrics = run(state, 2)
        out.append(metrics)
    return state, {k: np.concatenate([np.asarray(m[k]) for m in out], axis=-1) for k in out[0]}


def _equal_trees(a, b) -> bool:
    return all(jax.tree.leaves(jax.tree.map(lambda x, y: bool(np.array_equal(x, y, equal_nan=True)), a, b)))


@pytest.fixture(scope="module")
def single_runs():
    """Each key run alone for two chunks of two rollouts: ``[(state, metrics), ...]``."""
    return [_chunks(INIT(k), 2) for k in KEYS]


@pytest.mark.expensive
def test_reward_module_info_update_and_metrics(single_runs):
    _, m = single_runs[0]
    assert m["rollout"].tolist() == [1, 2, 3, 4]
    assert m["steps"].tolist() == [PER_ROLLOUT * i for i in (1, 2, 3, 4)]
    np.testing.assert_array_equal(m["learning_rate"], np.float32(1e-3))
    # Vector steps 0..63; every env's episode ends after steps 19, 39 and 59: in rollouts 2, 3 and 4.
    assert m["episodes"].tolist() == [0, 4, 4, 4]
    assert np.isnan(m["goals_per_episode"][0]) and np.isnan(m["utility_return"][0]), "no episode ended: NaN"
    np.testing.assert_array_equal(m["presence_return"][1:], 20.0)  # info entries are summed per episode
    np.testing.assert_allclose(m["bonus_return"][1:], 2 * m["social_return"][1:], rtol=1e-6)
    np.testing.assert_allclose(m["utility_return"][1:], m["extrinsic_return"][1:], rtol=1e-6)  # U = R_e here
    np.testing.assert_allclose(m["social_return"][1:], 0.4 * m["goals_per_episode"][1:], rtol=1e-5)
    np.testing.assert_array_equal(m["reward_seen"], m["steps"])  # update_fn saw every transition once
    # Episode starts: the 4 initial ones (rollout 1), then 4 after each truncation, at steps 20, 40, 60.
    assert m["reward_starts"].tolist() == [4, 4, 4, 4]
    assert (m["nonfinite_step"] == -1).all() and not m["nonfinite_params"].any()
    check_finite(m)  # NaN per-episode means are legitimate, not a failure


@pytest.mark.expensive
def test_same_seed_twice_is_identical_and_seeds_differ(single_runs):
    state, m = _chunks(INIT(KEYS[0]), 2)
    assert _equal_trees(m, single_runs[0][1]) and _equal_trees(state, single_runs[0][0])
    assert not np.array_equal(single_runs[0][1]["policy_loss"], single_runs[1][1]["policy_loss"])


@pytest.mark.expensive
def test_vmapped_seeds_equal_seeds_run_one_by_one(single_runs):
    # Not bit-identical: XLA lowers the vmapped matmuls as batched dots with another summation order, so
    # floats differ by ~1e-7. Over 4 rollouts the sampled actions stay the same, so counts and
    # channel sums are exactly equal and the rest agrees to float32 rounding.
    states, m = _chunks(SEEDS.init(KEYS), 2, run=SEEDS.run)
    for i, (state, single) in enumerate(single_runs):
        for name in ("episodes", "goals_per_episode", "extrinsic_return", "social_return", "steps", "rollout"):
            np.testing.assert_array_equal(m[name][i], single[name], err_msg=name)
        for name in ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction", "utility_return"):
            np.testing.assert_allclose(m[name][i], single[name], rtol=1e-4, atol=1e-6, err_msg=name)
        params_i = jax.tree.map(lambda x, i=i: x[i], states.params)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), params_i, state.params)
        assert np.array_equal(states.key[i], state.key)


@pytest.mark.expensive
def test_resume_from_checkpoint_is_bit_identical(tmp_path, single_runs):
    full_state, full = RUN(INIT(KEYS[0]), 4)
    half, first = RUN(INIT(KEYS[0]), 2)
    path = save_checkpoint(tmp_path / "run.ckpt", half, {"done": 2})
    template = jax.eval_shape(LEARNER.init, KEYS[0])
    loaded, meta = load_checkpoint(path, template)
    assert meta == {"done": 2} and _equal_trees(loaded, half)
    end, second = RUN(loaded, 2)
    both = {k: np.concatenate([first[k], second[k]]) for k in first}
    assert _equal_trees(both, jax.device_get(full)), "2 + checkpoint + 2 rollouts differ from 4 in one go"
    assert _equal_trees(end, full_state)
    assert _equal_trees(both, single_runs[0][1]), "chunking (2 + 2) must not change the run"


@pytest.mark.expensive
def test_next_phase_continues_params_and_adam_state(single_runs):
    state, _ = single_runs[0]
    phase2 = make_train(PPOConfig(n_steps=16, n_envs=4, batch_size=32, learning_rate=3e-4, torso="mlp"),
                        Navigation(), make_params(n_blocks=1))
    nxt = jax.jit(phase2.init)(KEYS[1], state.params, state.opt_state, None, state.steps)
    assert _equal_trees(nxt.params, state.params)
    assert int(nxt.opt_state.count) == int(state.opt_state.count) == 4 * 2 * 2  # rollouts * epochs * batches
    assert _equal_trees(nxt.opt_state.inner_state, state.opt_state.inner_state)  # Adam moments kept
    assert float(nxt.opt_state.hyperparams["learning_rate"]) == pytest.approx(3e-4)
    assert int(nxt.steps) == 4 * PER_ROLLOUT and int(nxt.rollouts) == 0
    assert bool(nxt.actors.episode_start.all()), "a new phase starts new episodes"


@pytest.mark.expensive
def test_the_map_is_an_argument_of_the_seeds_program_so_maps_share_one_program(single_runs):
    # The runner's seeds program takes the world's parameters as an argument: two maps of one world kind lower to
    # the same program (one compile, then XLA's persistent cache), while the same phase with its map folded in as
    # constants lowers to a program per map.
    other = make_train(CONFIG, Navigation(), make_params(n_blocks=5), PROBE)
    states = SEEDS.init(KEYS)
    seeds_other = make_seeds_runner(other)
    lowered = [s.run_on.lower(states, 2, learner.world_params).as_text()
               for s, learner in ((SEEDS, LEARNER), (seeds_other, other))]
    assert lowered[0] == lowered[1]
    folded = [jax.jit(lambda s, learner=learner: learner.run(s, 2)).lower(INIT(KEYS[0])).as_text()
              for learner in (LEARNER, other)]
    assert folded[0] != folded[1], "the maps differ: folded in as constants they must give two programs"
    # Passing the map as an argument computes exactly what the phase computes with it folded in.
    state, m = _chunks(INIT(KEYS[0]), 2, run=lambda s, n: RUN(s, n, LEARNER.world_params))
    assert _equal_trees(m, single_runs[0][1]) and _equal_trees(state, single_runs[0][0])
    # And the map really is an input: the same seeds on the 5-block map see other layouts.
    on5, _ = SEEDS.run_on(states, 2, other.world_params)
    on3, _ = SEEDS.run(states, 2)

    def walls(s) -> np.ndarray:  # blocks per layout, (seeds, envs)
        return np.asarray(s.actors.env_state.walls).sum(axis=(-2, -1))

    assert (walls(on5) == walls(on3) + 2).all(), "every layout holds two more blocks"


def test_a_donating_seeds_runner_reuses_the_states_it_is_given_and_computes_the_same():
    # The experiment runner's chunks donate their states: XLA writes the new states into the old ones' buffers
    # instead of allocating and copying the whole state (the socialization buffer) on every call.
    donating = make_seeds_runner(LEARNER, donate=True)
    kept = SEEDS.init(KEYS)
    given = SEEDS.init(KEYS)
    ref_state, ref = SEEDS.run(kept, 2)
    state, m = donating.run(given, 2)
    assert _equal_trees(m, ref) and _equal_trees(state, ref_state), "donation must not change a number"
    assert all(x.is_deleted() for x in jax.tree.leaves(given)), "the given states' buffers were taken over"
    assert not any(x.is_deleted() for x in jax.tree.leaves(kept)), "without donate the input stays usable"
    with pytest.raises(RuntimeError, match="deleted"):
        donating.run(given, 2)


def test_nan_in_reward_stops_with_rollout_and_step_named():
    state = _with_nan_at(INIT(KEYS[0]), 97)  # rollout 2 covers env steps 64..127; 97 = vector step 24, env 1
    _, m = RUN(state, 2)
    with pytest.raises(FloatingPointError, match=r"probe: .*rollout 2 .*env step 97"):
        check_finite(m, context="probe")
    assert m["nonfinite_step"].tolist() == [-1, 97]


def test_nan_guard_names_the_seed_in_a_vmapped_batch():
    states = SEEDS.init(KEYS)
    rstate = {**states.actors.reward_state, "nan_at": jnp.array([-1, 40], jnp.int32)}
    states = states.replace(actors=states.actors._replace(reward_state=rstate))
    _, m = SEEDS.run(states, 2)
    with pytest.raises(FloatingPointError, match=r"seed 1001, rollout 1 .*parameters.*env step 40"):
        check_finite(m, seeds=[1000, 1001])


def test_nonfinite_parameters_are_caught():
    state = INIT(KEYS[1])
    params = jax.tree.map(lambda x: x.at[(0,) * x.ndim].set(jnp.inf) if x.ndim == 2 else x, state.params)
    _, m = RUN(state.replace(params=params), 2)
    assert bool(m["nonfinite_params"][0])
    with pytest.raises(FloatingPointError, match="rollout 1"):
        check_finite(m)
