"""The paper's figure kinds, drawn from the long results table.

One function per kind; each takes the (already filtered) table, writes one PNG atomically (temp file
beside the target, then ``os.replace``) and returns its path. Figures are built on
``matplotlib.figure.Figure`` with the Agg canvas, never through pyplot, so nothing global changes.

Plot semantics follow the paper (PAPER-SPEC §4–5): learning curves are the mean over seeds with
min–max bands and a dashed line where the caregiver leaves; bars carry bootstrap CIs (68% as the
authors' ``errorbar=('ci', 68)``); Fig 3b is on a log y axis.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from internalize.storage import atomic_write_bytes

from . import paper
from .stats import bootstrap_ci
from .table import (
    across_seeds, condition_order, final_per_seed, isr_final_per_run, require_columns, select,
    world_order,
)

__all__ = ["learning_curves", "bars", "isr_curve", "mse_vs_data", "hacking"]

_COLORS = {"caregiver": "tab:blue", "oracle": "tab:blue", "none": "tab:green", "isr": "tab:red",
           "frozen": "tab:gray", "frozen-continued": "tab:olive"}
_CURVE_COLUMNS = ("condition", "seed", "step", "episode", "metric", "value")


def _color(condition: str, i: int) -> str:
    return _COLORS.get(condition, f"C{(i + 4) % 10}")


def _save(fig: Figure, out: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as PNG to ``out`` atomically and return the path."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
    return path


def _x_axis(df: pd.DataFrame, x: str) -> str:
    """Resolve ``x`` ('auto' | 'episode' | 'step'). 'auto' is env steps: every seed logs at the same steps, while
    cumulative episode counts differ between seeds and would misalign the mean and the band."""
    if x not in ("auto", "episode", "step"):
        raise ValueError(f"x={x!r}: allowed 'auto', 'episode', 'step'")
    if x == "auto":
        return "step"
    if x == "episode" and df["episode"].isna().any():
        raise ValueError("x='episode' but column 'episode' has NaN values; use x='step'")
    return x


def _step_to_x(df: pd.DataFrame, step: float, x: str) -> float:
    """Map an env-step position onto the x axis (episodes by interpolating the logged pairs)."""
    if x == "step":
        return step
    pairs = df.groupby("step")["episode"].mean().sort_index()
    return float(np.interp(step, pairs.index.to_numpy(float), pairs.to_numpy(float)))


def _scale(x: pd.Series) -> float:
    """Draw x in thousands unless the values are small (a short quick run)."""
    return 1e3 if len(x) and float(np.nanmax(x)) >= 1e3 else 1.0


def _label(x: str, scale: float) -> str:
    return ("Episodes" if x == "episode" else "Env steps") + (" (×10³)" if scale == 1e3 else "")


def _band(ax, cur: pd.DataFrame, scale: float, color: str, label: str, **kw) -> None:
    """Mean line with a min–max band across seeds."""
    xs = cur["x"].to_numpy(float) / scale
    ax.plot(xs, cur["mean"], color=color, label=label, **kw)
    ax.fill_between(xs, cur["lo"], cur["hi"], color=color, alpha=0.2, linewidth=0)


def learning_curves(df: pd.DataFrame, metric: str, out: str | os.PathLike[str],
                    switch_step: float | None = None, x: str = "auto",
                    title: str | None = None, ylabel: str | None = None) -> Path:
    """Fig 1b / 4a: ``metric`` over training per condition, mean over seeds with min–max bands.

    ``df``: long table rows (any phases); ``switch_step``: env step where the caregiver leaves (dashed
    line); ``x``: 'episode', 'step' or 'auto' (episodes when logged), drawn in thousands.
    """
    require_columns(df, _CURVE_COLUMNS, "learning_curves input")
    rows = select(df, metric=metric)
    xa = _x_axis(rows, x) if not rows.empty else "step"
    cur = across_seeds(df, metric, x=xa)
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
    scale = _scale(cur["x"])
    for i, cond in enumerate(condition_order(cur["condition"])):
        _band(ax, cur.loc[cur["condition"] == cond], scale, _color(cond, i), cond)
    if switch_step is not None:
        ax.axvline(_step_to_x(rows, switch_step, xa) / scale, color="k", linestyle="--", linewidth=1)
    ax.set_xlabel(_label(xa, scale))
    ax.set_ylabel(ylabel or metric)
    ax.set_title(title or f"{metric} (mean over seeds, min–max band)")
    ax.legend(frameon=False)
    return _save(fig, out)


def bars(df: pd.DataFrame, metric: str, out: str | os.PathLike[str], ci: float = 0.68,
         n_boot: int = 10_000, seed: int = 0, phase: str = "evaluation",
         title: str | None = None) -> Path:
    """Fig 4b / 5: one bar per condition (mean over seeds) with a bootstrap CI at level ``ci``.

    One value per run is taken (``metric`` at the run's last step in ``phase``); per-seed values are
    drawn as dots. One facet per world when several worlds are present (Fig 5).
    """
    require_columns(df, ("condition", "world", "seed", "phase", "step", "metric", "value"), "bars input")
    runs = final_per_seed(df, metric, phase)
    if runs.empty:
        raise ValueError(f"bars: no rows with metric {metric!r} in phase {phase!r}")
    worlds = world_order(runs["world"])
    conds = condition_order(runs["condition"])
    fig = Figure(figsize=(max(3.2, 2.4 * len(worlds)), 3.8))
    axes = fig.subplots(1, len(worlds), sharey=True, squeeze=False)[0]
    for ax, world in zip(axes, worlds):
        for i, cond in enumerate(conds):
            v = runs.loc[(runs["world"] == world) & (runs["condition"] == cond), "value"].to_numpy(float)
            if v.size == 0:
                continue
            b = bootstrap_ci(v, level=ci, n_boot=n_boot, seed=seed)
            ax.bar(i, b.mean, color=_color(cond, i), alpha=0.8)
            ax.errorbar(i, b.mean, yerr=[[b.mean - b.low], [b.high - b.mean]], color="k", capsize=4)
            ax.scatter(np.full(v.size, i) + np.linspace(-0.15, 0.15, v.size), v, s=8, color="k", zorder=3)
        ax.set_xticks(range(len(conds)), conds, rotation=30)
        ax.set_title(str(world) if len(worlds) > 1 else (title or str(world)))
    axes[0].set_ylabel(f"{metric} ({int(round(ci * 100))}% bootstrap CI)")
    if len(worlds) > 1 and title:
        fig.suptitle(title)
    return _save(fig, out)


def isr_curve(df: pd.DataFrame, out: str | os.PathLike[str], title: str | None = None) -> Path:
    """Fig 3a: ISR training MSE and held-out MSE over updates (mean over seeds, min–max band)."""
    require_columns(df, _CURVE_COLUMNS, "isr_curve input")
    rows = select(df, phase="isr")
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
    scale = 1.0
    for k, (metric, style) in enumerate((("isr_train_mse", "-"), ("isr_heldout_mse", "--"))):
        m = select(rows, metric=metric)
        if m.empty:
            raise ValueError(f"isr_curve: no phase 'isr' rows with metric {metric!r}")
        cur = across_seeds(m, metric)
        scale = _scale(cur["x"])
        conds = condition_order(cur["condition"])
        for i, cond in enumerate(conds):
            # One condition: a colour per metric; several: a colour per condition, style per metric.
            color = f"C{k}" if len(conds) == 1 else f"C{i}"
            label = metric.removeprefix("isr_").removesuffix("_mse") + ("" if len(conds) == 1 else f" ({cond})")
            _band(ax, cur.loc[cur["condition"] == cond], scale, color, label, linestyle=style)
    ax.set_xlabel("ISR updates" + (" (×10³)" if scale == 1e3 else ""))
    ax.set_ylabel("MSE")
    ax.set_title(title or "ISR training: train vs held-out MSE")
    ax.legend(frameon=False)
    return _save(fig, out)


def mse_vs_data(df: pd.DataFrame, out: str | os.PathLike[str], show_paper: bool = True,
                title: str | None = None) -> Path:
    """Fig 3b: final held-out ISR MSE vs number of training transitions, log y.

    One dot per run, the mean per data size as a line; the paper's means (SEM bars) for comparison.
    """
    require_columns(df, ("condition", "world", "seed", "phase", "step", "metric", "value"), "mse_vs_data input")
    runs = isr_final_per_run(df)
    if runs.empty:
        raise ValueError("mse_vs_data: needs phase 'isr' rows with metrics 'isr_n_train' and 'isr_heldout_mse'")
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
    ax.scatter(runs["n_train"], runs["mse"], s=10, color="tab:red", alpha=0.6, label="this run (per seed)")
    means = runs.groupby("n_train")["mse"].mean()
    ax.plot(means.index, means.to_numpy(), color="tab:red", marker="o", label="this run (mean)")
    if show_paper:
        n = np.array(list(paper.FIG3B_HELDOUT_MSE))
        m, s = np.array(list(paper.FIG3B_HELDOUT_MSE.values())).T
        ax.errorbar(n, m, yerr=s, color="k", marker="s", linestyle=":", capsize=3,
                    label="paper (mean ± SEM; test loss leaks)")
    ax.set_yscale("log")
    ax.set_xlabel("ISR training transitions")
    ax.set_ylabel("held-out MSE")
    ax.set_title(title or "ISR held-out MSE vs socialization data")
    ax.legend(frameon=False)
    return _save(fig, out)


def hacking(df: pd.DataFrame, out: str | os.PathLike[str], x: str = "auto",
            title: str | None = None) -> Path:
    """Fig 6: internal (ISR) return per episode (left axis) and goals per episode (right axis)
    over training, mean over seeds with min–max bands."""
    require_columns(df, _CURVE_COLUMNS, "hacking input")
    fig = Figure(figsize=(6.4, 4.0))
    left = fig.add_subplot()
    right = left.twinx()
    xa, scale = "step", 1.0
    for ax, metric, color in ((left, "internal_return", "tab:purple"), (right, "goals_per_episode", "tab:orange")):
        rows = select(df, metric=metric)
        if rows.empty:
            raise ValueError(f"hacking: no rows with metric {metric!r}")
        xa = _x_axis(rows, x)
        cur = across_seeds(rows, metric, x=xa).groupby("step", as_index=False).agg(
            x=("x", "mean"), mean=("mean", "mean"), lo=("lo", "min"), hi=("hi", "max"))
        scale = _scale(cur["x"])
        _band(ax, cur, scale, color, metric)
        ax.set_ylabel(metric, color=color)
    left.set_xlabel(_label(xa, scale))
    left.set_title(title or "Reward hacking: internal return vs goals reached")
    return _save(fig, out)
