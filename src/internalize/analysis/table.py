"""The long results table as the analysis layer reads it: validation and the few reductions it needs.

One row per logged scalar, with columns ``experiment, condition, world, seed, phase, step, episode,
metric, value`` (docs/design.md, principle 6). ``step`` counts global env steps of that seed
at the end of the logged rollout (for ``phase == "isr"`` it is the ISR update index); ``episode`` counts
cumulative episodes (may be NaN). This module never imports the runner: the columns are the contract.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from internalize.schema import COLUMNS, KEY_COLUMNS, PHASES

__all__ = [
    "COLUMNS",
    "KEY_COLUMNS",
    "PHASES",
    "ORACLE_NAMES",
    "FROZEN_NAMES",
    "require_columns",
    "validate",
    "select",
    "final_per_seed",
    "end_of_phase",
    "across_seeds",
    "phase_end_step",
    "condition_order",
    "pick_condition",
    "world_order",
    "isr_final_per_run",
    "isr_heldout_shared",
    "EXPERIMENT_ALIASES",
    "STUDY_TABLES",
    "group_tables",
]

# The table's schema (COLUMNS, KEY_COLUMNS, PHASES) is defined once, in internalize.schema, shared with the
# writer (internalize.experiments.results); imported above and re-exported here.

# The paper's "Oracle" (caregiver stays) and "Frozen" under the names a results table may use;
# the first name present wins ("frozen" is the paper's definition, "frozen-continued" the reference's).
ORACLE_NAMES: tuple[str, ...] = ("caregiver", "oracle")
FROZEN_NAMES: tuple[str, ...] = ("frozen", "frozen-continued")
# Display order of conditions in figures and tables; unknown names follow, sorted.
_ORDER: tuple[str, ...] = ("frozen", "frozen-continued", "none", "isr", "caregiver", "oracle")
# Results tables may be keyed by the paper's panel names; a report section covers each group.
EXPERIMENT_ALIASES: dict[str, str] = {
    "fig1": "fig1", "fig1b": "fig1", "fig4a": "fig1", "fig1_fig4a": "fig1",
    "fig3": "fig3", "fig3a": "fig3", "fig3b": "fig3",
    "fig4b": "fig4b", "fig5": "fig5", "fig6": "fig6", "fig7": "fig7",
}
# Tables of studies beyond the paper that the report shows beside the paper's experiments: no paper claim reads
# them, so a directory holding only these has no claims table and no claim robustness across seed sets.
STUDY_TABLES: frozenset[str] = frozenset({"empathy"})
# Display order of worlds: the paper's Fig 5 order, then the rest sorted.
_WORLD_ORDER: tuple[str, ...] = ("plus", "x", "U", "T", "four_rooms")
# Columns a per-run reduction is keyed by.
_RUN = ["condition", "world", "seed"]


def require_columns(df: pd.DataFrame, columns: Iterable[str], name: str = "results table") -> None:
    """Raise ``ValueError`` naming every column of ``columns`` that ``df`` lacks."""
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{name}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"{name}: missing column(s) {missing}; present: {list(df.columns)}; "
            f"required: {list(columns)}"
        )


def validate(df: pd.DataFrame, name: str = "results table") -> pd.DataFrame:
    """Check ``df`` against the results-table contract and return it unchanged.

    Raises ``ValueError`` naming the missing columns, an unknown ``phase`` value (with the allowed
    ones), or a non-numeric ``value``/``step``/``seed`` column.
    """
    require_columns(df, COLUMNS, name)
    bad_phase = sorted(set(df["phase"].astype(str)) - set(PHASES))
    if bad_phase:
        raise ValueError(f"{name}: column 'phase' has value(s) {bad_phase}; allowed: {list(PHASES)}")
    for col in ("value", "step", "seed", "episode"):
        if len(df) and not pd.api.types.is_numeric_dtype(df[col]):
            raise ValueError(f"{name}: column '{col}' must be numeric, got dtype {df[col].dtype}")
    return df


def select(
    df: pd.DataFrame,
    *,
    metric: str | None = None,
    phase: str | Sequence[str] | None = None,
    condition: str | Sequence[str] | None = None,
    world: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """Rows matching every given filter (a string or a sequence of allowed strings)."""
    mask = np.ones(len(df), dtype=bool)
    for col, want in (("metric", metric), ("phase", phase), ("condition", condition), ("world", world)):
        if want is None:
            continue
        allowed = [want] if isinstance(want, str) else list(want)
        mask &= df[col].isin(allowed).to_numpy()
    return df.loc[mask]


def final_per_seed(df: pd.DataFrame, metric: str, phase: str = "evaluation") -> pd.DataFrame:
    """One value per run: ``metric`` at the run's last logged ``step`` in ``phase``.

    Returns columns ``condition, world, seed, value`` (rows logged at the same last step, e.g. several
    evaluation batches, are averaged). Empty when nothing matches.
    """
    rows = select(df, metric=metric, phase=phase)
    if rows.empty:
        return pd.DataFrame(columns=[*_RUN, "value"])
    last = rows.groupby(_RUN)["step"].transform("max")
    rows = rows.loc[rows["step"] == last]
    out = rows.groupby(_RUN, as_index=False)["value"].mean()
    out["seed"] = out["seed"].astype(int)
    return out


def end_of_phase(df: pd.DataFrame, metric: str, phase: str, frac: float = 0.1) -> pd.DataFrame:
    """Per run, the mean of ``metric`` over the last ``frac`` of its logged points in ``phase``.

    Averaging a window (at least one point) rather than the single last point keeps one noisy
    rollout from deciding a verdict. Returns columns ``condition, world, seed, value``.
    """
    if not 0.0 < frac <= 1.0:
        raise ValueError(f"frac={frac!r}: must be in (0, 1]")
    rows = select(df, metric=metric, phase=phase).sort_values("step")
    if rows.empty:
        return pd.DataFrame(columns=[*_RUN, "value"])

    def tail_mean(v: pd.Series) -> float:
        k = max(1, int(np.ceil(frac * len(v))))
        return float(v.iloc[-k:].mean())

    out = rows.groupby(_RUN)["value"].apply(tail_mean).reset_index()
    out["seed"] = out["seed"].astype(int)
    return out


def across_seeds(df: pd.DataFrame, metric: str, x: str = "step") -> pd.DataFrame:
    """Mean, min and max of ``metric`` across seeds at each ``step``, per condition.

    Returns columns ``condition, step, x, mean, lo, hi, n`` sorted by step, where ``x`` is the mean of
    column ``x`` ("step" or "episode") over the seeds at that step.
    """
    if x not in ("step", "episode"):
        raise ValueError(f"x={x!r}: allowed 'step' or 'episode'")
    rows = select(df, metric=metric)
    if rows.empty:
        raise ValueError(f"no rows with metric {metric!r}; metrics present: {sorted(df['metric'].unique())}")
    g = rows.groupby(["condition", "step"])
    out = g["value"].agg(mean="mean", lo="min", hi="max", n="count")
    out["x"] = g[x].mean() if x == "episode" else out.index.get_level_values("step")
    return out.reset_index().sort_values(["condition", "step"])


def phase_end_step(df: pd.DataFrame, phase: str = "socialization") -> float | None:
    """Largest ``step`` logged in ``phase`` (where the caregiver leaves), or None if absent."""
    rows = df.loc[df["phase"] == phase, "step"]
    return None if rows.empty else float(rows.max())


def condition_order(conditions: Iterable[str]) -> list[str]:
    """Conditions in display order: the known ones first (frozen ... caregiver), the rest sorted."""
    present = list(dict.fromkeys(str(c) for c in conditions))
    known = [c for c in _ORDER if c in present]
    return known + sorted(c for c in present if c not in _ORDER)


def world_order(worlds: Iterable[str]) -> list[str]:
    """Worlds in display order: the paper's Fig 5 maps first (plus, x, U, T, four_rooms), the rest sorted."""
    present = list(dict.fromkeys(str(w) for w in worlds))
    return [w for w in _WORLD_ORDER if w in present] + sorted(w for w in present if w not in _WORLD_ORDER)


def pick_condition(conditions: Iterable[str], names: Sequence[str]) -> str | None:
    """The first of ``names`` that occurs in ``conditions`` (e.g. the oracle's name), or None."""
    present = set(str(c) for c in conditions)
    return next((n for n in names if n in present), None)


def isr_final_per_run(df: pd.DataFrame) -> pd.DataFrame:
    """Fig 3b's points: per ISR run, the training-set size and the final held-out MSE.

    A run is one (condition, world, seed, n_train): ``isr_heldout_mse`` is paired with the
    ``isr_n_train`` logged at the same step, so several data sizes may share a condition (as
    successive step ranges) or each have their own; the value at the run's last step is kept. If the
    two metrics never share a step, each (condition, world, seed) pairs its final values.

    Each (world, seed, n_train) is one point: where several conditions trained on the same number of
    transitions (tables written before a data size equal to the whole socialization was recognised as
    the full-data ISR trained again as ``isr-data-N``), the full-data ISR's row (condition ``isr``) is
    kept, else the first condition's in name order. Returns columns ``condition, world, seed, n_train,
    mse, updates`` (``updates``: the run's ISR updates, the last logged step; NaN when the metrics share
    no step); empty if either metric is missing.
    """
    key = [*_RUN, "step"]
    n = select(df, metric="isr_n_train", phase="isr")[key + ["value"]].rename(columns={"value": "n_train"})
    mse = select(df, metric="isr_heldout_mse", phase="isr")[key + ["value"]].rename(columns={"value": "mse"})
    both = n.merge(mse, on=key)
    if both.empty:
        n = final_per_seed(df, "isr_n_train", "isr").rename(columns={"value": "n_train"})
        mse = final_per_seed(df, "isr_heldout_mse", "isr").rename(columns={"value": "mse"})
        return _one_per_size(n.merge(mse, on=_RUN).assign(updates=np.nan))
    last = both.groupby([*_RUN, "n_train"])["step"].transform("max")
    out = both.loc[both["step"] == last].groupby([*_RUN, "n_train"], as_index=False).agg(
        mse=("mse", "mean"), updates=("step", "max"))
    out["seed"] = out["seed"].astype(int)
    return _one_per_size(out[[*_RUN, "n_train", "mse", "updates"]])


def isr_heldout_shared(df: pd.DataFrame) -> int | None:
    """The number of held-out transitions if every ISR of each (world, seed) was scored on as many
    (``isr_n_heldout``: the Fig 3b sizes share one held-out set), else None (e.g. each size scored on the
    tail of its own data, or no ``isr_n_heldout`` rows). With several seeds, their smallest count."""
    rows = select(df, metric="isr_n_heldout", phase="isr")
    if rows.empty or rows.groupby(["world", "seed"])["value"].nunique().max() > 1:
        return None
    return int(rows["value"].min())


def _one_per_size(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (world, seed, n_train): the full-data ISR's (condition ``isr``) if present, else the first
    condition's in name order (see ``isr_final_per_run``)."""
    if runs.empty:
        return runs
    rank = (runs["condition"] != "isr").astype(int)
    out = (runs.assign(_rank=rank).sort_values(["_rank", "condition"], kind="stable")
           .drop_duplicates(["world", "seed", "n_train"]).drop(columns="_rank"))
    return out.sort_values([*_RUN, "n_train"]).reset_index(drop=True)


def group_tables(tables: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Validate every table and merge those naming the same experiment (e.g. fig1b + fig4a -> fig1).

    Unknown names are kept under their own name. Exact duplicate rows are dropped after merging.
    """
    if not isinstance(tables, Mapping):
        raise ValueError(f"tables: expected a mapping name -> DataFrame, got {type(tables).__name__}")
    groups: dict[str, list[pd.DataFrame]] = {}
    for name, df in tables.items():
        validate(df, f"table {name!r}")
        groups.setdefault(EXPERIMENT_ALIASES.get(str(name), str(name)), []).append(df)
    return {k: (v[0] if len(v) == 1 else pd.concat(v, ignore_index=True).drop_duplicates())
            for k, v in groups.items()}
