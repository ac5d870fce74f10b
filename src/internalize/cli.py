"""The ``internalize`` command line.

* ``internalize demo --out DIR``: a random and a shortest-path agent in the navigation world, scores and GIFs.
* ``internalize play navigation|prosocial|peer|two-goal --out x.gif``: a scripted agent acting in a world, recorded as a
  GIF; ``internalize play --from OUT/EXPERIMENT``: a trained learner of a finished run.

JAX and the worlds are imported inside the commands, so ``--help`` and ``--version`` answer at once.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from internalize import __version__
from internalize.cli_where import (
    Address,
    Backend,
    CpusPerTask,
    GpusPerTask,
    Layout,
    MaxRetries,
    Processes,
    ReturnStates,
    SharedFs,
    TaskFailed,
    check_layout,
    executor,
    fail,
)
from internalize.worlds.kinds import KINDS, load
from internalize.xla_cache import missing_settings

app = typer.Typer(
    help="Value internalization: learning and generalizing from social reward (Rong & Kleiman-Weiner 2024).",
    no_args_is_help=True,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"internalize {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Run the paper's experiments, your own, and look at the worlds."""
    # Compiled programs are cached on disk, so a second run (or another experiment with the same shapes) starts
    # without recompiling: INTERNALIZE_CACHE_DIR/xla (default ~/.cache/internalize/xla, beside the prosocial
    # layout banks); JAX_COMPILATION_CACHE_DIR wins if set.
    cache = Path(os.environ.get("INTERNALIZE_CACHE_DIR", str(Path.home() / ".cache" / "internalize"))) / "xla"
    os.environ.update(missing_settings(cache))  # two runs at once (or a run and the tests) share it safely


#: Worlds ``internalize play`` can show: every world kind (``worlds.kinds``).
WorldName = Enum("WorldName", {name: name for name in KINDS}, type=str)


class AgentKind(str, Enum):
    """Who acts in ``internalize play``; each kind maps to a policy ``(key, state, params) -> action``."""

    random = "random"
    shortest_path = "shortest-path"


def _nav_params(blocks: int, map_name: str | None):
    """Navigation parameters from command-line values; bad values become a usage error naming the option."""
    from internalize.worlds.navigation import make_params

    try:
        return make_params(n_blocks=blocks, map=map_name)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err


def _scripted_world(world: WorldName, blocks: int | None, map_name: str | None):
    """(env, params) of ``world`` for a scripted agent; an option the world has not is a usage error naming it."""
    record = KINDS[world.value]
    try:
        return record.env(), load(record.make_params)(**record.play(blocks, map_name))
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err


def _scripted_policy(kind: AgentKind | None, world: WorldName, num_actions: int) -> tuple[str, Callable]:
    """(name, policy) of the scripted agent for ``world``: its own scripted agent by default where it has one
    (the shortest path to the goal; to the nearer goal in the two-goal world), random (uniform over the world's
    actions) otherwise."""
    from internalize.agents.scripted import uniform_policy

    scripted = KINDS[world.value].scripted
    if kind is None:
        kind = AgentKind.shortest_path if scripted else AgentKind.random
    if kind is AgentKind.random:
        return kind.value, uniform_policy(num_actions)
    if not scripted:
        raise typer.BadParameter(f"--agent: the {world.value} world has no scripted helper; allowed there: random.")
    return kind.value, load(scripted)


def _episode_frames(trajectory, env: int, tile_size: int, kind: str = "navigation", params=None) -> list:
    """RGB frames of environment ``env`` of a trajectory in a ``kind`` world: the state before each action."""
    import jax

    return KINDS[kind].render(jax.tree.map(lambda x: x[:, env], trajectory.states), tile_size, params)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for random.gif and shortest_path.gif.")],
    episodes: Annotated[int, typer.Option(min=1, max=100_000, help="Episodes per agent.")] = 64,
    blocks: Annotated[int, typer.Option(help="Random blocks per layout (0-8).")] = 3,
    seed: Annotated[int, typer.Option(min=0, help="Root seed; both agents start from the same layouts.")] = 0,
    fps: Annotated[float, typer.Option(min=0.1, max=50, help="GIF frames per second.")] = 4.0,
) -> None:
    """Run a random and a shortest-path agent in the navigation world; print their scores, save one GIF each."""
    import jax
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from internalize.agents.scripted import POLICIES, episode_totals, run_policy_jit
    from internalize.worlds.render import save_gif

    params = _nav_params(blocks, None)
    max_steps = int(params.max_steps)
    key = jax.random.key(seed)
    table = Table(title=f"Navigation, {blocks} random block(s), {episodes} episodes of {max_steps} steps per agent")
    table.add_column("agent")
    table.add_column("goals / episode (mean ± sd)", justify="right")
    table.add_column("caregiver-reward return / episode (mean ± sd)", justify="right")
    written = []
    for name, file_name in (("random", "random.gif"), ("shortest-path", "shortest_path.gif")):
        # The same key for both agents: identical first layouts, a paired comparison.
        trajectory = run_policy_jit(POLICIES[name], key, params, episodes, max_steps)
        goals, returns = (np.asarray(x) for x in episode_totals(trajectory, max_steps))
        table.add_row(
            name, f"{goals.mean():.2f} ± {goals.std():.2f}", f"{returns.mean():+.3f} ± {returns.std():.3f}"
        )
        written.append(save_gif(_episode_frames(trajectory, 0, 32), out / file_name, fps))
    console = Console()
    console.print(table)
    for path in written:
        console.print(f"wrote {path}")


@app.command()
def play(
    world: Annotated[WorldName | None, typer.Argument(
        help="A world for a scripted agent (or give --from for a trained learner).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Where to write the GIF.")] = Path("play.gif"),
    from_run: Annotated[Path | None, typer.Option(
        "--from", help="A finished run, OUT/EXPERIMENT (e.g. runs/fig4a): watch its trained learner.")] = None,
    condition: Annotated[str | None, typer.Option(
        help="With --from: whose learner (a condition of the run, or 'socialization' for the learner the "
             "caregiver left; default isr).")] = None,
    world_name: Annotated[str | None, typer.Option(
        "--world", help="With --from: one of the run's worlds (default: the condition's first).")] = None,
    agent: Annotated[AgentKind | None, typer.Option(help="Who acts (without --from; default shortest-path, or "
                                                          "random in the prosocial world).")] = None,
    steps: Annotated[int, typer.Option(min=1, max=10_000, help="Steps to record (episodes restart).")] = 20,
    map_name: Annotated[
        str | None, typer.Option("--map", help="Navigation, two-goal: a fixed map, plus, x, U, T, four_rooms "
                                               "(default: random blocks).")
    ] = None,
    blocks: Annotated[
        int | None, typer.Option(help="Random blocks per layout: navigation (default 3, or 0 with --map), peer "
                                      "(default 2), two-goal (default 1, or 0 with --map).")
    ] = None,
    seed: Annotated[int | None, typer.Option(
        min=0, help="Root seed of the layouts (default 0); with --from, also which of the run's seeds learned "
                    "(default its first).")] = None,
    fps: Annotated[float, typer.Option(min=0.1, max=50, help="GIF frames per second.")] = 4.0,
    tile_size: Annotated[int, typer.Option(min=4, max=256, help="Pixels per grid cell.")] = 32,
) -> None:
    """Record an agent acting in a world as a GIF: a scripted agent, or a trained learner of a finished run."""
    import jax
    import numpy as np

    from internalize.worlds.render import save_gif

    if (world is None) == (from_run is None):
        fail(ValueError("play: give a WORLD for a scripted agent or --from OUT/EXPERIMENT for a trained learner "
                         "(not both)."))
    if from_run is not None:
        from internalize.experiments.watch import summary, watch

        try:
            w = watch(from_run, condition, seed, world_name, steps, tile_size)
        except (ValueError, LookupError) as e:
            fail(e)
        path = save_gif(w.frames, out, fps)
        info = summary(w)
        typer.echo(f"{from_run.name} {w.condition} learner (seed {w.seed}) in {w.world}: {info['steps']} steps, "
                   f"{info['goals']} {KINDS[w.kind].event_noun}, "
                   f"caregiver-reward return {info['caregiver_return']:+.3f}")
        typer.echo(f"wrote {path}")
        return
    for option, value in (("--condition", condition), ("--world", world_name)):
        if value is not None:
            fail(ValueError(f"play: {option} needs --from OUT/EXPERIMENT (a trained learner)."))
    env, params = _scripted_world(world, blocks, map_name)
    name, policy = _scripted_policy(agent, world, env.num_actions)
    from internalize.agents.scripted import run_policy_jit

    trajectory = run_policy_jit(policy, jax.random.key(seed or 0), params, 1, steps, env)
    goals = int(np.asarray(trajectory.channels.event).sum())
    ret = float(np.asarray(trajectory.channels.extrinsic + trajectory.channels.social).sum())
    path = save_gif(_episode_frames(trajectory, 0, tile_size, world.value, params), out, fps)
    typer.echo(f"{name} in {world.value}: {steps} steps, {goals} {KINDS[world.value].event_noun}, caregiver-reward "
               f"return {ret:+.3f}")
    typer.echo(f"wrote {path}")


Preset = Annotated[str, typer.Option("--preset", help="quick (2-core CPU, minutes) or paper (the paper's budgets).")]
Out = Annotated[Path, typer.Option("--out", help="Output directory; one sub-directory per experiment.")]
Seeds = Annotated[int | None, typer.Option("--seeds", min=1, help="Number of seeds (default: the experiment's).")]
Force = Annotated[bool, typer.Option("--force", help="Recompute finished runs and overwrite their results.")]
# A string, parsed by internalize.seeding, so a bad value is one 'error: ...' line (exit 2) like other bad input.
SeedOffset = Annotated[str | None, typer.Option(
    "--seed-offset", metavar="K", show_default="$INTERNALIZE_SEED_OFFSET or 0",
    help="Shift every preset seed by K (an integer >= 0; 1234-1243 become 1234+K ...) to check the claims on "
         "another seed set. K != 0 writes into OUT/seed-offset-K/ and then rebuilds OUT's report, which compares "
         "the seed sets. .toml experiments keep their own seeds (the offset applies to presets only).")]

def _seed_offset(value: str | None) -> int:
    """The seed offset from --seed-offset or $INTERNALIZE_SEED_OFFSET; a bad one ends the command (exit 2)."""
    from internalize.seeding import seed_offset

    try:
        return seed_offset(value)
    except ValueError as e:
        fail(e)
        raise  # unreachable: _fail exits


def _check_out(out: Path) -> None:
    """Refuse an --out that cannot hold results (a file, or a folder we may not write) before any compute."""
    existing = next((p for p in (out, *out.parents) if p.exists()), None)
    if out.exists() and not out.is_dir():
        fail(ValueError(f"--out: {out} is a file; allowed: a directory (created if missing)."))
    if existing is not None and (not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK)):
        fail(ValueError(f"--out: cannot create or write {out} ({existing} is not a writable directory); "
                         "allowed: a directory you can write."))


@app.command("list")
def list_experiments(preset: Preset = "quick") -> None:
    """List the paper's experiments with their budgets."""
    import textwrap

    from internalize.experiments.paper import ALIASES, EXPERIMENTS, paper_experiment

    width = max(60, min(shutil.get_terminal_size((100, 24)).columns, 120))
    aliases: dict[str, str] = {}
    for alias, name in ALIASES.items():  # the first alias of a name is the one the docs use (fig4a: fig1)
        aliases.setdefault(name, alias)
    blocks = []
    for name in EXPERIMENTS:  # one block per experiment: readable in an 80-column terminal
        try:  # a bad $INTERNALIZE_SEED_OFFSET or preset: one line, exit 2
            e = paper_experiment(name, preset)
        except ValueError as err:
            fail(err)
        label = name + (f" ({aliases[name]})" if name in aliases else "")
        fields = {
            "worlds": f"{e.socialization_world.name} -> {', '.join(w.name for w in e.autonomy_worlds) or '-'}",
            "conditions": ", ".join(e.conditions) or "-",
            "steps": f"{e.socialization_steps:,} + {e.autonomy_steps:,}",
            "seeds": str(len(e.seeds)),
        }
        lines = textwrap.wrap(e.title, width, initial_indent=f"{label}: ", subsequent_indent="    ")
        for key, value in fields.items():
            lines += textwrap.wrap(value, width, initial_indent=f"  {key:<10}  ", subsequent_indent=" " * 14)
        blocks.append("\n".join(lines))
    typer.echo(textwrap.fill(f"The paper's experiments, {preset} preset (steps: socialization + autonomy, per "
                             "seed):", width) + "\n")
    typer.echo("\n\n".join(blocks))
    from internalize.studies.registry import STUDIES

    typer.echo("\n" + textwrap.fill("Studies beyond the paper (internalize study NAME --preset quick|paper; each a "
                                   "sweep of an experiment file; internalize sweep FILE runs your own):", width) + "\n")
    studies = []
    for s in STUDIES.values():
        plan = s.sweep(preset)
        exp = plan.points[0].experiment
        lines = textwrap.wrap(s.title, width, initial_indent=f"{s.name}: ", subsequent_indent="    ")
        for key, value in (("grid", ", ".join(f"{k} ({len(v)})" for k, v in plan.spec.grid)),
                           ("points", f"{len(plan.points)} x {len(exp.seeds)} seeds"),
                           ("steps", f"{exp.socialization_steps:,} + {exp.autonomy_steps:,}")):
            lines += textwrap.wrap(value, width, initial_indent=f"  {key:<10}  ", subsequent_indent=" " * 14)
        studies.append("\n".join(lines))
    typer.echo("\n\n".join(studies))


@app.command()
def run(
    experiment: Annotated[str, typer.Argument(
        help="fig4a (fig1), fig3, fig4b, fig5, fig6, fig7, empathy, or a path to a .toml file.")],
    preset: Preset = "quick",
    seeds: Seeds = None,
    out: Out = Path("runs"),
    force: Force = False,
    report: Annotated[bool, typer.Option(help="Write OUT/report.md and report.html afterwards.")] = True,
    seed_offset: SeedOffset = None,
    layout: Layout = "vmap",
    processes: Processes = None,
    backend: Backend = "local",
    address: Address = None,
    cpus_per_task: CpusPerTask = 1.0,
    gpus_per_task: GpusPerTask = 0.0,
    max_retries: MaxRetries = 3,
    shared_fs: SharedFs = True,
    return_states: ReturnStates = False,
) -> None:
    """Run one experiment (resuming it if it was interrupted), then the report."""
    k = _seed_offset(seed_offset)
    _check_out(out)
    with executor(layout, processes, backend, address, cpus_per_task, gpus_per_task, max_retries, shared_fs,
                  return_states) as ex:
        from internalize.experiments.reproduce import is_config_file, output_dir, resolve, run_many, write_report

        try:
            exp = resolve(experiment, preset, seeds, None if seed_offset is None else k)
            if k and is_config_file(experiment):
                typer.echo(f"note: seed offset {k} ignored: {experiment} keeps its own seeds and writes into {out}.")
            run_many([exp], output_dir(out, experiment, k), force=force, layout=layout, processes=processes,
                     executor=ex)
            if report:
                typer.echo(f"report: {write_report(out)}")
        except (ValueError, FloatingPointError, TaskFailed) as e:
            fail(e)


@app.command()
def reproduce(preset: Preset = "quick", seeds: Seeds = None, out: Out = Path("runs"), force: Force = False,
              seed_offset: SeedOffset = None, layout: Layout = "vmap", processes: Processes = None,
              backend: Backend = "local", address: Address = None, cpus_per_task: CpusPerTask = 1.0,
              gpus_per_task: GpusPerTask = 0.0, max_retries: MaxRetries = 3, shared_fs: SharedFs = True,
              return_states: ReturnStates = False) -> None:
    """Run all of the paper's experiments, then write OUT/report.md and OUT/report.html."""
    k = _seed_offset(seed_offset)
    _check_out(out)
    with executor(layout, processes, backend, address, cpus_per_task, gpus_per_task, max_retries, shared_fs,
                  return_states) as ex:
        from internalize.experiments.reproduce import reproduce as run_all

        try:
            run_all(preset, out, seeds=seeds, force=force, seed_offset=None if seed_offset is None else k,
                    layout=layout, processes=processes, executor=ex)
        except (ValueError, FloatingPointError, TaskFailed) as e:
            fail(e)


@app.command()
def sweep(
    file: Annotated[Path, typer.Argument(
        help="An experiment file (.toml); its sweep table may hold the grid (internalize schema sweep).")],
    grid: Annotated[list[str] | None, typer.Option(
        "--grid", metavar="KEY=V1,V2,...",
        help="A dotted key of internalize schema and its values (TOML literals: 0.1, 64, true, \"mlp\"); repeat "
             "for a product grid. Replaces the file's sweep.grid values of the same key.")] = None,
    fixed: Annotated[list[str] | None, typer.Option(
        "--set", metavar="KEY=VALUE", help="Set a dotted key for every point (not swept, not a column).")] = None,
    zip_lists: Annotated[bool, typer.Option(
        "--zip", help="Take the grid's lists together (point i: every key's i-th value) instead of their product.")
    ] = False,
    out: Out = Path("runs"),
    force: Force = False,
    report: Annotated[bool, typer.Option(help="Write OUT/report.md and report.html afterwards.")] = True,
    layout: Layout = "vmap",
    processes: Processes = None,
    backend: Backend = "local",
    address: Address = None,
    cpus_per_task: CpusPerTask = 1.0,
    gpus_per_task: GpusPerTask = 0.0,
    max_retries: MaxRetries = 3,
    shared_fs: SharedFs = True,
    return_states: ReturnStates = False,
) -> None:
    """Run an experiment file over every point of a grid (each point an ordinary, resumable experiment in
    OUT/NAME/points/), then OUT/NAME/results.parquet with one column per swept key, and the report."""
    _check_out(out)
    check_layout(layout)
    from internalize.experiments.sweep import load_sweep

    try:
        # every point built and checked before anything runs
        plan = load_sweep(file, grid or (), fixed or (), zip_lists=True if zip_lists else None)
    except ValueError as e:
        fail(e)
    with executor(layout, processes, backend, address, cpus_per_task, gpus_per_task, max_retries, shared_fs,
                  return_states) as ex:
        _run_sweep(plan, ", ".join(f"{k} ({len(v)})" for k, v in plan.spec.grid), out, layout, processes, force,
                   report, ex)


def _run_sweep(plan, what: str, out: Path, layout: str, processes: int | None, force: bool, report: bool,
               ex: object = None) -> None:
    """Run a sweep (or a study's) that was built and checked, on ``ex`` (an executor; None: this machine), then the
    report; an error is one line, exit 2."""
    from internalize.experiments.reproduce import write_report
    from internalize.experiments.sweep import run_sweep

    typer.echo(f"{plan.name}: {len(plan.points)} point(s) x {len(plan.points[0].experiment.seeds)} seed(s)"
               + (f" over {what}" if what else ""))
    try:
        run_sweep(plan, out, layout=layout, processes=processes, force=force, executor=ex)
        if report:
            typer.echo(f"report: {write_report(out)}")
    except (ValueError, FloatingPointError, TaskFailed) as e:
        fail(e)


@app.command()
def study(
    name: Annotated[str, typer.Argument(help="A study (internalize list): weaning, unreliable, conflicting, "
                                               "means-ends, hacking, readiness.")],
    preset: Preset = "quick",
    out: Out = Path("runs"),
    force: Force = False,
    report: Annotated[bool, typer.Option(help="Write OUT/report.md and report.html afterwards.")] = True,
    layout: Layout = "vmap",
    processes: Processes = None,
    backend: Backend = "local",
    address: Address = None,
    cpus_per_task: CpusPerTask = 1.0,
    gpus_per_task: GpusPerTask = 0.0,
    max_retries: MaxRetries = 3,
    shared_fs: SharedFs = True,
    return_states: ReturnStates = False,
    seed_offset: SeedOffset = None,
) -> None:
    """Run a study beyond the paper (a sweep with its own report section: question, prediction, verdict); with a
    seed offset K (or $INTERNALIZE_SEED_OFFSET) on seeds shifted by K, into OUT/seed-offset-K."""
    _check_out(out)
    check_layout(layout)
    k = _seed_offset(seed_offset)
    from internalize.analysis.robustness import seed_set_dir
    from internalize.studies.registry import study as find

    try:
        plan = find(name).sweep(preset, k)
    except ValueError as e:
        fail(e)
    out = seed_set_dir(out, k)
    with executor(layout, processes, backend, address, cpus_per_task, gpus_per_task, max_retries, shared_fs,
                  return_states) as ex:
        _run_sweep(plan, f"the {preset} preset", out, layout, processes, force, report, ex)


@app.command()
def schema(section: Annotated[str | None, typer.Argument(
        help="One section: experiment, learner, isr, caregiver, conditions.NAME, presence, worlds.NAME, "
             "probes.empathy, sweep.")] = None,
) -> None:
    """Every section and key an experiment file (.toml) may hold, with its type, default and help."""
    from internalize.experiments.file_schema import describe

    try:
        width = min(shutil.get_terminal_size((100, 24)).columns, 120)
        typer.echo(describe(section, width=width), nl=False)
    except ValueError as e:
        fail(e)


@app.command()
def clean(out: Annotated[Path, typer.Argument(help="A directory of runs (default: runs).")] = Path("runs")) -> None:
    """Free the disk finished experiments no longer need (checkpoints, shared units); results, manifests, unit
    tables, figures and the report stay. Unfinished experiments are kept as they are, to resume."""
    from internalize.experiments.clean import clean as clean_runs

    try:
        clean_runs(out, log=typer.echo)
    except ValueError as e:
        fail(e)


@app.command("report")
def report_command(out: Annotated[Path, typer.Argument(help="A directory holding NAME/results.parquet.")]) -> None:
    """Write DIR/report.md and DIR/report.html from the experiments finished in DIR."""
    from internalize.experiments.reproduce import write_report

    try:
        typer.echo(f"report: {write_report(out)}")
    except ValueError as e:
        fail(e)


@app.command("claims")
def claims_command(
    out: Annotated[Path, typer.Argument(help="A directory of finished experiments (and its seed-offset-K/).")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per claim and line.")] = False,
) -> None:
    """Print every paper claim of the experiments finished in DIR and its seed-offset-K/ folders: verdict, test,
    effect with its 95% CI, margin, fraction of the oracle's advantage recovered, seeds needed. Exits 0 whatever
    the verdicts, 2 when DIR holds no finished experiment."""
    import json

    from internalize.analysis.claim import claim_record, claim_text
    from internalize.analysis.robustness import directory_claims

    if not out.is_dir():
        fail(ValueError(f"{out}: not a directory; allowed: a directory holding NAME/results.parquet."))
    try:
        found = directory_claims(out)
    except ValueError as e:  # a corrupt table names itself
        fail(e)
    if not found:
        fail(ValueError(f"{out}: no finished experiment (NAME/results.parquet with a complete manifest) here "
                         "or in its seed-offset-K/ folders."))
    for offset, c in found:
        rec = claim_record(c, offset)
        typer.echo(json.dumps(rec, ensure_ascii=False) if as_json else claim_text(c, offset))

