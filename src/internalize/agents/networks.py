"""The learner's networks: the paper's CNN policy, an MLP option, and the shared torso.

The paper's policy and PPO settings: docs/paper-vs-reference.md, 'Policy and PPO'.

Shapes: observations are (..., H, W, C) uint8 egocentric crops, (9, 9, 4) in navigation; they are scaled by
1/255 inside the network, as Stable-Baselines3 does for image observations. Convolutions run channel-last on
(H, W) = (forward, lateral) axes, the same axes SB3's ``VecTransposeImage`` gives its channel-first convs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

SQRT2 = float(np.sqrt(2.0))


#: Batches up to this many rows take the matrix-vector form of :class:`Dense`'s product.
SMALL_BATCH = 16


class Dense(nn.Module):
    """A linear layer ``x @ weight.T + bias``; (..., K) -> (..., N).

    Parameters: ``weight`` (N, K), stored out-by-in as torch's ``nn.Linear`` (not flax's (K, N) kernel), and
    ``bias`` (N,). ``kernel_init`` is called with flax's (K, N) kernel shape, so fan-in initialisers mean what
    they mean for ``flax.linen.Dense``, and a key draws the transpose of the kernel ``nn.Dense`` would draw.

    Why the layout (measured on one core of a 2-core CPU, XLA:CPU): the weight's gradient ``dy.T @ x`` then
    comes out (N, K), already in the weight's layout. With a (K, N) kernel XLA computed it through a slower
    dot orientation and Adam's update read a transposed gradient; the paper's CNN updated about 20% slower.
    For a few rows (a rollout's batch is n_envs, often 1) the product is taken as ``(weight @ x.T).T``, a
    matrix-vector product over the stored layout: ``x @ weight.T`` there made XLA transpose the whole weight
    at every rollout step.
    """

    features: int
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k = x.shape[-1]
        weight = self.param("weight", lambda key: self.kernel_init(key, (k, self.features), jnp.float32).T)
        bias = self.param("bias", self.bias_init, (self.features,), jnp.float32)
        rows = x.reshape((-1, k))
        y = (weight @ rows.T).T if rows.shape[0] <= SMALL_BATCH else rows @ weight.T
        return (y + bias).reshape(x.shape[:-1] + (self.features,))


def dense(features: int, gain: float = SQRT2) -> Dense:
    """A linear layer with SB3's ``ortho_init``: orthogonal weights with ``gain``, zero bias."""
    return Dense(features, kernel_init=nn.initializers.orthogonal(gain), bias_init=nn.initializers.zeros)


class Conv2x2(nn.Module):
    """A 2x2 VALID convolution computed as "stack the 4 shifted views, then one matmul" (im2col).

    The same function as ``nn.Conv(features, (2, 2), padding="VALID")`` with the kernel flattened to
    (4 * C, features) in (row offset, column offset, channel) order and stored transposed, as
    :class:`Dense`'s (features, 4 * C) ``weight``. Written this way because XLA:CPU runs
    convolutions and their gradients inside a ``lax.scan`` body (where PPO's minibatch updates run) several
    times slower than a matmul of the same size. (..., H, W, C) -> (..., H - 1, W - 1, features).
    """

    features: int
    kernel_init: Callable = nn.initializers.orthogonal(SQRT2)
    bias_init: Callable = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h, w = x.shape[-3] - 1, x.shape[-2] - 1
        patches = jnp.concatenate([x[..., i:i + h, j:j + w, :] for i in (0, 1) for j in (0, 1)], axis=-1)
        return Dense(self.features, kernel_init=self.kernel_init, bias_init=self.bias_init)(patches)


class CnnTorso(nn.Module):
    """Minigrid features extractor: 2x2 convs (16, 32, 64) with ReLU, flatten, Linear 128 with ReLU.

    (..., 9, 9, C) float -> (..., 128). A 9x9 input leaves 6x6x64 = 2,304 features before the linear layer.
    """

    channels: Sequence[int] = (16, 32, 64)
    features: int = 128

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        batch_shape = x.shape[:-3]
        x = x.reshape((-1,) + x.shape[-3:])
        for c in self.channels:
            # Orthogonal init of the (4C, c) flattened kernel: SB3 orthogonalizes a conv weight flattened the same way.
            x = nn.relu(Conv2x2(c)(x))
        x = x.reshape((x.shape[0], -1))
        x = nn.relu(dense(self.features)(x))
        return x.reshape(batch_shape + (self.features,))


class MlpHead(nn.Module):
    """Tanh MLP (SB3's default ``net_arch`` [64, 64]) followed by a linear output with its own gain."""

    hidden: Sequence[int] = (64, 64)
    out: int = 1
    out_gain: float = 1.0
    activation: str = "tanh"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = {"tanh": nn.tanh, "relu": nn.relu}[self.activation]
        for h in self.hidden:
            x = act(dense(h)(x))
        return dense(self.out, self.out_gain)(x)


class ActorCritic(nn.Module):
    """SB3 ``ActorCriticPolicy``: features, then separate actor and critic MLPs [64, 64] tanh.

    ``torso="cnn"`` is the paper's ``CnnPolicy`` with the minigrid extractor shared by actor and critic;
    ``torso="mlp"`` is SB3's ``MlpPolicy`` (features = the flattened scaled observation).

    ``obs_scale`` multiplies the uint8 observation: 1/255 is SB3's ``normalize_images`` for an image-shaped Box
    (navigation); the prosocial world's reference policy sees raw codes (a 4-D Box that SB3 leaves unscaled,
    docs/paper-vs-reference.md, 'Prosocial observation'), so that world's ``obs_scale`` is 1. A tuple is one
    factor per channel (the last axis).

    Returns ``(logits (..., num_actions), value (...,))``. Action head gain 0.01, value head gain 1.
    """

    num_actions: int
    torso: Literal["cnn", "mlp"] = "cnn"
    hidden: Sequence[int] = (64, 64)
    obs_scale: float | tuple[float, ...] = 1.0 / 255.0

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        scale = jnp.asarray(self.obs_scale, jnp.float32) if isinstance(self.obs_scale, tuple) else self.obs_scale
        x = obs.astype(jnp.float32) * scale
        if self.torso == "cnn":
            x = CnnTorso()(x)
        else:
            x = x.reshape(x.shape[:-3] + (-1,))
        logits = MlpHead(self.hidden, self.num_actions, 0.01)(x)
        value = MlpHead(self.hidden, 1, 1.0)(x)
        return logits, value[..., 0]
