"""The reproduction report: ``report.md`` and a self-contained ``report.html``.

:func:`write_report` takes one long results table per experiment plus run metadata and writes, in
``out_dir``: the figures (``figures/*.png``), ``report.md`` (linking them) and ``report.html`` (the same
content with every image embedded as a base64 data URI, no external references). It contains one
section per experiment (a missing one says "not run"), each figure with its statistics (n and seeds),
what produced it (learner / budget / preset from ``meta``), and the table "Paper claims vs this run"
built by :func:`internalize.analysis.claims.claims`.
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from internalize.storage import atomic_write_bytes

from .claim import claim_record, equivalent_text, fraction_text, seeds_needed_text
from .claims import Claim, claims
from .robustness import robustness_section
from .sections import GENERIC, SECTIONS, Block, Heading, Image, Table, Text, seed_list
from .sweep_section import sweep_section
from .table import EXPERIMENT_ALIASES, STUDY_TABLES, condition_order, group_tables

__all__ = ["ReportFiles", "SweepTable", "write_report", "claims", "Claim"]

_PRODUCED_BY = ("learner", "budget", "preset")
_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #bbb;padding:3px 7px;text-align:left}
th{background:#eee}figure{margin:1em 0}img{max-width:100%}figcaption{font-size:.9em;color:#555}
figure.gif{display:inline-block;margin:0 1.5em 1em 0;vertical-align:top}figure.gif figcaption{max-width:12em}
td.reproduced{background:#dff0d8}td.not-reproduced{background:#f2dede}td.not-run{background:#eee}"""


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`write_report` wrote: the two documents, the figures, and the claim verdicts."""

    md: Path
    html: Path
    figures: tuple[Path, ...]
    claims: tuple[Claim, ...]


def _value(v: object) -> str:
    return json.dumps(v, default=str, sort_keys=True) if isinstance(v, (dict, list, tuple)) else str(v)


def _produced_by(meta: Mapping[str, object], name: str) -> Text:
    """'Produced by: …' from meta['experiments'][key] for every table key of this experiment,
    falling back to the run-wide learner/budget/preset."""
    per = meta.get("experiments", {})
    info: dict[str, object] = {}
    if isinstance(per, Mapping):
        for key, val in per.items():
            if EXPERIMENT_ALIASES.get(str(key), str(key)) == name and isinstance(val, Mapping):
                info.update(val)
    if not info:
        info = {k: meta[k] for k in _PRODUCED_BY if k in meta}
    if not info:
        return Text("Produced by: not recorded in the run metadata.")
    return Text("Produced by: " + ", ".join(f"{k} = {_value(v)}" for k, v in info.items()) + ".")


def _claims_table(found: list[Claim]) -> Table:
    """The claims as ``internalize claims`` prints them (:func:`claim_record`), with the report's sentences."""
    rows = []
    for c in found:
        rec = claim_record(c)
        rows.append((str(rec["number"]), c.figure, c.statement, c.paper, c.criterion, c.margin or "—",
                     c.effect or "—", fraction_text(c.fraction), seeds_needed_text(c), equivalent_text(c),
                     rec["verdict"], c.evidence + (f" (seeds {seed_list(c.seeds)})" if c.seeds else "")))
    return Table(("#", "figure", "claim", "paper", "criterion", "margin", "effect (95% CI)",
                  "fraction of the oracle's advantage recovered (95% CI)", "seeds needed (80% power)",
                  "also equivalent", "verdict", "evidence"), tuple(rows))


def _section(name: str, title: str, df: pd.DataFrame | None, builder, fig_dir: Path,
             meta: Mapping[str, object]) -> list[Block]:
    """Heading plus the builder's blocks and the learners' GIFs; 'not run' without data, the error text if it
    fails."""
    blocks: list[Block] = [Heading(title, 2)]
    if df is None or df.empty:
        return blocks + [Text(f"not run (`internalize run {name} --out OUT`, then `internalize report OUT`, "
                              "adds it)")]
    blocks.append(_produced_by(meta, name))
    try:
        blocks += builder(df, fig_dir)
    except ValueError as exc:  # a partial table: say what is missing instead of losing the report
        blocks.append(Text(f"Could not compute this section: {exc}"))
    return blocks + _learner_gifs(fig_dir.parent / str(df["experiment"].iloc[0]) / "gifs")


def _learner_gifs(gif_dir: Path) -> list[Block]:
    """The run's GIFs of each condition's learner (``experiments.gifs.learner_gifs``), if it has them."""
    gifs = {p.stem: p for p in sorted(gif_dir.glob("*.gif"))} if gif_dir.is_dir() else {}
    if not gifs:
        return []
    order = condition_order(gifs)
    return [Text("What each learner does after the caregiver left: the run's first seed on its first autonomy "
                 "world, the same layouts for every condition, greedy actions (internalize play --from shows any "
                 "other).")] + [Image(f"{c}", gifs[c]) for c in order]


def _md_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def _to_markdown(blocks: list[Block], root: Path) -> str:
    lines: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            lines += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Text):
            lines += [b.text, ""]
        elif isinstance(b, Table):
            lines.append("| " + " | ".join(map(_md_cell, b.headers)) + " |")
            lines.append("|" + "---|" * len(b.headers))
            lines += ["| " + " | ".join(map(_md_cell, r)) + " |" for r in b.rows]
            lines.append("")
        elif isinstance(b, Image):
            lines += [f"![{b.caption}]({b.path.relative_to(root).as_posix()})", "", f"*{b.caption}*", ""]
    return "\n".join(lines)


def _to_html(blocks: list[Block], title: str) -> str:
    e = html.escape
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{e(title)}</title>"
             f"<style>{_CSS}</style></head><body>"]
    for b in blocks:
        if isinstance(b, Heading):
            parts.append(f"<h{b.level}>{e(b.text)}</h{b.level}>")
        elif isinstance(b, Text):
            parts.append(f"<p>{e(b.text)}</p>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{e(h)}</th>" for h in b.headers)
            body = "".join("<tr>" + "".join(
                f"<td class=\"{c.replace(' ', '-')}\">{e(c)}</td>" if h == "verdict" else f"<td>{e(c)}</td>"
                for h, c in zip(b.headers, r, strict=True)) + "</tr>" for r in b.rows)
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif isinstance(b, Image):
            data = base64.b64encode(b.path.read_bytes()).decode("ascii")
            kind, cls = ("gif", ' class="gif"') if b.path.suffix == ".gif" else ("png", "")
            parts.append(f"<figure{cls}><img alt=\"{e(b.caption)}\" src=\"data:image/{kind};base64,{data}\">"
                         f"<figcaption>{e(b.caption)}</figcaption></figure>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable as the umask allows (``storage.atomic_write_bytes``)."""
    atomic_write_bytes(path, text.encode("utf-8"))


@dataclass(frozen=True)
class SweepTable:
    """A finished sweep for the report: its combined table, the outcome its section draws, and a study's own
    section ``(name, table, fig_dir) -> blocks`` (None: the generic sweep section)."""

    table: pd.DataFrame
    outcome: str
    phase: str
    section: Callable[[str, pd.DataFrame, Path], list[Block]] | None = None


def _sweep_blocks(name: str, sweep: SweepTable, fig_dir: Path) -> list[Block]:
    try:
        if sweep.section is not None:
            return sweep.section(name, sweep.table, fig_dir)
        return sweep_section(name, sweep.table, sweep.outcome, sweep.phase, fig_dir)
    except ValueError as exc:  # e.g. an outcome the table does not log: say so instead of losing the report
        return [Heading(f"{name} — sweep", 2), Text(f"Could not compute this section: {exc}")]


def write_report(out_dir: str | os.PathLike[str], tables: Mapping[str, pd.DataFrame],
                 meta: Mapping[str, object], sweeps: Mapping[str, SweepTable] | None = None) -> ReportFiles:
    """Write ``out_dir/report.md``, ``out_dir/report.html`` and ``out_dir/figures/*.png``.

    ``tables``: experiment name (fig1 | fig1b | fig4a | fig3 | fig3a | fig3b | fig4b | fig5 | fig6 |
    other) -> long results table; every table is validated first (missing columns -> ValueError
    naming them). ``meta``: run metadata; run-wide keys are listed at the top, and
    ``meta["experiments"][name]`` (e.g. learner, budget, preset) is shown in that experiment's section.
    ``sweeps``: the finished sweeps, each drawn by its own section after the experiments'.
    """
    if not isinstance(meta, Mapping):
        raise ValueError(f"meta: expected a mapping, got {type(meta).__name__}")
    groups = group_tables(tables)
    root = Path(out_dir)
    fig_dir = root / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    title = "Value internalization — reproduction report"
    run_info = [(k, _value(v)) for k, v in meta.items() if k != "experiments"]
    found = claims(groups)
    blocks: list[Block] = [
        Heading(title, 1),
        Text("Rong & Kleiman-Weiner (2024), 'Value Internalization: Learning and Generalizing from Social "
             "Reward' (arXiv 2407.14681): the paper's figures and claims, recomputed from this run's results."),
        Heading("Run", 2),
        Table(("key", "value"), tuple(run_info)) if run_info else Text("No run metadata given."),
    ]
    robustness = robustness_section(root, tables)  # only when root has seed-offset-K/ runs
    if set(groups) - STUDY_TABLES or robustness:
        blocks += [Heading("Paper claims vs this run", 2), _claims_table(found), *robustness]
        for name, (sec_title, builder) in SECTIONS.items():
            blocks += _section(name, sec_title, groups.get(name), builder, fig_dir, meta)
    else:  # only sweeps and studies here: a table of the paper's claims, all "not run", would say nothing
        blocks.append(Text("No experiment of the paper in this directory, so its claims are not listed "
                           "(internalize reproduce, or internalize run figN into the same --out, adds them)."))
        for name in sorted(STUDY_TABLES & set(groups)):
            title, builder = SECTIONS[name]
            blocks += _section(name, title, groups[name], builder, fig_dir, meta)
    for name in sorted(set(groups) - set(SECTIONS)):
        blocks += _section(name, f"{name} — other experiment", groups[name], GENERIC, fig_dir, meta)
    for name, sweep in sorted((sweeps or {}).items()):
        blocks += _sweep_blocks(name, sweep, fig_dir)
    figures = tuple(b.path for b in blocks if isinstance(b, Image))
    md, page = root / "report.md", root / "report.html"
    _write_text(md, _to_markdown(blocks, root))
    _write_text(page, _to_html(blocks, title))
    return ReportFiles(md=md, html=page, figures=figures, claims=tuple(found))
