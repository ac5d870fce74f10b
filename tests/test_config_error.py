"""ConfigError (``internalize.config_error``): every config class names the refused key, value and allowed values
as data, the message stays one line ``KEY: DETAIL``, and an experiment file's error carries the key and its line.

``tests/test_config_file.py`` checks the exact messages of a malformed file; this file checks the data.
"""

from __future__ import annotations

import pickle
import textwrap
from pathlib import Path

import pytest

from internalize.agents.isr_config import IsrConfig
from internalize.agents.ppo_config import PPOConfig
from internalize.config_error import ConfigError
from internalize.empathy.unit import EmpathyProbe
from internalize.experiments.config_file import ExperimentFileError, load_experiment
from internalize.experiments.probes import probe_class
from internalize.social.caregiver import Caregiver, resolve_events
from internalize.social.conditions import Condition
from internalize.social.presence import Presence
from internalize.social.utility import UtilityConfig

# (what raises, key, value, allowed)
CASES = [
    (lambda: Caregiver(noise=-1.0), "caregiver.noise", -1.0, "a finite number >= 0"),
    (lambda: Caregiver(miss=1.5), "caregiver.miss", 1.5, "a probability in [0, 1]"),
    (lambda: resolve_events((Caregiver(event="lift"),), "goal", ("goal",)), "caregiver.event", "lift",
     "goal (or empty: goal)"),
    (lambda: Presence("linear", end=0), "end", 0, "greater than start (0) for a linear schedule"),
    (lambda: Presence("random"), "rate", None, None),
    (lambda: Presence("until", switch_step=10).validate_for_budget(5), "switch_step", 10, "0..5"),
    (lambda: UtilityConfig(mode="multiplicative"), "mode", "multiplicative",
     "one of additive, additive-reference, threshold-replace, replace"),
    (lambda: Condition("fading", world="moon"), "conditions.fading.world", "moon", "autonomy | socialization"),
    (lambda: PPOConfig(torso="rnn"), "torso", "rnn", "one of cnn | mlp"),
    (lambda: PPOConfig(n_steps=48, batch_size=7), "batch_size", 7, "a divisor of n_steps * n_envs = 48"),
    (lambda: IsrConfig(holdout_fraction=1.0), "holdout_fraction", 1.0, "a number in the open interval (0, 1)"),
    (lambda: EmpathyProbe(n_stimuli=0), "n_stimuli", 0, "a positive integer"),
    (lambda: probe_class("mirror"), "probes[].kind", "mirror", "empathy"),
]


@pytest.mark.parametrize(("build", "key", "value", "allowed"), CASES, ids=[c[1] for c in CASES])
def test_each_config_class_names_key_value_and_allowed_as_data(build, key, value, allowed):
    with pytest.raises(ConfigError) as raised:
        build()
    err = raised.value
    assert isinstance(err, ValueError), "callers that catch ValueError still catch it"
    assert (err.key, err.value, err.allowed) == (key, value, allowed)
    # The message a user reads is one line: the key, then the detail (which names the value and what is allowed).
    assert str(err) == f"{key}: {err.detail}" and "\n" not in str(err)
    assert repr(value) in err.detail or value is None
    if err.detail.startswith(("got ", "must be ")):  # the two common forms spell ``allowed`` out
        assert allowed in err.detail


@pytest.mark.parametrize(("key", "field"), [
    ("torso", "torso"), ("caregiver.noise", "noise"), ("caregiver[1].noise", "noise"),
    ("conditions.fading.world", "world"), ("probes[].kind", "kind"), ("isr.data_sizes[]", "data_sizes"),
])
def test_field_is_the_name_in_the_keys_own_table(key, field):
    assert ConfigError(key, "refused").field == field


def test_a_config_error_survives_pickling_with_its_data():
    """Errors cross process boundaries (the per-core layout's workers); the key must cross with them."""
    with pytest.raises(ConfigError) as raised:
        Caregiver(noise=-1.0)
    back = pickle.loads(pickle.dumps(raised.value))
    assert type(back) is ConfigError and str(back) == str(raised.value)
    assert (back.key, back.detail, back.value, back.allowed) == (
        "caregiver.noise", raised.value.detail, -1.0, "a finite number >= 0")


HEAD = """
[experiment]
name = "mine"
socialization_steps = 4096
conditions = []
"""
PEER_HEAD = HEAD.replace('name = "mine"', 'name = "mine"\nsocialization_world = "peer-colour-egocentric"')


@pytest.mark.parametrize(("text", "marker", "key"), [
    (HEAD + "\n[[caregiver]]\nnoise = 0.1\n\n[[caregiver]]\nmiss = 2.0\n", "miss =", "caregiver[1].miss"),
    (HEAD + '\n[caregiver]\nevent = "lift"\n', "event =", "caregiver.event"),
    (HEAD.replace("conditions = []", 'conditions = ["fading"]\nautonomy_worlds = ["plus"]\nautonomy_steps = 2048')
     + '\n[conditions.fading]\nworld = "moon"\n', "world =", "conditions.fading.world"),
    (HEAD.replace("conditions = []", 'conditions = ["fading"]\nautonomy_worlds = ["plus"]\nautonomy_steps = 2048')
     + '\n[conditions.fading]\npresence = { kind = "linear", end = 0 }\n', "presence =",
     "conditions.fading.presence.end"),
    (HEAD + '\n[learner]\ntorso = "rnn"\n', "torso =", "learner.torso"),
    (PEER_HEAD + "\n[isr]\nwidth = 0.5\n\n[probes.empathy]\nn_stimuli = 0\n", "n_stimuli =",
     "probes.empathy.n_stimuli"),
])
def test_a_files_error_carries_the_dotted_key_and_its_line(tmp_path, text, marker, key):
    path = tmp_path / "exp.toml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(ExperimentFileError) as raised:
        load_experiment(path)
    err = raised.value
    line = next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if ln.startswith(marker))
    assert (err.path, err.key, err.line) == (Path(path), key, line)
    assert str(err).startswith(f"{path}, line {line}: {key}: ") and "\n" not in str(err)
