"""Dotted keys of an experiment file, as a sweep names them: which table of the parsed file each sets, checked
against the file schema (``experiments.file_schema``), and its values' types.

``caregiver.noise`` is ``[caregiver]``'s ``noise``; ``conditions.fade.presence.half_life`` the ``half_life`` of
the presence table of the file's ``[conditions.fade]``; ``caregiver[1].reward`` the second ``[[caregiver]]``'s
``reward``. A key must name a table the file has where the table is the file's own (a condition, a world, a probe,
a presence schedule, one of several caregivers); ``[learner]``, ``[isr]``, ``[utility]`` and a single
``[caregiver]`` may be absent (the sweep sets the key in a new table).
"""

from __future__ import annotations

import re
from typing import Any

from internalize.config_error import ConfigError
from internalize.experiments.file_schema import allowed

#: Keys no sweep may set: they name the experiment or choose its seeds (a sweep's points share both).
FIXED_KEYS = ("experiment.name", "experiment.title", "experiment.seeds", "experiment.n_seeds")
_SIMPLE = ("experiment", "learner", "isr", "utility")  # sections whose keys are SECTION.KEY
_NAMED = {"conditions": "conditions.NAME", "worlds": "worlds.NAME"}  # SECTION.NAME.KEY, NAME a table of the file
_SECTIONS = ("experiment", "learner", "isr", "utility", "caregiver", "conditions", "worlds", "probes")


def key_section(key: str, data: dict[str, Any], swept: bool = True) -> tuple[str, list[str | int]]:
    """The schema section of a dotted ``key`` (``caregiver``, ``presence``, ``conditions.NAME`` ...) and its path in
    the file's parsed ``data`` (list indices as ints). ``ConfigError`` naming the key and what is allowed when the
    key is not one of the file's (an unknown section or key, or a named table the file does not define). A key
    set for every point (``swept=False``, ``--set``) may be one of :data:`FIXED_KEYS` but ``experiment.name``."""
    if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][\w-]*(\[\d+\])?(\.[A-Za-z_][\w-]*)+", key):
        raise ConfigError.got("sweep.grid", key, "a dotted key such as caregiver.noise or isr.width "
                              "(internalize schema lists them)")
    if key in FIXED_KEYS and (swept or key == "experiment.name"):
        raise ConfigError(key, "cannot be swept (every point of a sweep has the same name and seeds); "
                          "allowed: any other key of internalize schema.", value=key, allowed="another key")
    head, *rest = key.split(".")
    item = re.fullmatch(r"(\w+)\[(\d+)\]", head)
    section = item.group(1) if item else head
    if section not in _SECTIONS:
        raise ConfigError(key, f"unknown section {section!r}; allowed: {', '.join(_SECTIONS)}.",
                          value=key, allowed=", ".join(_SECTIONS))
    if section == "caregiver":
        return _caregiver_key(key, item, rest, data)
    if item:
        raise ConfigError(key, "only [[caregiver]] tables are indexed.", value=key, allowed="caregiver[i]")
    if section in _SIMPLE:
        return _checked(key, section, rest, [section])
    if len(rest) < 2:
        raise ConfigError(key, f"name the table and its key ({section}.NAME.KEY).", value=key,
                          allowed=f"{section}.NAME.KEY")
    name, *inner = rest
    defined = data.get(section, {})
    if not isinstance(defined, dict) or name not in defined:
        names = ", ".join(defined) if isinstance(defined, dict) and defined else "none"
        raise ConfigError(key, f"the file has no [{section}.{name}] table; defined: {names}.", value=key,
                          allowed=names)
    if section == "probes":
        return _checked(key, f"probes.{name}", inner, [section, name])
    if section == "conditions" and inner[:1] == ["presence"]:
        return _presence_key(key, defined[name], inner[1:], [section, name, "presence"])
    return _checked(key, _NAMED[section], inner, [section, name])


def _caregiver_key(key: str, item: re.Match | None, rest: list[str],
                   data: dict[str, Any]) -> tuple[str, list[str | int]]:
    tables = data.get("caregiver", {})
    several = isinstance(tables, list)
    if several and item is None:
        raise ConfigError(key, f"the file has {len(tables)} [[caregiver]] tables; name one: "
                          f"caregiver[0].{'.'.join(rest)} ... caregiver[{len(tables) - 1}].{'.'.join(rest)}.",
                          value=key, allowed="caregiver[i].KEY")
    path: list[str | int] = ["caregiver"]
    table = tables
    if item is not None:
        index = int(item.group(2))
        if not several or index >= len(tables):
            count = len(tables) if several else 0
            raise ConfigError(key, f"the file has {count} [[caregiver]] table(s); allowed: "
                              + ("caregiver.KEY" if not several else f"caregiver[0] .. caregiver[{count - 1}]") + ".",
                              value=key, allowed="an existing caregiver")
        path.append(index)
        table = tables[index]
    if rest[:1] == ["presence"]:
        return _presence_key(key, table, rest[1:], [*path, "presence"])
    return _checked(key, "caregiver", rest, path)


def _presence_key(key: str, owner: Any, rest: list[str], path: list[str | int]) -> tuple[str, list[str | int]]:
    if not isinstance(owner, dict) or not isinstance(owner.get("presence"), dict):
        raise ConfigError(key, "the file sets no presence table there; write it (with its kind) to sweep "
                          "one of its keys.", value=key, allowed="a key of a presence table the file has")
    return _checked(key, "presence", rest, path)


def _checked(key: str, section: str, rest: list[str], path: list[str | int]) -> tuple[str, list[str | int]]:
    keys = allowed(section)
    if len(rest) != 1 or rest[0] not in keys:
        got = ".".join(rest)
        raise ConfigError(key, f"unknown key {got!r} of [{section}]; allowed: {', '.join(sorted(keys))}.",
                          value=key, allowed=", ".join(sorted(keys)))
    return section, [*path, rest[0]]


def typed(key: str, section: str, value: Any) -> Any:
    """``value`` as the type of ``key`` in ``section`` (an int for a float key becomes a float; a list a tuple);
    ``ConfigError`` naming the key, the value and the type when it has another."""
    expected = allowed(section)[str(key).rsplit(".", 1)[-1]]
    if isinstance(value, bool) and expected is not bool:
        ok = False
    elif expected is float:
        ok = isinstance(value, (int, float))
        value = float(value) if ok else value
    elif expected is list:
        ok = isinstance(value, (list, tuple))
        value = tuple(value) if ok else value
    else:
        ok = isinstance(value, expected)
    if not ok:
        name = "table" if expected is dict else expected.__name__
        raise ConfigError(key, f"must be of type {name}, got {type(value).__name__} {value!r}.",
                          value=value, allowed=name)
    return value
