"""Claims across seed sets: does a verdict hold on any seed set, or only on the one that ran?

A run with seed offset K (``INTERNALIZE_SEED_OFFSET=K`` or ``--seed-offset K``) writes its experiments into
``OUT/seed-offset-K/`` beside the offset-0 run in ``OUT``. :func:`robustness_table` checks the paper's claims
(:func:`internalize.analysis.claims.claims`) on every seed set and lays the verdicts side by side, with a column
saying whether the verdict depends on the seeds; :func:`robustness_section` is the report's section built from
the seed-set directories under an output directory; :func:`directory_claims` is every claim of the experiments
finished in a directory and its seed-set sub-directories (``internalize claims``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from internalize.storage import CorruptFile, read_json_verified, read_parquet_verified

from .blocks import Block, Heading, Table, Text, seed_list
from .claim import Claim
from .claims import NOT_RUN, claims
from .table import STUDY_TABLES, group_tables

__all__ = ["SEED_SET_DIR", "seed_set_dir", "seed_set_dirs", "complete_tables", "robustness_table",
           "robustness_section", "directory_claims", "DEPENDS"]

SEED_SET_DIR = "seed-offset-{}"  # OUT/seed-offset-K holds the experiments run with seed offset K (K > 0)
_SEED_SET_RE = re.compile(r"seed-offset-(\d+)")
DEPENDS = "depends on seeds?"
SECTION_TITLE = "Robustness across seed sets"


def seed_set_dir(out: str | Path, offset: int) -> Path:
    """Where a run with seed offset ``offset`` writes its experiments: ``out`` itself for 0, else
    ``out/seed-offset-K``."""
    return Path(out) if offset == 0 else Path(out) / SEED_SET_DIR.format(int(offset))


def seed_set_dirs(out: str | Path) -> dict[int, Path]:
    """The ``seed-offset-K`` sub-directories of ``out`` (K > 0), by K in increasing order."""
    found = {}
    root = Path(out)
    if root.is_dir():
        for path in root.iterdir():
            m = _SEED_SET_RE.fullmatch(path.name)
            if m and path.is_dir() and int(m.group(1)) > 0:
                found[int(m.group(1))] = path
    return dict(sorted(found.items()))


def complete_tables(directory: str | Path) -> dict[str, pd.DataFrame]:
    """Every finished experiment directly under ``directory``: ``NAME/results.parquet`` whose
    ``NAME/manifest.json`` says ``"status": "complete"`` (unfinished or unreadable ones are left out)."""
    tables = {}
    for table in sorted(Path(directory).glob("*/results.parquet")):
        manifest_path = table.parent / "manifest.json"
        try:
            manifest = read_json_verified(manifest_path) if manifest_path.exists() else {}
        except CorruptFile:
            continue
        if manifest.get("status") == "complete":
            tables[table.parent.name] = read_parquet_verified(table)  # CorruptFile (a ValueError) names it
    return tables


def _cell(verdict: str, seeds: tuple[int, ...]) -> str:
    return verdict if verdict == NOT_RUN or not seeds else f"{verdict} (seeds {seed_list(seeds)})"


def robustness_table(sets: Mapping[str, Mapping[str, pd.DataFrame]]) -> Table:
    """Claim x seed set: ``sets`` maps a seed-set label (e.g. "offset 0") to ``{experiment: long table}``.

    Rows: the nine claims (number, statement). Columns: one per seed set, the verdict and the seeds it rests on,
    then "depends on seeds?": ``yes`` when the sets that ran the claim disagree, ``no`` when at least two ran it
    and agree, ``n/a`` when fewer than two ran it. A set whose tables cannot be read (ValueError) shows the error
    in its column instead of verdicts.
    """
    labels = list(sets)
    statements = {c.number: c.statement for c in claims({})}
    per_set: dict[str, dict[int, str | tuple[str, tuple[int, ...]]]] = {}
    for label in labels:
        try:
            found = claims(sets[label])
        except ValueError as exc:  # a broken table in one set: say so there, keep the others
            per_set[label] = {n: f"could not check: {exc}" for n in statements}
            continue
        per_set[label] = {c.number: (c.verdict, tuple(c.seeds)) for c in found}
    rows = []
    for number in sorted(statements):
        cells, ran = [], []
        for label in labels:
            got = per_set[label].get(number, NOT_RUN)
            if isinstance(got, tuple):
                verdict, seeds = got
                cells.append(_cell(verdict, seeds))
                if verdict != NOT_RUN:
                    ran.append(verdict)
            else:
                cells.append(str(got))
        depends = "n/a" if len(ran) < 2 else ("yes" if len(set(ran)) > 1 else "no")
        rows.append((str(number), statements[number], *cells, depends))
    return Table(("#", "claim", *labels, DEPENDS), tuple(rows))


def robustness_section(out_dir: str | Path, tables: Mapping[str, pd.DataFrame]) -> list[Block]:
    """The report section "Robustness across seed sets" for ``out_dir``: ``tables`` are ``out_dir``'s own
    experiments (offset 0), each ``out_dir/seed-offset-K`` with finished experiments is one more seed set.
    No such sub-directory -> no section ([])."""
    sets: dict[str, Mapping[str, pd.DataFrame]] = {}
    for k, path in seed_set_dirs(out_dir).items():
        found = {name: t for name, t in complete_tables(path).items() if name not in STUDY_TABLES}
        if found:
            sets[f"offset {k}"] = found
    if not sets:
        return []
    own = {name: t for name, t in tables.items() if name not in STUDY_TABLES}  # no paper claim reads a study
    sets = {"offset 0 (this run)": own, **sets} if own else sets
    return [
        Heading(SECTION_TITLE, 2),
        Text("Each paper claim re-checked on every seed set run into this directory: offset 0 is this report's own "
             "run, offset K the run in seed-offset-K/ (every preset seed shifted by K). 'depends on seeds?' is yes "
             "when the seed sets that ran a claim disagree, no when they agree, n/a when fewer than two ran it."),
        robustness_table(sets),
    ]


def directory_claims(out: str | Path) -> list[tuple[int, Claim]]:
    """Every claim of the experiments finished in ``out`` (seed offset 0) and in each ``out/seed-offset-K``, as
    ``(K, claim)`` by K then claim number. A claim is listed when the experiment it reads finished in that seed
    set (its verdict may still be "not run" when the table lacks what it needs); none when nothing finished."""
    found: list[tuple[int, Claim]] = []
    for offset, path in ((0, Path(out)), *seed_set_dirs(out).items()):
        tables = complete_tables(path) if path.is_dir() else {}
        ran = set(group_tables(tables))
        found += [(offset, c) for c in claims(tables) if c.experiment in ran]
    return found
