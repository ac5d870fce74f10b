"""How well an ISR predicts the caregiver's social reward, on its held-out and training transitions.

All metrics are masked means over buffer slots, so they are jit- and vmap-able (a leading seed axis on params and
buffer: ``jax.vmap(lambda p, b: isr_metrics(config, p, b))``). For each part (``holdout`` and ``train`` of the
configured split) the returned dict has, under ``"{part}/{name}"``:

* ``n``, ``n_pos``: transitions and rewarded transitions (paid R_s != 0, ``isr_data.rewarded``) in the part;
* ``mse``: unbalanced mean squared error;
* ``balanced_mse``: the mean of the rewarded and the unrewarded transitions' MSEs (of the classes present), the
  error the balanced training batches estimate;
* ``baseline_mse``, ``baseline_balanced_mse``: the same errors for a constant predictor, the mean social reward
  of the *training* part (what a network that ignores its input would learn from unbalanced data);
* ``pearson``: Pearson correlation of predicted and paid social reward (the ISR's target);
* ``true_pearson``: Pearson correlation of predicted and *true*, noise-free social reward (the buffer's
  ``true_social``), and ``paid_true_pearson`` that of the payments themselves with the true reward: with an exact
  caregiver the first is ``pearson`` and the second 1; with an unreliable one they say whether the ISR tracks the
  caregiver's value better than its payments did;
* ``precision``, ``recall``: of "rewarded" (R_s > 0) when the prediction exceeds ``threshold`` (0.2, the
  reference's threshold-replace rule).

Undefined values (no transition in the part, no predicted positive, a constant prediction) are NaN, not 0/0.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp

from internalize.agents.isr import IsrConfig, isr_reward
from internalize.agents.isr_data import IsrBuffer, config_split, rewarded

PARTS = ("holdout", "train")


def isr_predict_all(config: IsrConfig, params: Any, buffer: IsrBuffer, chunk: int = 4096,
                    needed: jax.Array | None = None) -> jax.Array:
    """ISR predictions for every buffer slot, (capacity,) float32, computed ``chunk`` slots at a time.

    ``needed`` (capacity,) bool: a chunk without a needed slot is skipped and predicts 0 (a ``lax.cond``; under
    ``vmap`` the cond becomes a select and every chunk is computed, so map over seeds to profit). A computed
    chunk is the same function with or without ``needed`` (XLA may round a cond branch's program differently).
    """
    n = buffer.capacity
    size = min(chunk, n)
    whole = n // size * size

    def block(obs: jax.Array, action: jax.Array, need: jax.Array | None) -> jax.Array:
        # Per-transition vmap, as ``lax.map(..., batch_size=...)`` computes it (the program earlier versions ran).
        def predict() -> jax.Array:
            return jax.vmap(lambda o, a: isr_reward(config, params, o, a))(obs, action)

        if need is None:
            return predict()
        return jax.lax.cond(jnp.any(need), predict, lambda: jnp.zeros(action.shape, jnp.float32))

    def chunks(x: jax.Array) -> jax.Array:
        return x[:whole].reshape((whole // size, size) + x.shape[1:])

    xs = (chunks(buffer.obs), chunks(buffer.action), None if needed is None else chunks(needed))
    parts = [jax.lax.map(lambda c: block(*c), xs).reshape(-1)]
    if whole < n:
        parts.append(block(buffer.obs[whole:], buffer.action[whole:], None if needed is None else needed[whole:]))
    return jnp.concatenate(parts) if len(parts) > 1 else parts[0]


def _safe_div(num: jax.Array, den: jax.Array) -> jax.Array:
    return jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), jnp.nan)


def _masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    return _safe_div(jnp.sum(jnp.where(mask, x, 0.0)), jnp.sum(mask, dtype=jnp.float32))


def _balanced(sq_err: jax.Array, mask: jax.Array, pos: jax.Array) -> jax.Array:
    """Mean of the per-class MSEs over the classes that have transitions in ``mask``."""
    per_class = jnp.stack([_masked_mean(sq_err, mask & pos), _masked_mean(sq_err, mask & ~pos)])
    present = ~jnp.isnan(per_class)
    return _safe_div(jnp.sum(jnp.where(present, per_class, 0.0)), jnp.sum(present, dtype=jnp.float32))


def _pearson(x: jax.Array, y: jax.Array, mask: jax.Array) -> jax.Array:
    """Pearson correlation of ``x`` and ``y`` over the slots in ``mask`` (NaN if either is constant there)."""
    dx = jnp.where(mask, x - _masked_mean(x, mask), 0.0)
    dy = jnp.where(mask, y - _masked_mean(y, mask), 0.0)
    return _safe_div(jnp.sum(dx * dy), jnp.sqrt(jnp.sum(dx * dx) * jnp.sum(dy * dy)))


def _part_metrics(pred: jax.Array, target: jax.Array, true: jax.Array, mask: jax.Array, baseline: jax.Array,
                  threshold: jax.Array) -> dict[str, jax.Array]:
    pos = rewarded(target)
    sq_err = jnp.square(pred - target)
    sq_base = jnp.square(baseline - target)
    n = jnp.sum(mask, dtype=jnp.float32)
    fired = mask & (pred > threshold)
    tp = jnp.sum(fired & pos, dtype=jnp.float32)
    return {
        "n": n,
        "n_pos": jnp.sum(mask & pos, dtype=jnp.float32),
        "mse": _masked_mean(sq_err, mask),
        "balanced_mse": _balanced(sq_err, mask, pos),
        "baseline_mse": _masked_mean(sq_base, mask),
        "baseline_balanced_mse": _balanced(sq_base, mask, pos),
        "pearson": _pearson(pred, target, mask),
        "true_pearson": _pearson(pred, true, mask),
        "paid_true_pearson": _pearson(target, true, mask),
        "precision": _safe_div(tp, jnp.sum(fired, dtype=jnp.float32)),
        "recall": _safe_div(tp, jnp.sum(mask & pos, dtype=jnp.float32)),
    }


@functools.partial(jax.jit, static_argnums=(0, 4))
def _metrics(config: IsrConfig, params: Any, buffer: IsrBuffer, threshold: jax.Array,
             holdout_config: IsrConfig | None) -> dict[str, jax.Array]:
    split = config_split(config, buffer)
    holdout = split.holdout
    if holdout_config is not None:
        # Held out from every ISR it is shared by: a slot this ISR trained on makes the held-out metrics NaN.
        holdout = config_split(holdout_config, buffer).holdout
        holdout = jnp.where(jnp.any(holdout & split.train), False, holdout)
    # Slots in neither part (a data-size ISR's unused middle, empty slots) are not predicted.
    pred = isr_predict_all(config, params, buffer, needed=holdout | split.train)
    baseline = _masked_mean(buffer.social, split.train)
    out = {}
    for part, mask in zip(PARTS, (holdout, split.train), strict=True):
        for name, value in _part_metrics(pred, buffer.social, buffer.true_social, mask, baseline, threshold).items():
            out[f"{part}/{name}"] = value
    return out


def isr_metrics(config: IsrConfig, params: Any, buffer: IsrBuffer, threshold: float = 0.2,
                holdout: IsrConfig | None = None) -> dict[str, jax.Array]:
    """Held-out and training metrics of an ISR (see the module docstring); a dict of () float32 arrays.

    The split is the one ``config`` trains with (same fraction, mode, seed and ``n_data``), so ``holdout/*``
    is computed on transitions the ISR never trained on. ``holdout``: score ``holdout/*`` on this config's
    held-out part instead (e.g. the full data's, to score ISRs trained on different amounts of data on the same
    transitions); ``holdout/*`` are NaN if it overlaps ``config``'s training part.
    """
    return _metrics(_metrics_key(config), params, buffer, jnp.float32(threshold),
                    None if holdout is None else _metrics_key(holdout))


def _metrics_key(config: IsrConfig) -> IsrConfig:
    # Only the fields that shape the network input and the split matter here; dropping the training-only ones
    # lets ISRs trained with different budgets share one compiled metrics program.
    defaults = IsrConfig()
    return dataclasses.replace(
        config, learning_rate=defaults.learning_rate, adam_eps=defaults.adam_eps,
        max_grad_norm=defaults.max_grad_norm, batch_size=defaults.batch_size, n_updates=None,
        log_every=defaults.log_every, eval_size=defaults.eval_size,
    )


@functools.partial(jax.jit, static_argnums=(0, 4))
def _metrics_seeds(config: IsrConfig, params: Any, buffer: IsrBuffer, threshold: jax.Array,
                   holdout_config: IsrConfig | None) -> dict[str, jax.Array]:
    return jax.lax.map(lambda pb: _metrics(config, pb[0], pb[1], threshold, holdout_config), (params, buffer))


def isr_metrics_seeds(config: IsrConfig, params: Any, buffer: IsrBuffer, threshold: float = 0.2,
                      holdout: IsrConfig | None = None) -> dict[str, jax.Array]:
    """:func:`isr_metrics` of S seeds (params and buffer with a leading (S,) axis), one seed after another.

    The same function as ``jax.vmap`` of :func:`isr_metrics`; mapped rather than vmapped so that buffer chunks in
    neither part are skipped (an ISR trained on the first N of a larger buffer predicts about N + the held-out
    transitions, not the whole buffer). Returns a dict of (S,) float32 arrays.
    """
    return _metrics_seeds(_metrics_key(config), params, buffer, jnp.float32(threshold),
                          None if holdout is None else _metrics_key(holdout))
