"""The ``ray`` backend, on Ray clusters the tests start on this machine (``ray.cluster_utils.Cluster``, bound to
127.0.0.1): the same table as the local ``per-core`` run, cell for cell, on one node or two; a worker killed in the
middle of a seed is retried and resumes from its checkpoint; a task's own error is raised as itself, once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest

from internalize.experiments.executor import RAY_INSTALL, Task
from internalize.experiments.layout import run_per_core, seed_root
from internalize.experiments.results import KEY_COLUMNS, ResultsStore

sys.path.insert(0, str(Path(__file__).parent))
# Ray starts its nodes with subprocess (fork, then exec at once): not the fork JAX warns about.
pytestmark = pytest.mark.filterwarnings("ignore:os.fork.. was called:RuntimeWarning")


def _quiet(_: str) -> None:
    pass


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    """A function that starts a Ray cluster of nodes with the given CPUs (the first is the head), bound to
    127.0.0.1, with Ray's token and usage stats kept out of the home directory; shut down after the test."""
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # every node on 127.0.0.1
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "ray-token"))
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("RAY_worker_niceness", "0")  # the nodes' workers at normal priority, as the README says
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    import ray
    from ray.cluster_utils import Cluster

    started: list[Cluster] = []

    def start(*cpus: int) -> Cluster:
        c = Cluster(initialize_head=True, head_node_args={"num_cpus": cpus[0]})
        for n in cpus[1:]:
            c.add_node(num_cpus=n)
        c.wait_for_nodes()
        started.append(c)
        return c

    yield start
    if ray.is_initialized():
        ray.shutdown()
    for c in started:
        c.shutdown()


def _executor(address: str):
    from internalize.experiments.ray_executor import RayExecutor

    return RayExecutor(address=address)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """The experiment the tests run (a tiny fig4a, long enough an autonomy to be stopped during it), its table under
    the local ``per-core`` layout (the reference every Ray run must equal cell for cell) and that run's directory."""
    from test_layout import experiment

    exp = experiment()
    out = tmp_path_factory.mktemp("local")
    return exp, run_per_core(exp, out, processes=2, progress=False, log=_quiet, checkpoint_seconds=0.0), out


def _interrupt(exp, out: Path, ex, stop) -> tuple[pd.DataFrame, int]:
    """Run ``exp`` into ``out`` on ``ex`` in a thread; once a seed has a partial checkpoint of its autonomy, call
    ``stop(seed_dir)``; returns the finished table and the seed that was stopped."""
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(df=run_per_core(
        exp, out, executor=ex, progress=False, log=_quiet, checkpoint_seconds=0.0)))
    thread.start()
    deadline, partial = time.time() + 600, None
    while time.time() < deadline and thread.is_alive() and partial is None:
        partial = next(iter(out.glob(".per-core/seed-*/fig4a/checkpoints/autonomy-*/partial.ckpt")), None)
        time.sleep(0.01)
    assert partial is not None and thread.is_alive(), "the run finished before it could be stopped; make it longer"
    seed_dir = partial.parents[3]
    stop(seed_dir)
    thread.join(timeout=900)
    assert "df" in result, "the run did not finish"
    assert not result["df"].duplicated(list(KEY_COLUMNS)).any()
    return result["df"], int(seed_dir.name.split("-")[1])


def _nodes(out: Path, seed: int) -> list[str]:
    """The node of each start of ``seed``'s task, from its journal."""
    return [line.split()[1] for line in (seed_root(out, seed) / ".fig4a.attempts").read_text().splitlines()]


@pytest.mark.expensive
def test_two_nodes_take_one_seed_each_and_a_killed_worker_is_retried_and_resumes(tmp_path, cluster, local, capfd):
    exp, table, _ = local
    # A head without CPUs and two worker nodes of one CPU each: each seed's task fits on one worker node only.
    ex = _executor(cluster(0, 1, 1).address)
    out = tmp_path / "ray"

    def kill(seed_dir: Path) -> None:  # the seed's Ray worker (its lock names it), without warning
        holder = (seed_dir / ".fig4a.lock").read_text().split()
        assert holder[0] == "pid", holder
        os.kill(int(holder[1]), signal.SIGKILL)

    df, killed = _interrupt(exp, out, ex, kill)
    pd.testing.assert_frame_equal(table, df)
    manifest = ResultsStore(out, "fig4a").read_manifest()
    assert manifest["seed_attempts"] == {str(s): 2 if s == killed else 1 for s in exp.seeds}
    assert "resuming after rollout" in capfd.readouterr().err
    # The first attempts ran side by side, one seed on each worker node.
    assert len({_nodes(out, s)[0] for s in exp.seeds}) == 2


@pytest.mark.expensive
def test_a_node_removed_mid_task_has_its_task_retried_on_another_node(tmp_path, cluster, local):
    exp, table, _ = local
    c = cluster(0, 1, 1)
    ex = _executor(c.address)
    out = tmp_path / "ray"

    def remove(seed_dir: Path) -> None:
        node_id = _nodes(out, int(seed_dir.name.split("-")[1]))[0]
        [node] = [n for n in c.worker_nodes if n.node_id == node_id]
        c.remove_node(node, allow_graceful=False)

    df, moved = _interrupt(exp, out, ex, remove)
    pd.testing.assert_frame_equal(table, df)
    nodes = _nodes(out, moved)
    assert len(nodes) == 2 and nodes[0] != nodes[-1], nodes
    assert ResultsStore(out, "fig4a").read_manifest()["seed_node"][str(moved)] == nodes[-1]


def _nan_task(journal: str) -> None:
    """A task whose own error is a NaN: it must be raised as itself, and the task never retried."""
    raise FloatingPointError("fig4a/socialization: non-finite value_loss at rollout 3")


@pytest.mark.expensive
def test_a_tasks_own_error_stops_the_run_as_itself_without_a_retry(tmp_path, cluster):
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module
    ex = _executor(cluster(1).address)
    journal = tmp_path / "journal"
    task = Task("nan", _nan_task, (str(journal),), journal)
    with pytest.raises(FloatingPointError, match=r"^fig4a/socialization: non-finite value_loss at rollout 3$"):
        ex.run([task], label="t", progress=False, log=_quiet, cache_dir=tmp_path / "cache")
    assert len(journal.read_text().splitlines()) == 1, "the task was retried"


def test_backend_ray_without_ray_installed_is_one_line_exit_2(tmp_path):
    script = textwrap.dedent("""
        import sys
        sys.modules["ray"] = None  # as if Ray were not installed
        from internalize.cli import app
        app(["run", "fig4a", "--layout", "per-core", "--backend", "ray", "--out", sys.argv[1]])
    """)
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "out")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr == f"error: {RAY_INSTALL}\n" and done.stdout == ""
    assert not (tmp_path / "out").exists()


def test_ray_settings_without_backend_ray_and_bad_ones_are_one_line_exit_2(tmp_path):
    from typer.testing import CliRunner

    from internalize.cli import app

    for args, message in ((["--address", "auto"], "--address: only with --backend ray"),
                          (["--backend", "spark"], "--backend: unknown backend 'spark'; allowed: local | ray"),
                          (["--backend", "ray", "--cpus-per-task", "-1"], "--cpus-per-task: must be a number >= 0"),
                          (["--no-shared-fs"], "--no-shared-fs: only with --backend ray"),
                          (["--backend", "ray", "--return-states"], "--return-states: only with --no-shared-fs")):
        result = CliRunner().invoke(app, ["run", "fig4a", "--out", str(tmp_path / "out"), *args])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"error: {message}") and result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.expensive
def test_a_two_by_two_sweep_on_ray_is_one_table_its_shared_socialization_computed_once(tmp_path, cluster):
    from internalize.experiments.sweep import POINTS_DIR, load_sweep, run_sweep
    from internalize.schema import COLUMNS
    from test_sweep import _file

    path = _file(tmp_path, conditions='["isr"]')
    path.write_text(path.read_text().replace("seeds = [3, 4]", "seeds = [3]"))  # 4 tasks on 2 CPUs
    plan = load_sweep(path, ["caregiver.noise=0,0.3", "isr.learning_rate=1e-3,3e-3"])
    ex = _executor(cluster(2).address)
    progress: list[str] = []
    table = run_sweep(plan, tmp_path / "out", layout="per-core", executor=ex, progress=True, log=progress.append)
    # The progress line counts the tasks' environment steps, added up on the cluster.
    counted = [m for m in progress if "4/4 seeds done" in m and " env steps" in m]
    assert counted and int(counted[-1].split(" running, ")[1].split(" env steps")[0].replace(",", "")) > 0, progress
    assert list(table.columns) == [*COLUMNS, "caregiver.noise", "isr.learning_rate"]
    assert len(table.groupby(["caregiver.noise", "isr.learning_rate", "seed"]).size()) == 4
    assert not table.duplicated([*KEY_COLUMNS, "caregiver.noise", "isr.learning_rate"]).any()
    # All 4 seed tasks went out at once; per seed and noise one point computed the socialization (the ISR's learning
    # rate does not change it) and the other took it from the seed's shared units, even when both ran at once.
    points = tmp_path / "out" / "grid" / POINTS_DIR
    for seed in (3,):
        computed = {}
        for p in plan.points:
            timings = ResultsStore(seed_root(points, seed), p.name).read_manifest()["timings"]
            computed.setdefault(dict(p.values)["caregiver.noise"], []).append(timings["socialization"] > 0)
        assert all(sorted(flags) == [False, True] for flags in computed.values()), (seed, computed)
    logged: list[str] = []
    again = run_sweep(plan, tmp_path / "out", layout="per-core", executor=ex, progress=False, log=logged.append)
    assert sum("complete" in m and "skipped" in m for m in logged) == 4, logged
    pd.testing.assert_frame_equal(again, table)



DRIVER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from test_layout import experiment
    from internalize.experiments.layout import run_per_core
    from internalize.experiments.ray_executor import RayExecutor
    run_per_core(experiment(), sys.argv[1], executor=RayExecutor(address=sys.argv[2]), checkpoint_seconds=0.0)
""")


@pytest.mark.expensive
def test_a_killed_driver_takes_its_tasks_with_it_and_a_rerun_resumes_to_the_local_table(tmp_path, cluster, local):
    from test_layout import _outlived, _worker_pids

    exp, table, _ = local
    c = cluster(2)
    out = tmp_path / "ray"

    def start() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", DRIVER.format(tests=str(Path(__file__).parent)), str(out),
                                 c.address], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    driver = start()
    deadline, partial = time.time() + 600, None
    while time.time() < deadline and driver.poll() is None and partial is None:
        partial = next(iter(out.glob(".per-core/seed-*/fig4a/checkpoints/autonomy-*/partial.ckpt")), None)
        time.sleep(0.01)
    assert partial is not None and driver.poll() is None, "the run finished before it could be killed"
    workers = _worker_pids(out)
    assert workers, "no worker held a seed's lock"
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    assert not _outlived(workers, 60), "a task outlived its driver"
    assert not (out / "fig4a" / "results.parquet").exists()

    # The rerun resumes; on one node with 2 CPUs the Ray table is the local per-core one, cell for cell.
    again = start()
    log, _ = again.communicate(timeout=900)
    assert again.returncode == 0, log
    assert "resuming after rollout" in log, log
    remote = pd.read_parquet(out / "fig4a" / "results.parquet")
    pd.testing.assert_frame_equal(table, remote)
    manifest = ResultsStore(out, "fig4a").read_manifest()
    assert manifest["backend"] == "ray" and manifest["layout"] == "per-core" and manifest["address"] == c.address
    assert manifest["seed_attempts"] == {"3": 1, "4": 1}  # starts of this run (the killed run's are not counted)
    assert len(set(manifest["seed_node"].values())) == 1
    logged: list[str] = []
    from internalize.experiments.ray_executor import RayExecutor

    run_per_core(exp, out, executor=RayExecutor(address=c.address), progress=False, log=logged.append)
    assert any("complete" in m and "skipped" in m for m in logged), logged


@pytest.mark.expensive
def test_a_vmap_experiment_on_ray_is_one_task_and_gives_the_local_vmap_table(tmp_path, cluster):
    from internalize.experiments.layout import run_all
    from internalize.experiments.ray_executor import RayExecutor
    from internalize.experiments.runner import Runner
    from test_experiments import tiny

    exp = tiny("fig4a")
    here = Runner(exp, tmp_path / "local", progress=False, log=_quiet).run()
    ex = RayExecutor(address=cluster(2).address, cpus_per_task=2)  # one task with the node's CPUs
    [remote] = run_all([(exp, tmp_path / "ray")], layout="vmap", executor=ex, progress=False, log=_quiet)
    pd.testing.assert_frame_equal(here, remote)
    assert ResultsStore(tmp_path / "ray", "fig4a").read_manifest()["layout"] == "vmap"
    assert len((tmp_path / "ray" / ".fig4a.attempts").read_text().splitlines()) == 1


def test_a_worker_with_other_code_than_the_driver_refuses_the_task(tmp_path):
    from internalize.experiments.ray_executor import VersionMismatch, _ray_call, code_version

    journal = tmp_path / "journal"
    task = Task("t", _nan_task, (str(journal),), journal)
    version, commit = code_version()
    with pytest.raises(VersionMismatch, match=r"runs internalize .* the driver 0\.0\.0 \(commit abc\)"):
        _ray_call(task, "run", ("0.0.0", "abc"))
    with pytest.raises(VersionMismatch, match="commit elsewhere"):
        _ray_call(task, "run", (version, "elsewhere"))
    assert not journal.exists(), "a refused task never starts"
    with pytest.raises(FloatingPointError):  # the same code: the task runs
        _ray_call(task, "run", (version, commit))
    assert len(journal.read_text().splitlines()) == 1


@pytest.mark.expensive
def test_without_a_shared_filesystem_tasks_send_their_tables_back_and_states_only_when_asked(tmp_path, cluster,
                                                                                            local):
    import shutil

    from internalize.experiments.layout import trained
    from internalize.experiments.ray_executor import RayExecutor

    exp, table, local_dir = local
    address = cluster(2).address
    out = tmp_path / "tables"
    df = run_per_core(exp, out, executor=RayExecutor(address=address, shared_fs=False), progress=False, log=_quiet)
    pd.testing.assert_frame_equal(table, df)
    # The workers ran in their own scratch space: no lock, journal or trained state of theirs in OUT.
    assert not list(out.glob(".per-core/seed-*/.fig4a.*")) and not list(out.rglob("*.ckpt"))
    assert ResultsStore(out, "fig4a").read_manifest()["shared_fs"] is False
    # A seed finished here is not sent out again: only the gathering is redone.
    shutil.rmtree(out / "fig4a")
    again = run_per_core(exp, out, executor=RayExecutor(address=address, shared_fs=False), progress=False,
                         log=_quiet)
    pd.testing.assert_frame_equal(table, again)
    assert ResultsStore(out, "fig4a").read_manifest()["seed_attempts"] == {}
    # Asked for, the trained states come back too: play --from and the GIFs load them.
    states = tmp_path / "states"
    run_per_core(exp, states, executor=RayExecutor(address=address, shared_fs=False, return_states=True),
                 progress=False, log=_quiet)
    here = trained(exp, local_dir)
    for key, params in trained(exp, states).items():
        for x, y in zip(jax.tree.leaves(params), jax.tree.leaves(here[key]), strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_the_workers_environment_follows_the_tasks_resources(tmp_path, monkeypatch):
    from internalize.experiments.executor import WORKER_XLA_FLAGS
    from internalize.experiments.ray_executor import RayExecutor

    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=0")
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "driver-cache"))

    def env(gpus: float, single_thread: bool = True) -> dict[str, str]:
        ex = object.__new__(RayExecutor)  # the settings alone, without starting Ray
        ex.gpus_per_task = gpus
        return ex._env(tmp_path / "cache", single_thread)

    cpu = env(0)
    assert cpu["JAX_PLATFORMS"] == "cpu" and "XLA_PYTHON_CLIENT_PREALLOCATE" not in cpu
    assert cpu["XLA_FLAGS"] == f"--xla_backend_optimization_level=0 {WORKER_XLA_FLAGS}"
    assert cpu["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "driver-cache")  # the driver's path, on every node
    assert env(0, single_thread=False)["XLA_FLAGS"] == "--xla_backend_optimization_level=0"  # a vmap experiment
    shared = env(0.25)
    assert shared["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false" and "JAX_PLATFORMS" not in shared
    assert WORKER_XLA_FLAGS not in shared["XLA_FLAGS"]
    assert "XLA_PYTHON_CLIENT_PREALLOCATE" not in env(1)
