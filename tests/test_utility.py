"""The learner's utility (social/utility.py): each mode's formula on hand-made channel values, and bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.social.utility import MODES, UtilityConfig, utility
from internalize.worlds.base import Channels

COST = 0.045


def _channels(extrinsic, social, event) -> Channels:
    return Channels(jnp.asarray(extrinsic, jnp.float32), jnp.asarray(social, jnp.float32), jnp.asarray(event))


# Three kinds of step: a forward (cost, no social reward), the goal step (no cost, social reward), a turn.
FORWARD = _channels(-COST, 0.0, False)
GOAL = _channels(0.0, 0.4, True)
TURN = _channels(0.0, 0.0, False)


def _u(mode, ch, presence, internal, **kw) -> float:
    return float(utility(UtilityConfig(mode=mode, **kw), ch, jnp.asarray(presence), jnp.float32(internal)))


def test_additive_is_the_papers_formula():
    for ch, r_e, r_s in ((FORWARD, -COST, 0.0), (GOAL, 0.0, 0.4), (TURN, 0.0, 0.0)):
        for r_i in (-0.1, 0.0, 0.37):
            assert _u("additive", ch, True, r_i) == pytest.approx(r_e + r_s)
            assert _u("additive", ch, False, r_i) == pytest.approx(r_e + r_i)
            # A presence probability mixes the two: R_e + P R_s + (1 - P) R_i.
            assert _u("additive", ch, 0.25, r_i) == pytest.approx(r_e + 0.25 * r_s + 0.75 * r_i)
    # Without an ISR (R_i = 0) an absent caregiver leaves only the step costs.
    assert _u("additive", GOAL, False, 0.0) == 0.0 and _u("additive", FORWARD, False, 0.0) == pytest.approx(-COST)


def test_additive_reference_keeps_the_step_cost_on_the_goal_step_while_absent():
    assert _u("additive-reference", GOAL, False, 0.38) == pytest.approx(-COST + 0.38)
    assert _u("additive-reference", FORWARD, False, 0.01) == pytest.approx(-COST + 0.01)
    assert _u("additive-reference", TURN, False, 0.02) == pytest.approx(0.02)
    assert _u("additive-reference", GOAL, True, 0.38) == pytest.approx(0.4)  # present: 0.4 replaces the cost
    assert _u("additive-reference", GOAL, False, 0.38, step_cost=0.1) == pytest.approx(0.28)


def test_threshold_replace_uses_the_isr_only_above_the_threshold():
    # Absent and the ISR fires: its value replaces the extrinsic reward (the cost is not added).
    assert _u("threshold-replace", FORWARD, False, 0.35) == pytest.approx(0.35)
    assert _u("threshold-replace", GOAL, False, 0.35) == pytest.approx(0.35)
    # Absent, below (or at) the threshold: the reference's extrinsic reward, cost included on the goal step.
    assert _u("threshold-replace", FORWARD, False, 0.15) == pytest.approx(-COST)
    assert _u("threshold-replace", TURN, False, 0.2) == 0.0
    assert _u("threshold-replace", GOAL, False, 0.1) == pytest.approx(-COST)
    # Present: the caregiver's reward, whatever the ISR says.
    assert _u("threshold-replace", GOAL, True, 0.0) == pytest.approx(0.4)
    assert _u("threshold-replace", FORWARD, True, 0.9) == pytest.approx(-COST)
    # The threshold is configurable.
    assert _u("threshold-replace", FORWARD, False, 0.15, threshold=0.1) == pytest.approx(0.15)


def test_replace_discards_everything_but_the_isr_while_absent():
    for ch in (FORWARD, GOAL, TURN):
        assert _u("replace", ch, False, 0.123) == pytest.approx(0.123)
        assert _u("replace", ch, False, -0.05) == pytest.approx(-0.05)
    assert _u("replace", GOAL, True, 0.123) == pytest.approx(0.4)
    assert _u("replace", FORWARD, True, 0.123) == pytest.approx(-COST)


def test_inputs_broadcast_and_jit():
    ch = _channels([-COST, 0.0, 0.0, -COST], [0.0, 0.4, 0.0, 0.0], [False, True, False, False])
    presence = jnp.array([True, True, False, False])
    internal = jnp.array([0.5, 0.5, 0.3, 0.1])
    fn = jax.jit(lambda c, p, i: utility("additive", c, p, i))
    np.testing.assert_allclose(fn(ch, presence, internal), [-COST, 0.4, 0.3, -COST + 0.1], rtol=1e-6)
    # A scalar presence and internal reward broadcast over a batch of channels; a (seeds, steps) batch works too.
    out = utility(UtilityConfig("replace"), ch, False, 0.2)
    assert out.shape == (4,) and out.dtype == jnp.float32
    np.testing.assert_allclose(out, 0.2)
    grid2 = utility("threshold-replace", ch, jnp.zeros((3, 1), bool), jnp.full((3, 4), 0.3))
    assert grid2.shape == (3, 4)


def test_bad_input_names_the_field_and_the_allowed_values():
    with pytest.raises(ValueError, match="mode: must be one of additive, additive-reference"):
        UtilityConfig(mode="multiplicative")
    with pytest.raises(ValueError, match="mode: .*got 'nope'"):
        utility("nope", FORWARD, True, 0.0)
    with pytest.raises(ValueError, match="threshold: must be a finite number"):
        UtilityConfig(mode="threshold-replace", threshold=float("nan"))
    with pytest.raises(ValueError, match="step_cost: must be >= 0"):
        UtilityConfig(step_cost=-0.045)
    assert set(MODES) == {"additive", "additive-reference", "threshold-replace", "replace"}
