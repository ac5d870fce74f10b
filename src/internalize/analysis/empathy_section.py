"""The report's section for the ``empathy`` study: the instrument's controls first, then the predictions.

Reads the study's table (``empathy.study``; rows labelled ``probe_model;width=W;arm=A;appearance=a;identity=i``,
``step`` = the model's training updates). Order, as an instrument is read:

1. Controls. The hand-built calibrations must read exactly 0 (``oracle-own``) and 1 (``oracle-any``) wherever the
   self-goal and other-goal stimuli differ; the learned positive control (its caregiver paid for the peer's goals
   too) must read at least :data:`POSITIVE_BAR` and the learned negative control (explicit unpaid samples marked
   on the peer) at most :data:`NEGATIVE_BAR` in the main cell (the peer as it looked while taught), each on at
   least :data:`MIN_SEEDS` seeds that meet the preconditions. If a learned control fails, no index prediction is
   read: the instrument is broken and the section says so.
2. Preconditions (``empathy.instrument``): an index is read only on the seeds where they hold; a cell with fewer
   than :data:`MIN_SEEDS` such seeds is *not measurable*, never an index near 0.
3. Predictions, stated before their results, one directional test each across seeds (``analysis.directional``),
   Holm-corrected together; "no empathy" only by an equivalence test (TOST) of the main cell's index to 0 within
   the study's margin.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from internalize.analysis import directional as dr
from internalize.analysis import plots
from internalize.analysis.blocks import Block, Image, Table, Text, fmt
from internalize.analysis.stats import bootstrap_ci

MIN_SEEDS = dr.MIN_SEEDS
POSITIVE_BAR = 0.8
NEGATIVE_BAR = 0.2
MARGIN = 0.2  # the equivalence margin of "no empathy": |index| < MARGIN
FACTORS = ("probe_model", "width", "arm", "appearance", "identity")


def parse_condition(label: str) -> dict[str, object]:
    """The factors of a row label ``probe_model;width=W;arm=A;appearance=a;identity=i`` (``empathy.instrument``
    writes them): probe_model (str), width (float), arm (str), appearance and identity (float); ValueError for
    another label."""
    head, *rest = str(label).split(";")
    try:
        parts = dict(p.split("=", 1) for p in rest)
        return {"probe_model": head, "width": float(parts["width"]), "arm": parts["arm"],
                "appearance": float(parts["appearance"]), "identity": float(parts["identity"])}
    except (KeyError, ValueError):
        raise ValueError(f"condition: {label!r} is not a probe_model;width=W;arm=A;appearance=a;identity=i "
                         "label") from None


def _factors(label: str) -> tuple:
    """:func:`parse_condition` as a row; a label of another form (an older probe's) keeps only its model name."""
    try:
        return tuple(parse_condition(label).values())
    except ValueError:
        return (str(label).split(";")[0], np.nan, "", np.nan, np.nan)


def frame(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, cell, checkpoint, seed) with the factors as columns and one column per metric;
    ``index`` is the empathy index where the preconditions hold, else NaN; ``final`` marks the last checkpoint."""
    d = df[df["phase"] == "empathy"]
    if d.empty:
        raise ValueError("no empathy rows (phase 'empathy'): the study did not run")
    wide = d.pivot_table(index=["condition", "seed", "step"], columns="metric", values="value",
                         aggfunc="first").reset_index()
    wide[list(FACTORS)] = pd.DataFrame([_factors(c) for c in wide["condition"]], index=wide.index)
    met = wide.get("precondition_met", pd.Series(0.0, index=wide.index)).fillna(0) > 0.5
    wide["met"] = met
    wide["index"] = wide["empathy_index"].where(met)
    last = wide.groupby("condition")["step"].transform("max")
    wide["final"] = wide["step"] == last
    return wide


def _main_cell(w: pd.DataFrame) -> tuple[float, float]:
    return float(w["appearance"].max()), 0.0


def _pick(w: pd.DataFrame, model: str, cell: tuple[float, float] | None = None, *, arm: str = "exposed",
          width: float | None = None, final: bool = True) -> pd.DataFrame:
    keep = (w["probe_model"] == model) & (w["arm"] == arm)
    if cell is not None:
        keep &= np.isclose(w["appearance"], cell[0]) & np.isclose(w["identity"], cell[1])
    if width is not None:
        keep &= np.isclose(w["width"], width)
    if final:
        keep &= w["final"]
    return w[keep].sort_values("seed")


def _ci(v: np.ndarray) -> str:
    v = np.asarray(v, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return "–"
    if v.size == 1 or np.all(v == v[0]):
        return fmt(float(v[0]))
    b = bootstrap_ci(v, level=0.95)
    return f"{fmt(b.mean)} [{fmt(b.low)}, {fmt(b.high)}]"


def controls(w: pd.DataFrame) -> tuple[bool, list[str]]:
    """Whether the instrument passed its controls, and one sentence per control."""
    cell = _main_cell(w)
    out, ok = [], True
    # Where the peer carries the whole self-marker, it is "self" to a model that reads the marker: no calibration.
    marked = w[(w["input_distance"] > 0) & (w["identity"] < 1)]
    for model, target in (("oracle-own", 0.0), ("oracle-any", 1.0)):
        v = marked.loc[marked["probe_model"] == model, "empathy_index"].to_numpy(float)
        good = v.size > 0 and bool(np.all(v == target))
        ok &= good
        out.append(f"Calibration {model} (index {target:g} by construction): "
                   f"{'exactly ' + fmt(target) if good else 'FAILED, read ' + _ci(v)} on {v.size} cell x seed "
                   "readings where only the learner carries the self-marker.")
    for model, bar, above in (("positive-control", POSITIVE_BAR, True), ("negative-control", NEGATIVE_BAR, False)):
        g = _pick(w, model, cell)
        v = g["index"].dropna().to_numpy(float)
        if g.empty:
            ok = False
            out.append(f"Learned {model}: not run; the instrument is not validated.")
            continue
        if v.size < MIN_SEEDS:
            ok = False
            out.append(f"Learned {model}: not measurable ({v.size} of {len(g)} seeds meet the preconditions).")
            continue
        mean = float(v.mean())
        good = mean >= bar if above else mean <= bar
        ok &= good
        out.append(f"Learned {model} ({'at least' if above else 'at most'} {bar:g}): {_ci(v)}, n = {v.size}: "
                   f"{'passed' if good else 'FAILED'}.")
    null = _pick(w, "untrained", cell)
    if not null.empty:
        out.append(f"Untrained null (fresh parameters, never read as an index): own gap {_ci(null['own_gap'])}, "
                   f"peer gap {_ci(null['peer_gap'])}.")
    return ok, out


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() < 3 or np.ptp(x[keep]) == 0:
        return float("nan")
    return float(np.polyfit(x[keep], y[keep], 1)[0])


def _per_seed_slopes(g: pd.DataFrame, x: str, y: str = "index") -> np.ndarray:
    return np.asarray([_slope(s[x].to_numpy(float), s[y].to_numpy(float)) for _, s in g.groupby("seed")])


def predictions(w: pd.DataFrame, width: float) -> list[tuple[str, str, dr.Directional | None]]:
    """(prediction, how it is tested, its test or None where it is not testable here), Holm-corrected."""
    cell = _main_cell(w)
    main = _pick(w, "isr", cell, width=width)
    isr = w[(w["probe_model"] == "isr") & (w["arm"] == "exposed") & np.isclose(w["width"], width) & w["final"]]
    appearance = isr[isr["identity"] == 0]
    identity = isr[np.isclose(isr["appearance"], cell[0])]
    varied = isr[isr["input_distance"] > 0]
    widths = w[(w["probe_model"] == "isr") & (w["arm"] == "exposed") & w["final"] & np.isclose(w["appearance"], cell[0])
               & np.isclose(w["identity"], cell[1])].assign(log2w=lambda d: np.log2(d["width"]))
    # Capacity is compared at convergence: only widths where enough seeds met the stopping rule.
    if "converged" in widths:
        n_conv = widths.groupby("width")["converged"].sum()
        widths = widths[widths["width"].isin(n_conv.index[n_conv >= MIN_SEEDS])]
    kept = ", ".join(f"{x:g}" for x in sorted(widths["width"].unique())) or "none"
    course = w[(w["probe_model"] == "isr") & (w["arm"] == "exposed") & np.isclose(w["width"], width)
               & np.isclose(w["appearance"], cell[0]) & np.isclose(w["identity"], cell[1])]
    # The earliest checkpoint at which enough seeds meet the preconditions (an index is read only there).
    readable = course.groupby("step")["met"].sum()
    readable = readable[readable >= MIN_SEEDS]
    early = readable.index.min() if len(readable) else course["step"].min()
    first = course[course["step"] == early].sort_values("seed")
    naive = _pick(w, "isr", cell, arm="naive", width=width)
    zeros = np.zeros(len(main))
    latents = sorted(w.loc[w["probe_model"] == "world-model", "width"].unique())
    latent = latents[-1] if latents else None
    wmodel = _pick(w, "world-model", cell, width=latent) if latent else main.iloc[:0]
    tests: list[tuple[str, str, dr.Directional | None]] = [
        ("0. The ISR rewards the peer's goal reaching", "index > 0, main cell",
         dr.paired("index", main["index"].to_numpy(float), zeros)),
        ("1. Self and other share a latent code: the goal event moves the ISR's penultimate layer the same way "
         "whoever acts", "event alignment > 0, main cell",
         dr.paired("alignment", main["event_alignment"].where(main["met"]), zeros)),
        ("2. The closer the codes, the higher the index", "per-seed slope of the index on self-other distance "
         "< 0, across the cells", dr.paired("latent", _per_seed_slopes(varied, "self_other_distance"),
                                            np.zeros(varied["seed"].nunique()), greater=False)),
        ("3. A peer that looks more like the learner gets a higher index", "per-seed slope of the index on the "
         "appearance level (0 = the learner's colour) < 0", dr.paired(
             "appearance", _per_seed_slopes(appearance, "appearance"), np.zeros(appearance["seed"].nunique()),
             greater=False)),
        ("4. The more the peer carries the self-marker, the higher the index", "per-seed slope of the index on "
         "the identity level (the marker's value on the peer) > 0, at the main cell's appearance",
         dr.paired("identity", _per_seed_slopes(identity, "identity"), np.zeros(identity["seed"].nunique()))),
        ("4b. Watching the peer reach the goal is rewarded (vicarious)", "vicarious gap > 0, main cell",
         dr.paired("vicarious", main["vicarious_gap"].where(main["met"]), zeros)),
        ("5. A more capable ISR gives a higher index", "per-seed slope of the index on log2(width) > 0, main cell, "
         f"over the widths where {MIN_SEEDS}+ seeds converged ({kept}; at least 3 needed)",
         dr.paired("capacity", _per_seed_slopes(widths, "log2w"), np.zeros(widths["seed"].nunique()))
         if widths["width"].nunique() >= 3 else None),
        ("6. Reward models on world-model latents show it too", f"index > 0, main cell, world model of latent "
         f"size {latent:g}" if latent else "not run: no world model in this study",
         dr.paired("world model", wmodel["index"].to_numpy(float), np.zeros(len(wmodel))) if latent else None),
        ("7a. Spill-over is trained away: the index falls during training (exposed arm)", f"index at update "
         f"{early:g} (the first checkpoint with {MIN_SEEDS}+ seeds meeting the preconditions) > at the last, "
         "main cell", dr.paired("time course", first["index"].to_numpy(float), main["index"].to_numpy(float))
         if len(first) == len(main) else None),
        ("7b. Unpaid peer goals train it away: a naive ISR's index is higher", "naive - exposed, main cell, "
         "last checkpoint", dr.paired("exposure", naive["index"].to_numpy(float), main["index"].to_numpy(float))
         if len(naive) == len(main) and len(main) else None),
    ]
    tested = dr.holm([t for _, _, t in tests if t is not None])
    it = iter(tested)
    return [(p, how, next(it) if t is not None else None) for p, how, t in tests]


def _figure(w: pd.DataFrame, width: float, out: Path) -> Path:
    fig = Figure(figsize=(12.0, 3.4))
    axes = fig.subplots(1, 4)
    cell = _main_cell(w)

    def line(ax, g: pd.DataFrame, x: str, label: str) -> None:
        pts = [(k, b) for k, s in g.groupby(x) if (v := s["index"].dropna().to_numpy(float)).size >= MIN_SEEDS
               for b in [bootstrap_ci(v, level=0.95)]]
        if pts:
            xs = [k for k, _ in pts]
            ax.errorbar(xs, [b.mean for _, b in pts], yerr=[[b.mean - b.low for _, b in pts],
                                                            [b.high - b.mean for _, b in pts]],
                        marker="o", capsize=3, label=label)

    for model, arm in (("isr", "exposed"), ("isr", "naive"), ("positive-control", "exposed"),
                       ("negative-control", "exposed")):
        g = w[(w["probe_model"] == model) & (w["arm"] == arm) & w["final"] & np.isclose(w["width"], width)]
        line(axes[0], g[g["identity"] == 0], "appearance", f"{model} ({arm})")
        line(axes[1], g[np.isclose(g["appearance"], cell[0])], "identity", f"{model} ({arm})")
    g = w[(w["probe_model"] == "isr") & (w["arm"] == "exposed") & w["final"] & np.isclose(w["appearance"], cell[0])
          & np.isclose(w["identity"], cell[1])]
    line(axes[2], g.assign(log2w=np.log2(g["width"])), "log2w", "isr (exposed)")
    for arm in ("exposed", "naive"):
        g = w[(w["probe_model"] == "isr") & (w["arm"] == arm) & np.isclose(w["width"], width)
              & np.isclose(w["appearance"], cell[0]) & np.isclose(w["identity"], cell[1])]
        line(axes[3], g, "step", f"isr ({arm})")
    titles = ("appearance continuum", f"identity continuum (appearance {cell[0]:g})", "capacity (main cell)",
              "time course (main cell)")
    xlabels = ("appearance (0 = learner's colour, 1 = as taught)", "identity (self-marker on peer)", "log2 ISR width",
               "ISR updates")
    for ax, title, xlabel in zip(axes, titles, xlabels, strict=True):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.axhline(0, color="grey", lw=0.8)
        ax.axhline(1, color="grey", lw=0.8, ls=":")
    axes[0].set_ylabel("empathy index (95% CI)")
    for ax in (axes[0], axes[3]):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
    return plots._save(fig, out)


def empathy_section(df: pd.DataFrame, fig_dir: Path) -> list[Block]:
    w = frame(df)
    isr_widths = sorted(w.loc[w["probe_model"] == "isr", "width"].unique())
    width = 1.0 if 1.0 in isr_widths else isr_widths[len(isr_widths) // 2]
    cell = _main_cell(w)
    out: list[Block] = [Text(
        "Question: does a reward model trained only on the caregiver's payments for the learner's own goal "
        "reaching also reward another agent's goal reaching, and when? Prediction (the empathy hypothesis): yes, "
        "the more so the more the other resembles the learner in looks and in identity cues, the closer their "
        "latent codes, and the more capable the model; unpaid sight of the other's goals trains it away. "
        "Empathy index = (R(peer goal) - R(peer near)) / (R(learner goal) - R(learner near)) on matched held-out "
        "stimuli: 0 = the peer's success is worth nothing, 1 = as much as one's own.")]
    ok, lines = controls(w)
    out.append(Text(("Instrument controls passed. " if ok else "Instrument controls FAILED: no index prediction "
                     "below is evidence either way. ") + " ".join(lines)))
    rows = []
    for (model, arm, a, i), g in w[w["final"] & (np.isclose(w["width"], width) | w["probe_model"].str.startswith(
            "oracle"))].groupby(["probe_model", "arm", "appearance", "identity"], sort=True):
        if model.startswith("oracle") or model == "untrained":
            continue
        n_met = int(g["met"].sum())
        index = _ci(g["index"]) if n_met >= MIN_SEEDS else f"not measurable ({n_met} of {len(g)} seeds)"
        rows.append((model, arm, f"{a:g}", f"{i:g}", fmt(float(g["input_distance"].mean())), index,
                     f"{n_met}/{len(g)}", _ci(g["vicarious_gap"]), _ci(g["self_other_distance"]),
                     _ci(g["event_alignment"]), _ci(g["linear_cka"])))
    main_rows = []
    for (model, arm, wd), g in w[w["final"] & np.isclose(w["appearance"], cell[0]) & np.isclose(w["identity"], cell[1])
                                 ].groupby(["probe_model", "arm", "width"], sort=True):
        n_met = int(g["met"].sum())
        index = _ci(g["index"]) if n_met >= MIN_SEEDS else f"not measurable ({n_met} of {len(g)} seeds)"
        size = "–" if model.startswith("oracle") else (f"latent {wd:g}" if model == "world-model" else f"{wd:g}")
        conv = g.get("converged", g["own_gap"] * np.nan).dropna()
        main_rows.append((model, arm, size, index, f"{n_met}/{len(g)}", _ci(g["own_gap"]),
                          _ci(g.get("isr_heldout_corr", g["own_gap"] * np.nan)),
                          f"{int(conv.sum())}/{len(conv)}" if len(conv) else "–", _ci(g["event_alignment"]),
                          _ci(g["linear_cka"])))
    out += [Text(f"Main cell (appearance {cell[0]:g}, identity {cell[1]:g}: the peer as it looked while the caregiver "
                 "taught), every model at its last checkpoint; width = ISR width, or a world model's latent size; "
                 "converged = seeds that met the stopping rule when training ended (another window of updates "
                 "would explain less than the set fraction more of the held-out payments' variance; a learned "
                 "ISR trains until all its seeds meet it or its budget is spent, a world model's head for a fixed "
                 "budget)."),
            Table(("model", "arm", "width", "index, mean [95% CI]", "preconditions met", "own gap", "held-out r",
                   "converged", "event alignment", "linear CKA"), tuple(main_rows))]
    out.append(Image("Empathy index along the continua, against capacity and during training (seeds meeting the "
                     "preconditions; 95% bootstrap CI)", _figure(w, width, fig_dir / "empathy_index.png")))
    out += [Text(f"Every cell, at ISR width {width:g}, last checkpoint (input distance: self-goal vs peer-goal in "
                 f"the model's input; index over the seeds meeting the preconditions, not measurable below "
                 f"{MIN_SEEDS}; latents on the penultimate layer). Main cell: appearance {cell[0]:g}, identity "
                 f"{cell[1]:g}."),
            Table(("model", "arm", "appearance", "identity", "input distance", "index, mean [95% CI]",
                   "preconditions met", "vicarious gap", "self-other distance", "event alignment", "linear CKA"),
                  tuple(rows))]
    preds = predictions(w, width)
    table = []
    for p, how, t in preds:
        if t is None:
            table.append((p, how, "–", "–", "–", "–", "not testable here"))
            continue
        index_based = not p.startswith(("1.", "4b."))  # those two read latents or rewards, not the index
        verdict = t.verdict if ok or not index_based else "not measurable (controls failed)"
        table.append((p, how, f"{fmt(t.effect)} [{fmt(t.ci_low)}, {fmt(t.ci_high)}]", fmt(t.p), fmt(t.p_holm),
                      "/".join(str(n) for n in t.n), verdict))
    out += [Text("Predictions, one-sided tests across seeds (the seed is the unit; slopes fitted per seed), Holm-"
                 "corrected over the tested ones."),
            Table(("prediction", "test", "effect [95% CI]", "p", "p (Holm)", "n", "verdict"), tuple(table))]
    main = _pick(w, "isr", cell, width=width)
    eq = dr.holm([dr.equivalent("no empathy", main["index"].to_numpy(float), 0.0, MARGIN)])[0]  # its own family
    eq_verdict = eq.verdict if eq.measurable else "not measurable"
    out.append(Text(f"No empathy (the main cell's index within ±{MARGIN:g} of 0, TOST): mean {fmt(eq.effect)} "
                    f"[{fmt(eq.ci_low)}, {fmt(eq.ci_high)}], p = {fmt(eq.p)}: "
                    f"{'equivalent to 0' if eq_verdict == 'supported' else eq_verdict}."))
    return out
