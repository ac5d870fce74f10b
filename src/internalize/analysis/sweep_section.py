"""A sweep's report section: the chosen outcome against each swept key, per condition, with 95% CIs over seeds.

A sweep's combined table (``experiments.sweep``) is an ordinary results table plus one column per swept key. Its
outcome is read per run as :func:`~internalize.analysis.table.final_per_seed` reads it (the metric's last logged
value in its phase), averaged over the run's worlds, giving one number per (point, condition, seed). Against one
swept key, a seed's number is the mean over the other keys' points, so each seed is one observation; the interval
is Student's t over seeds (n - 1 degrees of freedom). The full grid follows as a table.

This module reads tables only: the swept keys are the table's columns beyond the schema's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats as sps
from matplotlib.figure import Figure

from internalize.schema import COLUMNS

from .blocks import Block, Heading, Image, Table, Text, fmt, seed_list
from .plots import _color, _save, label
from .table import condition_order

__all__ = ["swept_keys", "outcome_per_seed", "against_key", "mean_ci", "sweep_section"]


def swept_keys(df: pd.DataFrame) -> list[str]:
    """The swept keys of a sweep's table: its columns beyond the results table's, in table order."""
    return [c for c in df.columns if c not in COLUMNS]


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t ``level`` CI of ``values`` over seeds; the CI is (NaN, NaN) for fewer than two."""
    v = np.asarray(values, dtype=float)
    m = float(v.mean()) if v.size else float("nan")
    if v.size < 2:
        return m, float("nan"), float("nan")
    half = float(sps.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size))
    return m, m - half, m + half


def outcome_per_seed(df: pd.DataFrame, outcome: str, phase: str) -> pd.DataFrame:
    """One row per (swept values, condition, seed): ``outcome``'s last logged value in ``phase``, averaged over
    the run's worlds. ``ValueError`` naming the metrics there if ``outcome`` is not logged in ``phase``."""
    keys = swept_keys(df)
    rows = df[(df["phase"] == phase) & (df["metric"] == outcome)]
    if rows.empty:
        there = sorted(df.loc[df["phase"] == phase, "metric"].unique())
        raise ValueError(f"the outcome {outcome!r} is not logged in phase {phase!r}; logged there: "
                         f"{', '.join(there) or 'nothing'} (set [sweep] outcome and phase).")
    run = [*keys, "condition", "world", "seed"]
    last = rows.groupby(run, dropna=False)["step"].transform("max")
    finals = rows[rows["step"] == last].groupby(run, dropna=False, as_index=False)["value"].mean()
    return finals.groupby([*keys, "condition", "seed"], dropna=False, as_index=False)["value"].mean()


def against_key(per_seed: pd.DataFrame, key: str) -> pd.DataFrame:
    """The outcome against one swept ``key``: per (value, condition) the mean over seeds, its 95% CI and n, where
    a seed's value is its mean over the other keys' points."""
    seed_means = per_seed.groupby([key, "condition", "seed"], as_index=False)["value"].mean()
    rank = {c: i for i, c in enumerate(condition_order(seed_means["condition"].unique()))}
    rows = []
    for (value, _, condition), g in seed_means.assign(rank=seed_means["condition"].map(rank)).groupby(
            [key, "rank", "condition"], sort=True):
        m, lo, hi = mean_ci(g["value"])
        rows.append({key: value, "condition": condition, "mean": m, "ci_low": lo, "ci_high": hi, "n": len(g)})
    return pd.DataFrame(rows)


def _plot(per_key: dict[str, pd.DataFrame], outcome: str, out: Path) -> Path:
    fig = Figure(figsize=(4.2 * len(per_key), 3.4))
    for i, (key, stats) in enumerate(per_key.items()):
        ax = fig.add_subplot(1, len(per_key), i + 1)
        values = sorted(stats[key].unique(), key=lambda v: (isinstance(v, str), v))
        numeric = all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in values)
        pos = {v: (float(v) if numeric else j) for j, v in enumerate(values)}
        for j, cond in enumerate(condition_order(stats["condition"].unique())):
            s = stats[stats["condition"] == cond].sort_values(key, key=lambda c: c.map(pos))
            x = s[key].map(pos).to_numpy(float)
            y = s["mean"].to_numpy(float)
            err = np.vstack([y - s["ci_low"].to_numpy(float), s["ci_high"].to_numpy(float) - y])
            ax.errorbar(x, y, yerr=np.nan_to_num(err), marker="o", capsize=3, color=_color(cond, j), label=cond)
        if not numeric:
            ax.set_xticks(list(pos.values()), [str(v) for v in values])
        ax.set_xlabel(key)
        ax.set_ylabel(label(outcome))
        ax.set_title(f"against {key}", fontsize=9)
    fig.axes[0].legend(frameon=False, fontsize=8, title="condition (mean, 95% CI over seeds)", title_fontsize=8)
    fig.tight_layout()
    return _save(fig, out)


def sweep_section(name: str, df: pd.DataFrame, outcome: str, phase: str, fig_dir: Path) -> list[Block]:
    """The section of the sweep ``name``: what was swept, the outcome against each key (figure and table) and the
    whole grid's table."""
    keys = swept_keys(df)
    if not keys:
        raise ValueError(f"{name}: the table has no swept-key columns (not a sweep's table).")
    per_seed = outcome_per_seed(df, outcome, phase)
    seeds = sorted(per_seed["seed"].unique())
    grid = ", ".join(f"{k} in {{{', '.join(map(str, sorted(df[k].unique(), key=str)))}}}" for k in keys)
    blocks: list[Block] = [
        Heading(f"{name} — sweep", 2),
        Text(f"Swept: {grid}; {per_seed.groupby(keys).ngroups} points x {len(seeds)} seeds ({seed_list(seeds)}). "
             f"Outcome: {label(outcome)} ({outcome}), the last value logged in the {phase} phase, averaged over "
             "each run's worlds. Against one key, each seed's value is its mean over the other keys' points; the "
             "intervals are 95% Student-t CIs over seeds."),
    ]
    per_key = {k: against_key(per_seed, k) for k in keys}
    blocks.append(Image(f"{name}: {label(outcome)} against each swept key, per condition (mean and 95% CI over "
                        "seeds)", _plot(per_key, outcome, fig_dir / f"sweep_{name}.png")))
    for key, stats in per_key.items():
        blocks.append(Heading(f"{outcome} against {key}", 3))
        blocks.append(Table((key, "condition", "mean", "95% CI", "n"), tuple(
            (str(r[key]), str(r["condition"]), fmt(r["mean"]), f"[{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]",
             str(r["n"])) for _, r in stats.iterrows())))
    if len(keys) > 1:
        rows = []
        for point, g in per_seed.groupby(keys, sort=True):
            point = point if isinstance(point, tuple) else (point,)
            for cond in condition_order(g["condition"].unique()):
                m, lo, hi = mean_ci(g.loc[g["condition"] == cond, "value"])
                rows.append((*map(str, point), cond, fmt(m), f"[{fmt(lo)}, {fmt(hi)}]",
                             str(int((g["condition"] == cond).sum()))))
        blocks += [Heading(f"{outcome} at every point of the grid", 3),
                   Table((*keys, "condition", "mean", "95% CI", "n"), tuple(rows))]
    return blocks
