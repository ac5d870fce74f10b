"""Conditions of the autonomous phase as records: what happens after socialization, defined once.

Every condition continues a seed's socialized learner (parameters and optimizer state) and says:

* ``presence``: the caregiver's schedule during the autonomous phase (``social.presence``), counted in steps
  from the phase's start: ``always`` keeps it, ``never`` removes it, ``linear`` lets it fade, ...;
* ``caregivers``: instead, with several caregivers, each one's own schedule (in the experiment's order), e.g. the
  first stays while the second leaves;
* ``isr``: whether the ISR's R_i enters the utility while the caregiver is absent (how: the experiment's
  ``Experiment.utility``);
* ``internalizes``: whether the ISR keeps training while a caregiver is present in the autonomous phase (on
  everything stored: the socialization's transitions and this phase's present ones), as a learner weaned
  gradually would (a condition with it runs in a program of its own);
* ``learns``: whether the learner keeps learning (False = the paper's frozen baseline, evaluated as it was at
  the end of socialization);
* ``world``: where it continues: ``autonomy`` (each of the experiment's autonomy worlds) or ``socialization``
  (the socialization world, and it is then scored on every autonomy world: the reference's "frozen").

The five named conditions of the paper are instances (:data:`NAMED`); an experiment (or a TOML file's
``[conditions.NAME]``) may define its own.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from internalize.config_error import ConfigError
from internalize.social.presence import Presence

PLACES = ("autonomy", "socialization")


@dataclass(frozen=True)
class Condition:
    """One condition of the autonomous phase; see the module docstring."""

    name: str = field(metadata={"help": "label in the results table (letters, digits, '-' and '_')."})
    presence: Presence = field(
        default_factory=lambda: Presence("never"),
        metadata={"help": "caregiver presence schedule during the autonomous phase (a [conditions.NAME.presence] "
                          "table; default never)."},
    )
    caregivers: tuple[Presence, ...] = field(default=(), metadata={"help": (
        "with several caregivers: each one's own schedule during the autonomous phase, in [[caregiver]] order "
        "(a list of presence tables, e.g. [{ kind = \"always\" }, { kind = \"never\" }]); instead of presence.")})
    isr: bool = field(default=False, metadata={"help": "R_i from the ISR enters the utility while the caregiver "
                                                        "is absent."})
    internalizes: bool = field(default=False, metadata={"help": (
        "the ISR keeps training while a caregiver is present in the autonomous phase, on the socialization's "
        "transitions and this phase's present ones (needs isr = true)")})
    learns: bool = field(default=True, metadata={"help": "the learner keeps learning (false = frozen)."})
    world: str = field(default="autonomy", metadata={"help": f"where it continues: {' | '.join(PLACES)}."})

    def __post_init__(self) -> None:
        label = f"conditions.{self.name}"
        if not (isinstance(self.name, str) and self.name and self.name.replace("-", "").replace("_", "").isalnum()):
            raise ConfigError("conditions", f"name {self.name!r}; allowed: letters, digits, '-' and '_'.",
                              value=self.name, allowed="letters, digits, '-' and '_'")
        if not isinstance(self.presence, Presence):
            raise ConfigError.got(f"{label}.presence", self.presence, "a Presence schedule")
        if not isinstance(self.caregivers, tuple) or not all(isinstance(p, Presence) for p in self.caregivers):
            raise ConfigError.got(f"{label}.caregivers", self.caregivers, "a list of presence schedules")
        if self.caregivers and self.presence.kind != "never":
            raise ConfigError(f"{label}.caregivers", "give presence (all caregivers) or caregivers (each its own), "
                              "not both.", value=self.caregivers, allowed="presence or caregivers")
        for name in ("isr", "learns", "internalizes"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError.got(f"{label}.{name}", getattr(self, name), "true | false")
        if self.world not in PLACES:
            raise ConfigError.got(f"{label}.world", self.world, " | ".join(PLACES))
        if self.internalizes and not self.isr:
            raise ConfigError(f"{label}.internalizes", "true needs isr = true (an ISR to keep training).",
                              value=True, allowed="isr = true")
        if not self.learns and (self.world != "autonomy" or self.isr or self.presence.kind != "never"
                                or self.caregivers):
            raise ConfigError(f"{label}.learns", "false (frozen) takes no presence, isr or world; leave them unset.",
                              value=False)

    @property
    def simple_presence(self) -> bool:
        """Presence is all-or-nothing (``always`` / ``never``): such conditions share one compiled program,
        the presence being a per-run flag."""
        return not self.caregivers and not self.internalizes and self.presence.kind in ("always", "never")

    @property
    def schedules(self) -> Presence | tuple[Presence, ...]:
        """What the reward module runs: one schedule all caregivers follow, or each caregiver's own."""
        return self.caregivers or self.presence

    @property
    def caregiver_there(self) -> bool:
        """Whether any caregiver can be present in this condition (else its runs switch the caregiver off)."""
        return any(p.kind != "never" for p in (self.caregivers or (self.presence,)))

    @property
    def tag(self) -> int:
        """A stable integer identifying this condition in its autonomy keys (the named ones keep their index)."""
        if self.name in NAMED_ORDER:
            return NAMED_ORDER.index(self.name)
        return len(NAMED_ORDER) + zlib.crc32(self.name.encode()) % 1_000_000


CAREGIVER = Condition("caregiver", Presence("always"))  # the paper's "oracle": the caregiver stays
NONE = Condition("none")  # the caregiver leaves and nothing replaces it
ISR = Condition("isr", isr=True)  # the caregiver leaves; the ISR supplies R_i
FROZEN = Condition("frozen", learns=False)  # no further learning (the paper's frozen baseline)
# The reference code's "frozen": keeps training with the caregiver on the socialization world
# (docs/paper-vs-reference.md, 'The frozen baseline').
FROZEN_CONTINUED = Condition("frozen-continued", Presence("always"), world="socialization")

NAMED: dict[str, Condition] = {c.name: c for c in (CAREGIVER, NONE, ISR, FROZEN, FROZEN_CONTINUED)}
NAMED_ORDER: tuple[str, ...] = tuple(NAMED)
