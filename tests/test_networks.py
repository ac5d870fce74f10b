"""The learner's layers: ``Dense`` (an out-by-in weight, a matrix-vector form for few rows) is ``flax.linen.Dense``.

The layer exists for speed on XLA:CPU, so the tests pin down that it is the same function with the same
gradients as flax's own dense layer: for a rollout-sized batch (the matrix-vector form), a minibatch, a
batch of images (the im2col convolution), under ``vmap`` over seeds, and that a key draws the same initial
weights, transposed.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.agents.networks import SMALL_BATCH, ActorCritic, Dense, dense


def _pair(features: int, x: jax.Array):
    ours = dense(features)
    params = ours.init(jax.random.key(0), x)
    flax_params = {"params": {"kernel": params["params"]["weight"].T, "bias": params["params"]["bias"]}}
    return ours, params, nn.Dense(features), flax_params


@pytest.mark.parametrize("shape", [(1, 40), (SMALL_BATCH, 40), (64, 40), (3, 5, 7, 40)])
def test_dense_matches_flax_dense_in_value_and_gradients(shape):
    x = jax.random.normal(jax.random.key(1), shape)
    ours, params, ref, ref_params = _pair(24, x)
    assert params["params"]["weight"].shape == (24, 40)
    np.testing.assert_allclose(ours.apply(params, x), ref.apply(ref_params, x), rtol=1e-5, atol=1e-5)

    target = jax.random.normal(jax.random.key(2), shape[:-1] + (24,))

    def loss(p, m, x):  # a non-trivial dy
        return jnp.sum(jnp.tanh(m.apply(p, x)) * target)

    g_ours, gx_ours = jax.grad(loss, argnums=(0, 2))(params, ours, x)
    g_ref, gx_ref = jax.grad(loss, argnums=(0, 2))(ref_params, ref, x)
    np.testing.assert_allclose(g_ours["params"]["weight"].T, g_ref["params"]["kernel"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(g_ours["params"]["bias"], g_ref["params"]["bias"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gx_ours, gx_ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("rows", [1, 64])
def test_dense_gradients_under_jit_and_vmap_over_seeds(rows):
    """One weight per seed, as a vmapped multi-seed learner holds them: per-seed values and gradients."""
    layer = Dense(5)
    xs = jax.random.normal(jax.random.key(3), (3, rows, 12))
    params = jax.vmap(layer.init)(jax.random.split(jax.random.key(4), 3), xs)
    dys = jax.random.normal(jax.random.key(5), (3, rows, 5))

    def vjp(p, x, dy):
        return jax.vjp(layer.apply, p, x)[1](dy)

    g_params, g_x = jax.jit(jax.vmap(vjp))(params, xs, dys)
    for s in range(3):
        w = params["params"]["weight"][s]
        np.testing.assert_allclose(jax.jit(layer.apply)(jax.tree.map(lambda a, s=s: a[s], params), xs[s]),
                                   xs[s] @ w.T + params["params"]["bias"][s], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(g_x[s], dys[s] @ w, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(g_params["params"]["weight"][s], dys[s].T @ xs[s], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(g_params["params"]["bias"][s], dys[s].sum(0), rtol=1e-5, atol=1e-5)


def test_initialisers_see_flax_kernel_shape():
    """A fan-in initialiser means the same as for nn.Dense, and the same key draws the transposed kernel."""
    x = jnp.ones((2, 300))
    init = nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")  # U(+-1/sqrt(fan_in)), fan_in = 300
    ours = Dense(8, kernel_init=init).init(jax.random.key(7), x)["params"]["weight"]
    ref = nn.Dense(8, kernel_init=init).init(jax.random.key(7), x)["params"]["kernel"]
    np.testing.assert_array_equal(ours, ref.T)
    assert float(jnp.abs(ours).max()) <= 1 / np.sqrt(300) and float(jnp.abs(ours).max()) > 0.9 / np.sqrt(300)


def test_actor_critic_parameter_count_matches_sb3():
    """The paper's CnnPolicy and SB3's MlpPolicy on (9, 9, 4) observations with 3 actions: 330,740 and 50,180."""
    obs = jnp.zeros((1, 9, 9, 4), jnp.uint8)
    for torso, count in (("cnn", 330_740), ("mlp", 50_180)):
        params = ActorCritic(3, torso=torso).init(jax.random.key(0), obs)
        assert sum(p.size for p in jax.tree.leaves(params)) == count
