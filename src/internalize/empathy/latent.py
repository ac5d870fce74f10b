"""Latent similarity of self and other in a reward model's hidden layer (prediction 1 of the empathy hypothesis).

Inputs are activation matrices of matched stimuli, (n, F) float: row i of every kind comes from the same base
layout (``empathy.probe``), so rows pair up across kinds.

* :func:`self_other_distance`: mean ||h(learner goal)_i - h(peer goal)_i||^2 over the mean squared distance
  between *different* layouts' learner-goal codes (the between-stimulus baseline): 0 = the other's goal event
  has the learner's own code, 1 = as far as an unrelated own goal event.
* :func:`event_alignment`: cos(delta_self, delta_other), delta = mean h(goal) - mean h(near) of that agent: 1 = the
  goal event moves the code in the same direction whoever acts, 0 = orthogonal directions.
* :func:`linear_cka`: debiased linear CKA (the unbiased HSIC estimator of Song et al. 2012, as in Kornblith et
  al. 2019) between the learner-goal and peer-goal codes: 1 = the two sets have the same representational
  geometry up to rotation and scale, about 0 = unrelated.
"""

from __future__ import annotations

import numpy as np


def _matrix(x: object, name: str) -> np.ndarray:
    a = np.asarray(x, np.float64)
    if a.ndim != 2 or a.shape[0] < 4:
        raise ValueError(f"{name}: must be an (n, F) activation matrix with n >= 4, got shape {a.shape}.")
    return a


def self_other_distance(self_goal: object, other_goal: object) -> float:
    """Mean paired squared distance over the mean between-layout distance of the self codes; NaN if the self
    codes are all equal (no baseline)."""
    a, b = _matrix(self_goal, "self_goal"), _matrix(other_goal, "other_goal")
    if a.shape != b.shape:
        raise ValueError(f"other_goal: shape {b.shape} differs from self_goal's {a.shape}.")
    paired = np.mean(np.sum(np.square(a - b), axis=1))
    n = a.shape[0]
    sq = np.sum(a * a, axis=1)
    between = (sq[:, None] + sq[None, :] - 2 * a @ a.T).clip(min=0)
    baseline = between.sum() / (n * (n - 1))
    return float(paired / baseline) if baseline > 0 else float("nan")


def event_alignment(self_goal: object, self_near: object, other_goal: object, other_near: object) -> float:
    """cos(mean self_goal - mean self_near, mean other_goal - mean other_near); NaN if either direction is 0."""
    d_self = _matrix(self_goal, "self_goal").mean(0) - _matrix(self_near, "self_near").mean(0)
    d_other = _matrix(other_goal, "other_goal").mean(0) - _matrix(other_near, "other_near").mean(0)
    norm = np.linalg.norm(d_self) * np.linalg.norm(d_other)
    return float(d_self @ d_other / norm) if norm > 0 else float("nan")


def _unbiased_hsic(k: np.ndarray, ell: np.ndarray) -> float:
    n = k.shape[0]
    k, ell = k.copy(), ell.copy()
    np.fill_diagonal(k, 0.0)
    np.fill_diagonal(ell, 0.0)
    ones = np.ones(n)
    term = np.sum(k * ell) + (ones @ k @ ones) * (ones @ ell @ ones) / ((n - 1) * (n - 2)) \
        - 2.0 / (n - 2) * (ones @ k @ ell @ ones)
    return float(term / (n * (n - 3)))


def linear_cka(x: object, y: object) -> float:
    """Debiased linear CKA between (n, F1) and (n, F2) activations of the same n stimuli; NaN when either set has
    no variance."""
    a, b = _matrix(x, "x"), _matrix(y, "y")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"y: {b.shape[0]} rows, x has {a.shape[0]}; CKA compares the same stimuli.")
    k, ell = a @ a.T, b @ b.T
    hxy, hxx, hyy = _unbiased_hsic(k, ell), _unbiased_hsic(k, k), _unbiased_hsic(ell, ell)
    return float(hxy / np.sqrt(hxx * hyy)) if hxx > 0 and hyy > 0 else float("nan")
