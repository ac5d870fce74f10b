"""Report sections: for each experiment, the figures it draws and the statistics it prints.

:data:`SECTIONS` maps an experiment name (after grouping, see ``table.EXPERIMENT_ALIASES``) to its
title and a builder ``(table, figure_dir) -> list[Block]``. Blocks are a tiny document model that
:mod:`internalize.analysis.report` renders to Markdown and to self-contained HTML.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from internalize.analysis.empathy_section import empathy_section

from . import paper, plots
from .blocks import Block, Heading, Image, Table, Text, fmt, seed_list
from .claims import isr_condition
from .stats import bootstrap_ci, fig5_mixed_model, fig5_reference_ols, mean_diff_ci, spearman, ttest
from .table import (
    FROZEN_NAMES,
    ORACLE_NAMES,
    across_seeds,
    condition_order,
    end_of_phase,
    final_per_seed,
    isr_final_per_run,
    isr_heldout_shared,
    phase_end_step,
    pick_condition,
    select,
    world_order,
)

__all__ = ["Heading", "Text", "Table", "Image", "Block", "SECTIONS", "GENERIC", "seed_list", "fmt"]


_OOD, _GOALS = "caregiver_return", "goals_per_episode"


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> Table:
    return Table(tuple(headers), tuple(tuple(str(c) for c in r) for r in rows))


def _mean_sem(v: pd.Series) -> str:
    v = np.asarray(v, dtype=float)
    return fmt(v.mean()) + (f" ({fmt(v.std(ddof=1) / np.sqrt(v.size), 2)})" if v.size > 1 else "")


def _paper_key(cond: str) -> str:
    """The paper's name for one of our conditions (caregiver -> oracle, frozen-continued -> frozen)."""
    return "oracle" if cond in ORACLE_NAMES else "frozen" if cond in FROZEN_NAMES else cond


#: statsmodels' MixedLM warnings, as a reader of the Fig 5 table needs them.
_MODEL_WARNINGS = {
    "MLE may be on the boundary": "The mixed model puts the between-seed variance at (or near) zero: seeds differ no "
    "more than the maps and conditions explain, so its fixed effects are those of an ordinary regression and its "
    "estimates stay valid.",
    "covariance is singular": "The mixed model's between-seed variance is (near) zero, so its random effect is "
    "degenerate; its fixed effects are those of an ordinary regression and stay valid.",
    "failed to converge": "The mixed model's fit did not converge: read its rows with caution (the regression rows "
    "below do not depend on it).",
}


def explain_model_warning(message: str) -> str:
    """A fitting warning of the Fig 5 mixed model in words (statsmodels' own text for one not known here)."""
    for fragment, sentence in _MODEL_WARNINGS.items():
        if fragment in message:
            return sentence
    return f"The mixed model's fit warned (statsmodels): {message}"


def _fig1(df: pd.DataFrame, fig_dir: Path, stem: str = "fig1", what: str = "Goals reached per episode",
          smooth: float = 0.0) -> list[Block]:
    switch = phase_end_step(df, "socialization")
    how = f"; smoothed by an EMA of weight {smooth:g}, as the authors' plot" if smooth else ""
    out: list[Block] = [Image(f"{what} over training; dashed: caregiver leaves "
                              f"(mean, min–max over seeds{how})",
                              plots.learning_curves(df, _GOALS, fig_dir / f"{stem}_goals.png", switch_step=switch,
                                                    ylabel=what, smooth=smooth))]
    # One value per (condition, seed), averaged over worlds first: seeds are the unit of every test (as in claim 2).
    soc = end_of_phase(df, _GOALS, "socialization").groupby(["condition", "seed"], as_index=False)["value"].mean()
    aut = end_of_phase(df, _GOALS, "autonomy").groupby(["condition", "seed"], as_index=False)["value"].mean()
    rows = []
    for c in condition_order(set(soc["condition"]) | set(aut["condition"])):
        s, a = soc.loc[soc["condition"] == c, "value"], aut.loc[aut["condition"] == c, "value"]
        kept = fmt(a.mean() / s.mean(), 2) if len(s) and len(a) and s.mean() > 0 else "–"
        seeds = set(soc.loc[soc["condition"] == c, "seed"]) | set(aut.loc[aut["condition"] == c, "seed"])
        rows.append((c, _mean_sem(s) if len(s) else "–", _mean_sem(a) if len(a) else "–", kept, len(seeds),
                     seed_list(seeds)))
    out += [Text(f"{what} at the end of each phase (mean over the last 10% of logged points per seed; "
                 "mean (SEM) over seeds); 'kept' = end of autonomy / end of socialization."),
            _table(("condition", "end of socialization", "end of autonomy", "kept", "n", "seeds"), rows)]
    oracle = pick_condition(aut["condition"], ORACLE_NAMES)
    tests = []
    for c in ("isr", "none"):
        a, b = aut.loc[aut["condition"] == c], aut.loc[aut["condition"] == oracle]
        if oracle and len(a) >= 2 and len(b) >= 2:
            r = ttest(a["value"], b["value"], equal_var=False, seeds_a=a["seed"], seeds_b=b["seed"],
                      label_a=c, label_b=oracle)
            tests.append((f"{c} \u2212 {oracle}", fmt(r.t), fmt(r.df), fmt(r.p), f"{r.n_a}+{r.n_b}"))
    if tests:
        out += [Text(f"End of autonomy, Welch t-tests of condition \u2212 {oracle} (negative: below the learner "
                     "whose caregiver stayed):"), _table(("comparison", "t", "df", "p", "n"), tests)]
    return out


def _fig3(df: pd.DataFrame, fig_dir: Path) -> list[Block]:
    out: list[Block] = []
    runs = isr_final_per_run(df)
    curve = select(df, phase="isr", metric=("isr_train_mse", "isr_heldout_mse"))
    if curve["metric"].nunique() == 2:
        if not runs.empty:  # Fig 3a is one run size: the largest training set
            biggest = runs.loc[runs["n_train"] == runs["n_train"].max(), "condition"].iloc[0]
            curve = select(curve, condition=biggest)
        out.append(Image("ISR train vs held-out MSE over updates (Fig 3a; log scale; mean and min–max over seeds, "
                         "EMA 0.8 as the authors' plot)",
                         plots.isr_curve(curve, fig_dir / "fig3a_isr.png")))
    if runs["n_train"].nunique() >= 2:
        out.append(Image("Final held-out MSE vs training transitions, log scale (Fig 3b)",
                         plots.mse_vs_data(df, fig_dir / "fig3b_mse.png")))
    if runs.empty:
        return out + [Text("No final isr_n_train / isr_heldout_mse rows.")]
    rows = []
    for n, g in runs.groupby("n_train"):
        ref = paper.FIG3B_HELDOUT_MSE.get(int(n))
        updates = ", ".join(f"{u:.0f}" for u in sorted(g["updates"].dropna().unique())) or "–"
        rows.append((f"{n:.0f}", _mean_sem(g["mse"]), updates, len(g), seed_list(g["seed"]),
                     f"{fmt(ref[0])} ({fmt(ref[1], 2)})" if ref else "–"))
    shared = isr_heldout_shared(df)
    scored = (f"every size scored on the same {shared} held-out transitions (the end of the socialization)"
              if shared is not None else "each size scored on the held-out tail of its own data")
    out += [Text(f"Held-out MSE, mean (SEM) over seeds, one ISR per (seed, size); {scored}; 'updates': ISR "
                 "updates per size. The paper's test loss leaks "
                 "(docs/paper-vs-reference.md, 'ISR held-out split')."),
            _table(("training transitions", "this run", "updates", "n", "seeds", "paper"), rows)]
    if len(runs) >= 3 and runs["n_train"].nunique() >= 2:
        c = spearman(runs["n_train"], runs["mse"])
        out.append(Text(f"Spearman rho(transitions, MSE) = {fmt(c.rho)}, p = {fmt(c.p)}, n = {c.n} runs."))
    return out


def _ood_stats(runs: pd.DataFrame) -> tuple[list[tuple], list[tuple]]:
    """Fig 4b tables: per-condition summary and the paper's two t-tests (Student and Welch)."""
    summary = []
    for c in condition_order(runs["condition"]):
        v = runs.loc[runs["condition"] == c]
        ci = bootstrap_ci(v["value"], level=0.68, seed=0)
        ref = paper.FIG4B_MEANS.get(_paper_key(c))
        summary.append((c, _mean_sem(v["value"]), f"[{fmt(ci.low)}, {fmt(ci.high)}]", len(v), seed_list(v["seed"]),
                        f"{ref[0]} ({ref[1]})" if ref else "–"))
    tests = []
    conds = set(runs["condition"])
    for ref in paper.FIG4B_TTESTS:
        names = {"frozen": [c for c in FROZEN_NAMES if c in conds], "oracle": [pick_condition(conds, ORACLE_NAMES)]}
        # One sign convention: isr - other (the paper's first test is frozen vs isr: its t changes sign).
        flip = ref.b == "isr"
        first, second = (ref.b, ref.a) if flip else (ref.a, ref.b)
        paper_t = -ref.t if flip else ref.t
        for a in names.get(first, [first]):
            for b in names.get(second, [second]):
                va, vb = runs.loc[runs["condition"] == a], runs.loc[runs["condition"] == b]
                if len(va) < 2 or len(vb) < 2:
                    continue
                for eq in (True, False):
                    r = ttest(va["value"], vb["value"], eq, seeds_a=va["seed"], seeds_b=vb["seed"],
                              label_a=a, label_b=b)
                    lo, hi = mean_diff_ci(va["value"], vb["value"], eq)
                    tests.append((f"{a} \u2212 {b}", "Student" if eq else "Welch",
                                  f"{fmt(r.mean_a - r.mean_b)} [{fmt(lo)}, {fmt(hi)}]", fmt(r.t, 4), fmt(r.df),
                                  fmt(r.p, 4), f"{r.n_a}+{r.n_b}", f"t = {paper_t:g}, p = {ref.p}" if eq else "–"))
    return summary, tests


def _fig4b(df: pd.DataFrame, fig_dir: Path) -> list[Block]:
    runs = final_per_seed(df, _OOD).groupby(["condition", "seed"], as_index=False)["value"].mean()
    if runs.empty:
        return [Text(f"No evaluation rows with metric {_OOD}.")]
    summary, tests = _ood_stats(runs)
    return [Image("Reward (OOD): caregiver return on held-out worlds, 68% bootstrap CI",
                  plots.bars(df, _OOD, fig_dir / "fig4b_bars.png", ci=0.68)),
            _table(("condition", "mean (SEM)", "68% CI", "n", "seeds", "paper mean (SEM)"), summary),
            Text("Two-sample t-tests of isr \u2212 other (positive: the ISR learner did better); the paper's t in "
                 "the same orientation."),
            _table(("comparison", "test", "difference [95% CI]", "t", "df", "p", "n", "paper"), tests)]


def _fig5(df: pd.DataFrame, fig_dir: Path) -> list[Block]:
    runs = final_per_seed(df, _OOD)
    if runs.empty:
        return [Text(f"No evaluation rows with metric {_OOD}.")]
    out: list[Block] = [Image("Reward (OOD) per hand-picked map, 68% bootstrap CI",
                              plots.bars(df, _OOD, fig_dir / "fig5_bars.png", ci=0.68))]
    conds = condition_order(runs["condition"])
    means = runs.groupby(["world", "condition"])["value"].mean()
    rows = [(w, *[f"{fmt(means.get((w, c)))} / {fmt(paper.FIG5_MEANS.get(w, {}).get(_paper_key(c)))}"
                  for c in conds]) for w in world_order(runs["world"])]
    out += [Text("Mean reward (OOD) per map: this run / paper."), _table(("map", *conds), rows)]
    frozen, oracle = pick_condition(conds, FROZEN_NAMES), pick_condition(conds, ORACLE_NAMES)
    if "isr" not in conds or frozen is None or oracle is None:
        return out + [Text("Models need frozen, isr and oracle conditions.")]
    pairs = ((frozen, "isr"), ("isr", oracle))
    paper_rows = {"mixed": ("–", "–"), "ols": tuple(f"t = {s.t}, p = {s.p}" for s in paper.FIG5_REFERENCE_OLS),
                  "add": tuple(f"t = {s.t}, p = {s.p}" for s in paper.FIG5_ADDITIVE_OLS)}
    rows, notes = [], []
    try:
        mm = fig5_mixed_model(runs, pairs)
        ols = fig5_reference_ols(runs, pairs)
        fits = (("mixed", mm), ("ols", ols.interaction), ("add", ols.additive))
        notes += [explain_model_warning(w) for w in mm.warnings]
    except (ValueError, np.linalg.LinAlgError) as exc:
        return out + [Text(f"Models could not be fitted: {exc}")]
    for key, fit in fits:
        for c, ref in zip(fit.contrasts, paper_rows[key], strict=True):
            rows.append((fit.model + (f" (map {c.world})" if c.world else ""), f"{c.a} - {c.b}", fmt(c.estimate),
                         f"{c.stat_name} = {fmt(c.stat, 4)}", fmt(c.p, 3), c.n, seed_list(c.seeds), ref))
    out += [Text(f"Paper text: {paper.FIG5_PAPER_TEXT}. Those numbers are the authors' pairwise OLS with "
                 "interaction, i.e. the effect in map T only "
                 "(docs/paper-vs-reference.md, 'Figure 5 statistics'); the mixed model is what the paper describes."),
            _table(("model", "contrast", "estimate", "statistic", "p", "n", "seeds", "paper"), rows)]
    return out + [Text("; ".join(notes))] if notes else out


def _fig6(df: pd.DataFrame, fig_dir: Path) -> list[Block]:
    auto = select(df, phase="autonomy")
    rows = auto if not auto.empty else df
    cond = isr_condition(rows["condition"].unique())
    if cond is not None:  # the ISR learner's trend, as claim 7 reads it (another condition would dilute it)
        rows = select(rows, condition=cond)
    out: list[Block] = [Image("Internal (ISR) return vs goals per episode after the caregiver leaves (mean and "
                              "min–max over seeds, EMA 0.8 as the authors' plot)",
                              plots.hacking(rows, fig_dir / "fig6_hacking.png"))]
    stats = []
    for metric in ("internal_return", _GOALS):
        cur = across_seeds(select(rows, metric=metric), metric).groupby("step")["mean"].mean()
        if len(cur) >= 3:
            c = spearman(cur.index.to_numpy(float), cur.to_numpy())
            k = max(1, len(cur) // 10)
            stats.append((metric, fmt(cur.iloc[:k].mean()), fmt(cur.iloc[-k:].mean()), fmt(c.rho), fmt(c.p), c.n))
    seeds = sorted(rows["seed"].unique())
    who = f" of {cond}" if cond is not None else ""
    return out + [Text(f"Trend{who} over autonomy (first/last 10% of points), {len(seeds)} seed(s): "
                       f"{seed_list(seeds)}."),
                  _table(("metric", "start", "end", "Spearman rho", "p", "points"), stats)]


def _fig7(df: pd.DataFrame, fig_dir: Path) -> list[Block]:
    # In the prosocial world the rewarded event is the helped agent reaching its goal, so the table's
    # goals_per_episode counts the *other* agent's goals: how often the learner helped.
    return _fig1(df, fig_dir, stem="fig7", what="Helped agent's goals per episode", smooth=plots.PAPER_EMA)



def _generic(df: pd.DataFrame, fig_dir: Path) -> list[Block]:
    # The file name comes from the table's own experiment label, kept to safe characters.
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(df["experiment"].iloc[0])) if len(df) else "experiment"
    out: list[Block] = [Text("No paper claim is checked for this experiment. Metrics: "
                             + ", ".join(sorted(df["metric"].unique())) + ".")]
    if _GOALS in set(df["metric"]):
        out.append(Image("Goals per episode (mean, min–max over seeds)",
                         plots.learning_curves(df, _GOALS, fig_dir / f"{name}_goals.png",
                                               switch_step=phase_end_step(df, "socialization"))))
    return out


Builder = Callable[[pd.DataFrame, Path], list[Block]]
# experiment -> (section title, builder); the order is the report's order.
SECTIONS: dict[str, tuple[str, Builder]] = {
    "fig1": ("Fig 1b / 4a — unlearning, and the ISR preventing it", _fig1),
    "fig3": ("Fig 3 — learning the ISR", _fig3),
    "fig4b": ("Fig 4b — generalization to 5-block worlds", _fig4b),
    "fig5": ("Fig 5 — hand-picked out-of-distribution maps", _fig5),
    "fig6": ("Fig 6 — reward hacking by an undertrained ISR", _fig6),
    "fig7": ("Fig 7 — internalizing a value about another agent (prosocial world)", _fig7),
    "empathy": ("Beyond the paper — empathy study: does a learnt reward model reward another agent's goal reaching?",
                empathy_section),
}
GENERIC: Builder = _generic
