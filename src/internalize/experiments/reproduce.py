"""Resolve experiments by name or file, run several, and write the report of an output directory."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from internalize.experiments.config_file import load_experiment
from internalize.experiments.empathy import EmpathyStudy, empathy_study, run_empathy
from internalize.experiments.paper import EXPERIMENTS, paper_experiment
from internalize.experiments.runner import run_experiment
from internalize.experiments.spec import Experiment


def resolve(name_or_path: str, preset: str = "quick", seeds: int | None = None) -> Experiment | EmpathyStudy:
    """A paper experiment by name (``fig4a``, ``fig3``, ...) or the ``empathy`` study under ``preset``, or a
    user's ``.toml`` file.

    ``seeds`` (when given) keeps the first ``seeds`` seeds, or extends the sequence.
    """
    if name_or_path == "empathy":
        study = empathy_study(preset)
        return study if seeds is None else study.with_seeds(seeds)
    if name_or_path.endswith(".toml") or Path(name_or_path).is_file():
        exp = load_experiment(name_or_path)
    else:
        exp = paper_experiment(name_or_path, preset)
    if seeds is not None:
        exp = exp.with_seeds(seeds)
    return exp


def run_many(experiments: list[Experiment | EmpathyStudy], out: str | Path, *, force: bool = False,
             progress: bool = True, log: Callable[[str], None] = print) -> dict[str, pd.DataFrame]:
    """Run each experiment (or study) into ``out``, skipping finished ones unless ``force``."""
    tables = {}
    for exp in experiments:
        started = time.perf_counter()
        run = run_empathy if isinstance(exp, EmpathyStudy) else run_experiment
        tables[exp.name] = run(exp, out, force=force, progress=progress, log=log)
        log(f"{exp.name}: {time.perf_counter() - started:.1f} s")
    return tables


def reproduce(preset: str, out: str | Path, *, seeds: int | None = None, force: bool = False,
              progress: bool = True, log: Callable[[str], None] = print) -> Path:
    """All of the paper's experiments under ``preset``, then ``out/report.md`` and ``out/report.html``."""
    started = time.perf_counter()
    exps = [resolve(name, preset, seeds) for name in EXPERIMENTS]
    run_many(exps, out, force=force, progress=progress, log=log)
    report = write_report(out, extra={"preset": preset, "wall_time_s": round(time.perf_counter() - started, 1)})
    log(f"report: {report}")
    return report


def write_report(out: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Report of every complete experiment under ``out`` (``out/*/results.parquet``): report.md and .html."""
    from internalize.analysis.report import write_report as render

    out = Path(out)
    tables, experiments = {}, {}
    for table in sorted(out.glob("*/results.parquet")):
        manifest_path = table.parent / "manifest.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
        if manifest.get("status") != "complete":
            continue
        name = table.parent.name
        tables[name] = pd.read_parquet(table)
        config = manifest.get("config", {})
        experiments[name] = _describe(config, manifest)
    if not tables:
        raise ValueError(f"report: no complete experiment under {out} (expected {out}/NAME/results.parquet).")
    meta = {"experiments": experiments, **(extra or {})}
    files = render(out, tables, meta)
    return Path(files.md)


def _describe(config: dict[str, Any], manifest: dict[str, Any]) -> dict[str, str]:
    """What produced an experiment's numbers, from its manifest: learner, ISR, budgets, seeds, time, commit."""
    learner, isr, seeds = config.get("learner", {}), config.get("isr", {}), config.get("seeds", [])
    worlds = ", ".join(w.get("name", "?") for w in config.get("autonomy_worlds", [])) or "-"
    shown = ", ".join(map(str, seeds[:12])) + (", ..." if len(seeds) > 12 else "")
    return {
        "learner": f"PPO, {str(learner.get('torso', '?')).upper()} policy, {learner.get('n_envs')} env(s) x "
                   f"{learner.get('n_steps')} steps per rollout, batch {learner.get('batch_size')}, "
                   f"{learner.get('n_epochs')} epochs, lr {learner.get('learning_rate')}",
        "isr": f"{isr.get('network')} network, {isr.get('encoding')} action encoding, batch {isr.get('batch_size')}, "
               f"lr {isr.get('learning_rate')}, {isr.get('updates_fraction'):.3g} epoch(s), utility {isr.get('utility')}",
        "budget": f"socialization {config.get('socialization_steps', 0):,} steps on "
                  f"{config.get('socialization_world', {}).get('name')}; autonomy {config.get('autonomy_steps', 0):,} "
                  f"steps on {worlds}; {config.get('evaluation_episodes')} held-out episodes",
        "seeds": f"{len(seeds)} ({shown})",
        "wall time": f"{sum(manifest.get('timings', {}).values()):.0f} s",
        "commit": str(manifest.get("git_commit")),
    }
