"""The world layer imports and steps with only what stepping a world needs: NumPy, JAX (with flax) and Gymnasium.

The Stable-Baselines3 benchmark (``benchmarks/sb3_peer.py``) drives our Gymnasium adapter from its own environment,
which has none of the package's analysis dependencies; a world module that imported pandas (as ``storage`` once did
at its top, for its Parquet helpers) broke it unseen. Here a fresh interpreter is started with those dependencies
made unimportable before anything is imported, then every world module is imported (and, in the expensive test,
each Gymnasium env is reset, stepped and rendered, which runs the modules' function-local imports too).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

#: The package's dependencies that no world needs (the SB3 benchmark's environment has none of them).
NOT_FOR_WORLDS = ("pandas", "pyarrow", "matplotlib", "statsmodels", "typer")

_CHILD = textwrap.dedent("""
    import importlib, importlib.abc, json, pkgutil, sys

    BLOCKED = set(sys.argv[1].split(","))

    class Unimportable(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (made unimportable)", name=name)
            return None

    sys.meta_path.insert(0, Unimportable())
    import internalize.worlds
    import internalize.worlds.gym as gym_adapter

    modules = [m.name for m in pkgutil.iter_modules(internalize.worlds.__path__, "internalize.worlds.")]
    for name in modules + ["internalize.worlds.peer"]:
        importlib.import_module(name)
    frames = {}
    if sys.argv[2] == "step":
        for cls in (gym_adapter.NavigationEnv, gym_adapter.ProsocialEnv, gym_adapter.PeerEnv):
            env = cls(render_mode="rgb_array")
            env.reset(seed=0)
            for _ in range(3):
                env.step(env.action_space.sample())
            frames[cls.__name__] = list(env.render().shape)
    try:  # the blocker works: otherwise the imports above proved nothing
        import pandas  # noqa: F401
        blocked = False
    except ModuleNotFoundError:
        blocked = True
    print(json.dumps({"modules": modules, "frames": frames, "blocked": blocked,
                      "loaded": sorted({m.partition(".")[0] for m in sys.modules} & BLOCKED)}))
""")


def _run_child(mode: str) -> dict:
    """Run the child in a fresh interpreter (``mode``: "import" or "step"); its JSON line, or fail with its error."""
    done = subprocess.run([sys.executable, "-c", _CHILD, ",".join(NOT_FOR_WORLDS), mode], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["blocked"], "the child could still import pandas: the test blocked nothing"
    assert out["loaded"] == [], out["loaded"]
    assert {"internalize.worlds.gym", "internalize.worlds.prosocial_layouts", "internalize.worlds.render"} <= set(
        out["modules"]), out["modules"]
    return out


def test_every_world_module_imports_without_pandas_pyarrow_or_the_analysis_stack():
    assert _run_child("import")["frames"] == {}


@pytest.mark.expensive  # compiles three worlds' reset and step in a subprocess
def test_every_gymnasium_env_steps_and_renders_without_pandas_pyarrow_or_the_analysis_stack():
    frames = _run_child("step")["frames"]
    assert set(frames) == {"NavigationEnv", "ProsocialEnv", "PeerEnv"}, frames
    assert all(len(shape) == 3 and shape[-1] == 3 for shape in frames.values()), frames
