"""Experiments from TOML files: a researcher's own worlds, caregiver, ISR, conditions, budgets and seeds.

Format (every key optional unless marked; unknown keys are errors)::

    [experiment]
    name = "corridors"                 # required; also the output sub-directory
    title = "ISR on my own maps"
    base = "quick"                     # start from a preset's learner and ISR: quick | paper
    seeds = [0, 1, 2]                  # or: n_seeds = 3 (seeds 0, 1, 2)
    socialization_world = "blocks-1"   # blocks-N, a built-in map, or a name from [worlds]
    autonomy_worlds = ["plus", "corridor"]
    conditions = ["caregiver", "none", "isr"]
    socialization_steps = 100_000      # required
    autonomy_steps = 100_000
    evaluation_episodes = 100
    chunk_rollouts = 10

    [learner]        # every PPOConfig setting (agents.ppo_config): torso, n_envs, n_steps, batch_size, n_epochs,
    torso = "mlp"    # learning_rate, gamma, gae_lambda, clip_range, normalize_advantage, ent_coef, vf_coef,
                     # max_grad_norm, adam_eps, obs_scale, obs_channel_scale (the budget comes from the
                     # phases' steps)

    [isr]            # every IsrConfig setting (agents.isr_config): network, encoding, width, learning_rate,
    batch_size = 32  # adam_eps, max_grad_norm, n_updates or updates_fraction, holdout_fraction, split, split_seed,
                     # eval_size, data_sizes, data_size_updates

    [utility]        # how R_i enters the utility while the caregiver is absent (social.utility): mode, threshold
    mode = "threshold-replace"

    [caregiver]      # who pays R_s in socialization (social.caregiver): reward, noise, miss, false_reward, event
    reward = 0.4
    miss = 0.25                      # a quarter of the deserved rewards are not paid
    presence = { kind = "linear", p0 = 1.0, p1 = 0.2, end = 100_000 }   # or a [caregiver.presence] table
    # Several caregivers: [[caregiver]] tables instead, each with its own event, reward and presence; R_s is their
    # sum (e.g. in a prosocial world one pays 0.4 for event = "helped_goal", another 0.1 for "boulder_lift").

    [conditions.fading]              # your own conditions (social.conditions): presence, isr, learns, world;
    presence = { kind = "exponential", half_life = 20_000 }   # list them in [experiment] conditions
    isr = true

    # [probes.empathy]  # probes run after evaluation (experiments.probes), e.g. a peer world's empathy probe:
                        # isr_widths, n_stimuli

    [worlds.corridor]   # your own worlds: map (ASCII, '#' wall, '.' free), n_blocks, check_reachable
                        # (kind = "prosocial": map = a layout of '# . B H G L', n_walls, drop, helper,
                        # rewarded_event; kind = "peer": n_blocks, similarity, view, peer_noise)
    map = '''
    #######
    #.....#
    #.###.#
    #.....#
    #.###.#
    #.....#
    #######
    '''

Every error names the file, the key and its line. ``internalize schema`` lists every section and key with its type,
default and help (``experiments.file_schema``, built from the configs' fields).
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any

from internalize.agents.isr_config import IsrConfig
from internalize.config_error import ConfigError
from internalize.experiments.file_schema import allowed
from internalize.experiments.paper import PRESETS, QUICK_ISR, QUICK_LEARNER
from internalize.experiments.probes import KINDS as PROBE_KINDS
from internalize.experiments.probes import Probe, probe_class
from internalize.experiments.spec import Experiment, WorldSpec, learner_config, world
from internalize.social.caregiver import Caregiver
from internalize.social.conditions import NAMED, Condition
from internalize.social.presence import Presence
from internalize.social.utility import UtilityConfig

# Keys of earlier versions of the file format, and where they are now.
_MOVED = {"isr.utility": "[utility] mode", "isr.threshold": "[utility] threshold"}
_SECTIONS = ("experiment", "learner", "isr", "utility", "worlds", "caregiver", "conditions", "probes")


class ExperimentFileError(ValueError):
    """A malformed experiment file; the message names the file, the key and the line.

    The same facts as data: ``path``, ``key`` (the dotted key, e.g. ``caregiver.noise``, or a section such as
    ``experiment``; None for a file that cannot be read or parsed) and ``line`` (1-based, or None when the key is
    not written in the file).
    """

    def __init__(self, message: str, *, path: Path | None = None, key: str | None = None,
                 line: int | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.path, self.key, self.line = path, key, line
        self.detail = message if detail is None else detail  # the message without its file, line and key


def read_toml(path: str | Path) -> tuple[dict[str, Any], str]:
    """An experiment file's parsed TOML and its text (for line numbers in errors); unreadable, non-UTF-8 or
    invalid TOML is an :class:`ExperimentFileError` naming the file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ExperimentFileError(f"{path}: cannot read the experiment file ({e.strerror}).", path=path) from None
    try:
        text = raw.decode("utf-8")  # TOML files are UTF-8 (TOML 1.0)
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ExperimentFileError(f"{path}, line {line}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset "
                                  f"{e.start}); TOML files "
                                  "must be saved as UTF-8.", path=path, line=line) from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as e:
        raise ExperimentFileError(f"{path}: not valid TOML: {e}", path=path) from None


def _line(text: str, section: str | None, key: str | None) -> int | None:
    """1-based line of ``key`` inside ``[section]`` (or of the section header), or None."""
    lines = text.splitlines()
    start = 0
    if section is not None:
        item = re.fullmatch(r"(.+)\[(\d+)\]", section)  # the i-th [[name]] table of an array of tables
        name, index = (item.group(1), int(item.group(2))) if item else (section, 0)
        brackets = (r"\[\[", r"\]\]") if item else (r"\[", r"\]")
        header = re.compile(rf"^\s*{brackets[0]}\s*{re.escape(name)}\s*{brackets[1]}\s*(#.*)?$")
        found = [i for i, ln in enumerate(lines) if header.match(ln)][index:]
        if not found:
            # An inline sub-table (``presence = { ... }``) has no header: point at its key in the parent.
            parent, _, last = section.rpartition(".")
            return _line(text, parent, last) if parent else None
        start = found[0]
        if key is None:
            return start + 1
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for i in range(start, len(lines)):
        if i > start and section is not None and re.match(r"^\s*\[", lines[i]):
            break
        if pattern.match(lines[i]):
            return i + 1
    return None


def load_experiment(path: str | Path) -> Experiment:
    """Parse and validate an experiment file (nothing runs). A sweep's file (one with a ``[sweep]`` table) is
    refused here: ``internalize sweep`` runs it (``experiments.sweep``)."""
    data, text = read_toml(path)
    if "sweep" in data:
        raise ExperimentFileError(f"{path}: [sweep]: this file is a sweep; run it with `internalize sweep {path}`.",
                                  path=Path(path), key="sweep", line=_line(text, "sweep", None))
    return parse_experiment(data, text, Path(path))


def parse_experiment(data: dict[str, Any], text: str, path: Path) -> Experiment:
    """The experiment of a parsed file ``data`` (validated; nothing runs). ``text`` is the file's text, for the line
    numbers of errors, and ``path`` its name in them; a sweep passes each point's data with the file's text."""

    def fail(section: str | None, key: str | None, message: str) -> ExperimentFileError:
        line = _line(text, section, key)
        where = f"{path}" + (f", line {line}" if line else "")
        name = ".".join(p for p in (section, key) if p)
        return ExperimentFileError(f"{where}: {name}: {message}", path=path, key=name, line=line, detail=message)

    for section in data:
        if section not in _SECTIONS:
            raise fail(section, None, f"unknown section; allowed: {', '.join(_SECTIONS)}")
    exp = data.get("experiment")
    if not isinstance(exp, dict):
        raise ExperimentFileError(f"{path}: missing the [experiment] section.", path=path, key="experiment")
    _check_keys(exp, allowed("experiment"), "experiment", fail)
    for required in ("name", "socialization_steps"):
        if required not in exp:
            raise fail("experiment", None, f"missing required key {required!r}")

    base = exp.get("base", "quick")
    if base not in PRESETS:
        raise fail("experiment", "base", f"got {base!r}; allowed: {' | '.join(PRESETS)}")
    learner_base = QUICK_LEARNER if base == "quick" else learner_config()
    isr_base = QUICK_ISR if base == "quick" else IsrConfig()

    worlds: dict[str, WorldSpec] = {}
    for wname, wdata in data.get("worlds", {}).items():
        if not isinstance(wdata, dict):
            raise fail("worlds", wname, "must be a table ([worlds.NAME])")
        _check_keys(wdata, allowed("worlds.NAME"), f"worlds.{wname}", fail)
        try:
            worlds[wname] = WorldSpec(wname, **wdata)
        except ConfigError as e:
            # Its key is the world's field; its message names the world ("world 'hall': map: ..."), kept whole.
            raise fail(f"worlds.{wname}", e.field if e.field in wdata else None, str(e)) from None
        except ValueError as e:  # not a config error (it has no key): at the table's header, as it reads
            raise fail(f"worlds.{wname}", None, str(e)) from None

    def resolve(key: str, label: Any) -> WorldSpec:
        if not isinstance(label, str):
            raise fail("experiment", key, f"world names must be strings, got {label!r}")
        if label in worlds:
            return worlds[label]
        try:
            return world(label)
        except ValueError:
            raise fail("experiment", key, f"unknown world {label!r}; allowed: blocks-N, plus, x, U, T, "
                       f"four_rooms, prosocial, prosocial-instrumental, or a [worlds.NAME] table "
                       f"({', '.join(worlds) or 'none defined'})") from None

    caregiver = _caregivers(data.get("caregiver", {}), fail)
    defined = _conditions(data.get("conditions", {}), fail)
    probes = _probes(data.get("probes", {}), fail)
    learner = _sub(data.get("learner", {}), learner_base, "learner", fail)
    isr = _sub(data.get("isr", {}), isr_base, "isr", fail)
    utility = _sub(data.get("utility", {}), UtilityConfig(), "utility", fail)
    if "seeds" in exp and "n_seeds" in exp:
        raise fail("experiment", "n_seeds", "give either seeds or n_seeds, not both")
    seeds = tuple(exp.get("seeds", range(exp.get("n_seeds", 1))))
    kwargs = dict(
        name=exp["name"], title=exp.get("title", exp["name"]),
        socialization_world=resolve("socialization_world", exp.get("socialization_world", "blocks-3")),
        autonomy_worlds=tuple(resolve("autonomy_worlds", w) for w in exp.get("autonomy_worlds", [])),
        conditions=tuple(exp.get("conditions", ("caregiver", "none", "isr", *[c.name for c in defined]))),
        socialization_steps=exp["socialization_steps"], autonomy_steps=exp.get("autonomy_steps", 0),
        seeds=seeds, evaluation_episodes=exp.get("evaluation_episodes", 100), learner=learner, isr=isr, utility=utility,
        chunk_rollouts=exp.get("chunk_rollouts", 10), caregiver=caregiver, defined_conditions=defined,
        probes=probes,
    )
    try:
        return Experiment(**kwargs)
    except ConfigError as err:
        # A table of its own, e.g. a schedule too long for the budget: its line, not [experiment]'s. A schedule's
        # error names its presence table in front (``where``), which is the section to point at.
        if err.key.startswith(("conditions.", "caregiver.", "caregiver[", "probes.")):
            if err.where is not None:
                label = err.key if err.label is None else err.label
                raise fail(err.where, None, f"{label}: {err.detail}") from None
            raise fail(err.key, None, err.detail) from None
        raise fail("experiment", err.field if err.field in exp else None, str(err)) from None
    except ValueError as e:  # not a config error (it has no key): at [experiment], as it reads
        raise fail("experiment", None, str(e)) from None


def _check_keys(table: dict, allowed: dict[str, type], section: str, fail) -> None:
    for key, value in table.items():
        if key not in allowed:
            moved = _MOVED.get(f"{section}.{key}")
            raise fail(section, key, f"moved to {moved}" if moved else
                       f"unknown key; allowed: {', '.join(sorted(allowed))}")
        expected = allowed[key]
        ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
        if expected is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            raise fail(section, key, f"must be of type {expected.__name__}, got {type(value).__name__} {value!r}")


def _sub(table: Any, base: Any, section: str, fail) -> Any:
    if not isinstance(table, dict):
        raise fail(section, None, "must be a table")
    _check_keys(table, allowed(section), section, fail)
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    try:
        return dataclasses.replace(base, **values)
    except ConfigError as e:
        # The error names the field itself ("torso"); fail() puts "section.key" in front once.
        raise _at_key(e, section, table, fail) from None
    except ValueError as e:
        raise fail(section, None, str(e)) from None


def _at_key(error: ConfigError, section: str, table: dict, fail) -> ExperimentFileError:
    """The file error for a config class's ``error`` in ``[section]``: at the line of its key when the table sets
    that key, else at the section's header with the class's whole message."""
    if error.field in table:
        return fail(section, error.field, error.detail)
    return fail(section, None, str(error))


def _presence(table: Any, where: str, fail) -> Presence:
    """A presence schedule from an inline table or a ``[WHERE.presence]`` table."""
    section, key = where.rsplit(".", 1)
    if not isinstance(table, dict):
        raise fail(section, key, "must be a table with a kind (internalize schema presence)")
    _check_keys(table, allowed("presence"), where, fail)
    try:
        return Presence(**table)
    except ConfigError as e:
        raise _at_key(e, where, table, fail) from None


def _caregivers(value: Any, fail) -> Caregiver | tuple[Caregiver, ...]:
    """One ``[caregiver]`` table, or several caregivers as ``[[caregiver]]`` tables (``caregiver[i]`` in messages)."""
    if isinstance(value, list):
        if not value:
            raise fail("caregiver", None, "an empty list; give one [caregiver] table or [[caregiver]] tables")
        return tuple(_caregiver(table, f"caregiver[{i}]", fail) for i, table in enumerate(value))
    return _caregiver(value, "caregiver", fail)


def _caregiver(table: Any, where: str, fail) -> Caregiver:
    if not isinstance(table, dict):
        raise fail(where, None, "must be a table")
    _check_keys(table, allowed("caregiver"), where, fail)
    values = dict(table)
    if "presence" in values:
        values["presence"] = _presence(values["presence"], f"{where}.presence", fail)
    try:
        return Caregiver(**values)
    except ConfigError as e:  # its key is caregiver.FIELD; the table may be caregiver[i]
        raise fail(where, e.field if e.field in table else None, e.detail) from None


def _probes(tables: Any, fail) -> tuple[Probe, ...]:
    """``[probes.KIND]`` tables: the experiment's probes (``experiments.probes``), each with its own keys."""
    if not isinstance(tables, dict):
        raise fail("probes", None, "must be tables [probes.KIND]")
    out = []
    for kind, table in tables.items():
        where = f"probes.{kind}"
        if kind not in PROBE_KINDS:
            raise fail(where, None, f"unknown probe; allowed: {', '.join(PROBE_KINDS)}")
        if not isinstance(table, dict):
            raise fail(where, None, "must be a table ([probes.KIND])")
        _check_keys(table, allowed(where), where, fail)
        try:
            out.append(probe_class(kind)(**{k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}))
        except ConfigError as e:
            raise _at_key(e, where, table, fail) from None
    return tuple(out)


def _conditions(tables: Any, fail) -> tuple[Condition, ...]:
    if not isinstance(tables, dict):
        raise fail("conditions", None, "must be tables [conditions.NAME]")
    out = []
    for name, table in tables.items():
        if name in NAMED:
            raise fail(f"conditions.{name}", None, f"{name!r} is a named condition already; choose another name "
                       f"(named: {', '.join(NAMED)})")
        if not isinstance(table, dict):
            raise fail("conditions", name, "must be a table ([conditions.NAME])")
        _check_keys(table, allowed("conditions.NAME"), f"conditions.{name}", fail)
        values = dict(table)
        if "presence" in values:
            values["presence"] = _presence(values["presence"], f"conditions.{name}.presence", fail)
        if "caregivers" in values:
            values["caregivers"] = tuple(_presence(t, f"conditions.{name}.caregivers", fail)
                                         for t in values["caregivers"])
        try:
            out.append(Condition(name, **values))
        except ConfigError as e:  # its key is conditions.NAME.FIELD
            raise fail(f"conditions.{name}", e.field if e.field in table else None, e.detail) from None
    return tuple(out)
