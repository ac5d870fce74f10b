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
from internalize.experiments.spec import Experiment, WorldSpec, world
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
    (lambda: EmpathyProbe(n_stimuli=0), "n_stimuli", 0, "an integer >= 2"),
    (lambda: probe_class("mirror"), "probes[].kind", "mirror", "empathy | goal_values"),
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


# (what raises, key, value, the message as users have always read it)
CARRIED = [
    (lambda: WorldSpec("hall", kind="maze"), "kind", "maze",
     "world 'hall': kind: got 'maze'; allowed: navigation | prosocial | peer | two-goal."),
    (lambda: WorldSpec("hall", map="#####"), "map", "#####",
     "world 'hall': map: a map must be 7 rows of 7 cells (border walls included), got 1 rows of lengths [5]. "
     "Built-in maps: plus, x, U, T, four_rooms."),
    # make_params calls the prosocial map a layout: the key is the world's field, the message make_params's own.
    (lambda: WorldSpec("p", kind="prosocial", map="#######"), "map", "#######",
     "world 'p': layout: must be 7 rows of 7 cells (border walls included), got 1 rows of lengths [7]."),
    # A field the kind does not read names the kinds that do, with the kind's hint.
    (lambda: WorldSpec("p", kind="prosocial", n_blocks=2), "n_blocks", 2,
     "world 'p': n_blocks: got 2; allowed: only for kind = navigation | peer | two-goal (use n_walls)."),
    (lambda: WorldSpec("p", kind="peer", check_reachable=False), "check_reachable", False,
     "world 'p': check_reachable: got False; allowed: only for kind = navigation | two-goal (the peer world always "
     "keeps the goal reachable)."),
    (lambda: world("blocks-12"), "n_blocks", 12,
     "world 'blocks-12': n_blocks: must be an integer in 0..8 (at most 8, leaving the goal and the agent a cell "
     "each), got 12."),
    (lambda: WorldSpec("p", kind="peer", similarity="twin"), "similarity", "twin",
     "world 'p': similarity: must be one of identical, colour, kind, got 'twin'."),
    (lambda: world("spiral"), "world", "spiral", None),
    # The experiment's own checks (``_require``).
    (lambda: _tiny(socialization_steps=0), "socialization_steps", 0,
     "socialization_steps: got 0; allowed: a positive integer."),
    (lambda: _tiny(seeds=(1, 1)), "seeds", (1, 1), "seeds: got (1, 1); allowed: distinct integers in [0, 2**32 - 1]."),
    (lambda: _tiny(caregiver=Caregiver(presence=Presence("until", switch_step=10**6))),
     "caregiver.presence.switch_step", 10**6, None),
]


def _tiny(**fields):
    base = dict(name="t", title="t", socialization_world=world("blocks-1"), autonomy_worlds=(world("plus"),),
                conditions=("caregiver",), socialization_steps=64, autonomy_steps=64, seeds=(0,))
    return Experiment(**{**base, **fields})


@pytest.mark.parametrize(("build", "key", "value", "message"), CARRIED, ids=[c[1] for c in CARRIED])
def test_world_and_experiment_checks_carry_their_key_as_data(build, key, value, message):
    with pytest.raises(ConfigError) as raised:
        build()
    err = raised.value
    assert (err.key, err.value) == (key, value)
    assert str(err) == f"{err.heading}: {err.detail}" and "\n" not in str(err)
    if message is not None:
        assert str(err) == message, "the message users read is unchanged"
    assert pickle.loads(pickle.dumps(err)).args == err.args  # where and label cross process boundaries too


def test_world_make_params_name_their_parameter():
    from internalize.worlds.layouts import parse_map
    from internalize.worlds.navigation import make_params as navigation_params
    from internalize.worlds.peer import make_params as peer_params
    from internalize.worlds.prosocial import make_params as prosocial_params
    from internalize.worlds.prosocial_layouts import parse_layout

    for build, key in [(lambda: navigation_params(n_blocks=9), "n_blocks"), (lambda: navigation_params(size=3), "size"),
                       (lambda: prosocial_params(drop="throw"), "drop"),
                       (lambda: prosocial_params(n_walls=9, wall_rule="reference"), "n_walls"),
                       (lambda: peer_params(view="sideways"), "view"), (lambda: parse_map("#.#"), "map"),
                       (lambda: parse_layout("#"), "layout")]:
        with pytest.raises(ConfigError) as raised:
            build()
        assert raised.value.key == key and str(raised.value).startswith(f"{key}: ")


@pytest.mark.parametrize(("table", "marker", "key", "message"), [
    ('kind = "maze"\n', "kind =", "worlds.hall.kind", "world 'hall': kind: got 'maze'; allowed: navigation | "
     "prosocial | peer | two-goal."),
    # The detail says "kind = 'navigation'": the line is the refused key's, not that of a key the text mentions.
    ('kind = "prosocial"\nn_blocks = 2\n', "n_blocks =", "worlds.hall.n_blocks",
     "world 'hall': n_blocks: got 2; allowed: only for kind = navigation | peer | two-goal (use n_walls)."),
    ('kind = "prosocial"\nmap = "#######"\n', "map =", "worlds.hall.map",
     "world 'hall': layout: must be 7 rows of 7 cells (border walls included), got 1 rows of lengths [7]."),
    ('kind = "peer"\nsimilarity = "twin"\n', "similarity =", "worlds.hall.similarity",
     "world 'hall': similarity: must be one of identical, colour, kind, got 'twin'."),
])
def test_a_world_tables_error_is_at_its_keys_line(tmp_path, table, marker, key, message):
    path = tmp_path / "exp.toml"
    path.write_text(textwrap.dedent(HEAD) + "\n[worlds.hall]\n" + table)
    with pytest.raises(ExperimentFileError) as raised:
        load_experiment(path)
    err = raised.value
    line = next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if ln.startswith(marker))
    assert (err.key, err.line) == (key, line)
    assert str(err) == f"{path}, line {line}: {key}: {message}"


def test_an_experiment_check_in_a_file_is_at_its_keys_line(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text(textwrap.dedent(HEAD).replace("conditions = []", "conditions = []\nseeds = [3, 3]"))
    with pytest.raises(ExperimentFileError) as raised:
        load_experiment(path)
    line = next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if ln.startswith("seeds ="))
    assert (raised.value.key, raised.value.line) == ("experiment.seeds", line)
    assert str(raised.value) == (f"{path}, line {line}: experiment.seeds: seeds: got (3, 3); allowed: distinct "
                                 "integers in [0, 2**32 - 1].")
