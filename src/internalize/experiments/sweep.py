"""Sweeps: one experiment file run over the product of a grid of dotted config keys, gathered into one table.

``internalize sweep FILE.toml --grid KEY=V1,V2 [--grid ...] --out DIR`` (or a ``[sweep]`` table in the file,
:class:`~internalize.experiments.sweep_spec.SweepSpec`) expands the file's experiment over every point of the grid.
Each point is an ordinary experiment, ``DIR/NAME/points/<point>/`` (resumable, refused if its directory holds
another configuration), and the points share ``DIR/NAME/points/.shared``, so a unit whose inputs do not depend on
the swept keys (the socialization, when only a condition's presence is swept) is computed once. When every point
is done their rows are gathered into ``DIR/NAME/results.parquet``: the usual columns (``experiment`` is the
sweep's name) plus one typed column per swept key, and ``DIR/NAME/manifest.json`` (``kind = "sweep"``: the grid,
the outcome, every point's directory and values). The report draws the outcome against each swept key
(``analysis.sweep_section``).

Every point's experiment is built, and so validated, before the first one runs: a bad key, value or grid is one
line naming the key and what is allowed.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from internalize.config_error import ConfigError
from internalize.experiments.config_file import ExperimentFileError, parse_experiment, read_toml
from internalize.experiments.file_schema import allowed
from internalize.experiments.spec import Experiment
from internalize.experiments.sweep_keys import key_section, typed
from internalize.experiments.sweep_spec import SweepSpec, check_not_empty, parse_grid_option
from internalize.schema import COLUMNS, KEY_COLUMNS
from internalize.storage import read_json_verified, read_parquet_verified, write_json_verified, write_parquet_verified

SWEEP_KIND = "sweep"
POINTS_DIR = "points"
MANIFEST, TABLE = "manifest.json", "results.parquet"


class SweepError(ValueError):
    """A sweep that cannot run, with the one line a user reads; ``key`` is the dotted key at fault (or None)."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Point:
    """One point of a sweep: the swept keys' values (in grid order) and the experiment they make."""

    values: tuple[tuple[str, Any], ...]
    experiment: Experiment

    @property
    def name(self) -> str:
        return self.experiment.name


@dataclass(frozen=True)
class Sweep:
    """A file's experiment over a grid: its name (the file's experiment name), the grid and its points."""

    name: str
    path: Path
    spec: SweepSpec
    points: tuple[Point, ...]
    fixed: tuple[tuple[str, Any], ...] = ()
    section: str | None = None

    def manifest(self) -> dict[str, Any]:
        """What the sweep's manifest records: the grid, the keys set for every point (``fixed``), the outcome, the
        points, and ``section``: the report section that reads it (``module:function``, a study's; None = the
        generic sweep section)."""
        return {"kind": SWEEP_KIND, "experiment": self.name, "file": str(self.path),
                "grid": {k: list(v) for k, v in self.spec.grid}, "zip": self.spec.zip, "fixed": dict(self.fixed),
                "outcome": self.spec.outcome, "phase": self.spec.phase, "section": self.section,
                "points": [{"name": p.name, "values": dict(p.values)} for p in self.points]}


def point_name(sweep: str, values: Sequence[tuple[str, Any]]) -> str:
    """A point's experiment name (its directory): readable from its values, unique by a hash of them
    (``noise-0p1_miss-0p25-3fa2c1``), made only of what an experiment name allows (letters, digits, - and _)."""
    def word(v: Any) -> str:
        return re.sub(r"[^A-Za-z0-9]+", "", str(v).replace(".", "p").replace("-", "m"))[:12] or "x"

    label = "_".join(f"{re.sub(r'[^A-Za-z0-9]', '', k.rsplit('.', 1)[-1])}-{word(v)}" for k, v in values)
    digest = hashlib.sha256(json.dumps([[k, v] for k, v in values], default=str).encode()).hexdigest()[:6]
    return f"{label[:80]}-{digest}"


def load_sweep(path: str | Path, grid: Sequence[str] = (), fixed: Sequence[str] = (),
               section: str | None = None, single: bool = False, zip_lists: bool | None = None) -> Sweep:
    """The sweep of an experiment file and ``--grid KEY=V1,V2`` options (which replace the file's ``[sweep.grid]``
    values of the same key); every point's experiment is built and validated, nothing runs. ``fixed``:
    ``KEY=VALUE`` settings applied to every point (``--set``; a study's preset), not swept and not columns.
    ``section``: the report section of a study (:attr:`Sweep.section`). ``single``: a file without a grid is one
    point (a study that is one experiment: its table has no swept-key columns); otherwise that is an error.
    ``zip_lists``: True takes the grid's lists together (``--zip``; as the file's ``zip = true``), False their
    product whatever the file says (a study's paper preset), None the file's choice.

    Raises:
      SweepError: a bad key, value or grid (one line naming it and what is allowed).
      ExperimentFileError: the file itself is malformed (it names the file, key and line).
    """
    path = Path(path)
    data, text = read_toml(path)
    table = data.pop("sweep", {})
    if not isinstance(table, dict):
        raise SweepError(f"{path}: [sweep]: must be a table (grid, outcome, phase).", "sweep")
    unknown = sorted(set(table) - set(allowed("sweep")))
    if unknown:
        raise SweepError(f"{path}: sweep.{unknown[0]}: unknown key; allowed: {', '.join(sorted(allowed('sweep')))}.",
                         f"sweep.{unknown[0]}")
    file_grid = table.get("grid", {})
    if not isinstance(file_grid, dict):
        raise SweepError(f"{path}: sweep.grid: must be a table of \"KEY\" = [values].", "sweep.grid")
    merged: dict[str, tuple[Any, ...]] = {}
    for key, values in file_grid.items():
        if not isinstance(values, list):
            raise SweepError(f"{path}: sweep.grid.{key}: must be a list of values, got {values!r}.", key)
        merged[key] = tuple(values)
    try:
        settings = []
        for option in fixed:
            key, values = parse_grid_option(option)
            if len(values) != 1:
                raise ConfigError(key, f"--set takes one value, got {len(values)}; sweep it with --grid instead.",
                                  value=values, allowed="one value")
            section_, where = key_section(key, data, swept=False)
            settings.append((key, typed(key, section_, values[0])))
            if key in ("experiment.seeds", "experiment.n_seeds"):  # one replaces the other
                data["experiment"].pop("n_seeds" if key == "experiment.seeds" else "seeds", None)
            _set(data, where, list(settings[-1][1]) if isinstance(settings[-1][1], tuple) else settings[-1][1])
        for option in grid:
            key, values = parse_grid_option(option)
            merged[key] = values
        sections = {key: key_section(key, data) for key in merged}
        typed_grid = tuple((key, tuple(typed(key, sections[key][0], v) for v in values))
                           for key, values in merged.items())
        if not single:
            check_not_empty(typed_grid)
        options = {k: v for k, v in table.items() if k != "grid"}
        spec = SweepSpec(grid=typed_grid, **{**options, **({} if zip_lists is None else {"zip": zip_lists})})
    except ConfigError as err:
        raise SweepError(f"{path}: {err}", err.key) from None
    if "experiment" not in data or not isinstance(data["experiment"], dict) or "name" not in data["experiment"]:
        parse_experiment(data, text, path)  # the file's own error (missing [experiment] or its name)
    name = str(data["experiment"]["name"])
    points = []
    for combo in spec.combinations():
        values = tuple(zip(spec.keys, combo, strict=True))
        point = copy.deepcopy(data)
        for key, value in values:
            _set(point, sections[key][1], list(value) if isinstance(value, tuple) else value)
        point["experiment"]["name"] = point_name(name, values) if values else name
        try:
            exp = parse_experiment(point, text, path)
        except ExperimentFileError as err:
            at = ", ".join(f"{k} = {v!r}" for k, v in values)
            raise SweepError(f"{path}: the point {at}: {err.key}: {err.detail}" if err.key else
                             f"{path}: the point {at}: {err}", err.key) from None
        points.append(Point(values, exp))
    return Sweep(name, path, spec, tuple(points), tuple(settings), section)


def _set(data: dict[str, Any], path: list[str | int], value: Any) -> None:
    """Set ``value`` at ``path`` in a parsed file, creating a missing simple section (``[isr]`` ...)."""
    node: Any = data
    for part in path[:-1]:
        node = node.setdefault(part, {}) if isinstance(part, str) else node[part]
    node[path[-1]] = value


def sweep_dir(out: str | Path, sweep: Sweep) -> Path:
    return Path(out) / sweep.name


def run_sweep(sweep: Sweep, out: str | Path, *, layout: str = "vmap", processes: int | None = None,
              force: bool = False, progress: bool = True, log: Callable[[str], None] = print,
              executor: Any = None) -> pd.DataFrame:
    """Run every point of ``sweep`` into ``out/NAME/points/`` (finished points are skipped, an interrupted one
    resumes; on ``executor`` -- an ``experiments.executor.Executor``, default this machine -- all points' tasks
    at once), then write the combined ``out/NAME/results.parquet`` and its manifest; returns the combined table."""
    from internalize.experiments.layout import run_all  # the runner stack only when a sweep runs

    root = sweep_dir(out, sweep)
    manifest_path = root / MANIFEST
    if manifest_path.exists():
        old = read_json_verified(manifest_path)  # a damaged manifest: one line naming it
        if old.get("kind") != SWEEP_KIND:
            raise SweepError(f"output directory {root} holds the experiment {old.get('experiment')!r}, not a sweep; "
                             "choose another --out or another experiment name.")
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    for i, point in enumerate(sweep.points, 1):
        at = ", ".join(f"{k} = {v!r}" for k, v in point.values)
        log(f"{sweep.name}: point {i}/{len(sweep.points)} ({at})")
    tables = run_all([(p.experiment, root / POINTS_DIR) for p in sweep.points], layout=layout, executor=executor,
                     processes=processes, force=force, progress=progress, log=log, label=sweep.name)
    frames = [_with_values(df, sweep.name, p.values) for p, df in zip(sweep.points, tables, strict=True)]
    table = combine(frames, sweep.spec.keys)
    write_parquet_verified(root / TABLE, table)
    backend = "local" if executor is None else executor.backend
    write_json_verified(manifest_path, {**sweep.manifest(), "status": "complete", "layout": layout, "backend": backend,
                                        "started": started, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    log(f"{sweep.name}: {len(sweep.points)} points, {len(table)} rows -> {root / TABLE}")
    return table


def _with_values(df: pd.DataFrame, name: str, values: Sequence[tuple[str, Any]]) -> pd.DataFrame:
    out = df.assign(experiment=name)
    for key, value in values:
        out[key] = [json.dumps(list(value)) if isinstance(value, tuple) else value] * len(out)
    return out


def combine(frames: Sequence[pd.DataFrame], keys: Sequence[str]) -> pd.DataFrame:
    """The points' tables as one: the usual columns, then one column per swept key; sorted by the key columns and
    the swept values. A swept value that is a list is stored as its JSON text."""
    table = pd.concat(frames, ignore_index=True)[[*COLUMNS, *keys]]
    return table.sort_values([*keys, *KEY_COLUMNS], kind="stable").reset_index(drop=True)


def read_sweep(root: str | Path) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """A finished sweep's combined table and manifest (both verified), or None if ``root`` holds no finished sweep."""
    root = Path(root)
    if not (root / MANIFEST).exists():
        return None
    manifest = read_json_verified(root / MANIFEST)
    if manifest.get("kind") != SWEEP_KIND or manifest.get("status") != "complete":
        return None
    return read_parquet_verified(root / TABLE), manifest
