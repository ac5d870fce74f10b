"""Probes: units an experiment runs after its evaluation, on what the learner was taught.

A probe asks a question of a finished socialization (its stored transitions) and of the experiment's full-data
ISR, beyond the protocol's curves: e.g. the empathy probe (``internalize.empathy.unit``), does the ISR reward
another agent's goal reaching? It is data in the experiment (``Experiment.probes``), runs as one more unit of the
runner (``units.probe_unit``: skipped when finished, stored atomically, verified when read) and adds its rows to
the experiment's results table, so the report reads them like any other.

A probe is a frozen dataclass subclassing :class:`Probe`, with a ``kind`` (its unit's name and its key in
:data:`KINDS`), a :meth:`Probe.check` run when the experiment is built (bad input before any compute), and
:meth:`Probe.rows`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, ClassVar

from internalize.config_error import ConfigError

#: Probe kinds and the module that defines each (imported when a manifest names one).
KINDS = {"empathy": "internalize.empathy.unit", "goal_values": "internalize.studies.goal_values"}


@dataclass(frozen=True)
class Probe:
    """Base of every probe; see the module docstring."""

    kind: ClassVar[str] = ""

    # ``exp`` is an ``experiments.spec.Experiment`` (not imported: the Experiment holds its probes).
    def check(self, exp: Any) -> None:
        """Raise ``ConfigError`` naming the key, the value and what is allowed if ``exp`` cannot run this probe."""

    def rows(self, exp: Any, keys: Any, soc: Any, isr_params: Any) -> list[dict]:
        """The probe's rows for the results table (``phase`` = :attr:`kind`).

        Args:
          exp: the experiment (an ``Experiment``).
          keys: its per-seed keys (``phases.seed_keys``).
          soc: the finished socialization's training state, (S,)-batched (its reward state holds the stored
            transitions).
          isr_params: the full-data ISR's parameters, (S,)-batched.
        """
        raise NotImplementedError


def probe_class(kind: str) -> type[Probe]:
    """The probe class of ``kind`` (``ConfigError`` naming the allowed kinds)."""
    if kind not in KINDS:
        raise ConfigError.got("probes[].kind", kind, " | ".join(KINDS))
    module = importlib.import_module(KINDS[kind])
    return next(c for c in vars(module).values()
                if isinstance(c, type) and issubclass(c, Probe) and c.kind == kind)


def probe_to_dict(probe: Probe) -> dict[str, Any]:
    """A probe as its manifest entry: its kind and its fields."""
    import dataclasses

    return {"kind": probe.kind, **dataclasses.asdict(probe)}
