"""Every script in ``benchmarks/`` runs: each is started as a user would start it, at its ``--smoke`` budget, and its
one JSON line on stdout is read and checked.

The benchmarks are not part of the package, so nothing else runs them: an API change under them (a jitted function
that became a plain one) or an import the Stable-Baselines3 environment cannot satisfy (pandas) broke them unseen.
The numbers of a smoke run mean nothing; what is checked is that every piece ran and reported what its docstring
says. The SB3 side needs ``benchmarks/.venv-sb3`` (``bash benchmarks/setup_sb3_env.sh``, about a minute of
downloads): where it is not built, that test is skipped with the reason, and our side is still run (``--no-sb3``).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.expensive  # whole benchmark scripts in subprocesses: in make test, not make test-fast

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
SCRIPT_TIMEOUT_S = 540  # below pytest's 600 s, so a hung script fails with its own output


def run_script(name: str, *args: str) -> dict:
    """Run ``benchmarks/NAME`` with this interpreter; its stdout must be exactly one JSON line, returned parsed."""
    done = subprocess.run([sys.executable, str(BENCHMARKS / name), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=SCRIPT_TIMEOUT_S, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert done.returncode == 0, f"{name} {' '.join(args)}: exit {done.returncode}\n{done.stderr[-4000:]}"
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"{name}: expected one JSON line on stdout, got {len(lines)}:\n{done.stdout[-2000:]}"
    return json.loads(lines[0])


def sb3_python() -> Path | None:
    """The SB3 environment's python when setup_sb3_env.sh finished building it (its stamp file), else None."""
    venv = Path(os.environ.get("SB3_VENV", BENCHMARKS / ".venv-sb3"))
    python = venv / "bin" / "python"
    return python if python.exists() and any(venv.glob(".ready-*")) else None


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_env_throughput_smoke_measures_every_world_vmapped_and_through_gymnasium():
    out = run_script("env_throughput.py", "--smoke")
    assert out["benchmark"] == "env_throughput" and out["smoke"] is True and out["platform"] == "cpu"
    assert set(out["worlds"]) == {"navigation", "prosocial", "peer"}
    for name, world in out["worlds"].items():
        assert [v["n_envs"] for v in world["vmapped"]] == [1, 64], name
        assert all(_positive(v["env_steps_per_s"]) and _positive(v["compile_s"]) for v in world["vmapped"]), world
        assert world["gym"]["n_steps"] == 50 and _positive(world["gym"]["env_steps_per_s"]), world["gym"]
        assert _positive(world["vs_navigation_64"]), world
    assert out["worlds"]["navigation"]["vs_navigation_64"] == 1.0


def _check_our_side(out: dict, layouts: list[str]) -> None:
    assert out["benchmark"] == "ppo_vs_sb3" and out["smoke"] is True
    assert out["ppo"]["n_steps"] == 64 and out["seeds_compared"] == 2
    # SB3's MlpPolicy has 50,180 parameters (benchmarks/README.md); ours must be the same network.
    assert out["details"]["mlp_network"]["params"] == 50_180
    assert _positive(out["ours_mlp_1_seed_steps_per_s"]) and _positive(out["matmul_ceiling_gflops"])
    assert sorted(out["ours_mlp_10_seeds_by_layout_steps_per_s"]) == sorted(layouts)
    assert all(_positive(v) for v in out["ours_mlp_10_seeds_by_layout_steps_per_s"].values())
    for layout, run in out["details"]["ours_mlp_2_seeds"].items():
        assert run["steps"] == 2 * 1 * 64, (layout, run)  # 2 seeds x 1 rollout x 64 steps
    assert 0 < out["mlp_flop_fraction"] and "cnn_flop_fraction" not in out  # --smoke measures the MLP only


def test_ppo_vs_sb3_smoke_runs_our_side_in_every_layout():
    """Our PPO alone (--no-sb3): one seed, then 2 seeds in each layout, in process and in worker processes."""
    out = run_script("ppo_vs_sb3.py", "--smoke", "--no-sb3")
    _check_our_side(out, ["sequential", "vmap", "procs", "procs-vmap"])
    assert out["sb3"] is False
    assert not [k for k in out if k.startswith(("sb3_", "parity_")) or "ratio" in k], sorted(out)


def test_ppo_vs_sb3_smoke_against_stable_baselines3():
    """The SB3 peer drives our Gymnasium adapter from its own environment (no pandas there), then learning parity."""
    python = sb3_python()
    if python is None:
        pytest.skip("the SB3 environment is not built (benchmarks/.venv-sb3): `bash benchmarks/setup_sb3_env.sh` "
                    "builds it, about a minute of downloads from PyPI")
    out = run_script("ppo_vs_sb3.py", "--smoke", "--sb3-python", str(python), "--layouts", "vmap")
    _check_our_side(out, ["vmap"])  # every layout: the test above
    assert out["sb3"] is True
    assert out["sb3_mlp_policy_params"] == out["details"]["mlp_network"]["params"]
    assert out["details"]["sb3_mlp"]["obs_scaled_by_255"] is True
    assert out["details"]["sb3_mlp"]["steps"] == 64
    assert _positive(out["sb3_mlp_steps_per_s"]) and _positive(out["mlp_ratio_10_seeds_vs_sb3"])
    assert len(out["parity_sb3_goals"]) == len(out["parity_ours_goals"]) == 2
    assert out["parity_config"]["steps_per_seed"] == 2 * 64
    assert out["versions"]["sb3_peer"]["stable_baselines3"]


def test_gpu_paper_preset_smoke_runs_every_unit_of_an_experiment():
    out = run_script("gpu_paper_preset.py", "--smoke")
    assert out["experiment"] == "fig4a" and out["smoke"] is True and out["seeds"] == 2 and out["backend"] == "cpu"
    assert set(out["units"]) == {"socialization", "isr", "autonomy-blocks-3", "evaluation"}, out["units"]
    # 2 seeds x 2 rollouts of 16 envs x 32 steps socializing, then the same for each of fig4a's 3 conditions.
    assert out["env_steps"] == 2 * 1024 * (1 + 3)
    assert _positive(out["env_steps_per_s"]) and _positive(out["wall_s"])


def test_layouts_smoke_runs_an_experiment_under_both_layouts():
    out = run_script("layouts.py", "--smoke")
    assert out["experiment"] == "fig4b" and out["smoke"] is True and out["seeds"] == 2
    for layout in ("vmap", "per-core"):
        assert _positive(out[layout]["wall_s"]) and _positive(out[layout]["env_steps_per_s"]), out[layout]
    assert _positive(out["speedup"])


def test_paper_preset_cpu_smoke_extrapolates_every_paper_experiment():
    from internalize.experiments.paper import EXPERIMENTS

    out = run_script("paper_preset_cpu.py", "--smoke")
    assert out["measured"] == "fig4a" and out["smoke"] is True and out["rollouts"] == [1, 2] and out["seeds"] == 2
    assert set(out["paper_preset_s"]) == set(EXPERIMENTS)
    assert all(isinstance(v, int) for v in out["paper_preset_s"].values()), out["paper_preset_s"]
    assert all(math.isfinite(v) for v in out["rates"].values()), out["rates"]
    for run in ("cold", "warm_short", "warm_long"):
        assert {"socialization", "isr", "evaluation"} <= set(out["units_s"][run]), out["units_s"][run]


def test_a_bad_argument_is_one_clear_line():
    done = subprocess.run([sys.executable, str(BENCHMARKS / "layouts.py"), "--layouts", "vmap,gpu"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "--layouts: got 'vmap,gpu'; allowed: vmap, per-core, per-core@ray, comma-separated."]
