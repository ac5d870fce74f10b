"""Seed sets: the seed offset (env var, presets, CLI, output layout) and the report's robustness section."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from internalize import seeding
from internalize.analysis.report import write_report
from internalize.analysis.robustness import DEPENDS, SECTION_TITLE, robustness_table
from internalize.cli import app
from internalize.empathy.study import empathy_study
from internalize.experiments import reproduce as rep
from internalize.experiments.paper import EXPERIMENTS, PAPER_SEEDS, paper_experiment
from internalize.storage import write_json_verified, write_parquet_verified
from test_report import fig1_table, fig4b_table, fig6_table

ENV = seeding.SEED_OFFSET_ENV
BAD = "allowed: an integer >= 0"


# ---- the offset ---------------------------------------------------------------------------------

def test_seed_offset_reads_the_environment(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert seeding.seed_offset() == 0
    monkeypatch.setenv(ENV, " 1000 ")
    assert seeding.seed_offset() == 1000
    assert seeding.seed_offset(2000) == 2000 and seeding.seed_offset("0") == 0  # an explicit value wins
    assert seeding.offset_seeds((1234, 1235)) == (2234, 2235)
    assert seeding.offset_seeds((1234, 1235), 0) == (1234, 1235)


@pytest.mark.parametrize("env, arg, source", [
    ("-5", None, ENV), ("abc", None, ENV), ("1.5", None, ENV),
    (None, -1, "seed offset"), (None, "x", "seed offset"), (None, 2.5, "seed offset"), (None, True, "seed offset"),
])
def test_bad_seed_offsets_say_so_in_one_line(monkeypatch, env, arg, source):
    monkeypatch.delenv(ENV, raising=False)
    if env is not None:
        monkeypatch.setenv(ENV, env)
    with pytest.raises(ValueError) as err:
        seeding.seed_offset(arg)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{source}: got ") and BAD in msg


def test_paper_experiments_shift_their_seeds(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert paper_experiment("fig4a", "quick").seeds == PAPER_SEEDS
    shifted = tuple(s + 1000 for s in PAPER_SEEDS)
    assert paper_experiment("fig4a", "paper", seed_offset=1000).seeds == shifted
    assert paper_experiment("fig6", "paper", seed_offset=1000).seeds == (2235,)
    monkeypatch.setenv(ENV, "1000")
    for name in EXPERIMENTS:
        base = paper_experiment(name, "quick", seed_offset=0).seeds
        assert paper_experiment(name, "quick").seeds == tuple(s + 1000 for s in base)
    assert paper_experiment("fig1", "quick", seed_offset=0).seeds == PAPER_SEEDS  # the argument beats the env var
    assert rep.resolve("fig4a", "quick", seeds=3).seeds == (2234, 2235, 2236)
    assert empathy_study("quick").seeds == tuple(range(2234, 2242))
    assert empathy_study("paper", seed_offset=0).seeds == tuple(range(1234, 1250))
    with pytest.raises(ValueError, match="seed offset: got -3"):
        paper_experiment("fig4a", "quick", seed_offset=-3)


# ---- the robustness table -----------------------------------------------------------------------

def _shift(df: pd.DataFrame, k: int) -> pd.DataFrame:
    return df.assign(seed=df["seed"] + k)


def _by_claim(table) -> dict[int, dict[str, str]]:
    return {int(r[0]): dict(zip(table.headers, r, strict=True)) for r in table.rows}


def test_robustness_table_flags_the_claim_whose_verdict_moves():
    # Claim 7 (reward hacking, Figure 6) holds on offset 0 and fails on offset 1000; the Figure 1 and 4b
    # results are the same on both sets (seeds shifted), so claims 1-4 agree whatever their verdicts.
    same = {"fig1": fig1_table(), "fig4b": fig4b_table()}
    sets = {"offset 0": {**same, "fig6": fig6_table(goals_fall=True)},
            "offset 1000": {**{k: _shift(v, 1000) for k, v in same.items()},
                            "fig6": _shift(fig6_table(goals_fall=False), 1000)}}
    table = robustness_table(sets)
    assert table.headers == ("#", "claim", "offset 0", "offset 1000", DEPENDS)
    rows = _by_claim(table)
    assert sorted(rows) == list(range(1, 10))
    assert rows[7][DEPENDS] == "yes"
    assert rows[7]["offset 0"] == "reproduced (seeds 1235)"
    assert rows[7]["offset 1000"] == "not reproduced (seeds 2235)"
    assert rows[1]["claim"].startswith("Without an ISR the learner unlearns")
    assert rows[1]["offset 1000"].endswith("(seeds 1000–1003)")
    for n in (1, 2, 3, 4):
        assert rows[n][DEPENDS] == "no", rows[n]
    for n in (5, 6, 8, 9):  # ran on no set: nothing to compare
        assert rows[n][DEPENDS] == "n/a" and rows[n]["offset 0"] == "not run"


def test_robustness_table_compares_only_sets_that_ran_the_claim():
    sets = {"a": {"fig1": fig1_table()}, "b": {"fig4b": fig4b_table()}, "c": {"fig1": fig1_table()}}
    rows = _by_claim(robustness_table(sets))
    assert rows[1]["b"] == "not run" and rows[1][DEPENDS] == "no"  # a and c agree; b did not run it
    assert rows[3][DEPENDS] == "n/a"  # only b ran it


# ---- the report ---------------------------------------------------------------------------------

def _write_run(directory, name: str, df: pd.DataFrame, status: str = "complete") -> None:
    """A finished experiment as the runner leaves it: NAME/results.parquet + NAME/manifest.json."""
    d = directory / name
    d.mkdir(parents=True, exist_ok=True)
    write_parquet_verified(d / "results.parquet", df)
    config = {"seeds": sorted(int(s) for s in df["seed"].unique()), "isr": {"updates_fraction": 1.0}}
    write_json_verified(d / "manifest.json", {"status": status, "config": config})


def test_report_has_a_robustness_section_when_seed_sets_ran(tmp_path):
    plain = write_report(tmp_path / "plain", {"fig1": fig1_table()}, {})
    assert SECTION_TITLE not in plain.md.read_text()
    out = tmp_path / "runs"
    _write_run(out / "seed-offset-1000", "fig4a", _shift(fig1_table(none_end=1.8), 1000))
    _write_run(out / "seed-offset-2000", "fig4a", _shift(fig1_table(), 2000), status="running")  # unfinished
    res = write_report(out, {"fig1": fig1_table()}, {})
    md, page = res.md.read_text(), res.html.read_text()
    section = md.split(f"## {SECTION_TITLE}")[1].split("\n## ")[0]
    assert md.index("## Paper claims vs this run") < md.index(f"## {SECTION_TITLE}")
    assert f"| # | claim | offset 0 (this run) | offset 1000 | {DEPENDS} |" in section
    assert "offset 2000" not in section
    row1 = next(line for line in section.splitlines() if line.startswith("| 1 |"))
    assert "reproduced (seeds 0–3)" in row1 and "not reproduced (seeds 1000–1003)" in row1
    assert row1.rstrip().endswith("| yes |")
    assert f"<h2>{SECTION_TITLE}</h2>" in page and "<td>not reproduced (seeds 1000–1003)</td>" in page


def test_directory_report_reads_the_seed_sets(tmp_path):
    _write_run(tmp_path / "seed-offset-1000", "fig4a", _shift(fig1_table(), 1000))
    md = rep.write_report(tmp_path).read_text()  # nothing at offset 0 yet: still a report, of the other set
    assert SECTION_TITLE in md and "offset 0 (this run)" not in md and "reproduced (seeds 1000–1003)" in md
    with pytest.raises(ValueError, match="no complete experiment"):
        rep.write_report(tmp_path / "empty")


# ---- running with an offset: layout and CLI (run_many replaced: no training) --------------------------

@pytest.fixture
def fake_runs(monkeypatch):
    """Replace run_many with one that writes synthetic finished results and records where each run went."""
    calls = []

    def run_many(experiments, out, **kwargs):
        calls.append((out, [e.name for e in experiments], [tuple(e.seeds) for e in experiments]))
        for e in experiments:
            if e.name == "fig4a":
                _write_run(out, "fig4a", fig1_table().assign(seed=lambda d, e=e: d["seed"] + e.seeds[0]))
        return {}

    monkeypatch.setattr(rep, "run_many", run_many)
    monkeypatch.delenv(ENV, raising=False)
    return calls


def test_reproduce_puts_an_offset_run_beside_the_plain_one(tmp_path, fake_runs):
    rep.reproduce("quick", tmp_path, seeds=4, log=lambda _: None)
    report = rep.reproduce("quick", tmp_path, seeds=4, seed_offset=1000, log=lambda _: None)
    (plain_out, names, plain_seeds), (off_out, _, off_seeds) = fake_runs
    assert plain_out == tmp_path and off_out == tmp_path / "seed-offset-1000"
    assert names == list(EXPERIMENTS)
    assert plain_seeds[0] == (1234, 1235, 1236, 1237) and off_seeds[0] == (2234, 2235, 2236, 2237)
    assert all(s[0] >= 2234 for s in off_seeds)
    assert report == tmp_path / "report.md"  # the top-level report, rebuilt
    assert (tmp_path / "seed-offset-1000" / "fig4a" / "results.parquet").is_file()
    assert not (tmp_path / "seed-offset-1000" / "report.md").exists()
    md = report.read_text()
    assert SECTION_TITLE in md and "seeds 2234–2237" in md and "seeds 1234–1237" in md


def test_cli_offsets_from_option_and_environment(tmp_path, fake_runs, monkeypatch):
    res = CliRunner().invoke(app, ["run", "fig4a", "--seeds", "3", "--seed-offset", "1000", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert fake_runs[-1][0] == tmp_path / "seed-offset-1000" and fake_runs[-1][2] == [(2234, 2235, 2236)]
    monkeypatch.setenv(ENV, "2000")
    res = CliRunner().invoke(app, ["reproduce", "--seeds", "3", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert fake_runs[-1][0] == tmp_path / "seed-offset-2000" and fake_runs[-1][2][0] == (3234, 3235, 3236)
    md = (tmp_path / "report.md").read_text()
    assert "| offset 1000 | offset 2000 |" in md


@pytest.mark.parametrize("args, env", [
    (["reproduce", "--seed-offset", "-1"], None),
    (["run", "fig4a", "--seed-offset", "ten"], None),
    (["reproduce"], "-1"),
])
def test_cli_refuses_a_bad_offset_before_any_compute(tmp_path, fake_runs, monkeypatch, args, env):
    if env is not None:
        monkeypatch.setenv(ENV, env)
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path)])
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and BAD in lines[0], res.output
    assert fake_runs == [] and not any(tmp_path.iterdir())


def test_toml_experiments_keep_their_seeds_and_directory(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text("")
    assert rep.output_dir(tmp_path / "out", str(path), 1000) == tmp_path / "out"
    assert rep.output_dir(tmp_path / "out", "fig5", 1000) == tmp_path / "out" / "seed-offset-1000"
    assert rep.output_dir(tmp_path / "out", "empathy", 0) == tmp_path / "out"


def test_without_an_offset_resolve_keeps_the_two_argument_call(tmp_path, fake_runs, monkeypatch):
    # Stand-ins for paper_experiment with the old (name, preset) signature, as other tests use, still work.
    monkeypatch.setattr(rep, "paper_experiment", lambda name, preset: paper_experiment(name, preset, 0))
    res = CliRunner().invoke(app, ["run", "fig4a", "--seeds", "2", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert fake_runs[-1][0] == tmp_path and fake_runs[-1][2] == [(1234, 1235)]
