"""internalize: value internalization — learning and generalizing from social reward, in pure JAX.

Implements Rong & Kleiman-Weiner (2024), arXiv 2407.14681: worlds with a caregiver who pays social reward,
a learner that internalizes it with a learnt reward model (the ISR), and the paper's experiments.
"""

__version__ = "0.1.0"

from internalize.worlds.gym_registry import register as _register_gym_ids

_register_gym_ids()  # gymnasium.make("internalize/Navigation-v0") works after ``import internalize``
