"""Seeds over worker processes (``benchmarks/parallel.py``): results in seed order, independent of the worker that
ran them."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np
import pytest

from internalize.agents.ppo import PPOConfig, make_train
from internalize.worlds.navigation import Navigation, make_params

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from parallel import run_seeds  # noqa: E402  (a benchmark's module, not the library's)

pytestmark = pytest.mark.expensive  # end-to-end runs: in make test, not make test-fast

CONFIG = PPOConfig(n_steps=16, n_envs=2, batch_size=16, n_epochs=1, learning_rate=1e-3, torso="mlp")
FACTORY = functools.partial(make_train, CONFIG, Navigation(), make_params(n_blocks=3))


@pytest.mark.timeout(300)
def test_two_worker_processes_return_seeds_in_order_and_deterministically():
    # Blocks: worker 0 runs seeds [3, 4], worker 1 runs [3]: seed 3 is run by both.
    out = run_seeds([3, 4, 3], FACTORY, 3, processes=2, timeout_s=240)
    m = out["metrics"]
    assert m["policy_loss"].shape == (3, 3) and len(out["states"]) == 3
    for name, values in m.items():
        np.testing.assert_array_equal(values[0], values[2], err_msg=name)  # same seed, other process
    assert not np.array_equal(m["policy_loss"][0], m["policy_loss"][1])
    assert m["steps"][1].tolist() == [32, 64, 96]
    assert int(out["states"][1].steps) == 96


def test_bad_arguments_are_rejected_before_spawning():
    with pytest.raises(ValueError, match="seeds"):
        run_seeds([], FACTORY, 1)
    with pytest.raises(ValueError, match="processes"):
        run_seeds([1], FACTORY, 1, processes=-1)
    with pytest.raises(ValueError, match="num_rollouts"):
        run_seeds([1], FACTORY, 0)
