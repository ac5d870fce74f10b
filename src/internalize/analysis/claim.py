"""One paper claim as data: the :class:`Claim` record that :func:`internalize.analysis.claims.claims` returns,
its verdict words, and its flat form (:func:`claim_record`) that ``internalize claims --json`` prints and the
report's claims table is built from.

A claim carries its numbers twice: as fields (``effect_value``, ``ci_low``, ``ci_high``, ``margin_value``,
``fraction``, ``seeds_needed``, ...) for scripts, and as the sentences the report prints (``effect``,
``margin``, ``evidence``), which are formatted from the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .noninferiority import FractionCI

__all__ = ["Claim", "REPRODUCED", "NOT_REPRODUCED", "NOT_RUN", "NOT_REACHABLE", "RECORD_KEYS", "claim_record",
           "claim_text", "equivalent_text", "fraction_text", "seeds_needed_text", "fmt", "ci_text"]

REPRODUCED, NOT_REPRODUCED, NOT_RUN = "reproduced", "not reproduced", "not run"
NOT_REACHABLE = "not reachable"  # seeds needed where the observed difference is already beyond -margin
_MINUS = "\u2212"

# The keys of one claim's JSON record, in this order (``internalize claims --json``).
RECORD_KEYS: tuple[str, ...] = (
    "number", "verdict", "test", "effect", "ci_low", "ci_high", "margin", "fraction_recovered", "fraction_ci_low",
    "fraction_ci_high", "seeds_needed", "n", "seed_offset", "figure", "experiment", "statement",
    "also_equivalent", "seeds")


@dataclass(frozen=True)
class Claim:
    """One paper claim and what a run says about it (``n``: seeds or runs the evidence uses)."""

    number: int
    figure: str
    statement: str
    criterion: str
    paper: str
    verdict: str
    evidence: str
    n: int = 0
    seeds: tuple[int, ...] = ()
    # The quantity judged, with its 95% CI (e.g. "isr − caregiver = −0.051 [−0.130, 0.028]"), and the
    # threshold or margin it is judged against, as text. Not run: no effect, and the margin states the rule
    # only (a non-inferiority margin is a number only once the run's oracle advantage is known).
    effect: str = ""
    margin: str = ""
    # The same as numbers. ``experiment``: the experiment the claim reads (fig1, fig4b, fig5, fig3, fig6, fig7).
    # ``test``: what the verdict rests on. ``effect_value`` [``ci_low``, ``ci_high``]: the judged quantity and
    # its 95% CI. ``margin_value``: its threshold (claims 1, 3, 6, 7, 8: the effect must lie below / above it)
    # or, for "the ISR matches the oracle" (2, 4, 5, 9), the non-inferiority margin m (isr - oracle > -m).
    experiment: str = ""
    test: str = ""
    effect_value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    margin_value: float | None = None
    # Claims 2, 4, 5, 9 only: the fraction of the oracle's advantage over the baseline that the ISR recovers
    # (bootstrap CI), seeds per condition this test needs for 80% power at the observed difference and spread
    # (an int, NOT_REACHABLE, or None where undefined), and the two-sided equivalence test's result.
    fraction: FractionCI | None = None
    seeds_needed: int | str | None = None
    also_equivalent: bool | None = None


def fmt(x: float, digits: int = 3) -> str:
    """``x`` with ``digits`` decimals and a typographic minus (as the report prints effects)."""
    return f"{x:.{digits}f}".replace("-", _MINUS)


def ci_text(lo: float, hi: float, digits: int = 3) -> str:
    return f"[{fmt(lo, digits)}, {fmt(hi, digits)}]"


def fraction_text(f: FractionCI | None) -> str:
    """'0.84 [0.61, 1.12]' (a fraction, 1 = all of the oracle's advantage), or why there is none."""
    if f is None:
        return "—"
    if f.point is None:
        return "undefined (the oracle does not beat the baseline)"
    if f.low is None or f.high is None:
        return (f"{fmt(f.point, 2)} (no CI: the oracle beats the baseline in only {f.n_used:,} of {f.n_boot:,} "
                "resamples)")
    return f"{fmt(f.point, 2)} {ci_text(f.low, f.high, 2)}"


def seeds_needed_text(c: Claim) -> str:
    return "—" if c.seeds_needed is None else str(c.seeds_needed)


def equivalent_text(c: Claim) -> str:
    """Whether the two-sided equivalence test also holds: yes / no / — (not a non-inferiority claim)."""
    return {True: "yes", False: "no", None: "—"}[c.also_equivalent]


def _num(x: float | None) -> float | None:
    """JSON-safe: None for a missing or non-finite number."""
    return None if x is None or not math.isfinite(float(x)) else float(x)


def claim_record(c: Claim, seed_offset: int = 0) -> dict[str, object]:
    """The claim as one flat JSON-ready dict with :data:`RECORD_KEYS` (numbers as numbers, None where
    undefined): what ``internalize claims --json`` prints, one per line."""
    f = c.fraction
    rec = {
        "number": c.number, "verdict": c.verdict, "test": c.test, "effect": _num(c.effect_value),
        "ci_low": _num(c.ci_low), "ci_high": _num(c.ci_high), "margin": _num(c.margin_value),
        "fraction_recovered": None if f is None else _num(f.point),
        "fraction_ci_low": None if f is None else _num(f.low),
        "fraction_ci_high": None if f is None else _num(f.high),
        "seeds_needed": c.seeds_needed, "n": c.n, "seed_offset": int(seed_offset), "figure": c.figure,
        "experiment": c.experiment, "statement": c.statement, "also_equivalent": c.also_equivalent,
        "seeds": list(c.seeds),
    }
    return rec


def claim_text(c: Claim, seed_offset: int = 0) -> str:
    """The claim for a reader (``internalize claims``): its verdict line, then the numbers it rests on."""
    rec = claim_record(c, seed_offset)

    def num(x: float | None) -> str:
        return "—" if x is None else fmt(x)

    lines = [f"claim {c.number} ({c.figure}, seed offset {seed_offset}, n = {c.n}): {c.verdict} — {c.statement}",
             f"  test: {c.test or '—'}",
             f"  effect: {num(rec['effect'])} [{num(rec['ci_low'])}, {num(rec['ci_high'])}] (95% CI); "
             f"margin: {num(rec['margin'])}"]
    if c.fraction is not None or c.seeds_needed is not None:
        lines.append(f"  fraction of the oracle's advantage recovered: {fraction_text(c.fraction)}; seeds needed "
                     f"(80% power): {seeds_needed_text(c)}; also equivalent: {equivalent_text(c)}")
    return "\n".join(lines)
