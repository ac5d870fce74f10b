"""The ``readiness`` study: the paper's readiness condition ∂B/∂n < ∂C/∂n, measured.

One socialization per seed, left at several departure points n (the sweep's ``experiment.socialization_steps``;
each point's socialization continues the previous point's in ``.shared``, so the points are one run stopped at n,
exactly). At each point the learner leaves with an ISR trained on the data up to n (an ensemble, a fixed number of
updates) and runs autonomously on held-out worlds, with that ISR and without one.

* **Benefit** B(n): the held-out caregiver return after autonomy of the learner with the ISR.
* **Cost** C(n) = c × (social reward the caregiver paid up to n), for the costs in :data:`COSTS` (return per
  episode per unit of reward paid; a caregiver's time is what the payments stand for).
* ∂B/∂n and ∂C/∂n: finite differences between consecutive points, per seed; ∂B/∂n's 95% CI across seeds. The
  readiness point n*(c) is the first interval where ∂B/∂n falls below ∂C/∂n (the mean), and *confidently* so where
  the CI of the per-seed difference ∂B/∂n − ∂C/∂n lies below 0; it is read only where B(n) rises with diminishing
  returns (the first test below supported, the first slope positive), which the condition presumes.
* Can the learner judge its own readiness? The ensemble's disagreement on the held-out states its departure policy
  visits (the first autonomy rollouts) against the gain that staying on to the next point brought, per seed.

Controls, read before any verdict: the precondition (at least ``MIN_LEARNED`` seeds had learned by the last point);
a positive control that must read high (more socialization helps: B at the last point > B at the first); and a
negative control that must read low (without an ISR the learner keeps less: B_none at the last point < B).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats as sps
from matplotlib.figure import Figure

from internalize.analysis.blocks import Block, Image, Table, Text, fmt
from internalize.analysis.directional import Directional, holm, paired
from internalize.analysis.plots import _save
from internalize.analysis.sweep_section import mean_ci, outcome_per_seed
from internalize.studies.study import (
    Study,
    control_table,
    end_of_socialization,
    reads_as_required,
    verdict_table,
)

N = "experiment.socialization_steps"
COSTS = (1e-4, 3e-4, 1e-3)
LEARNED_GOALS = 1.0
MIN_LEARNED = 6
#: Autonomy rollouts averaged for the disagreement "at departure".
EDGE = 2

STUDY = Study(
    name="readiness", module="readiness",
    title="Readiness for independence: the marginal benefit of more socialization against its cost",
    question="As a learner stays longer with its caregiver (departure point n), how fast does the value it keeps "
             "after leaving (B(n), held-out caregiver return with its ISR) grow, where does that marginal benefit "
             "fall below the marginal cost of the caregiver's payments (∂B/∂n < ∂C/∂n), and can the learner tell "
             "from its own ISR ensemble's disagreement how much it still has to gain?",
    prediction="B(n) rises with diminishing returns (∂B/∂n larger over the first interval than over the last), so "
               "every cost has a readiness point, earlier for higher costs; the ensemble's disagreement at "
               "departure falls with n and is larger where staying longer still pays (positive rank correlation "
               "with the next interval's gain).",
    paper_set=("experiment.n_seeds=10",),
    paper_grid=("experiment.socialization_steps=10240,20480,30720,40960,81920,120832",),
    single=False,
)


def outcomes(df: pd.DataFrame) -> pd.DataFrame:
    """Per (n, seed): ``B`` and ``B_none`` (held-out caregiver return with and without the ISR), ``paid`` (social
    reward paid up to n, summed over the socialization's episodes) and ``disagreement`` (the ISR ensemble's at
    departure: the mean of the first ``EDGE`` autonomy rollouts of the learner with the ISR)."""
    per = outcome_per_seed(df, "caregiver_return", "evaluation").pivot_table(index=[N, "seed"], columns="condition",
                                                                             values="value")
    out = pd.DataFrame({"B": per["isr"], "B_none": per.get("none", np.nan)})
    soc = df[(df["phase"] == "socialization") & (df["metric"].isin(["paid_return", "episodes"]))]
    soc = soc[soc["condition"] == soc["condition"].iloc[0]]
    wide = soc.pivot_table(index=[N, "seed", "step"], columns="metric", values="value")
    out["paid"] = (wide["paid_return"].fillna(0.0) * wide["episodes"]).groupby(level=[N, "seed"]).sum()
    aut = df[(df["phase"] == "autonomy") & (df["condition"] == "isr") & (df["metric"] == "isr_disagreement")]
    if not aut.empty:
        aut = aut.sort_values("step")
        out["disagreement"] = aut.groupby([N, "seed"])["value"].apply(lambda v: float(v.iloc[:EDGE].mean()))
    else:
        out["disagreement"] = np.nan
    return out.reset_index().sort_values([N, "seed"])


def slopes(out: pd.DataFrame) -> pd.DataFrame:
    """Per (interval, seed): ∂B/∂n and ∂paid/∂n between consecutive points, the next-interval gain ΔB and the
    disagreement at the interval's start."""
    rows = []
    for seed, g in out.groupby("seed"):
        g = g.sort_values(N)
        n, b, p, d = (g[c].to_numpy(float) for c in (N, "B", "paid", "disagreement"))
        for i in range(len(n) - 1):
            dn = n[i + 1] - n[i]
            rows.append({"seed": seed, "n0": n[i], "n1": n[i + 1], "dB": (b[i + 1] - b[i]) / dn,
                         "dpaid": (p[i + 1] - p[i]) / dn, "gain": b[i + 1] - b[i], "disagreement": d[i]})
    return pd.DataFrame(rows)


def readiness_points(sl: pd.DataFrame) -> list[dict]:
    """For each cost c: the first interval where mean ∂B/∂n < c·∂paid/∂n (``n_star``), and the first where the
    per-seed difference's 95% CI lies below 0 (``n_star_confident``); None where there is none."""
    found = []
    for c in COSTS:
        star = confident = None
        for (n0, n1), g in sl.groupby(["n0", "n1"], sort=True):
            diff = g["dB"] - c * g["dpaid"]
            m, _, hi = mean_ci(diff)
            if star is None and m < 0:
                star = (n0, n1)
            if confident is None and np.isfinite(hi) and hi < 0:
                confident = (n0, n1)
        found.append({"cost": c, "n_star": star, "n_star_confident": confident})
    return found


def _spearman(g: pd.DataFrame) -> float:
    if g["disagreement"].nunique() < 2 or g["gain"].nunique() < 2:
        return float("nan")
    return float(sps.spearmanr(g["disagreement"], g["gain"]).statistic)


def tests(out: pd.DataFrame, sl: pd.DataFrame) -> list[Directional]:
    """Diminishing returns, disagreement falling with n, and disagreement predicting the gain; Holm."""
    first, last = sorted(sl["n0"].unique())[0], sorted(sl["n0"].unique())[-1]
    d_first = sl[sl["n0"] == first].set_index("seed")["dB"]
    d_last = sl[sl["n0"] == last].set_index("seed")["dB"]
    both = pd.concat({"a": d_first, "b": d_last}, axis=1)
    found = [paired("diminishing returns: ∂B/∂n over the first interval > over the last", both["a"], both["b"])]
    n_min, n_max = out[N].min(), out[N].max()
    lo = out[out[N] == n_min].set_index("seed")["disagreement"]
    hi = out[out[N] == n_max].set_index("seed")["disagreement"]
    dis = pd.concat({"a": lo, "b": hi}, axis=1)
    found.append(paired("the ensemble's disagreement at departure falls with n (first point > last)",
                        dis["a"], dis["b"]))
    rho = sl.groupby("seed").apply(_spearman, include_groups=False)
    found.append(paired("disagreement at departure predicts the gain of staying (Spearman rho > 0)",
                        rho.to_numpy(float), np.zeros(len(rho))))
    return holm(found)


def controls(out: pd.DataFrame) -> tuple[list[Directional], bool]:
    n_min, n_max = out[N].min(), out[N].max()
    first = out[out[N] == n_min].set_index("seed")
    last = out[out[N] == n_max].set_index("seed")
    found = [paired("positive: B at the last point > B at the first (more socialization helps)",
                    last["B"], first["B"].reindex(last.index)),
             paired("negative: without an ISR the learner keeps less (B_none < B at the last point)",
                    last["B_none"], last["B"], greater=False)]
    return found, all(reads_as_required(t) for t in found)


def _plot(out: pd.DataFrame, sl: pd.DataFrame, stars: list[dict], path: Path) -> Path:
    fig = Figure(figsize=(10.0, 3.8))
    ax = fig.add_subplot(1, 2, 1)
    for col, color, label in (("B", "#009E73", "B(n): with the ISR"), ("B_none", "#D55E00", "without an ISR")):
        stats = out.groupby(N)[col].apply(lambda v: mean_ci(v.dropna()))
        n = stats.index.to_numpy(float)
        m, lo, hi = (np.array(v, float) for v in zip(*stats, strict=True))
        ax.plot(n, m, "o-", color=color, label=label)
        ax.fill_between(n, lo, hi, color=color, alpha=0.2)
    twin = ax.twinx()
    paid = out.groupby(N)["paid"].mean()
    for c, ls in zip(COSTS, (":", "--", "-."), strict=True):
        twin.plot(paid.index, c * paid.to_numpy(), color="#555555", ls=ls, lw=1, label=f"C(n), c = {c:g}")
    ax.set_xlabel("departure point n (socialization steps)")
    ax.set_ylabel("held-out caregiver return after autonomy")
    twin.set_ylabel("C(n) = c × social reward paid up to n")
    ax.legend(frameon=False, fontsize=7, loc="upper left")
    twin.legend(frameon=False, fontsize=7, loc="center right")
    ax2 = fig.add_subplot(1, 2, 2)
    mid = sl.groupby(["n0", "n1"])["dB"].apply(lambda v: mean_ci(v.dropna()))
    x = np.array([(a + b) / 2 for a, b in mid.index], float)
    m, lo, hi = (np.array(v, float) for v in zip(*mid, strict=True))
    ax2.errorbar(x, m, yerr=np.nan_to_num([m - lo, hi - m]), fmt="o-", color="#009E73", capsize=3, label="∂B/∂n")
    dpaid = sl.groupby(["n0", "n1"])["dpaid"].mean().to_numpy(float)
    for c, ls, star in zip(COSTS, (":", "--", "-."), stars, strict=True):
        ax2.plot(x, c * dpaid, color="#555555", ls=ls, lw=1, label=f"∂C/∂n, c = {c:g}")
        if star["n_star"] is not None:
            ax2.axvline(sum(star["n_star"]) / 2, color="#555555", ls=ls, lw=0.8, alpha=0.6)
    ax2.axhline(0, color="#999999", lw=0.5)
    ax2.set_xlabel("n (interval midpoint)")
    ax2.set_ylabel("per socialization step")
    ax2.legend(frameon=False, fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def _interval(x: tuple | None) -> str:
    return "not reached" if x is None else f"{x[0]:,.0f}–{x[1]:,.0f}"


def section(name: str, df: pd.DataFrame, fig_dir: Path) -> list[Block]:
    """Question and prediction, precondition and controls, B(n) and C(n), the readiness points, the verdicts."""
    out = outcomes(df)
    seeds = sorted(df["seed"].unique())
    blocks = STUDY.intro(name, seeds, "one socialization per seed, left at each departure point n.")
    goals = end_of_socialization(df, "goals_per_episode", [N, "seed"]).reset_index()
    at_last = goals[goals[N] == goals[N].max()].set_index("seed")["value"]
    n_learned = int((at_last >= LEARNED_GOALS).sum())
    pre = n_learned >= MIN_LEARNED
    blocks.append(Text(f"Precondition: {n_learned} of {len(at_last)} seeds had learned (>= {LEARNED_GOALS:g} goals per "
                       f"episode) by the last point (needed {MIN_LEARNED}) — " + ("met." if pre else "NOT met.")))
    ctrl, ctrl_ok = controls(out)
    blocks.append(control_table(ctrl))
    ok = pre and ctrl_ok
    blocks.append(Text("Controls " + ("passed." if ctrl_ok else "FAILED: no verdict is read.")))
    sl = slopes(out)
    stars = readiness_points(sl)
    rows = []
    for n, g in out.groupby(N):
        rows.append((f"{n:,.0f}", "{} [{}, {}]".format(*map(fmt, mean_ci(g["B"]))),
                     "{} [{}, {}]".format(*map(fmt, mean_ci(g["B_none"].dropna()))), fmt(g["paid"].mean()),
                     "{} [{}, {}]".format(*map(fmt, mean_ci(g["disagreement"].dropna()))), str(len(g))))
    blocks.append(Table(("departure n", "B(n) with the ISR (95% CI)", "without an ISR", "social reward paid up to n",
                         "ISR disagreement at departure", "n seeds"), tuple(rows)))
    rows = []
    for (n0, n1), g in sl.groupby(["n0", "n1"], sort=True):
        rows.append((f"{n0:,.0f}–{n1:,.0f}", "{} [{}, {}]".format(*map(fmt, mean_ci(g["dB"]))),
                     *(fmt(c * g["dpaid"].mean()) for c in COSTS)))
    blocks.append(Table(("interval", "∂B/∂n (95% CI)", *(f"∂C/∂n, c = {c:g}" for c in COSTS)), tuple(rows)))
    found = tests(out, sl)
    # The readiness condition presumes a benefit that rises with diminishing returns: a first crossing of a B(n) that
    # falls, or rises faster later, is no readiness point.
    first_slope = mean_ci(sl[sl["n0"] == sl["n0"].min()]["dB"])[0]
    concave = ok and found[0].verdict == "supported" and first_slope > 0
    blocks.append(Table(("cost c", "n* (mean ∂B/∂n < ∂C/∂n first)", "n* (CI of the difference below 0)"), tuple(
        (f"{s['cost']:g}", *((_interval(s["n_star"]), _interval(s["n_star_confident"])) if concave else
                             ("not measurable", "not measurable"))) for s in stars)))
    if not concave:
        blocks.append(Text(f"n* is not measurable: B(n) does not rise with diminishing returns here (∂B/∂n over the "
                           f"first interval {fmt(first_slope)}; diminishing returns {found[0].verdict}), and a first "
                           "crossing of such a curve is no readiness point."))
    blocks.append(verdict_table(found, ok))
    blocks.append(Text("Verdict: " + ("; ".join(f"{t.label}: {t.verdict}" for t in found) if ok else
                                      "not measurable (a control or the precondition failed)") +
                       " (paired one-sided t across seeds, Holm over the three tests, alpha 0.05)."))
    blocks.append(Image(f"{name}: B(n) and C(n) (left); ∂B/∂n with its 95% CI against ∂C/∂n, n* marked where it is "
                        "read (right)",
                        _plot(out, sl, stars if concave else [dict(s, n_star=None) for s in stars],
                              fig_dir / f"study_{name}.png")))
    return blocks
