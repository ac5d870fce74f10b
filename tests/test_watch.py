"""internalize play --from: a finished run's trained learner, loaded (never recomputed) and recorded as a GIF."""

from __future__ import annotations

import re
from pathlib import Path

import jax
import numpy as np
import pytest
from typer.testing import CliRunner

from internalize.agents.evaluate import evaluate
from internalize.cli import app
from internalize.experiments import phases
from internalize.experiments.runner import Runner
from internalize.experiments.spec import Experiment
from internalize.experiments.watch import trained_policy, watch
from test_experiments import tiny

pytestmark = pytest.mark.expensive  # end-to-end runs: in make test, not make test-fast

WIDE = {"COLUMNS": "200"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    exp = tiny("fig4a", seeds=(3, 4), conditions=("none", "isr"), evaluation_episodes=8)
    df = Runner(exp, out, progress=False, log=lambda _: None, gifs=True).run()
    return out, exp, df


def _files(path):
    return {p: p.stat().st_mtime_ns for p in sorted(path.rglob("*")) if p.is_file()}


def test_the_manifest_gives_back_the_experiment(run):
    out, exp, _ = run
    from internalize.experiments.watch import load_experiment

    assert load_experiment(out / exp.name) == exp
    with pytest.raises(ValueError, match="config.isr.utility: not a field of IsrConfig"):
        Experiment.from_dict({**exp.to_dict(), "isr": {**exp.to_dict()["isr"], "utility": "additive"}})


@pytest.mark.parametrize("condition", ["isr", "none"])
def test_the_loaded_learner_is_the_one_the_run_evaluated(run, condition):
    # The held-out evaluation of the run, recomputed from the parameters play loads, gives the run's numbers:
    # play shows that condition's learner of that seed, not another's.
    out, exp, df = run
    for i, seed in enumerate(exp.seeds):
        pol = trained_policy(out / exp.name, condition, seed)
        world = pol.world
        key = phases.evaluation_keys(phases.seed_keys(exp.seeds), 0)[i]
        wp = phases.world_params(exp, world)
        def run_eval(p, k, pol=pol, world=world, wp=wp):
            return evaluate(pol.network.apply, p, world.env(), wp, k, exp.evaluation_episodes)

        got = jax.jit(run_eval)(pol.params, key)
        want = df[(df.phase == "evaluation") & (df.condition == condition) & (df.seed == seed)]
        for metric in ("goals_per_episode", "caregiver_return"):
            assert float(got[metric]) == pytest.approx(float(want.loc[want.metric == metric, "value"].iloc[0]),
                                                       abs=1e-6), (condition, seed, metric)
    # Socialization's learner differs from the autonomy one (it kept learning after).
    soc = trained_policy(out / exp.name, "socialization", exp.seeds[0]).params
    aut = trained_policy(out / exp.name, "isr", exp.seeds[0]).params
    assert not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(soc), jax.tree.leaves(aut), strict=True))


def test_play_from_writes_a_gif_of_the_trained_learner_and_computes_nothing(run, tmp_path):
    out, exp, _ = run
    before = _files(out)
    gif = tmp_path / "isr.gif"
    result = CliRunner().invoke(app, ["play", "--from", str(out / exp.name), "--condition", "isr", "--seed", "4",
                                      "--steps", "12", "--out", str(gif)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert f"{exp.name} isr learner (seed 4) in blocks-3: 12 steps, " in result.output
    assert re.search(r"12 steps, \d+ goal\(s\), caregiver-reward return [+-]\d\.\d{3}\n", result.output), result.output
    import imageio.v3 as iio

    frames = iio.imread(gif, index=None)
    assert _files(out) == before, "play --from must only read the run"
    w = watch(out / exp.name, "isr", 4, steps=12)
    # The GIF shows what watch recorded (the GIF writer merges repeated frames, e.g. a step into a wall).
    assert len(w.frames) == 12 and 1 <= frames.shape[0] <= 12 and np.array_equal(frames[0], w.frames[0])
    assert frames.std() > 0
    w = watch(out / exp.name, "none", 3, steps=6, tile_size=8)
    assert len(w.frames) == 6 and w.frames[0].shape == (7 * 8, 7 * 8, 3) and (w.condition, w.seed) == ("none", 3)


@pytest.mark.parametrize(("args", "message"), [
    (["--condition", "teacher"], "--condition: fig4a has no condition 'teacher'; allowed: none | isr | socialization."),
    (["--seed", "9"], "--seed: fig4a ran seeds 3, 4, not 9."),
    (["--world", "plus"], "--world: 'isr' of fig4a ran on blocks-3, not 'plus'."),
])
def test_play_from_bad_choices_are_one_line(run, tmp_path, args, message):
    out, exp, _ = run
    result = CliRunner().invoke(app, ["play", "--from", str(out / exp.name), "--out", str(tmp_path / "x.gif"), *args],
                                env=WIDE)
    assert result.exit_code == 2 and result.stderr.strip() == f"error: {message}", result.output


def test_play_needs_a_world_or_a_run_and_a_run_that_still_has_its_learners(run, tmp_path):
    out, exp, _ = run
    both = CliRunner().invoke(app, ["play", "navigation", "--from", str(out / exp.name)], env=WIDE)
    neither = CliRunner().invoke(app, ["play"], env=WIDE)
    stray = CliRunner().invoke(app, ["play", "navigation", "--condition", "isr"], env=WIDE)
    nowhere = CliRunner().invoke(app, ["play", "--from", str(tmp_path)], env=WIDE)
    for r in (both, neither, stray, nowhere):
        assert r.exit_code == 2 and r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1
    assert "--condition needs --from" in stray.stderr and "has no manifest.json" in nowhere.stderr
    # After a clean, the trained states are gone: one line saying so, nothing recomputed.
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / exp.name / "checkpoints")
    gone = CliRunner().invoke(app, ["play", "--from", str(copy / exp.name), "--out", str(tmp_path / "g.gif")],
                              env=WIDE)
    assert gone.exit_code == 2 and "unit socialization is not finished, or its trained state was removed" in gone.stderr
    assert not (copy / exp.name / "checkpoints" / "socialization" / "final.ckpt").exists()


def test_a_run_records_each_conditions_learner_and_the_report_embeds_them(run, tmp_path):
    import imageio.v3 as iio

    from internalize.experiments.reproduce import write_report

    out, exp, _ = run
    gif_dir = out / exp.name / "gifs"
    assert sorted(p.name for p in gif_dir.iterdir()) == ["isr.gif", "none.gif"]
    firsts = {c: iio.imread(gif_dir / f"{c}.gif", index=0) for c in ("none", "isr")}
    # The same layouts for every condition: the episodes start from the same state.
    assert np.array_equal(firsts["none"], firsts["isr"])
    # What the report shows is that condition's learner: the first seed, greedy, as play --from records it.
    w = watch(out / exp.name, "isr", exp.seeds[0], steps=40, tile_size=24)
    assert np.array_equal(iio.imread(gif_dir / "isr.gif", index=0), w.frames[0])
    page = (Path(write_report(out)).with_suffix(".html")).read_text()
    md = (out / "report.md").read_text()
    assert page.count("data:image/gif;base64,") == 2 and "fig4a/gifs/isr.gif" in md
    assert "What each learner does after the caregiver left" in md
