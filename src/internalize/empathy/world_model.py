"""Reward models on world-model latents (prediction 6 of the empathy hypothesis).

A world model learns, without any reward, to predict the next observation from the current one and the action at
its mark: encoder (the ISR's input encoding, two 2x2 convolutions 16 and 32 with ReLU, a linear layer to a
``latent``-sized code z) and a linear decoder from z to the next observation (scaled like the input). It trains on
the learner's samples with uniform batches of the same size and learning rate as the ISR. A reward head (two ReLU
layers of 64 units, then one output) is then trained on the caregiver's payments on top of the *frozen* encoder
(``stop_gradient``), as an ISR is (``reward_model.train``). The probe reads the head's reward and, as
latents, the code z itself: does a model of the world that was never told about rewards code "another agent steps
onto the goal" like "I step onto the goal"?
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from internalize.agents.isr import encode_isr_input, isr_optimizer
from internalize.agents.isr_config import IsrConfig
from internalize.agents.networks import Conv2x2, dense
from internalize.empathy.reward_model import TrainData


class Encoder(nn.Module):
    """Encoded (obs, action at mark) (..., H, W, C + A) -> z (..., latent)."""

    latent: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        batch = x.shape[:-3]
        x = x.reshape((-1,) + x.shape[-3:])
        for c in (16, 32):
            x = nn.relu(Conv2x2(c, nn.initializers.lecun_normal(), nn.initializers.zeros)(x))
        return dense(self.latent, 1.0)(x.reshape((x.shape[0], -1))).reshape(batch + (self.latent,))


class WorldModel(nn.Module):
    """z = Encoder(x); the predicted next observation (..., H * W * C) is linear in z."""

    latent: int
    out: int

    def setup(self) -> None:
        self.encoder = Encoder(self.latent)
        self.decoder = dense(self.out, 1.0)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.decoder(self.encoder(x))

    def encode(self, x: jax.Array) -> jax.Array:
        return self.encoder(x)


class Head(nn.Module):
    """z (..., latent) -> reward (...)."""

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        return dense(1, 1.0)(nn.relu(dense(64)(nn.relu(dense(64)(z)))))[..., 0]


def train_world_model(config: IsrConfig, data: TrainData, next_obs: jax.Array, key: jax.Array, latent: int,
                      n_updates: int) -> tuple[Any, jax.Array]:
    """Fit a world model on (obs, action, mark) -> next_obs (unbatched; vmap over seeds); returns its parameters and
    the mean squared prediction error of its last 100 batches (in input units)."""
    n = data.obs.shape[0]
    target = next_obs.reshape((n, -1)).astype(jnp.float32) * jnp.asarray(config.obs_scale, jnp.float32)
    model = WorldModel(latent, target.shape[1])
    k_init, k_train = jax.random.split(key)
    x0 = encode_isr_input(config, data.obs[:1], data.action[:1], data.mark[:1])
    params = model.init(k_init, x0)
    optimizer = isr_optimizer(config)

    def loss(p: Any, idx: jax.Array) -> jax.Array:
        x = encode_isr_input(config, data.obs[idx], data.action[idx], data.mark[idx])
        return jnp.mean(jnp.square(model.apply(p, x) - target[idx]))

    def update(carry, k):
        p, opt = carry
        value, grads = jax.value_and_grad(loss)(p, jax.random.randint(k, (config.batch_size,), 0, n))
        upd, opt = optimizer.update(grads, opt, p)
        return (optax.apply_updates(p, upd), opt), value

    (params, _), losses = jax.lax.scan(update, (params, optimizer.init(params)), jax.random.split(k_train, n_updates))
    return params, jnp.mean(losses[-100:])


def latents(config: IsrConfig, latent: int, out: int, params: dict, obs: jax.Array, action: jax.Array,
            mark: jax.Array) -> jax.Array:
    """(..., latent) the world model's code of (obs, action at mark); ``params`` = {"world": ..., "head": ...}."""
    x = encode_isr_input(config, obs, action, mark)
    return WorldModel(latent, out).apply(params["world"], x, method=WorldModel.encode)


def head_init(key: jax.Array, latent: int) -> Any:
    return Head().init(key, jnp.zeros((latent,)))


def reward(config: IsrConfig, latent: int, out: int, params: dict, obs: jax.Array, action: jax.Array,
           mark: jax.Array) -> jax.Array:
    """The head's reward on the frozen world model's code; ``params`` = {"world": ..., "head": ...}."""
    z = jax.lax.stop_gradient(latents(config, latent, out, params, obs, action, mark))
    return Head().apply(params["head"], z)
