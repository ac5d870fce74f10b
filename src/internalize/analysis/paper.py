"""The paper's published numbers, as data.

Rong & Kleiman-Weiner (2024), "Value Internalization: Learning and Generalizing from Social Reward".
The per-seed values behind Figs 4b and 5 were read from the authors' plot scripts and ship with the
package (``paper_data/*.csv``); the headline statistics below are the ones printed in the paper or
recomputed from those values with the authors' own procedure (docs/paper-vs-reference.md, 'Figure 5 statistics').

Units: every "reward (OOD)" is the mean caregiver-reward return per 20-step episode over 100 held-out
episodes (0.4 per goal minus 0.045 per non-goal forward move). Fig 3b MSEs are squared reward units.

Condition names follow this library: the paper's "Oracle" (caregiver stays) is ``"caregiver"`` in a
results table; the loaders below keep the paper's own label ``"oracle"`` so that the published
contrasts can be checked verbatim.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import pandas as pd

__all__ = [
    "PaperStat",
    "FIG3B_HELDOUT_MSE",
    "FIG4B_MEANS",
    "FIG4B_TTESTS",
    "FIG5_MEANS",
    "FIG5_REFERENCE_OLS",
    "FIG5_ADDITIVE_OLS",
    "FIG5_PAPER_TEXT",
    "ALPHA",
    "fig4b_per_seed",
    "fig5_per_seed",
]

# Significance level the paper uses throughout ("p < 0.05").
ALPHA: float = 0.05


@dataclass(frozen=True)
class PaperStat:
    """One published test statistic.

    ``a``/``b`` name the compared conditions; ``t`` is the statistic of ``mean(a) - mean(b)`` (or of
    the regression coefficient coding that difference), ``p`` two-sided, ``df`` residual degrees of
    freedom of the test as the authors ran it.
    """

    a: str
    b: str
    t: float
    p: float
    df: float
    note: str = ""


# Fig 3b: held-out MSE of the ISR vs number of training transitions; mean and SEM over 10 seeds.
# Keys are training-set sizes (transitions), values (mean, sem).
FIG3B_HELDOUT_MSE: dict[int, tuple[float, float]] = {
    9216: (1.25e-3, 1.5e-4),
    18432: (8.70e-4, 1.4e-4),
    27648: (4.80e-4, 8.4e-5),
    36864: (2.82e-4, 5.7e-5),
    73728: (2.05e-5, 5.9e-6),
    108748: (5.48e-6, 1.2e-6),
}

# Fig 4b: reward (OOD) on random 5-block grids after 1-block socialization; (mean, sem), 10 seeds.
FIG4B_MEANS: dict[str, tuple[float, float]] = {
    "frozen": (0.541, 0.026),
    "isr": (0.630, 0.027),
    "oracle": (0.672, 0.031),
}

# Fig 4b: Student (equal-variance) t-tests, scipy.stats.ttest_ind, 10 vs 10 seeds (df = 18).
# The paper prints "p < 0.05" and "p = 0.32".
FIG4B_TTESTS: tuple[PaperStat, ...] = (
    PaperStat("frozen", "isr", t=-2.377, p=0.0287, df=18, note="paper: ISR > frozen, p < 0.05"),
    PaperStat("isr", "oracle", t=-1.024, p=0.3196, df=18, note="paper: p = 0.32"),
)

# Fig 5: reward (OOD) per hand-picked map; mean over 10 seeds. Keys: world -> condition -> mean.
FIG5_MEANS: dict[str, dict[str, float]] = {
    "plus": {"frozen": 0.404, "isr": 0.534, "oracle": 0.592},
    "x": {"frozen": 0.077, "isr": 0.433, "oracle": 0.432},
    "U": {"frozen": 0.220, "isr": 0.453, "oracle": 0.484},
    "T": {"frozen": 0.367, "isr": 0.529, "oracle": 0.572},
    "four_rooms": {"frozen": 0.815, "isr": 0.753, "oracle": 0.841},
}

# Fig 5 as the authors computed it: OLS ``y ~ condition * map`` fitted on one pair of conditions at a
# time (the other condition's rows commented out), so each t is the simple effect in the reference
# map "T" only. 100 rows, 10 cells -> df = 90.
FIG5_REFERENCE_OLS: tuple[PaperStat, ...] = (
    PaperStat("frozen", "isr", t=-3.662, p=0.0004, df=90, note="simple effect in map T"),
    PaperStat("isr", "oracle", t=-1.121, p=0.265, df=90, note="simple effect in map T"),
)

# The same pairs with an additive OLS ``y ~ condition + map`` (overall effect; df = 94).
FIG5_ADDITIVE_OLS: tuple[PaperStat, ...] = (
    PaperStat("frozen", "isr", t=-6.843, p=7.8e-10, df=94, note="overall effect across maps"),
    PaperStat("isr", "oracle", t=-2.589, p=0.0112, df=94, note="ISR < oracle is significant"),
)

# What the paper's text says about Fig 5 ("linear mixed-effect model ...").
FIG5_PAPER_TEXT: str = "t = -3.66, p < 0.001 (frozen vs ISR); t = 1.12, p = .27 (ISR vs oracle)"

_FIG4B_FILE = "fig4b_ood_reward_per_seed.csv"
_FIG5_FILE = "fig5_handpicked_reward_per_seed.csv"


def _read_csv(name: str) -> pd.DataFrame:
    """Read one packaged CSV from ``internalize.analysis.paper_data``."""
    with resources.files("internalize.analysis").joinpath("paper_data", name).open("r") as fh:
        return pd.read_csv(fh)


def fig4b_per_seed() -> pd.DataFrame:
    """Fig 4b per-seed values: columns ``condition`` (frozen|isr|oracle), ``seed``, ``value``.

    30 rows (10 seeds x 3 conditions). The paper does not publish which seed produced which value,
    so ``seed`` is the position 0..9 within its condition.
    """
    df = _read_csv(_FIG4B_FILE).rename(columns={"reward_ood": "value"})
    df["seed"] = df.groupby("condition").cumcount().astype(int)
    return df[["condition", "seed", "value"]]


def fig5_per_seed() -> pd.DataFrame:
    """Fig 5 per-seed values: columns ``condition``, ``world`` (the map), ``seed``, ``value``.

    150 rows (10 seeds x 3 conditions x 5 maps). ``seed`` is the position 0..9 within its
    (condition, map) cell; the authors' script lists the runs in the same seed order in every cell,
    which is what makes it usable as a random-effect grouping.
    """
    df = _read_csv(_FIG5_FILE).rename(columns={"reward_ood": "value", "map": "world"})
    df["seed"] = df.groupby(["condition", "world"]).cumcount().astype(int)
    return df[["condition", "world", "seed", "value"]]
