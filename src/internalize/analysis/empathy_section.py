"""The report's section for the ``empathy`` study: index vs similarity, capacity and view; the behaviour.

Each prediction of the empathy hypothesis is tested as a paired comparison across seeds (the same seeds and
held-out layouts in both arms) and stated with its verdict: *supported* when the difference has the predicted
sign with p < 0.05, *not supported* otherwise, *undetermined* with fewer than two seeds where the index is
defined (it is undefined for an ISR that does not reward the learner's own goal event).

An index is read only where the probe's preconditions hold for that seed and model (``precondition_met``: enough
rewarded training data, a held-out fit, an own gap clearly above 0, peer stimuli distinct from their controls;
``empathy.unit``). A cell, or a paired comparison, with fewer than :data:`MIN_SEEDS` such seeds is *not measurable*,
never an index near 0. Hand-built calibration models have no preconditions; the untrained ISR (the null) never
meets them, and its gaps are shown as what an index reads before any learning.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from internalize.analysis import plots
from internalize.analysis.blocks import Block, Image, Table, Text, fmt, seed_list
from internalize.analysis.stats import bootstrap_ci, paired_ttest

SIMILARITY_ORDER = ("identical", "colour", "kind")
VIEW_ORDER = ("egocentric", "allocentric")
ALPHA = 0.05
MIN_SEEDS = 6  # seeds meeting the preconditions, at least, before a cell's index or a comparison is read
POSITIVE_BAR = 0.8  # the learned positive control (paid for the peer's goals too) must read at least this


def positive_control(d: pd.DataFrame) -> tuple[bool | None, str]:
    """Whether the learned positive control reads high in every view it ran in (None: it did not run), and the
    sentence that says so: per world, its index over the seeds that meet the preconditions."""
    pc = d[d["condition"] == "positive-control"]
    if pc.empty:
        return None, "Learned positive control: not run; nothing shows that the index can read a peer's reward."
    parts, ok = [], True
    for world, g in pc.groupby("world", sort=True):
        v = g["value"].to_numpy(float)
        v = v[np.isfinite(v)]
        if v.size < MIN_SEEDS:
            ok = False
            parts.append(f"{world}: not measurable ({v.size} of {len(g)} seeds meet the preconditions)")
            continue
        b = bootstrap_ci(v, level=0.95)
        ok &= b.mean >= POSITIVE_BAR
        parts.append(f"{world}: {fmt(b.mean)} [{fmt(b.low)}, {fmt(b.high)}], n = {v.size}")
    head = ("Learned positive control passed" if ok else "Learned positive control FAILED: the instrument cannot be "
            "shown to see a peer's reward, so no index below is evidence either way")
    return ok, (f"{head} (an ISR whose caregiver also paid for the peer's goals must read an index of at least "
                f"{POSITIVE_BAR:g}): " + "; ".join(parts) + ".")


def _parse(world: str) -> tuple[str, str]:
    parts = str(world).split("-")
    return (parts[1], parts[2]) if len(parts) == 3 and parts[0] == "peer" else (str(world), "")


def _index_frame(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (condition, world, seed) of the index, with similarity, view and ISR width columns."""
    d = df[(df["phase"] == "empathy") & (df["metric"] == "empathy_index")].copy()
    if d.empty:
        raise ValueError("no empathy_index rows (phase 'empathy'): the probe did not run")
    met = df[(df["phase"] == "empathy") & (df["metric"] == "precondition_met")]
    met = met[["world", "condition", "seed", "value"]].rename(columns={"value": "met"})
    d = d.merge(met, on=["world", "condition", "seed"], how="left")
    # Calibration models are hand-built: nothing to learn, no precondition. Every other model's index is read only
    # where its seed met them.
    d["recorded"] = d["met"].notna() | d["condition"].str.startswith("oracle")
    d["met"] = d["met"].fillna(d["condition"].str.startswith("oracle").astype(float))
    d["raw"] = d["value"]
    d["value"] = d["value"].where(d["met"] > 0.5)
    d[["similarity", "view"]] = [_parse(w) for w in d["world"]]
    d["width"] = [float(c.rsplit("-", 1)[1]) if c.startswith("isr-width-") else np.nan for c in d["condition"]]
    return d


def _main_width(d: pd.DataFrame) -> float:
    widths = sorted(d["width"].dropna().unique())
    return 1.0 if 1.0 in widths else widths[len(widths) // 2]


def _ci(v: np.ndarray) -> tuple[str, int]:
    v = v[np.isfinite(v)]
    if v.size == 0:
        return "undefined", 0
    b = bootstrap_ci(v, level=0.95)
    return f"{fmt(b.mean)} [{fmt(b.low)}, {fmt(b.high)}]", int(v.size)


def _figure(d: pd.DataFrame, width: float, out: Path) -> Path:
    """(a) index vs similarity at the main width; (b) index vs ISR width for the identical peer; per view."""
    fig = Figure(figsize=(9.0, 3.6))
    ax_s, ax_w = fig.subplots(1, 2)
    views = [v for v in VIEW_ORDER if v in set(d["view"])]
    sims = [s for s in SIMILARITY_ORDER if s in set(d["similarity"])]
    widths = sorted(d["width"].dropna().unique())
    for j, view in enumerate(views):
        offset = (j - (len(views) - 1) / 2) * 0.1
        for ax, xs, pick in ((ax_s, sims, lambda x: (d["similarity"] == x) & (d["width"] == width)),
                             (ax_w, widths, lambda x: (d["similarity"] == sims[0]) & (d["width"] == x))):
            means, lows, highs, pos = [], [], [], []
            for i, x in enumerate(xs):
                v = d.loc[pick(x) & (d["view"] == view), "value"].to_numpy(float)
                v = v[np.isfinite(v)]
                if v.size:
                    b = bootstrap_ci(v, level=0.95)
                    means.append(b.mean), lows.append(b.mean - b.low), highs.append(b.high - b.mean)
                    pos.append(i + offset)
            label = view if pos else f"{view} (index undefined)"
            ax.errorbar(pos, means, yerr=[lows, highs], marker="o", capsize=4, label=label)
    ax_s.set_xticks(range(len(sims)), sims)
    ax_s.set_xlabel("peer similarity")
    ax_s.set_title(f"ISR width {width:g}")
    ax_w.set_xticks(range(len(widths)), [f"{w:g}" for w in widths])
    ax_w.set_xlabel("ISR width (capacity)")
    ax_w.set_title(f"{sims[0]} peer" if sims else "")
    for ax in (ax_s, ax_w):
        ax.axhline(0, color="grey", lw=0.8)
        ax.axhline(1, color="grey", lw=0.8, ls=":")  # "as if it were itself"
        low, high = ax.get_ylim()
        ax.set_ylim(min(low, -0.1), max(high, 1.1))  # on the index's own scale: 0 none, 1 as for oneself
    ax_s.set_ylabel("empathy index (95% bootstrap CI)")
    ax_s.legend(fontsize=8)
    return plots._save(fig, out)


def _paired(a: pd.DataFrame, b: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[int]]:
    both = a[["seed", "value"]].merge(b[["seed", "value"]], on="seed", suffixes=("_a", "_b"))
    both = both[np.isfinite(both["value_a"]) & np.isfinite(both["value_b"])]
    return both["value_a"].to_numpy(float), both["value_b"].to_numpy(float), both["seed"].astype(int).tolist()


def _verdict(prediction: str, label: str, a: np.ndarray, b: np.ndarray, seeds: list[int],
             why: str = "index undefined for most seeds", min_seeds: int = 2) -> tuple:
    if len(seeds) < 2:
        return (prediction, label, "-", "-", "-", str(len(seeds)), seed_list(seeds),
                f"undetermined ({why})")
    if len(seeds) < min_seeds:
        return (prediction, label, "-", "-", "-", str(len(seeds)), seed_list(seeds),
                f"not measurable (fewer than {min_seeds} seeds meet the preconditions in both arms)")
    t = paired_ttest(a, b, seeds=seeds)
    diff = t.mean_a - t.mean_b
    verdict = "supported" if diff > 0 and t.p < ALPHA else (
        "not supported (opposite effect)" if diff < 0 and t.p < ALPHA else "not supported")
    return (prediction, label, fmt(diff), f"t({t.df:.0f}) = {fmt(t.t)}", fmt(t.p), str(len(seeds)),
            seed_list(seeds), verdict)


def _predictions(d: pd.DataFrame, df: pd.DataFrame, width: float) -> list[tuple]:
    rows = []
    at = lambda **kw: d[np.logical_and.reduce([d[k] == v for k, v in kw.items()])]  # noqa: E731 - a local row filter
    sims = [s for s in SIMILARITY_ORDER if s in set(d["similarity"])]
    views = [v for v in VIEW_ORDER if v in set(d["view"])]
    widths = sorted(d["width"].dropna().unique())
    for view in views:
        if len(sims) >= 2:
            rows.append(_verdict("1. a more similar peer gets a higher index", f"{sims[0]} - {sims[-1]}, {view}",
                                 *_paired(at(similarity=sims[0], view=view, width=width),
                                          at(similarity=sims[-1], view=view, width=width)), min_seeds=MIN_SEEDS))
        if len(widths) >= 2:
            rows.append(_verdict("2. a more capable ISR gives a higher index",
                                 f"width {widths[-1]:g} - {widths[0]:g}, {sims[0]} peer, {view}",
                                 *_paired(at(similarity=sims[0], view=view, width=widths[-1]),
                                          at(similarity=sims[0], view=view, width=widths[0])), min_seeds=MIN_SEEDS))
    if len(views) == 2:
        rows.append(_verdict("3. where self is only a marker (allocentric) the index is higher",
                             f"allocentric - egocentric, {sims[0]} peer",
                             *_paired(at(similarity=sims[0], view="allocentric", width=width),
                                      at(similarity=sims[0], view="egocentric", width=width)), min_seeds=MIN_SEEDS))
    ev = df[(df["phase"] == "evaluation") & (df["metric"] == "peer_goals_per_episode")]
    for world in sorted(ev["world"].unique()):
        a, b = ev[(ev["world"] == world) & (ev["condition"] == "isr")], ev[(ev["world"] == world)
                                                                         & (ev["condition"] == "none")]
        if len(a) and len(b):
            rows.append(_verdict("4. without the caregiver, the ISR learner lets the peer reach more goals",
                                 f"isr - none, peer goals/episode, {world}", *_paired(a, b),
                                 why="fewer than 2 seeds with both conditions"))
    return rows


def empathy_section(df: pd.DataFrame, fig_dir: Path) -> list[Block]:
    d = _index_frame(df)
    width = _main_width(d)
    out: list[Block] = [Text(
        "Hypothesis: a learnt reward model trained only on the learner's own goal reaching also rewards a similar "
        "agent's goal reaching, the more so the more similar the agent and the more capable the model. Each "
        "seed's ISR scores matched held-out stimuli: the learner stepping onto the goal, the peer stepping onto "
        "it (the two agents' poses swapped), and both agents' near misses (same cell, turned away). Empathy "
        "index = (R(peer goal) - R(peer near)) / (R(learner goal) - R(learner near)): 0 = the peer's success "
        "is worth nothing, 1 = as much as one's own; undefined where the ISR does not reward the learner's own "
        "goal above its near miss. Calibration rows (hand-built rewards of index 0 and 1) check the measure.")]
    control_ok, control_text = positive_control(d)
    out.append(Text(control_text))
    out.append(Image("Empathy index vs peer similarity and vs ISR capacity (mean over seeds, 95% bootstrap CI)",
                     _figure(d, width, fig_dir / "empathy_index.png")))
    rows = []
    parts = df[(df["phase"] == "empathy")]
    for (world, cond), g in d.groupby(["world", "condition"], sort=True):
        ci, n = _ci(g["value"].to_numpy(float))
        n_met = int((g["met"] > 0.5).sum())
        if not g["recorded"].any():  # a probe run by an earlier version, before preconditions were recorded
            ci = "not measurable (preconditions not recorded: rerun the probe with --force)"
        elif n_met < MIN_SEEDS and not cond.startswith("oracle"):
            ci = f"not measurable ({n_met} of {len(g)} seeds meet the preconditions)"
        extra = parts[(parts["world"] == world) & (parts["condition"] == cond)].groupby("metric")["value"]
        mean, low = extra.mean(), extra.min()
        rows.append((world, cond, ci, f"{n}/{len(g)}", f"{n_met}/{len(g)}", fmt(mean.get("own_gap")),
                     fmt(mean.get("peer_gap")), fmt(mean.get("isr_heldout_corr")), fmt(low.get("n_rewarded"))))
    out += [Text("Index per world and reward model, read only on the seeds that meet the preconditions (n = seeds "
                 f"with an index / seeds; a model with fewer than {MIN_SEEDS} such seeds is not measurable). Gaps "
                 "and r are means over all seeds; rewarded = the fewest rewarded training transitions of a seed."),
            Table(("world", "reward model", "index, mean [95% CI]", "n", "preconditions met", "own gap", "peer gap",
                   "ISR held-out r", "rewarded"), tuple(rows))]
    preds = _predictions(d, df, width)
    if control_ok is False:  # an instrument that fails its positive control reads no index prediction
        preds = [(*r[:-1], "not measurable (the positive control failed)") if r[0][:2] in ("1.", "2.", "3.") else r
                 for r in preds]
    out += [Text(f"Predictions (paired over seeds, ISR width {width:g} unless stated; supported = predicted "
                 f"sign with p < {ALPHA})."),
            Table(("prediction", "comparison", "mean difference", "paired t", "p", "n", "seeds", "verdict"),
                  tuple(preds))]
    ev = df[(df["phase"] == "evaluation") & (df["metric"] == "peer_goals_per_episode")]
    if not ev.empty:
        out.append(Image("Peer's goals per held-out episode after the caregiver left (68% bootstrap CI)",
                         plots.bars(ev, "peer_goals_per_episode", fig_dir / "empathy_behaviour.png")))
    return out
