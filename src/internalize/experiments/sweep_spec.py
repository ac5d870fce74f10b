"""A sweep's grid: dotted keys of the experiment file and the values each takes, checked before anything runs.

A sweep (:mod:`internalize.experiments.sweep`) is an experiment file plus a grid: every point of the product of the
grid's value lists is the file with those keys set. A key is written as ``internalize schema`` lists it, dotted from
its section: ``caregiver.noise``, ``isr.width``, ``learner.learning_rate``, ``experiment.socialization_steps``,
``caregiver.presence.half_life``, ``conditions.fade.presence.half_life``, ``worlds.hall.n_blocks``,
``probes.empathy.n_stimuli``; with several ``[[caregiver]]`` tables, ``caregiver[1].reward``.

Points are the product of the value lists, or with ``zip = true`` the lists taken together (the i-th point sets
every key to its i-th value: two keys that must move together, as two caregivers' shares p and 1 - p).

The grid comes from the file's ``[sweep]`` table (:class:`SweepSpec`) and from ``--grid KEY=V1,V2`` on the command
line (:func:`parse_grid_option`), which replaces the file's values of the same key. Values are TOML literals
(``0.1``, ``64``, ``true``, ``"mlp"``; a bare word is a string) and take the key's type (an integer for a float key
becomes a float), so a sweep's table columns are typed.
"""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass, field
from typing import Any

from internalize.config_error import ConfigError
from internalize.schema import PHASES


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class SweepSpec:
    """The ``[sweep]`` table of an experiment file: what to vary and what the report draws against it."""

    grid: tuple[tuple[str, tuple[Any, ...]], ...] = field(default=(), metadata=_help(
        "a table of dotted keys (quoted, as internalize schema lists them) to lists of values, e.g. "
        "\"caregiver.noise\" = [0.0, 0.2]; the sweep runs every point of their product. --grid KEY=V1,V2 adds "
        "or replaces a key"))
    outcome: str = field(default="caregiver_return", metadata=_help(
        "the metric the report draws against each swept key (a metric of the results table)"))
    phase: str = field(default="evaluation", metadata=_help(
        "the phase the outcome is read in: its last logged value per run (evaluation: the held-out episodes)"))
    zip: bool = field(default=False, metadata=_help(
        "take the grid's lists together instead of their product: point i sets every key to its i-th value "
        "(lists of equal length), e.g. two caregivers' presence rates p and 1 - p"))

    def __post_init__(self) -> None:
        if not isinstance(self.outcome, str) or not self.outcome:
            raise ConfigError.got("sweep.outcome", self.outcome, "a metric name")
        if self.phase not in PHASES:
            raise ConfigError.got("sweep.phase", self.phase, " | ".join(PHASES))
        if not isinstance(self.zip, bool):
            raise ConfigError.got("sweep.zip", self.zip, "true or false")
        for key, values in self.grid:
            if not values:
                raise ConfigError(f"sweep.grid.{key}", "no values; allowed: a list of at least one value.",
                                  value=values, allowed="at least one value")
            seen = [v for i, v in enumerate(values) if v in values[:i]]
            if seen and not self.zip:  # zipped, a key may repeat a value beside another key's different one
                raise ConfigError(f"sweep.grid.{key}", f"{seen[0]!r} is listed twice; each value once.",
                                  value=values, allowed="distinct values")
        lengths = {len(v) for _, v in self.grid}
        if self.zip and len(lengths) > 1:
            counts = ", ".join(f"{k}: {len(v)}" for k, v in self.grid)
            raise ConfigError("sweep.grid", f"zip = true takes lists of one length, got {counts}.",
                              value=dict(self.grid), allowed="lists of equal length")
        points = self.combinations()
        if len(set(map(repr, points))) != len(points):
            raise ConfigError("sweep.grid", "a point is listed twice; each point once.", value=dict(self.grid),
                              allowed="distinct points")

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.grid)

    def combinations(self) -> list[tuple[Any, ...]]:
        """Every point's values, one per key in grid order: the product of the lists, or (``zip``) their i-th
        values together."""
        lists = [values for _, values in self.grid]
        return list(zip(*lists, strict=True)) if self.zip and lists else list(itertools.product(*lists))


def check_not_empty(grid: tuple) -> None:
    """``ConfigError`` for a sweep without a grid (a study that is one experiment passes no grid on purpose)."""
    if not grid:
        raise ConfigError("sweep.grid", "empty grid: give --grid KEY=V1,V2 or a [sweep.grid] table of keys to "
                          "lists of values.", value=grid, allowed="at least one key")


def parse_value(text: str) -> Any:
    """A value as written after ``--grid KEY=``: a TOML literal (``0.1``, ``true``, ``"mlp"``, ``[1, 2]``), or else
    the bare text as a string."""
    text = text.strip()
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def split_values(text: str) -> list[str]:
    """``V1,V2,...`` split at the commas outside brackets and quotes (``[1,2],[3]`` is two values)."""
    parts, depth, quote, current = [], 0, "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += ch
    parts.append(current)
    return [p for p in (p.strip() for p in parts) if p != ""]


def parse_grid_option(option: str) -> tuple[str, tuple[Any, ...]]:
    """One ``--grid KEY=V1,V2,...`` option as (key, values); ``ConfigError`` when it has no ``=`` or no value."""
    key, sep, values = option.partition("=")
    if not sep or not key.strip():
        raise ConfigError("--grid", f"{option!r}: write KEY=V1,V2,... (e.g. caregiver.noise=0,0.1,0.2).",
                          value=option, allowed="KEY=V1,V2,...")
    parsed = tuple(parse_value(v) for v in split_values(values))
    if not parsed:
        raise ConfigError("--grid", f"{key.strip()}: no values; allowed: KEY=V1,V2,...", value=option,
                          allowed="at least one value")
    return key.strip(), parsed
