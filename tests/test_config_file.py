"""Experiment files (``internalize.experiments.config_file``): defaults, ``base``, seeds, and exact error messages.

Nothing here runs an experiment; ``tests/test_cli.py`` runs a TOML file through ``internalize run`` and checks
that its ``[learner]`` / ``[isr]`` values are the ones in the manifest and in the logged numbers.
"""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from internalize.agents.isr_config import IsrConfig
from internalize.experiments import phases
from internalize.experiments.config_file import ExperimentFileError, load_experiment
from internalize.experiments.spec import WorldSpec, learner_config, world
from internalize.social.utility import UtilityConfig

# The quick preset's learner and ISR, written out (a change to paper.py's quick preset must show up here).
QUICK_LEARNER = learner_config(torso="mlp", n_envs=8, n_steps=128, batch_size=64, n_epochs=10, learning_rate=1e-3)
QUICK_ISR = IsrConfig(network="reference", encoding="onehot", learning_rate=1e-3, batch_size=64, updates_fraction=1.0)

MINIMAL = """
[experiment]
name = "mine"
socialization_steps = 4096
conditions = []
"""


def _write(tmp_path: Path, text: str, name: str = "exp.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _line_of(path: Path, marker: str) -> int:
    """1-based line of the first line of ``path`` starting with ``marker``."""
    return next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if ln.startswith(marker))


def _raised(path: Path) -> ExperimentFileError:
    with pytest.raises(ExperimentFileError) as err:
        load_experiment(path)
    return err.value


def _error(path: Path) -> str:
    return str(_raised(path))


# ------------------------------------------------------------------------------------------------ defaults
def test_defaults_of_an_almost_empty_file(tmp_path):
    exp = load_experiment(_write(tmp_path, MINIMAL))
    assert (exp.name, exp.title) == ("mine", "mine")
    assert exp.seeds == (0,)
    assert exp.socialization_world == world("blocks-3") and exp.autonomy_worlds == ()
    assert exp.conditions == () and exp.socialization_steps == 4096 and exp.autonomy_steps == 0
    assert exp.evaluation_episodes == 100 and exp.chunk_rollouts == 10
    assert exp.learner == QUICK_LEARNER, exp.learner
    assert exp.isr == QUICK_ISR, exp.isr


def test_default_conditions_are_caregiver_none_isr_and_need_an_autonomous_phase(tmp_path):
    text = MINIMAL.replace("conditions = []\n", 'autonomy_worlds = ["plus"]\nautonomy_steps = 2048\n')
    exp = load_experiment(_write(tmp_path, text))
    assert exp.conditions == ("caregiver", "none", "isr")
    assert exp.autonomy_worlds == (WorldSpec("plus", map="plus"),) and exp.autonomy_steps == 2048
    # Without autonomy_steps the default conditions have no autonomous phase to run: a clear error at the
    # [experiment] header (the key is absent from the file).
    path = _write(tmp_path, MINIMAL.replace("conditions = []\n", ""), "no_autonomy.toml")
    assert _error(path) == f"{path}, line 2: experiment: autonomy_steps: got 0; allowed: a positive integer."


def test_base_paper_starts_from_the_papers_learner_and_isr(tmp_path):
    text = MINIMAL.replace('name = "mine"', 'name = "mine"\nbase = "paper"')
    exp = load_experiment(_write(tmp_path, text))
    assert exp.learner == learner_config(torso="cnn", n_envs=1, n_steps=2048, batch_size=64, n_epochs=10,
                                      learning_rate=1e-4), exp.learner
    assert exp.isr == IsrConfig(network="policy", encoding="channel", learning_rate=3e-4, batch_size=1), exp.isr
    # base sets the learner and the ISR only: seeds, budgets and evaluation are the file's (or the defaults).
    assert exp.seeds == (0,) and exp.socialization_steps == 4096 and exp.evaluation_episodes == 100
    # A [learner] / [isr] key overrides that field of the base and nothing else.
    text += "\n[learner]\nlearning_rate = 0.0005\n\n[isr]\nbatch_size = 8\n"
    exp = load_experiment(_write(tmp_path, text, "override.toml"))
    assert exp.learner == dataclasses.replace(learner_config(), learning_rate=5e-4), exp.learner
    assert exp.isr == dataclasses.replace(IsrConfig(), batch_size=8), exp.isr
    quick = load_experiment(_write(tmp_path, MINIMAL + "\n[learner]\nn_envs = 4\n", "quick.toml"))
    assert quick.learner == dataclasses.replace(QUICK_LEARNER, n_envs=4), quick.learner


def test_every_learner_and_isr_key_reaches_the_experiment(tmp_path):
    text = MINIMAL + """
[learner]
torso = "cnn"
n_envs = 2
n_steps = 48
batch_size = 32
n_epochs = 3
learning_rate = 0.0025
ent_coef = 0.01
obs_scale = 0.5

[isr]
network = "mlp"
encoding = "channel"
learning_rate = 0.002
batch_size = 24
updates_fraction = 0.5
holdout_fraction = 0.25
data_sizes = [1024, 2048]
data_size_updates = "full"
width = 2
adam_eps = 1e-7
max_grad_norm = 0.5
split = "random"
split_seed = 7
eval_size = 64

[utility]
mode = "threshold-replace"
threshold = 0.3
"""
    exp = load_experiment(_write(tmp_path, text))
    assert exp.learner == learner_config(torso="cnn", n_envs=2, n_steps=48, batch_size=32, n_epochs=3,
                                      learning_rate=0.0025, ent_coef=0.01, obs_scale=0.5), exp.learner
    assert exp.isr == IsrConfig(network="mlp", encoding="channel", learning_rate=0.002, batch_size=24,
                                updates_fraction=0.5, holdout_fraction=0.25, data_sizes=(1024, 2048),
                                data_size_updates="full", width=2, adam_eps=1e-7, max_grad_norm=0.5,
                                split="random", split_seed=7, eval_size=64), exp.isr
    assert exp.utility == UtilityConfig(mode="threshold-replace", threshold=0.3), exp.utility
    # The runner trains the ISR with the file's settings; what it fills in is the world's and the policy's.
    used = phases.isr_config(exp, None, 4000)
    assert (used.adam_eps, used.max_grad_norm, used.split, used.split_seed, used.eval_size) == (
        1e-7, 0.5, "random", 7, 64)
    assert used.n_updates == 84 and used.obs_scale == 0.5 and used.num_actions == 3, used  # ceil(.5*ceil(4000/24))
    util = phases.utility_config(exp)  # the world's float32 step cost
    assert (util.mode, util.threshold, round(util.step_cost, 6)) == ("threshold-replace", 0.3, 0.045), util
    assert exp.learner.rollout_steps == 96 and exp.learner.rollouts(4096) == 43
    # The manifest records Experiment.to_dict() (as JSON): the file's values.
    config = exp.to_dict()
    assert config["learner"]["learning_rate"] == 0.0025 and config["isr"]["data_sizes"] == (1024, 2048)


# ------------------------------------------------------------------------------------------------ seeds
@pytest.mark.parametrize(("line", "seeds"), [
    ("n_seeds = 3", (0, 1, 2)),
    ("n_seeds = 1", (0,)),
    ("seeds = [5, 9, 2]", (5, 9, 2)),
])
def test_seeds_and_n_seeds(tmp_path, line, seeds):
    exp = load_experiment(_write(tmp_path, MINIMAL.replace('name = "mine"', f'name = "mine"\n{line}')))
    assert exp.seeds == seeds


@pytest.mark.parametrize(("line", "message"), [
    ('seeds = [1]\nn_seeds = 2', "experiment.n_seeds: give either seeds or n_seeds, not both"),
    ("n_seeds = 0", "experiment: seeds: got (); allowed: distinct integers in [0, 2**32 - 1]."),
    ("seeds = [1, 1]", "experiment.seeds: seeds: got (1, 1); allowed: distinct integers in [0, 2**32 - 1]."),
    ("seeds = [-1]", "experiment.seeds: seeds: got (-1,); allowed: distinct integers in [0, 2**32 - 1]."),
    ("n_seeds = 2.0", "experiment.n_seeds: must be of type int, got float 2.0"),
])
def test_bad_seeds_are_exact_errors(tmp_path, line, message):
    path = _write(tmp_path, MINIMAL.replace('name = "mine"', f'name = "mine"\n{line}'))
    key = message.split(":")[0]  # experiment.KEY: that key's line; experiment: the section header's
    marker = key.split(".")[-1] + " =" if "." in key else "[experiment]"
    where = f"{path}, line {_line_of(path, marker)}"
    assert _error(path) == f"{where}: {message}"


# ------------------------------------------------------------------------------------------------ unknown names
EXPERIMENT_KEYS = ("autonomy_steps, autonomy_worlds, base, chunk_rollouts, conditions, evaluation_episodes, "
                   "n_seeds, name, seeds, socialization_steps, socialization_world, title")
LEARNER_KEYS = ("adam_eps, batch_size, clip_range, ent_coef, gae_lambda, gamma, learning_rate, max_grad_norm, n_envs, "
                "n_epochs, n_steps, normalize_advantage, obs_channel_scale, obs_scale, torso, vf_coef")
ISR_KEYS = ("adam_eps, batch_size, data_size_updates, data_sizes, encoding, ensemble, ensemble_lambda, "
            "ensemble_reduce, eval_size, holdout_fraction, learning_rate, max_grad_norm, n_updates, network, sampling, "
            "split, split_seed, updates_fraction, width")
WORLD_KEYS = ("check_reachable, drop, helper, kind, map, n_blocks, n_walls, peer_noise, rewarded_event, similarity, "
              "view")


@pytest.mark.parametrize(("extra", "marker", "message"), [
    ("[learnr]\nn_envs = 2\n", "[learnr]",
     "learnr: unknown section; allowed: experiment, learner, isr, utility, worlds, caregiver, conditions, probes"),
    ("[learner]\nn_envs = 2\nlr = 0.1\n", "lr =", f"learner.lr: unknown key; allowed: {LEARNER_KEYS}"),
    ("[isr]\nepochs = 3\n", "epochs =", f"isr.epochs: unknown key; allowed: {ISR_KEYS}"),
    ("[worlds.hall]\nmap = 'plus'\ncolour = 'red'\n", "colour =",
     f"worlds.hall.colour: unknown key; allowed: {WORLD_KEYS}"),
])
def test_unknown_sections_and_keys_are_exact_errors(tmp_path, extra, marker, message):
    path = _write(tmp_path, MINIMAL + "\n" + extra)
    assert _error(path) == f"{path}, line {_line_of(path, marker)}: {message}"


def test_unknown_experiment_key_is_an_exact_error(tmp_path):
    path = _write(tmp_path, MINIMAL.replace("conditions = []", "conditions = []\nepisodes = 5"))
    assert _error(path) == (f"{path}, line {_line_of(path, 'episodes =')}: experiment.episodes: unknown key; "
                            f"allowed: {EXPERIMENT_KEYS}")


# ------------------------------------------------------------------------------------------------ other errors
@pytest.mark.parametrize(("old", "new", "marker", "message"), [
    ('name = "mine"', 'name = "mine"\nbase = "slow"', "base =", "experiment.base: got 'slow'; allowed: quick | paper"),
    ("socialization_steps = 4096", "socialization_steps = 4096.0", "socialization_steps =",
     "experiment.socialization_steps: must be of type int, got float 4096.0"),
    ("socialization_steps = 4096", "socialization_steps = true", "socialization_steps =",
     "experiment.socialization_steps: must be of type int, got bool True"),
    ("socialization_steps = 4096", "socialization_steps = 0", "socialization_steps =",
     "experiment.socialization_steps: socialization_steps: got 0; allowed: a positive integer."),
    ("conditions = []", "conditions = []\n\n[learner]\nlearning_rate = \"fast\"", "learning_rate =",
     "learner.learning_rate: must be of type float, got str 'fast'"),
    ("conditions = []", "conditions = []\n\n[learner]\nn_envs = 3\nbatch_size = 7", "batch_size =",
     "learner.batch_size: must divide n_steps * n_envs = 384 (minibatches have a static shape; SB3 would use a "
     "smaller last batch), got 7."),
    ("conditions = []", "conditions = []\n\n[learner]\ntorso = \"rnn\"", "torso =",
     "learner.torso: must be one of cnn | mlp, got 'rnn'."),
    ("conditions = []", "conditions = []\n\n[utility]\nmode = \"multiplicative\"", "mode =",
     "utility.mode: must be one of additive, additive-reference, threshold-replace, replace, got "
     "'multiplicative'."),
    ("conditions = []", "conditions = []\n\n[isr]\nutility = \"replace\"", "utility =",
     "isr.utility: moved to [utility] mode"),
])
def test_bad_values_are_exact_errors(tmp_path, old, new, marker, message):
    path = _write(tmp_path, MINIMAL.replace(old, new))
    assert path.read_text() != textwrap.dedent(MINIMAL)
    err, line = _raised(path), _line_of(path, marker)
    assert str(err) == f"{path}, line {line}: {message}"
    assert (err.path, err.key, err.line) == (path, message.split(": ")[0], line)  # the same facts, as data


def test_missing_experiment_section_name_and_budget(tmp_path):
    path = _write(tmp_path, "[learner]\nn_envs = 2\n")
    assert _error(path) == f"{path}: missing the [experiment] section."
    path = _write(tmp_path, "[experiment]\nsocialization_steps = 10\n", "noname.toml")
    assert _error(path) == f"{path}, line 1: experiment: missing required key 'name'"
    path = _write(tmp_path, '[experiment]\nname = "a"\n', "nosteps.toml")
    assert _error(path) == f"{path}, line 1: experiment: missing required key 'socialization_steps'"
    path = tmp_path / "absent.toml"
    err = _raised(path)
    assert str(err) == f"{path}: cannot read the experiment file (No such file or directory)."
    assert (err.path, err.key, err.line) == (path, None, None)


def test_the_readme_example_is_a_valid_experiment(tmp_path):
    """The README's TOML example (caregiver, a condition of its own, a world of its own) loads as written."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    exp = load_experiment(_write(tmp_path, block))
    assert exp.conditions[-1] == "fading" and exp.condition("fading").isr
    assert exp.condition("fading").presence.kind == "exponential"
    assert (exp.caregiver.noise, exp.caregiver.miss, exp.caregiver.presence.kind) == (0.1, 0.25, "linear")
    assert [w.name for w in exp.autonomy_worlds] == ["corridor", "T"]


def test_every_ppo_setting_is_reachable_from_the_file(tmp_path):
    """The [learner] table is the learner's PPOConfig itself: each setting lands in every phase's config."""
    import dataclasses as dc

    from internalize.agents.ppo_config import PPOConfig
    from internalize.experiments.phases import ppo_config

    values = {"learning_rate": 2e-4, "n_steps": 64, "n_envs": 2, "batch_size": 32, "n_epochs": 3, "gamma": 0.9,
              "gae_lambda": 0.8, "clip_range": 0.1, "normalize_advantage": False, "ent_coef": 0.02, "vf_coef": 0.7,
              "max_grad_norm": 0.3, "adam_eps": 1e-6, "torso": "cnn", "obs_scale": 0.5,
              "obs_channel_scale": [0.1, 0.2, 1.0, 0.5]}
    assert set(values) == {f.name for f in dc.fields(PPOConfig)} - {"total_timesteps"}, "a setting is missing here"
    toml = "\n".join(f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v)}" for k, v in values.items())
    exp = load_experiment(_write(tmp_path, MINIMAL + "\n[learner]\n" + toml.replace("'", '"') + "\n"))
    assert ppo_config(exp, 4096) == PPOConfig(total_timesteps=4096, **values)
    assert exp.learner.total_timesteps == 0, "the budget is the phase's, not the learner's"
    path = _write(tmp_path, MINIMAL + "\n[learner]\ntotal_timesteps = 10\n")
    assert "learner.total_timesteps: unknown key" in _error(path)


def test_the_schema_documents_every_key_the_loader_accepts():
    """``internalize schema`` is built from the same fields the loader checks keys against: every key has its
    help, and the command prints every section and key."""
    from typer.testing import CliRunner

    from internalize.cli import app
    from internalize.experiments.file_schema import allowed, sections

    found = sections()
    assert set(found) == {"experiment", "learner", "isr", "utility", "caregiver", "conditions.NAME", "presence",
                          "worlds.NAME", "probes.empathy", "probes.goal_values", "sweep"}
    for section in found.values():
        for key in section.keys.values():
            assert key.help.strip(), f"{section.name}.{key.name} has no help"
            assert key.type in (int, float, str, bool, list, dict), (section.name, key)
    assert set(allowed("learner")) == {f.name for f in dataclasses.fields(QUICK_LEARNER)} - {"total_timesteps"}
    # Every ISR setting but the five the runner fills in from the world, the policy and the unit.
    derived = {"num_actions", "obs_scale", "self_channel", "n_data", "log_every"}
    assert set(allowed("isr")) == {f.name for f in dataclasses.fields(IsrConfig)} - derived
    assert set(allowed("utility")) == {"mode", "threshold"}
    result = CliRunner().invoke(app, ["schema"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    for section in found.values():
        assert f"[{section.name}]" in result.output
        for name in section.keys:
            assert f"\n  {name} " in result.output, (section.name, name)
    one = CliRunner().invoke(app, ["schema", "caregiver"])
    assert one.exit_code == 0 and "[caregiver]" in one.output and "[learner]" not in one.output
    bad = CliRunner().invoke(app, ["schema", "nope"])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: section: got 'nope'; allowed: experiment | ")


PEER = """
[experiment]
name = "kin"
socialization_world = "peer-colour-egocentric"
socialization_steps = 4096
conditions = []

[isr]
width = 0.5
"""


def test_a_probe_table_adds_the_probe_to_the_experiment_and_survives_the_manifest(tmp_path):
    from internalize.empathy.unit import EmpathyProbe
    from internalize.experiments.spec import Experiment

    exp = load_experiment(_write(tmp_path, PEER + "\n[probes.empathy]\nisr_widths = [0.5, 2]\nn_stimuli = 16\n"))
    assert exp.probes == (EmpathyProbe(isr_widths=(0.5, 2), n_stimuli=16),)
    config = exp.to_dict()
    assert config["probes"] == [{"kind": "empathy", "isr_widths": (0.5, 2), "n_stimuli": 16, "min_rewarded": 1000,
                                 "min_heldout_r": 0.9, "min_own_gap": 0.1, "label": ""}]
    import json

    assert Experiment.from_dict(json.loads(json.dumps(config))) == exp
    assert load_experiment(_write(tmp_path, PEER, "none.toml")).probes == ()


@pytest.mark.parametrize(("text", "marker", "message"), [
    (PEER + "\n[probes.mirror]\nn_stimuli = 4\n", "[probes.mirror]",
     "probes.mirror: unknown probe; allowed: empathy, goal_values"),
    (PEER + "\n[probes.empathy]\nstimuli = 4\n", "stimuli =",
     "probes.empathy.stimuli: unknown key; allowed: isr_widths, label, min_heldout_r, min_own_gap, min_rewarded, "
     "n_stimuli"),
    (PEER + "\n[probes.empathy]\nisr_widths = [0.5, 0.5]\n", "isr_widths =",
     "probes.empathy.isr_widths: got (0.5, 0.5); allowed: distinct numbers in (0, 64]."),
    (MINIMAL + "\n[probes.empathy]\nisr_widths = [1.0]\n", "[probes.empathy]",
     "probes.empathy: socialization_world 'blocks-3' is a navigation world; allowed: a peer world (the probe's "
     "stimuli are two-agent scenes)."),
])
def test_a_malformed_probe_table_is_an_exact_error(tmp_path, text, marker, message):
    path = _write(tmp_path, text)
    assert _error(path) == f"{path}, line {_line_of(path, marker)}: {message}"
