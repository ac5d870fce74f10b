"""ConfigError: a configuration value that failed validation, with its key, the value and what is allowed as data.

Every config class validates itself at construction (``PPOConfig``, ``IsrConfig``, ``UtilityConfig``,
``Caregiver``, ``Presence``, ``Condition``, the probes) and raises a :class:`ConfigError` naming the offending key.
The message stays the one line a user reads, ``KEY: DETAIL`` (e.g. ``caregiver.noise: got -1; allowed: a finite
number >= 0.``); a program that needs the key, such as the experiment-file reader that points at the key's line
(``experiments.config_file``), reads :attr:`ConfigError.key` instead of taking the message apart.

Where the one line names the key in words of its own, the error keeps that line and the key apart: ``where`` is
what holds the key, written in front (``world 'hall'``, ``conditions.fading.presence``), and ``label`` is how the
line writes the key when it is not the key itself (the prosocial world's ``layout`` for the world's ``map``,
``n_blocks/check_reachable`` for a check of both). So ``world 'hall': layout: ...`` reads as it always did while
``key`` is ``map``.

It subclasses ``ValueError``, so every ``except ValueError`` that handled these errors before still does. This
module imports nothing from the package, so the worlds, the social layer, the agents and the experiments can all
raise it without an import cycle.
"""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A config value that failed validation.

    Attributes:
      key: the dotted key as the validating class names it: a field (``torso``, ``half_life``), or a path when the
        class knows where it sits (``caregiver.noise``, ``conditions.fading.world``).
      detail: the message without the key: what is wrong and what is allowed.
      value: the refused value (None when the error is not about one value).
      allowed: what the key accepts, in words (``"cnn | mlp"``, ``"a probability in [0, 1]"``), or None.
      where: what holds the key, as the message names it in front of the key (``world 'hall'``,
        ``caregiver.presence``), or None: the message is then ``KEY: DETAIL``.
      label: how the message writes the key when it is not :attr:`key` itself (``layout`` for a world's ``map``),
        or None.
    """

    def __init__(self, key: str, detail: str, *, value: Any = None, allowed: str | None = None,
                 where: str | None = None, label: str | None = None) -> None:
        self.key = key
        self.detail = detail
        self.value = value
        self.allowed = allowed
        self.where = where
        self.label = label
        super().__init__(f"{self.heading}: {detail}")

    @property
    def heading(self) -> str:
        """The message before its detail: ``KEY``, or ``WHERE: LABEL`` (each part as given)."""
        named = self.key if self.label is None else self.label
        return named if self.where is None else f"{self.where}: {named}"

    @classmethod
    def got(cls, key: str, value: Any, allowed: str, *, where: str | None = None) -> ConfigError:
        """The common form ``KEY: got VALUE; allowed: ALLOWED.`` (``WHERE: KEY: ...`` with ``where``)."""
        return cls(key, f"got {value!r}; allowed: {allowed}.", value=value, allowed=allowed, where=where)

    @classmethod
    def must(cls, key: str, allowed: str, value: Any) -> ConfigError:
        """The common form ``KEY: must be ALLOWED, got VALUE.``"""
        return cls(key, f"must be {allowed}, got {value!r}.", value=value, allowed=allowed)

    @property
    def field(self) -> str:
        """The last part of :attr:`key`, without an index: the name of the field in its own table
        (``caregiver[1].noise`` -> ``noise``, ``probes[].kind`` -> ``kind``, ``torso`` -> ``torso``)."""
        return self.key.rpartition(".")[2].split("[")[0]

    def __reduce__(self) -> tuple:
        # Rebuilt from its parts, not from ``args`` (the joined message), so it survives pickling, e.g. from a
        # worker process of the per-core layout.
        return (_rebuild, (type(self), self.key, self.detail, self.value, self.allowed, self.where, self.label))


def _rebuild(cls: type[ConfigError], key: str, detail: str, value: Any, allowed: str | None,
             where: str | None = None, label: str | None = None) -> ConfigError:
    return cls(key, detail, value=value, allowed=allowed, where=where, label=label)
