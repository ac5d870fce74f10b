"""Resolve experiments by name or file, run several, and write the report of an output directory.

Seed sets: a preset run with seed offset K != 0 (``--seed-offset K`` or ``$INTERNALIZE_SEED_OFFSET``) shifts every
seed by K and writes its experiments into ``OUT/seed-offset-K/`` beside the offset-0 run in ``OUT``; the report of
``OUT`` then compares the claims across the seed sets. A ``.toml`` experiment keeps its own seeds and directory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from internalize.empathy.study import EmpathyStudy, empathy_study, run_empathy
from internalize.experiments.config_file import load_experiment
from internalize.experiments.executor import Executor
from internalize.experiments.layout import run_all
from internalize.experiments.paper import EXPERIMENTS, paper_experiment
from internalize.experiments.spec import Experiment
from internalize.seeding import seed_offset as resolve_seed_offset
from internalize.storage import read_json_verified, read_parquet_verified, write_json_verified

#: What ``reproduce`` records of a whole run (preset, wall time) beside the experiments, for the report.
RUN_FILE = "run.json"


def is_config_file(name_or_path: str) -> bool:
    """Whether ``name_or_path`` names a user's experiment file rather than a preset experiment."""
    return name_or_path != "empathy" and (name_or_path.endswith(".toml") or Path(name_or_path).is_file())


def resolve(name_or_path: str, preset: str = "quick", seeds: int | None = None,
            seed_offset: int | None = None) -> Experiment | EmpathyStudy:
    """A paper experiment by name (``fig4a``, ``fig3``, ...) or the ``empathy`` study under ``preset``, or a
    user's ``.toml`` file.

    ``seed_offset`` K shifts a preset's seeds by K (None: ``$INTERNALIZE_SEED_OFFSET``, default 0); a ``.toml``
    experiment keeps its own seeds. ``seeds`` (when given) then keeps the first ``seeds`` seeds, or extends the
    sequence.
    """
    if name_or_path == "empathy":
        study = empathy_study(preset, seed_offset)
        return study if seeds is None else study.with_seeds(seeds)
    if is_config_file(name_or_path):
        exp = load_experiment(name_or_path)
    elif seed_offset is None:  # paper_experiment reads the environment itself
        exp = paper_experiment(name_or_path, preset)
    else:
        exp = paper_experiment(name_or_path, preset, seed_offset)
    if seeds is not None:
        exp = exp.with_seeds(seeds)
    return exp


def run_many(experiments: list[Experiment | EmpathyStudy], out: str | Path, *, force: bool = False,
             progress: bool = True, log: Callable[[str], None] = print, layout: str = "vmap",
             processes: int | None = None, executor: Executor | None = None) -> dict[str, pd.DataFrame]:
    """Run each experiment (or study) into ``out``, skipping finished ones unless ``force``; ``layout``,
    ``executor`` and ``processes``: how and where the experiments' seeds run (``experiments.layout``; all their
    tasks are submitted at once; a study runs its own way, in this process)."""
    tables = {}
    started = time.perf_counter()
    exps = [e for e in experiments if not isinstance(e, EmpathyStudy)]
    if exps:  # with GIFs of their learners for the report
        for exp, df in zip(exps, run_all([(e, out) for e in exps], layout=layout, executor=executor,
                                         processes=processes, force=force, progress=progress, log=log, gifs=True),
                           strict=True):
            tables[exp.name] = df
        log(f"{', '.join(e.name for e in exps)}: {time.perf_counter() - started:.1f} s")
    for exp in experiments:
        if isinstance(exp, EmpathyStudy):
            started = time.perf_counter()
            ignored = ([f"--layout {layout}"] if layout != "vmap" else []) + (
                [f"--backend {executor.backend}"] if executor is not None and executor.backend != "local" else [])
            if ignored:
                log(f"note: {' and '.join(ignored)} ignored: the {exp.name} study runs its seeds as one vmapped "
                    "program.")
            tables[exp.name] = run_empathy(exp, out, force=force, progress=progress, log=log)
            log(f"{exp.name}: {time.perf_counter() - started:.1f} s")
    return {e.name: tables[e.name] for e in experiments}


def output_dir(out: str | Path, name_or_path: str, seed_offset: int | None = None) -> Path:
    """Where ``name_or_path`` run with ``seed_offset`` (None: ``$INTERNALIZE_SEED_OFFSET``) writes: ``out`` for
    offset 0 and for ``.toml`` experiments (they keep their own seeds), else ``out/seed-offset-K``."""
    from internalize.analysis.robustness import seed_set_dir  # the analysis stack loads only when needed

    k = resolve_seed_offset(seed_offset)
    return Path(out) if is_config_file(name_or_path) else seed_set_dir(out, k)


def reproduce(preset: str, out: str | Path, *, seeds: int | None = None, force: bool = False,
              progress: bool = True, log: Callable[[str], None] = print, seed_offset: int | None = None,
              layout: str = "vmap", processes: int | None = None, executor: Executor | None = None) -> Path:
    """All of the paper's experiments under ``preset``, then ``out/report.md`` and ``out/report.html``.

    ``seed_offset`` K (None: ``$INTERNALIZE_SEED_OFFSET``, default 0) shifts every seed by K; K != 0 writes the
    experiments into ``out/seed-offset-K/`` and then rebuilds the report of ``out``, which compares the claims
    across seed sets. A bad offset is a ValueError before anything runs.
    """
    from internalize.analysis.robustness import seed_set_dir

    started = time.perf_counter()
    k = resolve_seed_offset(seed_offset)
    exps = [resolve(name, preset, seeds, seed_offset) for name in EXPERIMENTS]
    target = seed_set_dir(out, k)
    run_many(exps, target, force=force, progress=progress, log=log, layout=layout, processes=processes,
             executor=executor)
    wall = round(time.perf_counter() - started, 1)
    extra = {"preset": preset, "wall time": f"{wall:,.0f} s"} if k == 0 else {
        "preset": preset, "latest seed-set run": f"seed offset {k} into {target.name}/ ({wall:,.0f} s)"}
    # Kept beside the results, so that the report of a copied directory still says how it was produced.
    write_json_verified(Path(out) / RUN_FILE, extra)
    report = write_report(out, extra=extra)
    log(f"report: {report}")
    return report


def write_report(out: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Report of every complete experiment under ``out`` (``out/*/results.parquet``): report.md and .html.

    ``extra``: run-wide metadata for the report's top; None reads what ``reproduce`` recorded in ``out/run.json``.
    """
    from internalize.analysis.report import SweepTable
    from internalize.analysis.report import write_report as render
    from internalize.analysis.robustness import complete_tables, seed_set_dirs
    from internalize.experiments.sweep import SWEEP_KIND

    out = Path(out)
    if extra is None and (out / RUN_FILE).exists():
        extra = read_json_verified(out / RUN_FILE)  # a damaged one: one line naming it
    tables, experiments, manifests, sweeps = {}, {}, [], {}
    for table in sorted(out.glob("*/results.parquet")):
        manifest_path = table.parent / "manifest.json"
        manifest = read_json_verified(manifest_path) if manifest_path.exists() else {}  # one line if damaged
        if manifest.get("status") != "complete":
            continue
        name = table.parent.name
        if manifest.get("kind") == SWEEP_KIND:  # a sweep's combined table: drawn by its own section
            sweeps[name] = SweepTable(read_parquet_verified(table), manifest["outcome"], manifest["phase"],
                                      _section(manifest.get("section")))
            continue
        tables[name] = read_parquet_verified(table)  # a table that fails: one-line error naming it
        config = manifest.get("config", {})
        experiments[name] = _describe(config, manifest)
        manifests.append(manifest)
    if not tables and not sweeps and not any(complete_tables(d) for d in seed_set_dirs(out).values()):
        raise ValueError(f"report: no complete experiment under {out} (expected {out}/NAME/results.parquet).")
    meta = {"experiments": experiments, **_from_manifests(manifests), **(extra or {})}
    files = render(out, tables, meta, sweeps)
    return Path(files.md)


def _section(path: str | None) -> Callable | None:
    """A study's report section from its ``module:function`` path in a sweep's manifest (None: the generic one)."""
    if not path:
        return None
    import importlib

    module, _, function = path.partition(":")
    return getattr(importlib.import_module(module), function)


def _from_manifests(manifests: list[dict[str, Any]]) -> dict[str, str]:
    """What every finished experiment's manifest says of the run as a whole: when, the summed compute time, the
    code (commit) and the versions; so a copied directory's report says how it was produced."""
    if not manifests:
        return {}
    commits = sorted({str(m.get("git_commit")) for m in manifests})
    versions = [m.get("versions", {}) for m in manifests]
    shown = ", ".join(f"{k} {v}" for k, v in sorted(versions[0].items()))
    return {
        "finished experiments": f"{len(manifests)}, {min(m.get('started', '?') for m in manifests)} to "
                       f"{max(m.get('finished', '?') for m in manifests)}",
        "compute time": f"{sum(sum(m.get('timings', {}).values()) for m in manifests):,.0f} s (the units' own, "
                        "summed over experiments)",
        "commit": ", ".join(commits) + ("" if len(commits) == 1 else " (experiments from different commits)"),
        "versions": shown + ("" if all(v == versions[0] for v in versions) else
                             " (first experiment's; the others differ)"),
    }


def _describe(config: dict[str, Any], manifest: dict[str, Any]) -> dict[str, str]:
    """What produced an experiment's numbers, from its manifest: learner, ISR, budgets, seeds, time, commit."""
    learner, isr, seeds = config.get("learner", {}), config.get("isr", {}), config.get("seeds", [])
    utility = config.get("utility", {}).get("mode", isr.get("utility"))  # manifests before [utility]: in isr
    worlds = ", ".join(w.get("name", "?") for w in config.get("autonomy_worlds", [])) or "no world"
    shown = ", ".join(map(str, seeds[:12])) + (", ..." if len(seeds) > 12 else "")
    if "learner" not in config and "epsilon" in config:  # the empathy study: a scripted data source, no PPO
        latents = ", ".join(map(str, config.get("world_model_latents", []))) or "none"
        return {
            "data": f"scripted epsilon-greedy shortest-path learner (epsilon {config.get('epsilon')}), "
                    f"{config.get('n_envs')} worlds x {config.get('n_steps')} steps per seed on "
                    f"{config.get('socialization_world', {}).get('name')}",
            "reward models": f"{isr.get('network')} network, widths {config.get('widths')}, batch "
                             f"{isr.get('batch_size')}, lr {isr.get('learning_rate')}, "
                             + (f"trained to convergence (held-out fit within {config['converge_tol']:g} of the "
                                f"payments' variance over {config.get('converge_window')} updates) within "
                                f"{isr.get('n_updates')} updates" if "converge_tol" in config else
                                f"{isr.get('n_updates')} updates"),
            "world models": f"latents {latents}, {config.get('world_model_updates')} updates; heads "
                            f"{config.get('world_model_head_updates')} updates, lr {config.get('world_model_head_lr')}",
            "seeds": f"{len(seeds)} ({shown})", "wall time": _wall_time(manifest),
            "commit": str(manifest.get("git_commit"))}
    return {
        "learner": f"PPO, {str(learner.get('torso', '?')).upper()} policy, {learner.get('n_envs')} env(s) x "
                   f"{learner.get('n_steps')} steps per rollout, batch {learner.get('batch_size')}, "
                   f"{learner.get('n_epochs')} epochs, lr {learner.get('learning_rate')}",
        "isr": f"{isr.get('network')} network, {isr.get('encoding')} action encoding, batch {isr.get('batch_size')}, "
               f"lr {isr.get('learning_rate')}, {isr.get('updates_fraction'):.3g} epoch(s), utility {utility}",
        "budget": f"socialization {config.get('socialization_steps', 0):,} steps on "
                  f"{config.get('socialization_world', {}).get('name')}; " + (
                      f"autonomy {config.get('autonomy_steps', 0):,} steps on {worlds}; "
                      f"{config.get('evaluation_episodes')} held-out episodes" if config.get('autonomy_steps')
                      else "no autonomy phase"),
        "seeds": f"{len(seeds)} ({shown})",
        "wall time": _wall_time(manifest),
        "commit": str(manifest.get("git_commit")),
    }


def _wall_time(manifest: dict[str, Any]) -> str:
    """An experiment's wall time: its units' summed seconds, or a per-core run's own wall clock beside them."""
    units = sum(manifest.get("timings", {}).values())
    if manifest.get("layout") == "per-core" and "wall_s" in manifest:
        where = manifest.get("where") or f"{manifest.get('processes', '?')} processes"
        together = f", its seeds run together with those of {', '.join(manifest['ran_with'])}" if manifest.get(
            "ran_with") else ""
        return (f"{manifest['wall_s']:.0f} s on {where} (per-core layout{together}; the seeds' units took "
                f"{units:.0f} s in all)")
    return f"{units:.0f} s"
