"""The results table's schema: the one definition the runner writes and the analysis layer reads.

Every experiment's results are one long table (``OUT/EXPERIMENT/results.parquet``, docs/design.md,
principle 6): one row per logged scalar. The writer (:mod:`internalize.experiments.results`) and the reader
(:mod:`internalize.analysis.table`) both import these names from here, so the two sides cannot drift apart.
This module imports nothing from ``internalize.experiments`` or ``internalize.analysis`` (the analysis layer
never imports the runner, and the runner never imports the analysis layer).
"""

from __future__ import annotations

__all__ = ["COLUMNS", "KEY_COLUMNS", "PHASES"]

COLUMNS: tuple[str, ...] = (
    "experiment", "condition", "world", "seed", "phase", "step", "episode", "metric", "value",
)
"""Columns of the results table, in the order they are written.

``experiment`` (str), ``condition`` (str: caregiver, none, isr, frozen, frozen-continued, ``isr-data-N`` ...),
``world`` (str), ``seed`` (int64), ``phase`` (str, one of :data:`PHASES`), ``step`` (int64: global environment
steps of that seed at the end of the logged rollout; for ``phase == "isr"`` the ISR update index), ``episode``
(float64: cumulative episodes, may be NaN), ``metric`` (str) and ``value`` (float64)."""

KEY_COLUMNS: tuple[str, ...] = ("experiment", "condition", "world", "seed", "phase", "step", "metric")
"""The columns that identify a row: no two rows of a table share them (``episode`` and ``value`` are data).
A finished table is sorted by them."""

PHASES: tuple[str, ...] = ("socialization", "isr", "autonomy", "evaluation", "empathy")
"""The values of the ``phase`` column, in the order an experiment runs them: socialization with the caregiver,
the ISR's training, the autonomous phase, held-out evaluation, and the empathy probe
(:mod:`internalize.empathy.study`). Only membership matters to the code (validation); the order is for
display (tables are sorted by the phase's name)."""
