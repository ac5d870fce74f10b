"""The per-core layout: one worker process per core, each seed its own run, gathered into one table.

Its seeds' numbers must not depend on how many processes ran them (nor on a kill and a resume), its workers must
die with the run, a directory keeps its layout, and ``play --from`` finds the per-core run's learners.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest

from internalize.experiments.layout import layout_of, one_seed, seed_root, trained
from internalize.experiments.results import KEY_COLUMNS
from internalize.experiments.runner import Runner

SEEDS = (3, 4)  # two: on two processes each seed has its own, on one the second follows the first

SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from test_layout import experiment
    from internalize.experiments.layout import run_per_core
    run_per_core(experiment(), sys.argv[1], processes=int(sys.argv[2]), checkpoint_seconds=0.0)
    """
)


def _start(out: Path, processes: int, env: dict) -> subprocess.Popen:
    script = SCRIPT.format(tests=str(Path(__file__).parent))
    return subprocess.Popen([sys.executable, "-c", script, str(out), str(processes)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def experiment():
    """The tiny fig4a the test runs (in its subprocesses, too): long enough an autonomy to be killed during it."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_experiments import tiny

    return tiny("fig4a", seeds=SEEDS, autonomy_steps=4 * 32 * 40, chunk_rollouts=1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _outlived(pids: list[int], seconds: float) -> list[int]:
    """The processes of ``pids`` still alive after waiting up to ``seconds`` for all of them to die."""
    deadline = time.time() + seconds
    while time.time() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def _worker_pids(out: Path) -> list[int]:
    """The PIDs holding the seeds' locks (a lock file names its holder: 'pid N on HOST, since ...')."""
    pids = []
    for lock in (out / ".per-core").glob("seed-*/.fig4a.lock"):
        text = lock.read_text().split()
        if len(text) > 1 and text[0] == "pid":
            pids.append(int(text[1]))
    return pids


@pytest.mark.expensive
def test_per_core_table_is_the_same_on_one_or_two_processes_and_after_a_kill(tmp_path):
    env = dict(os.environ)
    one = _start(tmp_path / "one", 1, env)
    out, _ = one.communicate(timeout=900)
    assert one.returncode == 0, out
    assert "2/2 seeds done" in out and "2 seeds on 1 process)" in out, out

    # Two processes, killed without warning once a seed's autonomy has checkpointed, then resumed.
    killed = _start(tmp_path / "two", 2, env)
    deadline = time.time() + 600
    partials = tmp_path / "two" / ".per-core"
    while time.time() < deadline and killed.poll() is None:
        if list(partials.glob("seed-*/fig4a/checkpoints/autonomy-*/partial.ckpt")):
            break
        time.sleep(0.01)
    assert killed.poll() is None, "the run finished before it could be killed; make it longer"
    workers = _worker_pids(tmp_path / "two")
    assert workers, "no worker held a seed's lock"
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    # The workers die with the run (no orphan goes on writing the seeds' directories).
    assert not _outlived(workers, 30), workers
    assert not (tmp_path / "two" / "fig4a" / "results.parquet").exists()

    resumed = _start(tmp_path / "two", 2, env)
    out, _ = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, out
    assert "resuming after rollout" in out, out

    a = pd.read_parquet(tmp_path / "one" / "fig4a" / "results.parquet")
    b = pd.read_parquet(tmp_path / "two" / "fig4a" / "results.parquet")
    assert sorted(a["seed"].unique()) == list(SEEDS)
    assert set(a["condition"]) == {"caregiver", "none", "isr"}
    assert not b.duplicated(list(KEY_COLUMNS)).any(), "nothing was written twice"
    pd.testing.assert_frame_equal(a, b)
    # The gathered table is the seeds' own tables, row for row.
    for s in SEEDS:
        own = pd.read_parquet(seed_root(tmp_path / "one", s) / "fig4a" / "results.parquet")
        pd.testing.assert_frame_equal(a[a["seed"] == s].reset_index(drop=True), own.reset_index(drop=True))

    # The run's learners, gathered in seed order (what `play --from` and the GIFs load).
    exp = experiment()
    assert layout_of(tmp_path / "one", "fig4a") == "per-core"
    finals = trained(exp, tmp_path / "one")
    for i, s in enumerate(SEEDS):
        own = Runner(one_seed(exp, s), seed_root(tmp_path / "one", s), progress=False, log=lambda _: None).trained()
        for key, params in own.items():
            for x, y in zip(jax.tree.leaves(finals[key]), jax.tree.leaves(params), strict=True):
                np.testing.assert_array_equal(np.asarray(x)[i], np.asarray(y)[0])

    # A directory keeps its layout: the vmap runner refuses a per-core directory before computing anything.
    with pytest.raises(ValueError, match="run with --layout per-core, not vmap"):
        Runner(exp, tmp_path / "one", progress=False, log=lambda _: None).run()

    # `internalize clean` frees the seeds' checkpoints too, and keeps every table.
    from internalize.experiments.clean import clean

    assert list((tmp_path / "one" / ".per-core").glob("seed-*/fig4a/checkpoints/*"))
    done = clean(tmp_path / "one", log=lambda _: None)
    assert sorted(done.cleaned) == [f".per-core/seed-{s}/fig4a" for s in SEEDS] + ["fig4a"] and done.freed > 0
    assert not list((tmp_path / "one" / ".per-core").glob("seed-*/fig4a/checkpoints"))
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "one" / "fig4a" / "results.parquet"), a)


def test_the_empathy_study_says_it_ignores_the_layout(tmp_path, monkeypatch):
    import internalize.experiments.reproduce as rep

    ran = []
    monkeypatch.setattr(rep, "run_empathy", lambda study, out, **kwargs: ran.append(study.name) or pd.DataFrame())
    logs: list[str] = []
    study = rep.resolve("empathy", "quick", seed_offset=0)
    rep.run_many([study], tmp_path, layout="per-core", log=logs.append)
    assert ran == ["empathy"]
    assert logs[0] == "note: --layout per-core ignored: the empathy study runs its seeds as one vmapped program.", logs


def test_a_workers_progress_counts_environment_steps_not_isr_updates(monkeypatch):
    import multiprocessing

    import internalize.experiments.executor as executor
    import internalize.experiments.layout as layout
    import internalize.experiments.local_executor as local

    steps = multiprocessing.Value("d", 0.0)
    monkeypatch.setattr(executor, "_step_sink", local.adder(steps))  # as a local worker counts
    progress = layout._Counted()
    with progress.task("fig4a/socialization", total=2048) as bar:
        bar.advance(2048)
    with progress.task("fig4a/isr (isr)", total=1843, unit="updates") as bar:
        bar.advance(1843)
    assert steps.value == 2048
