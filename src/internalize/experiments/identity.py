"""A configuration's identity: what decides whether stored work belongs to it, kept stable across upgrades.

An output directory, its units and the shared units of ``OUT/.shared`` are reused only for the configuration they
were computed for. Comparing every field's value would refuse every existing directory as soon as a new version
adds a setting, even one whose default reproduces the old behaviour. So a configuration is identified by
:func:`identity_fields`, the values that differ from their dataclass defaults (recursively through nested config
dataclasses), together with :data:`IDENTITY_VERSION`:

* a new field whose default reproduces the old behaviour changes no identity: existing directories resume and
  their shared units are reused;
* a changed value changes the identity: the manifest keeps every value a run was started with, and its identity
  is recomputed from them by the current code (``ResultsStore.claim``), so it is compared value by value;
* a default whose value or meaning changes (the same configuration would compute other numbers) must bump
  :data:`IDENTITY_VERSION`: every directory of an earlier version is then refused, saying why, and no shared unit
  of an earlier version is found.

Tokens (:func:`identity_token`) name the version: ``config-v1-<16 hex digits>``. Directories written before
identities had versions carry ``config-<16 hex digits>`` (the hash of every value) and are version 1.
Their shared units are keyed by the hash of every field's ``dataclasses.asdict`` value; :func:`legacy_asdict`
recomputes that form from :data:`V1_FIELDS`, the fields each config class had then.

This module imports nothing from the rest of the package: the spec, the results store and the shared units use it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from typing import Any

#: Bump when a default's value or meaning changes: every earlier directory and shared unit is then refused.
IDENTITY_VERSION = 1

#: The fields of the config classes a shared unit's key hashed before identities had versions (frozen: the keys of
#: the shared units an older version published are these fields' values).
V1_FIELDS: dict[str, tuple[str, ...]] = {
    "WorldSpec": ("name", "kind", "n_blocks", "map", "check_reachable", "n_walls", "drop", "helper",
                  "rewarded_event", "similarity", "view", "peer_noise"),
    "PPOConfig": ("total_timesteps", "learning_rate", "n_steps", "n_envs", "batch_size", "n_epochs", "gamma",
                  "gae_lambda", "clip_range", "normalize_advantage", "ent_coef", "vf_coef", "max_grad_norm",
                  "adam_eps", "torso", "obs_scale"),
    "IsrConfig": ("network", "encoding", "obs_scale", "num_actions", "learning_rate", "adam_eps", "max_grad_norm",
                  "batch_size", "n_updates", "updates_fraction", "n_data", "data_sizes", "data_size_updates",
                  "holdout_fraction", "split", "split_seed", "log_every", "eval_size", "width", "self_channel"),
    "UtilityConfig": ("mode", "threshold", "step_cost"),
    "Caregiver": ("reward", "noise", "miss", "false_reward", "presence", "event"),
    "Presence": ("kind", "switch_step", "p0", "p1", "start", "end", "half_life", "rate"),
}

_TOKEN = re.compile(r"config-v([0-9]+)-[0-9a-f]+")
_NO_DEFAULT = object()


def _default(f: dataclasses.Field) -> Any:
    """A field's default value (a fresh one from its factory), or ``_NO_DEFAULT``."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return _NO_DEFAULT


def _is_config(obj: Any) -> bool:
    return dataclasses.is_dataclass(obj) and not isinstance(obj, type)


def identity_fields(obj: Any) -> Any:
    """What identifies ``obj``, as JSON values: for a dataclass, the fields whose value differs from the field's
    default (a field without a default always counts), each in this form; tuples and lists as lists.

    Two objects of one class with equal identity fields are equal: an absent field holds its default, and a present
    one is described in full relative to its own class's defaults (a nested config that differs from the enclosing
    field's default by one value is listed by that value).
    """
    if _is_config(obj):
        out = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            default = _default(f)
            if default is _NO_DEFAULT or value != default:
                out[f.name] = identity_fields(value)
        return out
    if isinstance(obj, (tuple, list)):
        return [identity_fields(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): identity_fields(v) for k, v in obj.items()}
    return obj


def identity(fields: Any, version: int | None = None) -> dict[str, Any]:
    """The identity of a configuration whose :func:`identity_fields` are ``fields``: them and the version (default
    :data:`IDENTITY_VERSION`), as JSON (tuples made lists, other values as ``str``), comparable with ``==``."""
    return {"version": IDENTITY_VERSION if version is None else version,
            "config": json.loads(json.dumps(fields, sort_keys=True, default=str))}


def identity_token(ident: dict[str, Any]) -> str:
    """A short token naming an :func:`identity`: ``config-v<version>-`` and 16 hex digits of its sha256."""
    blob = json.dumps(ident, sort_keys=True, default=str).encode()
    return f"config-v{ident['version']}-" + hashlib.sha256(blob).hexdigest()[:16]


def token_version(token: Any) -> int:
    """The identity version a token was made under; 1 for a token from before versions (``config-<hex>``)."""
    match = _TOKEN.fullmatch(str(token))
    return int(match.group(1)) if match else 1


class _NotV1(Exception):
    """A configuration that sets a field the version-1 classes did not have."""


def _legacy(obj: Any) -> Any:
    if _is_config(obj):
        known = V1_FIELDS.get(type(obj).__name__)
        if known is None:
            raise _NotV1(type(obj).__name__)
        fields = {f.name: f for f in dataclasses.fields(obj)}
        if any(name not in fields for name in known):
            raise _NotV1(type(obj).__name__)  # a field was removed since: the old key hashed its value
        out = {}
        for name, f in fields.items():
            value = getattr(obj, name)
            if name in known:
                out[name] = _legacy(value)
            elif _default(f) is _NO_DEFAULT or value != _default(f):
                raise _NotV1(f"{type(obj).__name__}.{name}")
        return out
    if isinstance(obj, (tuple, list)):
        return type(obj)(_legacy(v) for v in obj)
    if isinstance(obj, dict):
        return {k: _legacy(v) for k, v in obj.items()}
    return obj


def legacy_asdict(obj: Any) -> Any | None:
    """``dataclasses.asdict(obj)`` as a version without identities computed it (the fields of :data:`V1_FIELDS`),
    for finding the shared units it published; None if ``obj`` sets a field added since (at a value other than its
    default: nothing stored then can be for it) or lacks one it had."""
    try:
        return _legacy(obj)
    except _NotV1:
        return None
