"""The experiment file's schema, built from the configs' own fields: every section's keys, TOML types, defaults
and help. :mod:`internalize.experiments.config_file` accepts exactly these keys and ``internalize schema`` prints
them, so the reference cannot drift from what the loader does or from the dataclasses behind it.

Each section is a config class of the library (the ``[learner]`` table is a ``PPOConfig``, ``[caregiver]`` a
``Caregiver``, ...); the ``[experiment]`` table adds the few keys that only a file needs (``base``, ``n_seeds``)
and names worlds by label.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from internalize.agents.isr_config import IsrConfig, derived_fields
from internalize.agents.ppo_config import PPOConfig
from internalize.experiments.probes import KINDS as PROBE_KINDS
from internalize.experiments.probes import probe_class
from internalize.experiments.spec import Experiment, WorldSpec
from internalize.experiments.sweep_spec import SweepSpec
from internalize.social.caregiver import Caregiver
from internalize.social.conditions import Condition
from internalize.social.presence import Presence
from internalize.social.utility import UtilityConfig

# TOML value types of the field annotations (a Presence is a table; worlds are named by label).
_TOML_TYPES: dict[str, type] = {
    "int": int, "float": float, "str": str, "bool": bool, "int | None": int, "float | None": float,
    "str | None": str, "tuple[int, ...]": list, "tuple[float, ...]": list, "tuple[str, ...]": list,
    "tuple[float, ...] | None": list,
    "tuple[WorldSpec, ...]": list,
    "WorldSpec": str, "Presence": dict,
    "tuple[tuple[str, tuple[Any, ...]], ...]": dict,  # a sweep's grid: a table of keys to lists
    "tuple[Presence, ...]": list,  # a condition's per-caregiver schedules: a list of presence tables
}
_EXPERIMENT_FIELDS = ("name", "title", "seeds", "socialization_world", "autonomy_worlds", "conditions",
                      "socialization_steps", "autonomy_steps", "evaluation_episodes", "chunk_rollouts")
# What an [experiment] table leaves unset becomes this (the file's defaults, not the dataclass's).
_EXPERIMENT_DEFAULTS = {"name": "required", "title": "the name", "seeds": "[0]", "socialization_world": '"blocks-3"',
                        "autonomy_worlds": "[]", "conditions": '["caregiver", "none", "isr"] + your own',
                        "socialization_steps": "required", "autonomy_steps": "0"}
_FILE_ONLY = {
    "base": (str, '"quick"', "start from a preset's learner and ISR: quick | paper"),
    "n_seeds": (int, "-", "instead of seeds: seeds 0 .. n_seeds - 1"),
}


@dataclass(frozen=True)
class Key:
    """One key of a section: its TOML type, its default as written in a file, and its help."""

    name: str
    type: type
    default: str
    help: str


@dataclass(frozen=True)
class Section:
    """A table of the file (``worlds.NAME`` stands for every ``[worlds.<your name>]``)."""

    name: str
    source: type
    about: str
    keys: dict[str, Key]


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = f.default_factory()  # type: ignore[misc]
    else:
        return "required"
    if isinstance(value, Presence):
        return f"{{ kind = \"{value.kind}\" }}"
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _keys(cls: type, names: tuple[str, ...] | None = None, exclude: tuple[str, ...] = ()) -> dict[str, Key]:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    out = {}
    for name in names or tuple(fields):
        if name in exclude:
            continue
        f = fields[name]
        out[name] = Key(name, _TOML_TYPES.get(str(f.type), object), _default(f), f.metadata.get("help", ""))
    return out


def sections() -> dict[str, Section]:
    """Every section of an experiment file, in the order a file usually has them."""
    experiment = _keys(Experiment, _EXPERIMENT_FIELDS)
    for name, key in experiment.items():
        experiment[name] = dataclasses.replace(key, default=_EXPERIMENT_DEFAULTS.get(name, key.default))
    experiment.update({k: Key(k, t, d, h) for k, (t, d, h) in _FILE_ONLY.items()})
    presence = _keys(Presence)
    return {
        "experiment": Section("experiment", Experiment, "the protocol: worlds, conditions, budgets, seeds", experiment),
        "learner": Section("learner", PPOConfig, "the PPO learner (defaults shown: the library's; base = \"quick\" "
                           "starts from the quick preset's)",
                           _keys(PPOConfig, exclude=("total_timesteps",))),
        "isr": Section("isr", IsrConfig, "the internalized social reward model: network, training, data (base = "
                       "\"quick\" starts from the quick preset's; the world's action count and the policy's "
                       "observation scale are filled in)", _keys(IsrConfig, exclude=derived_fields())),
        "utility": Section("utility", UtilityConfig, "how R_i enters the learner's utility while the caregiver is "
                           "absent (the step cost is the world's)", _keys(UtilityConfig, exclude=("step_cost",))),
        "caregiver": Section("caregiver", Caregiver, "who pays R_s while socializing, what for, how much, how "
                             "reliably; several caregivers as [[caregiver]] tables (R_s is their sum)",
                             _keys(Caregiver)),
        "conditions.NAME": Section("conditions.NAME", Condition, "a condition of your own, listed in conditions",
                                   _keys(Condition, exclude=("name",))),
        "presence": Section("presence", Presence, "a presence schedule: caregiver.presence, conditions.NAME.presence"
                            " (a table, or inline: presence = { kind = \"linear\", end = 10_000 })", presence),
        "worlds.NAME": Section("worlds.NAME", WorldSpec, "a world of your own, named in the experiment's worlds",
                               _keys(WorldSpec, exclude=("name",))),
        **{f"probes.{kind}": Section(f"probes.{kind}", cls, f"a probe run after evaluation: "
                                     f"{(cls.__doc__ or '').splitlines()[0]}", _keys(cls))
           for kind, cls in ((kind, probe_class(kind)) for kind in PROBE_KINDS)},
        "sweep": Section("sweep", SweepSpec, "makes the file a sweep (internalize sweep FILE): the experiment over "
                         "every point of a grid of keys, with one combined table", _keys(SweepSpec)),
    }


def allowed(section: str) -> dict[str, type]:
    """The keys ``section`` accepts and their TOML types (``worlds.NAME``-style names for the per-name tables)."""
    return {k.name: k.type for k in sections()[section].keys.values()}


def describe(section: str | None = None, width: int = 100) -> str:
    """The schema as text: every section (or one), one key per line with its type, default and help."""
    import textwrap

    chosen = sections()
    if section is not None:
        if section not in chosen:
            raise ValueError(f"section: got {section!r}; allowed: {' | '.join(chosen)}.")
        chosen = {section: chosen[section]}
    lines: list[str] = []
    for s in chosen.values():
        lines.append(textwrap.fill(f"[{s.name}]  {s.about}  ({s.source.__module__}.{s.source.__name__})", width,
                                   subsequent_indent="    ", break_on_hyphens=False))
        name_w = max(len(k) for k in s.keys)
        for key in s.keys.values():
            kind = "table" if key.type is dict else key.type.__name__
            head = f"  {key.name:<{name_w}}  {kind}, default {key.default}: "
            lines.append(textwrap.fill(key.help, width, initial_indent=head, subsequent_indent=" " * (name_w + 4),
                                       break_on_hyphens=False))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
