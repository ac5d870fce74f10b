"""ISR ensembles: K members, each a bootstrap of the socialization data, reduced to one R_i.

An ensemble (``IsrConfig.ensemble = K > 1``) is K ISRs of the same network whose parameters are stacked on a
leading member axis (every leaf (K, ...)); they are trained as one vmapped program (``agents.isr``). Members
differ in two ways, both deterministic per seed:

* their initialization and sampling keys: member m's key is ``fold_in(key, m)`` of the seed's ISR key;
* a **stratified bootstrap** of the training split: member m draws its batches from a resample, with replacement,
  of the split's rewarded transitions and, separately, of its unrewarded ones (:func:`bootstrap_sampler`), so the
  balanced 50/50 batches keep their meaning while each member sees a different sample of the caregiver's data.

The learner's R_i is the members' predictions reduced by ``ensemble_reduce`` (:func:`reduce_members`):
``mean``; ``min`` (the worst case, Coste et al. 2023's WCO); ``lcb`` = mean - lambda * std (uncertainty-
weighted, lambda = ``ensemble_lambda``). The std is the population std over members (ddof 0), and the members'
std on a transition is the ensemble's **disagreement** there (:func:`disagreement`): 0 when all members agree.

K = 1 is the single ISR: no member axis, no bootstrap, the same numbers as before ensembles existed.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from internalize.agents.isr_config import IsrConfig
from internalize.agents.isr_data import BalancedSampler, _pick

#: Folded into a member's key to draw its bootstrap, apart from its initialization and batches.
BOOTSTRAP_TAG = 0xB007


def member_config(config: IsrConfig) -> IsrConfig:
    """The config of one member: the ensemble's, with K = 1 (what a member's own training and forward pass use); a
    single ISR's is its own."""
    if config.ensemble == 1:
        return config
    return dataclasses.replace(config, ensemble=1, ensemble_reduce="mean", ensemble_lambda=1.0)


def member_keys(key: jax.Array, k: int) -> jax.Array:
    """(k,) keys: member m's is ``fold_in(key, m)``."""
    return jax.vmap(lambda m: jax.random.fold_in(key, m))(jnp.arange(k, dtype=jnp.uint32))


def bootstrap_sampler(sampler: BalancedSampler, key: jax.Array) -> BalancedSampler:
    """A stratified bootstrap of ``sampler``'s part: ``n_pos`` rewarded slots drawn with replacement from its
    rewarded ones and ``n_neg`` from its unrewarded ones (the counts are kept, so the balanced sampling and the
    epoch length are those of the original). Slots outside the part stay where they were."""
    k_pos, k_neg = jax.random.split(jax.random.fold_in(key, BOOTSTRAP_TAG))
    n = sampler.order.shape[0]
    i = jnp.arange(n, dtype=jnp.int32)
    pos = _pick(k_pos, sampler.n_pos, (n,))
    neg = sampler.n_pos + _pick(k_neg, sampler.n_neg, (n,))
    j = jnp.where(i < sampler.n_pos, pos, jnp.where(i < sampler.n_pos + sampler.n_neg, neg, i))
    return sampler._replace(order=sampler.order[j])


def reduce_members(config: IsrConfig, members: jax.Array) -> jax.Array:
    """(K, ...) member predictions -> (...) R_i by ``config.ensemble_reduce`` (mean | min | lcb)."""
    if config.ensemble_reduce == "mean":
        return jnp.mean(members, axis=0)
    if config.ensemble_reduce == "min":
        return jnp.min(members, axis=0)
    return jnp.mean(members, axis=0) - jnp.float32(config.ensemble_lambda) * jnp.std(members, axis=0)


def disagreement(members: jax.Array) -> jax.Array:
    """(K, ...) member predictions -> (...) their population std (0 when every member predicts the same)."""
    return jnp.std(members, axis=0)


#: A transition on which the ISR is "wrong": |R_i - R_s| above this (half the navigation caregiver's 0.4 payment,
#: the reference's threshold-replace level).
WRONG_BY = 0.2


def detection_auroc(score: np.ndarray, wrong: np.ndarray) -> float:
    """AUROC of ``score`` for telling ``wrong`` transitions (bool) from right ones: the probability that a wrong
    one scores higher than a right one, ties counting half (the Mann-Whitney U / (n_wrong n_right)); NaN when
    either class is empty. Host-side numpy, (N,) arrays."""
    score, wrong = np.asarray(score, np.float64).reshape(-1), np.asarray(wrong, bool).reshape(-1)
    n_wrong, n_right = int(wrong.sum()), int((~wrong).sum())
    if n_wrong == 0 or n_right == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score), np.float64)
    sorted_scores = score[order]
    # Average ranks over ties (1-based).
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    mid = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(mid, counts)
    u = ranks[wrong].sum() - n_wrong * (n_wrong + 1) / 2.0
    return float(u / (n_wrong * n_right))
