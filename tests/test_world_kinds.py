"""World kinds as records (``worlds.kinds``): every record is complete and consistent with its world, and the
experiment spec, the file schema, ``play`` and the report's GIFs read it (a new world is its module plus a record)."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from internalize.config_error import ConfigError
from internalize.experiments.file_schema import sections
from internalize.experiments.spec import WorldSpec, world
from internalize.worlds.base import step_autoreset
from internalize.worlds.kinds import KINDS, load


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kind_builds_steps_and_draws_its_world_from_its_record(name):
    record = KINDS[name]
    spec = WorldSpec("w", kind=name)
    env, params = spec.env(), spec.params()
    assert spec.own_event in env.events, "the world's own rewarded event is one it reports"
    obs, state = env.reset(jax.random.key(0), params)
    assert obs.shape == env.observation_shape(params) and obs.dtype == np.uint8
    policy = load(record.scripted) if record.scripted else (lambda k, s, p: jax.numpy.int32(0))
    states = [state]
    for t in range(3):
        out = step_autoreset(env, jax.random.key(t), states[-1], policy(jax.random.key(t), states[-1], params),
                             params)
        assert set(out.channels.events) == set(env.events)
        states.append(out.state)
    stacked = jax.tree.map(lambda *x: np.stack(x), *states)
    frames = record.render(stacked, 8, params)
    assert len(frames) == 4 and all(f.dtype == np.uint8 and f.ndim == 3 and f.shape[2] == 3 for f in frames)
    # play's default options make the same world kind's parameters.
    assert type(load(record.make_params)(**record.play(None, None))) is type(params)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_a_kind_reads_its_fields_and_refuses_the_others_naming_the_kinds_that_read_them(name):
    record = KINDS[name]
    defaults = {f.name: f.default for f in dataclasses.fields(WorldSpec) if f.name not in ("name", "kind")}
    other = next(f for f in defaults if f not in record.fields)
    value = {"n_blocks": 1, "map": "plus", "check_reachable": False, "n_walls": 5, "drop": "noop",
             "helper": "reference-dfs", "rewarded_event": "boulder_lift", "similarity": "colour",
             "view": "allocentric", "peer_noise": 0.5}[other]
    with pytest.raises(ConfigError) as raised:
        WorldSpec("w", kind=name, **{other: value})
    readers = [k.name for k in KINDS.values() if other in k.fields]
    assert raised.value.key == other and f"only for kind = {' | '.join(readers)}" in str(raised.value)
    # The file schema's help for each field says what it means in every kind that reads it.
    keys = sections()["worlds.NAME"].keys
    for f in record.fields:
        assert f"{name}: {record.fields[f]}" in keys[f].help


def test_labels_are_read_by_their_kinds_records():
    assert world("two-goal").kind == "two-goal" and world("two-goal").n_blocks == 1
    assert world("two-goal-blocks-3").n_blocks == 3 and world("blocks-2").kind == "navigation"
    assert world("prosocial-instrumental").own_event == "boulder_lift"
    with pytest.raises(ConfigError, match="two-goal-blocks-N"):
        world("three-goal")
