"""Departure points that share one socialization: a socialization continues a shorter one of the same run exactly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from internalize.agents.checkpoint import read_checkpoint
from internalize.experiments.runner import run_experiment
from test_experiments import TINY_STEPS, tiny

ROLLOUT = 4 * 32  # the tiny learner's steps per rollout


def _exp(name: str, steps: int):
    return dataclasses.replace(tiny(conditions=("isr",)), name=name, socialization_steps=steps,
                               autonomy_steps=2 * ROLLOUT)


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["phase", "condition", "world", "seed", "metric", "step"]).reset_index(drop=True)


@pytest.mark.expensive
def test_a_socialization_continued_from_a_shorter_one_equals_one_from_scratch(tmp_path, capsys):
    # 3 rollouts, then the same run to 6: the continuation starts off the 2-rollout chunk grid (3 + 2 + 1).
    run_experiment(_exp("short", 3 * ROLLOUT), tmp_path / "shared", progress=False)
    continued = run_experiment(_exp("long", TINY_STEPS), tmp_path / "shared", progress=False)
    assert "continuing the finished 384-step socialization" in capsys.readouterr().out
    scratch = run_experiment(_exp("long", TINY_STEPS), tmp_path / "scratch", progress=False)
    soc = continued[continued["phase"] == "socialization"]
    assert soc["step"].nunique() == TINY_STEPS // ROLLOUT  # every rollout once: no overshoot, no gap
    pd.testing.assert_frame_equal(_sorted(continued), _sorted(scratch))
    # The stored final states (the learner and its whole buffer) are the same numbers, leaf by leaf.
    _, rec_a, arr_a = read_checkpoint(tmp_path / "shared/long/checkpoints/socialization/final.ckpt")
    _, rec_b, arr_b = read_checkpoint(tmp_path / "scratch/long/checkpoints/socialization/final.ckpt")
    assert [r["path"] for r in rec_a] == [r["path"] for r in rec_b]
    for a, b in zip(arr_a, arr_b, strict=True):
        np.testing.assert_array_equal(a, b)
    # ... and the shorter run is the same run stopped early: its rows are the longer one's first rollouts.
    short = run_experiment(_exp("short", 3 * ROLLOUT), tmp_path / "shared", progress=False)
    first = soc[soc["step"] <= 3 * ROLLOUT].assign(experiment="short")
    mine = short[(short["phase"] == "socialization")]
    pd.testing.assert_frame_equal(_sorted(first), _sorted(mine))
