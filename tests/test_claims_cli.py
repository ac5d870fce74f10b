"""``internalize claims DIR [--json]``: every claim of the experiments finished in DIR and its seed-offset-K/
folders, as text or as one JSON object per line, from the same records as the report's claims table.

The directory is built as a finished run leaves it (``NAME/results.parquet`` and a ``manifest.json`` marked
complete, both written with their checksums): a Fig 4b table at seed offset 0 whose ISR falls short of the oracle
by less than the margin, and one at offset 1000 whose ISR beats the oracle. An unfinished experiment is left out.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from internalize.analysis.claim import RECORD_KEYS
from internalize.analysis.claims import claims
from internalize.cli import app
from internalize.storage import write_json_verified, write_parquet_verified
from test_claims import fig4b_table
from test_cli import WIDE, assert_one_line_error

FROZEN = np.array([0.40, 0.45, 0.38, 0.50, 0.42, 0.47, 0.44, 0.41])
ORACLE = np.array([0.70, 0.74, 0.69, 0.78, 0.72, 0.73, 0.71, 0.75])


def _finish(directory: Path, name: str, table, status: str = "complete") -> None:
    (directory / name).mkdir(parents=True)
    write_parquet_verified(directory / name / "results.parquet", table)
    write_json_verified(directory / name / "manifest.json", {"experiment": name, "status": status})


@pytest.fixture
def finished(tmp_path: Path) -> Path:
    out = tmp_path / "runs"
    _finish(out, "fig4b", fig4b_table({"frozen": FROZEN, "caregiver": ORACLE, "isr": ORACLE - 0.02}))
    _finish(out / "seed-offset-1000", "fig4b",
            fig4b_table({"frozen": FROZEN, "caregiver": ORACLE, "isr": ORACLE + 0.15}))
    _finish(out, "fig7", fig4b_table({"isr": ORACLE}), status="running")  # unfinished: not read
    return out


def invoke(args):
    return CliRunner().invoke(app, [str(a) for a in args], env=WIDE)


def test_claims_json_prints_every_claim_of_every_seed_set_with_every_key(finished):
    result = invoke(["claims", finished, "--json"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    # Fig 4b holds claims 3 and 4; each seed set gives both; fig7 is unfinished and absent.
    assert [(r["seed_offset"], r["number"]) for r in records] == [(0, 3), (0, 4), (1000, 3), (1000, 4)]
    for r in records:
        assert tuple(r) == RECORD_KEYS
    offset0, offset1000 = records[1], records[3]
    margin = 0.25 * (ORACLE.mean() - FROZEN.mean())
    assert offset0["effect"] == pytest.approx(-0.02) and offset0["margin"] == pytest.approx(margin)
    assert offset0["ci_low"] < -0.02 < offset0["ci_high"] and offset0["n"] == 16
    assert offset0["verdict"] == "reproduced" and offset0["test"].startswith("non-inferiority Student t")
    assert offset0["fraction_recovered"] == pytest.approx(1 - 0.02 / (ORACLE.mean() - FROZEN.mean()))
    assert offset0["fraction_ci_low"] < offset0["fraction_recovered"] < offset0["fraction_ci_high"]
    assert isinstance(offset0["seeds_needed"], int) and offset0["seeds_needed"] >= 2
    # The ISR above the oracle by more than the margin: reproduced (not inferior), not equivalent.
    assert offset1000["verdict"] == "reproduced" and offset1000["also_equivalent"] is False
    assert offset1000["effect"] == pytest.approx(0.15) and offset1000["fraction_recovered"] > 1
    # Claim 3 has no fraction: null, not a made-up number.
    assert records[0]["fraction_recovered"] is None and records[0]["seeds_needed"] is None
    assert records[0]["margin"] == 0.0 and math.isfinite(records[0]["effect"])


def test_claims_json_is_the_same_record_as_the_library_gives(finished):
    from internalize.analysis.robustness import complete_tables

    lib = {c.number: c for c in claims(complete_tables(finished))}
    rec = json.loads(invoke(["claims", finished, "--json"]).stdout.splitlines()[1])
    c4 = lib[4]
    assert rec["effect"] == c4.effect_value and (rec["ci_low"], rec["ci_high"]) == (c4.ci_low, c4.ci_high)
    assert rec["fraction_ci_low"] == c4.fraction.low and rec["seeds_needed"] == c4.seeds_needed


def test_claims_text_names_verdict_test_effect_fraction_and_seeds(finished):
    result = invoke(["claims", finished])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "claim 4 (Fig 4b, seed offset 0, n = 16): reproduced" in out
    assert "claim 4 (Fig 4b, seed offset 1000, n = 16): reproduced" in out
    assert "fraction of the oracle's advantage recovered: " in out and "seeds needed (80% power): " in out
    assert "also equivalent: no" in out and "also equivalent: yes" in out


def test_claims_exit_0_whatever_the_verdicts(tmp_path):
    out = tmp_path / "runs"
    _finish(out, "fig4b", fig4b_table({"frozen": FROZEN, "caregiver": ORACLE, "isr": FROZEN}))
    result = invoke(["claims", out, "--json"])
    assert result.exit_code == 0
    assert {json.loads(line)["verdict"] for line in result.stdout.splitlines()} == {"not reproduced"}


def test_claims_of_a_directory_without_finished_experiments_is_one_line_exit_2(tmp_path, finished):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(invoke(["claims", empty]),
                          f"{empty}: no finished experiment (NAME/results.parquet with a complete manifest) here "
                          "or in its seed-offset-K/ folders.")
    missing = tmp_path / "missing"
    assert_one_line_error(invoke(["claims", missing, "--json"]),
                          f"{missing}: not a directory; allowed: a directory holding NAME/results.parquet.")
