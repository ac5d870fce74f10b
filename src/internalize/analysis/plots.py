"""The paper's figure kinds, drawn from the long results table.

One function per kind; each takes the (already filtered) table, writes one PNG atomically (temp file
beside the target, then ``os.replace``) and returns its path. Figures are built on
``matplotlib.figure.Figure`` with the Agg canvas, never through pyplot, so nothing global changes.

Plot semantics follow the paper (docs/paper-vs-reference.md, 'Curves, bars and smoothing'): learning curves are
the mean over seeds with min–max bands and a dashed line where the caregiver leaves; bars carry bootstrap CIs
(68% as the authors' ``errorbar=('ci', 68)``); Fig 3b is on a log y axis. Where the authors' plots smooth (Figs 3a, 6
and 7: an exponential moving average with weight 0.8), ours do too and say so in the title.

Every axis has a human label (:func:`label`), every legend names each line, band and marker, and each
condition has one colour in every figure, from the Okabe–Ito palette (distinguishable with the common
colour-vision deficiencies). Each PNG has a vector copy (``.svg``) beside it, for papers.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from internalize.storage import atomic_write_bytes

from . import paper
from .stats import bootstrap_ci
from .table import (
    across_seeds,
    condition_order,
    final_per_seed,
    isr_final_per_run,
    require_columns,
    select,
    world_order,
)

__all__ = ["learning_curves", "bars", "isr_curve", "mse_vs_data", "hacking", "label", "PALETTE"]

#: Okabe & Ito's colour-blind-safe palette (https://jfly.uni-koeln.de/color/).
PALETTE = {"blue": "#0072B2", "vermillion": "#D55E00", "green": "#009E73", "orange": "#E69F00",
           "sky": "#56B4E9", "purple": "#CC79A7", "yellow": "#F0E442", "grey": "#999999", "black": "#000000"}
#: One colour per condition in every figure; a user's own conditions take the remaining colours in order.
_COLORS = {"caregiver": PALETTE["blue"], "oracle": PALETTE["blue"], "none": PALETTE["vermillion"],
           "isr": PALETTE["green"], "frozen": PALETTE["grey"], "frozen-continued": PALETTE["purple"]}
_SPARE = (PALETTE["orange"], PALETTE["sky"], PALETTE["yellow"], PALETTE["black"])
_SOCIALIZATION = PALETTE["black"]
_CURVE_COLUMNS = ("condition", "seed", "step", "episode", "metric", "value")
#: What a metric is, for axis labels and titles (units: per episode of the world, or per update).
_LABELS = {
    "goals_per_episode": "Goals reached per episode",
    "caregiver_return": "Caregiver's reward per episode (R_e + R_s)",
    "social_return": "Social reward per episode (R_s)",
    "extrinsic_return": "Extrinsic reward per episode (R_e)",
    "internal_return": "Internal reward per episode (R_i)",
    "utility_return": "Utility per episode (what the learner maximised)",
    "peer_goals_per_episode": "Peer's goals per episode",
    "isr_train_mse": "train", "isr_heldout_mse": "held-out",
}
#: The authors' smoothing of Figs 3a, 6 and 7 (an exponential moving average).
PAPER_EMA = 0.8


def label(metric: str) -> str:
    """A metric's human name (``goals_per_episode`` -> ``Goals reached per episode``)."""
    return _LABELS.get(metric, metric.replace("_", " ").capitalize())


def _color(condition: str, i: int) -> str:
    return _COLORS.get(condition, _SPARE[i % len(_SPARE)])


def _ema(values: pd.Series, weight: float, start: float | None = None) -> np.ndarray:
    """TensorBoard's smoothing, as the authors' plots: s_t = w * s_{t-1} + (1 - w) * x_t, from s_0 = x_0, or
    continuing a running value ``start`` (a curve that goes on from another, as autonomy from socialization)."""
    v = values.to_numpy(float)
    if weight <= 0 or v.size == 0:
        return v
    out = np.empty_like(v)
    acc = v[0] if start is None else start
    for t, x in enumerate(v):
        if np.isnan(acc):
            acc = x
        elif not np.isnan(x):  # a rollout where no episode ended (NaN) keeps the running value
            acc = weight * acc + (1 - weight) * x
        out[t] = acc
    return out


def _smoothed(cur: pd.DataFrame, weight: float, start: pd.Series | None = None) -> pd.DataFrame:
    """``cur``'s mean and band smoothed; ``start``: the running values (mean, lo, hi) the curve continues from."""
    if weight <= 0:
        return cur
    cur = cur.copy()
    for col in ("mean", "lo", "hi"):
        cur[col] = _ema(cur[col], weight, None if start is None else float(start[col]))
    return cur


def _smooth_note(weight: float) -> str:
    return f"; smoothed (EMA {weight:g}, as the authors' plots)" if weight > 0 else ""


def _band_legend(ax, extra: list[tuple[object, str]] = (), **kw) -> None:
    """The lines' legend plus what the shading (and any extra marker) means."""
    handles, labels = ax.get_legend_handles_labels()
    handles.append(Patch(facecolor="0.5", alpha=0.25, linewidth=0))
    labels.append("min–max over seeds")
    for h, text in extra:
        handles.append(h)
        labels.append(text)
    ax.legend(handles, labels, frameon=False, **kw)


def _save(fig: Figure, out: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as PNG to ``out`` and as SVG beside it (``.svg``), atomically; return the PNG's path."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    for suffix, kw in ((".svg", {}), (path.suffix, {"dpi": 110})):
        buf = io.BytesIO()
        fig.savefig(buf, format=suffix.lstrip(".") or "png", bbox_inches="tight", **kw)
        atomic_write_bytes(path.with_suffix(suffix), buf.getvalue())
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
                    title: str | None = None, ylabel: str | None = None, smooth: float = 0.0) -> Path:
    """Fig 1b / 4a / 7: ``metric`` over training per condition, mean over seeds with min–max bands.

    ``df``: long table rows (any phases); socialization rows (the same for every condition) are drawn once, in
    black, and each condition from where the caregiver leaves (``switch_step``, the dashed line); ``x``:
    'episode', 'step' or 'auto' (env steps), drawn in thousands; ``smooth``: EMA weight (0 = none).
    """
    require_columns(df, _CURVE_COLUMNS, "learning_curves input")
    rows = select(df, metric=metric)
    xa = _x_axis(rows, x) if not rows.empty else "step"
    cur = across_seeds(df, metric, x=xa)
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
    scale = _scale(cur["x"])
    conds = condition_order(cur["condition"])
    start = None  # each condition's smoothing goes on from where socialization's ended, as one run's curve would
    if "phase" in df.columns and (df["phase"] == "socialization").any() and len(conds) > 1:
        soc = df[(df["phase"] == "socialization") & (df["condition"] == conds[0])]
        if not select(soc, metric=metric).empty:
            soc_cur = _smoothed(across_seeds(soc, metric, x=xa), smooth)
            _band(ax, soc_cur, scale, _SOCIALIZATION, "socialization (caregiver present)")
            start = soc_cur.iloc[-1]
            rest = df[df["phase"] != "socialization"]
            cur = across_seeds(rest, metric, x=xa) if not select(rest, metric=metric).empty else cur.iloc[:0]
    for i, cond in enumerate(conds):
        part = cur.loc[cur["condition"] == cond]
        if len(part):
            _band(ax, _smoothed(part, smooth, start), scale, _color(cond, i), cond)
    extra = []
    if switch_step is not None:
        ax.axvline(_step_to_x(rows, switch_step, xa) / scale, color="k", linestyle="--", linewidth=1)
        extra.append((Line2D([], [], color="k", linestyle="--", linewidth=1), "caregiver leaves"))
    ax.set_xlabel(_label(xa, scale))
    ax.set_ylabel(ylabel or label(metric))
    ax.set_title(title or f"{ylabel or label(metric)}\n(mean over seeds{_smooth_note(smooth)})", fontsize=10)
    _band_legend(ax, extra, fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
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
    for ax, world in zip(axes, worlds, strict=True):
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
    axes[0].set_ylabel(f"{label(metric)}\n(mean, {int(round(ci * 100))}% bootstrap CI; dots: seeds)", fontsize=9)
    if len(worlds) > 1 and title:
        fig.suptitle(title)
    return _save(fig, out)


def isr_curve(df: pd.DataFrame, out: str | os.PathLike[str], title: str | None = None,
              smooth: float = PAPER_EMA) -> Path:
    """Fig 3a: ISR training MSE and held-out MSE over updates (mean over seeds, min–max band), log y (the
    curves span decades), EMA-smoothed as the authors' plot."""
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
            name = label(metric) + ("" if len(conds) == 1 else f" ({cond})")
            _band(ax, _smoothed(cur.loc[cur["condition"] == cond], smooth), scale, color, name, linestyle=style)
    ax.set_yscale("log")
    ax.set_xlabel("ISR updates" + (" (×10³)" if scale == 1e3 else ""))
    ax.set_ylabel("MSE of the predicted social reward (log scale)")
    ax.set_title(title or f"ISR training: train vs held-out MSE\n(mean over seeds{_smooth_note(smooth)})",
                 fontsize=10)
    _band_legend(ax, fontsize=8)
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
    ax.scatter(runs["n_train"], runs["mse"], s=10, color=_COLORS["isr"], alpha=0.6, label="this run (per seed)")
    means = runs.groupby("n_train")["mse"].mean()
    ax.plot(means.index, means.to_numpy(), color=_COLORS["isr"], marker="o", label="this run (mean)")
    if show_paper:
        n = np.array(list(paper.FIG3B_HELDOUT_MSE))
        m, s = np.array(list(paper.FIG3B_HELDOUT_MSE.values())).T
        ax.errorbar(n, m, yerr=s, color="k", marker="s", linestyle=":", capsize=3,
                    label="paper (mean ± SEM; test loss leaks)")
    ax.set_yscale("log")
    ax.set_xlabel("ISR training transitions")
    ax.set_ylabel("Held-out MSE of the predicted social reward (log scale)", fontsize=9)
    ax.set_title(title or "ISR held-out MSE vs socialization data", fontsize=10)
    # Below the axes: inside, it would cover the largest data size.
    ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=8)
    return _save(fig, out)


def hacking(df: pd.DataFrame, out: str | os.PathLike[str], x: str = "auto",
            title: str | None = None, smooth: float = PAPER_EMA) -> Path:
    """Fig 6: internal (ISR) return per episode (left axis) and goals per episode (right axis)
    over training, mean over seeds with min–max bands, EMA-smoothed as the authors' plot."""
    require_columns(df, _CURVE_COLUMNS, "hacking input")
    fig = Figure(figsize=(6.4, 4.0))
    left = fig.add_subplot()
    right = left.twinx()
    xa, scale = "step", 1.0
    for ax, metric, color in ((left, "internal_return", PALETTE["purple"]),
                              (right, "goals_per_episode", PALETTE["orange"])):
        rows = select(df, metric=metric)
        if rows.empty:
            raise ValueError(f"hacking: no rows with metric {metric!r}")
        xa = _x_axis(rows, x)
        cur = across_seeds(rows, metric, x=xa).groupby("step", as_index=False).agg(
            x=("x", "mean"), mean=("mean", "mean"), lo=("lo", "min"), hi=("hi", "max"))
        scale = _scale(cur["x"])
        _band(ax, _smoothed(cur, smooth), scale, color, label(metric))
        ax.set_ylabel(label(metric), color=color)
    left.set_xlabel(_label(xa, scale))
    left.set_title(title or f"Reward hacking: internal reward vs goals reached\n(mean over seeds"
                   f"{_smooth_note(smooth)})", fontsize=10)
    handles = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    texts = left.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    left.legend(handles + [Patch(facecolor="0.5", alpha=0.25, linewidth=0)], texts + ["min–max over seeds"],
                frameon=False, fontsize=8, loc="upper left")
    return _save(fig, out)
