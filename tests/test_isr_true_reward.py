"""What the ISR buffer keeps of an unreliable caregiver: the payments (the ISR's target) and, beside them, the
true noise-free R_s, so the ISR and the payments can each be scored against the true reward; which transitions
count as rewarded when payments are noisy (any payment, whatever its sign)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.agents.isr import IsrConfig, isr_init_params
from internalize.agents.isr_data import balanced_sampler, config_split, isr_buffer_add, isr_buffer_init, rewarded
from internalize.agents.isr_metrics import isr_metrics, isr_predict_all

CONFIG = IsrConfig(network="mlp", encoding="onehot", holdout_fraction=0.5)
N = 400


def _buffer(paid: np.ndarray, true: np.ndarray):
    obs = jax.random.randint(jax.random.key(3), (N, 9, 9, 4), 0, 11).astype(jnp.uint8)
    return isr_buffer_add(isr_buffer_init(N), obs, jnp.arange(N) % 3, jnp.asarray(paid), true_social=jnp.asarray(true))


def _unreliable(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """True R_s: 0.4 on every 5th transition. Paid: a quarter of those missed, false payments on 10% of the rest,
    Gaussian noise (sd 0.3) on every payment."""
    rng = np.random.default_rng(seed)
    true = np.where(np.arange(N) % 5 == 0, 0.4, 0.0).astype(np.float32)
    pay = np.where(true > 0, rng.random(N) >= 0.25, rng.random(N) < 0.1)
    paid = np.where(pay, 0.4 + 0.3 * rng.standard_normal(N), 0.0).astype(np.float32)
    return paid, true


def test_true_and_paid_correlations_are_the_direct_ones_on_the_held_out_slots():
    paid, true = _unreliable()
    buffer = _buffer(paid, true)
    params = isr_init_params(CONFIG, jax.random.key(1), (9, 9, 4))
    m = isr_metrics(CONFIG, params, buffer)
    held = np.asarray(config_split(CONFIG, buffer).holdout)
    assert 150 < held.sum() < 250
    pred = np.asarray(isr_predict_all(CONFIG, params, buffer))
    assert float(m["holdout/paid_true_pearson"]) == pytest.approx(np.corrcoef(paid[held], true[held])[0, 1], abs=1e-5)
    assert float(m["holdout/true_pearson"]) == pytest.approx(np.corrcoef(pred[held], true[held])[0, 1], abs=1e-4)
    assert float(m["holdout/pearson"]) == pytest.approx(np.corrcoef(pred[held], paid[held])[0, 1], abs=1e-4)
    assert float(m["holdout/true_pearson"]) != pytest.approx(float(m["holdout/pearson"]), abs=1e-3)


def test_a_hand_made_miss_and_false_payment_give_the_phi_coefficient():
    # A 10-transition pattern repeated: the held-out half holds about 40 of each, and the correlation of two binary
    # variables is the phi coefficient of their 2 x 2 table.
    true = np.tile(np.array([.4, .4, .4, .4, 0, 0, 0, 0, 0, 0], np.float32), N // 10)
    paid = np.tile(np.array([.4, .4, 0, .4, .4, 0, 0, 0, 0, 0], np.float32), N // 10)  # one miss, one false
    m = isr_metrics(CONFIG, isr_init_params(CONFIG, jax.random.key(0), (9, 9, 4)), _buffer(paid, true))
    held = np.asarray(config_split(CONFIG, _buffer(paid, true)).holdout)
    n11 = np.sum(held & (true > 0) & (paid > 0))
    n00 = np.sum(held & (true == 0) & (paid == 0))
    n10 = np.sum(held & (true > 0) & (paid == 0))
    n01 = np.sum(held & (true == 0) & (paid > 0))
    phi = (n11 * n00 - n10 * n01) / np.sqrt((n11 + n10) * (n01 + n00) * (n11 + n01) * (n10 + n00))
    assert float(m["holdout/paid_true_pearson"]) == pytest.approx(phi, abs=1e-5)
    assert 0.5 < phi < 0.7  # 14/24 = 0.583 if the split kept the pattern's proportions exactly


def test_an_exact_caregiver_pays_the_truth_and_any_payment_counts_as_rewarded():
    true = np.where(np.arange(N) % 5 == 0, 0.4, 0.0).astype(np.float32)
    buffer = isr_buffer_add(isr_buffer_init(N), jnp.zeros((N, 9, 9, 4), jnp.uint8), jnp.zeros(N), jnp.asarray(true))
    assert np.array_equal(np.asarray(buffer.true_social), true)  # true_social defaults to what was paid
    m = isr_metrics(CONFIG, isr_init_params(CONFIG, jax.random.key(0), (9, 9, 4)), buffer)
    assert float(m["holdout/paid_true_pearson"]) == pytest.approx(1.0)
    paid = np.array([0.4, -0.05, 0.0, 0.7, 0.0], np.float32)  # a payment noise pushed below zero still counts
    assert np.asarray(rewarded(jnp.asarray(paid))).tolist() == [True, True, False, True, False]
    small = isr_buffer_add(isr_buffer_init(5), jnp.zeros((5, 9, 9, 4), jnp.uint8), jnp.zeros(5), jnp.asarray(paid))
    sampler = balanced_sampler(small, jnp.ones(5, bool))
    assert int(sampler.n_pos) == 3 and int(sampler.n_neg) == 2
