"""Experiments as data: worlds, learner, ISR, conditions, budgets and seeds, validated at construction.

An :class:`Experiment` describes the paper's protocol in general form:

1. **socialization** — every seed learns on ``socialization_world`` with the caregiver present for
   ``socialization_steps`` environment steps; every transition is stored for the ISR;
2. **isr** — each seed's ISR is trained on its socialization data (``isr``); with ``isr.data_sizes`` it is also
   trained on the first N transitions for each N (Figure 3b), every size scored on the full-data ISR's held-out
   transitions (a size that is the whole socialization is the full-data ISR itself, trained once);
3. **autonomy** — each condition continues the same PPO model (parameters and optimizer state) for
   ``autonomy_steps`` on each of ``autonomy_worlds``:

   * ``caregiver`` — the caregiver stays (the paper's "oracle"): U = R_e + R_s;
   * ``none`` — the caregiver leaves and nothing replaces it: U = R_e;
   * ``isr`` — the caregiver leaves and the ISR supplies internal reward (``utility`` says how);
   * ``frozen`` — no further learning (the paper's frozen baseline);
   * ``frozen-continued`` — keeps training on the socialization world with the caregiver (the reference code's
     "frozen", docs/paper-vs-reference.md, 'The frozen baseline'); it never sees the autonomy worlds;
4. **evaluation** — ``evaluation_episodes`` held-out episodes per (condition, autonomy world) with the
   deterministic policy, scored by goals per episode and caregiver return (R_e + R_s).

Nothing here runs anything; :mod:`internalize.experiments.runner` executes any Experiment.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from internalize.agents.isr_config import IsrConfig
from internalize.agents.ppo_config import PPOConfig
from internalize.config_error import ConfigError
from internalize.experiments.identity import identity, identity_fields
from internalize.experiments.probes import Probe, probe_class, probe_to_dict
from internalize.social.caregiver import Caregiver, as_caregivers, resolve_events
from internalize.social.conditions import NAMED, Condition
from internalize.social.utility import UtilityConfig
from internalize.worlds.kinds import KINDS, WorldKind, field_help, kinds_help
from internalize.worlds.kinds import kind as world_kind


def _help(text: str) -> dict[str, str]:
    return {"help": text}


def _require(cond: bool, field_name: str, value: Any, allowed: str, *, where: str | None = None) -> None:
    """ConfigError ``FIELD: got VALUE; allowed: ALLOWED.`` (``WHERE: FIELD: ...`` with ``where``) unless ``cond``."""
    if not cond:
        raise ConfigError.got(field_name, value, allowed, where=where)


def _positive_int(name: str, value: Any) -> None:
    _require(isinstance(value, int) and not isinstance(value, bool) and value > 0, name, value, "a positive integer")


_WORLD_FIELD = {"layout": "map"}  # a world's field for a parameter its make_params names otherwise


def _world_help(name: str) -> dict[str, str]:
    return _help(field_help(name))


@dataclass(frozen=True)
class WorldSpec:
    """A world by label and kind (``worlds.kinds``: navigation, prosocial, peer, two-goal) with the fields its kind
    reads; every other field stays at its default.

    Every field's help is in its metadata (``internalize schema`` prints it); a kind's fields and what they mean
    come from its record (``worlds.kinds.KINDS``).
    """

    name: str = field(metadata=_help("label in the results table (blocks-3, plus, prosocial, my_map ...)"))
    kind: str = field(default="navigation", metadata=_help(kinds_help()))
    n_blocks: int = field(default=0, metadata=_world_help("n_blocks"))
    map: str | None = field(default=None, metadata=_world_help("map"))
    check_reachable: bool = field(default=True, metadata=_world_help("check_reachable"))
    n_walls: int | None = field(default=None, metadata=_world_help("n_walls"))
    drop: str = field(default="place", metadata=_world_help("drop"))
    helper: str = field(default="shortest", metadata=_world_help("helper"))
    rewarded_event: str = field(default="helped_goal", metadata=_world_help("rewarded_event"))
    similarity: str = field(default="identical", metadata=_world_help("similarity"))
    view: str = field(default="egocentric", metadata=_world_help("view"))
    peer_noise: float = field(default=0.2, metadata=_world_help("peer_noise"))

    def __post_init__(self) -> None:
        _require(isinstance(self.name, str) and self.name != "", "world.name", self.name, "a non-empty string")
        # Each error's key is the world's field; the message names the world in front ("world 'hall': kind: ...").
        where = f"world {self.name!r}"
        record = world_kind(self.kind, where)
        for f in dataclasses.fields(self):
            if f.name in ("name", "kind") or f.name in record.fields or getattr(self, f.name) == f.default:
                continue
            readers = [k.name for k in KINDS.values() if f.name in k.fields]
            hint = record.hints.get(f.name, f"leave it unset for a {self.kind} world")
            raise ConfigError.got(f.name, getattr(self, f.name), f"only for kind = {' | '.join(readers)} ({hint})",
                                  where=where)
        self.params()  # validates the world now, before anything runs

    @property
    def record(self) -> WorldKind:
        """This world's kind record (``worlds.kinds``)."""
        return KINDS[self.kind]

    @property
    def own_event(self) -> str:
        """The event this world's own R_s is paid for (an empty ``Caregiver.event`` means it): ``goal``, or the
        prosocial world's ``rewarded_event``."""
        return self.record.own_event(self)

    def env(self) -> Any:
        """The world object of this kind (``Navigation()``, ``Prosocial()`` ...); params: :meth:`params`."""
        return self.record.env()

    def params(self) -> Any:
        try:
            return self.record.build_params(self)
        except ConfigError as e:
            # make_params names its parameter: the key becomes the world's field, the message stays
            # "world 'NAME': " + make_params's own.
            raise ConfigError(_WORLD_FIELD.get(e.key, e.key), e.detail, value=e.value, allowed=e.allowed,
                              where=f"world {self.name!r}", label=e.heading) from None


def world(name: str) -> WorldSpec:
    """A world from a short label, read by each kind's record (``worlds.kinds``): ``blocks-N``, a built-in map name
    (``plus``, ``x``, ``U``, ``T``, ``four_rooms``), ``prosocial`` (Figure 7's world), ``prosocial-instrumental`` (its
    caregiver pays for lifting the boulder instead), ``peer-SIMILARITY-VIEW`` (the empathy probe's two-agent world
    with ``PEER_BLOCKS`` blocks, e.g. ``peer-colour-egocentric``), ``two-goal`` or ``two-goal-blocks-N``."""
    for record in KINDS.values():
        fields_ = record.labels(name)
        if fields_ is not None:
            return WorldSpec(name, **fields_)
    allowed = ", ".join(k.label_help for k in KINDS.values())
    raise ConfigError("world", f"unknown world {name!r}; allowed: {allowed}.", value=name, allowed=allowed)


def learner_config(**fields: Any) -> PPOConfig:
    """The learner of an experiment: a :class:`~internalize.agents.ppo_config.PPOConfig` (defaults: SB3's PPO with
    the paper's CnnPolicy, lr 1e-4, one env, n_steps 2048) whose ``total_timesteps`` is left at 0, since each
    phase sets its own (``socialization_steps``, ``autonomy_steps``)."""
    return PPOConfig(**{"total_timesteps": 0, **fields})


@dataclass(frozen=True)
class Experiment:
    """One experiment of the paper (or a user's); see the module docstring for the protocol.

    Every field's help is in its metadata (``internalize schema`` prints it).
    """

    name: str = field(metadata=_help("identifier, also the output sub-directory (fig4b, my_experiment)"))
    title: str = field(metadata=_help("one line for the report"))
    socialization_world: WorldSpec = field(metadata=_help("where the caregiver teaches"))
    autonomy_worlds: tuple[WorldSpec, ...] = field(metadata=_help(
        "where each condition continues after socialization (one branch per world)"))
    conditions: tuple[str, ...] = field(metadata=_help(
        "conditions to run: caregiver | none | isr | frozen | frozen-continued, or your own (defined_conditions)"))
    socialization_steps: int = field(metadata=_help("environment steps per seed (rounded up to whole rollouts)"))
    autonomy_steps: int = field(metadata=_help("environment steps per seed and condition after socialization"))
    seeds: tuple[int, ...] = field(metadata=_help("root seeds; everything random in a run derives from its seed"))
    evaluation_episodes: int = field(default=100, metadata=_help(
        "held-out deterministic episodes per (condition, autonomy world); 0 = no evaluation"))
    learner: PPOConfig = field(default_factory=learner_config, metadata=_help(
        "the PPO learner's config (every PPOConfig setting; its total_timesteps is set per phase)"))
    isr: IsrConfig = field(default_factory=IsrConfig, metadata=_help(
        "the ISR: network, training and data (agents.isr_config; the world-, policy- and unit-dependent fields are "
        "filled in by the runner)"))
    utility: UtilityConfig = field(default_factory=UtilityConfig, metadata=_help(
        "how R_i enters the learner's utility while the caregiver is absent (social.utility; the step cost is the "
        "socialization world's)"))
    chunk_rollouts: int = field(default=10, metadata=_help(
        "rollouts per jitted chunk; progress, metrics and checkpoints happen between chunks"))
    figures: tuple[str, ...] = field(default=(), metadata=_help("report sections that use this experiment"))
    caregiver: Caregiver | tuple[Caregiver, ...] = field(default_factory=Caregiver, metadata=_help(
        "who pays R_s during socialization, for which event, how much, how reliably and when (social.caregiver); "
        "a tuple for several caregivers, each on its own schedule, R_s their sum"))
    defined_conditions: tuple[Condition, ...] = field(default=(), metadata=_help(
        "the experiment's own conditions (social.conditions), each listed by name in conditions"))
    probes: tuple[Probe, ...] = field(default=(), metadata=_help(
        "units run after evaluation on the socialization data and the full-data ISR (experiments.probes), e.g. "
        "the empathy probe; their rows join the results table"))

    def __post_init__(self) -> None:
        _require(isinstance(self.name, str) and self.name.replace("-", "").replace("_", "").isalnum(),
                 "name", self.name, "letters, digits, '-' and '_'")
        _require(isinstance(self.learner, PPOConfig), "learner", self.learner, "a PPOConfig")
        _require(isinstance(self.isr, IsrConfig), "isr", self.isr, "an IsrConfig (agents.isr_config)")
        _require(isinstance(self.utility, UtilityConfig), "utility", self.utility,
                 "a UtilityConfig (social.utility)")
        if self.learner.total_timesteps:  # each phase sets its own budget
            object.__setattr__(self, "learner", dataclasses.replace(self.learner, total_timesteps=0))
        defined = [c.name for c in self.defined_conditions]
        for name in defined:
            _require(name not in NAMED, "conditions", name, "a name other than the named conditions "
                     f"({' | '.join(NAMED)}), which are defined already")
            _require(name in self.conditions, f"conditions.{name}", name,
                     "a condition listed in the experiment's conditions (defined but not run)")
        _require(len(set(defined)) == len(defined), "conditions", defined, "no condition defined twice")
        for c in self.conditions:
            _require(c in NAMED or c in defined, "conditions[]", c, " | ".join([*NAMED, *defined]))
        _require(len(set(self.conditions)) == len(self.conditions), "conditions", self.conditions, "no repeats")
        _positive_int("socialization_steps", self.socialization_steps)
        if any(self.condition(c).learns for c in self.conditions):
            _positive_int("autonomy_steps", self.autonomy_steps)
        caregivers = as_caregivers(self.caregiver)
        for i, c in enumerate(caregivers):
            label = "caregiver" if len(caregivers) == 1 else f"caregiver[{i}]"
            try:
                c.presence.validate_for_budget(self.socialization_steps)
            except ConfigError as e:
                raise _in_presence(e, f"{label}.presence") from None
        world = self.socialization_world
        resolve_events(caregivers, world.own_event, world.env().events)  # names the allowed events if one is not
        for c in self.defined_conditions:
            try:
                if c.learns:
                    c.presence.validate_for_budget(self.autonomy_steps)
            except ConfigError as e:
                raise _in_presence(e, f"conditions.{c.name}.presence") from None
            if c.caregivers and len(c.caregivers) != len(caregivers):
                raise ConfigError(f"conditions.{c.name}.caregivers", f"{len(c.caregivers)} schedule(s) for "
                                  f"{len(caregivers)} caregiver(s); allowed: one per [[caregiver]] table.",
                                  value=c.caregivers, allowed=f"{len(caregivers)} schedules")
            for i, p in enumerate(c.caregivers):
                try:
                    p.validate_for_budget(self.autonomy_steps)
                except ConfigError as e:
                    raise _in_presence(e, f"conditions.{c.name}.caregivers[{i}]") from None
        # JAX's keys take 32-bit seeds: a larger one would be cut to its low bits and collide with another.
        _require(len(self.seeds) > 0 and all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**32
                                             for s in self.seeds)
                 and len(set(self.seeds)) == len(self.seeds), "seeds", self.seeds,
                 "distinct integers in [0, 2**32 - 1]")
        _require(isinstance(self.evaluation_episodes, int) and self.evaluation_episodes >= 0,
                 "evaluation_episodes", self.evaluation_episodes, "a non-negative integer")
        _positive_int("chunk_rollouts", self.chunk_rollouts)
        names = [w.name for w in self.autonomy_worlds]
        kinds = {self.socialization_world.kind} | {w.kind for w in self.autonomy_worlds}
        # The autonomous phase continues the socialization model: observations and actions must agree.
        _require(len(kinds) == 1, "autonomy_worlds", names,
                 f"worlds of the socialization world's kind ({self.socialization_world.kind!r})")
        _require(len(set(names)) == len(names), "autonomy_worlds", names, "distinct world names")
        if any(self.condition(c).learns for c in self.conditions):
            _require(len(self.autonomy_worlds) > 0, "autonomy_worlds", names, "at least one world")
        for probe in self.probes:
            _require(isinstance(probe, Probe), "probes[]", probe, "probes (experiments.probes.Probe)")
            probe.check(self)
        _require(len({p.kind for p in self.probes}) == len(self.probes), "probes", [p.kind for p in self.probes],
                 "each kind once (a probe is one unit)")
        for n in self.isr.data_sizes:
            _require(n <= self.socialization_steps, "isr.data_sizes[]", n,
                     f"at most socialization_steps = {self.socialization_steps}")

    def condition(self, name: str) -> Condition:
        """The record of a condition of this experiment (its own definition, or a named one)."""
        for c in self.defined_conditions:
            if c.name == name:
                return c
        return NAMED[name]

    def with_seeds(self, n: int) -> Experiment:
        """The same experiment with the first ``n`` seeds of ``seeds``, or all of them followed by the next integers
        after the largest (paper seeds 1234–1243 with n = 12: 1234–1245)."""
        _positive_int("seeds", n)
        top = max(self.seeds)
        seeds = self.seeds[:n] if n <= len(self.seeds) else (
            *self.seeds, *range(top + 1, top + 1 + n - len(self.seeds)))
        return dataclasses.replace(self, seeds=seeds)

    def to_dict(self) -> dict[str, Any]:
        """Every field's value (nested configs as tables, probes with their kind): what a manifest records, so that
        it says in full what a run was started with."""
        out = dataclasses.asdict(self)
        if self.probes:
            out["probes"] = [probe_to_dict(p) for p in self.probes]
        return out

    def identity(self) -> dict[str, Any]:
        """What decides whether stored work belongs to this experiment (``experiments.identity``): the values that
        differ from their defaults, so a setting added later at a default that keeps the old behaviour changes
        nothing; probes with their kind."""
        fields_ = identity_fields(self)
        if self.probes:
            fields_["probes"] = [{"kind": p.kind, **identity_fields(p)} for p in self.probes]
        return identity(fields_)

    @classmethod
    def identity_of(cls, config: dict[str, Any]) -> dict[str, Any]:
        """The :meth:`identity` of the experiment a stored config (:meth:`to_dict`, as JSON) describes, as this
        version reads it; ``ValueError`` if it cannot (a field this version does not know, a value it refuses)."""
        return cls.from_dict(config).identity()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Experiment:
        """The Experiment a manifest's ``config`` (:meth:`to_dict`, as JSON) describes; ``ValueError`` naming the
        first key this version does not know (a run made by another version)."""
        if not isinstance(data, dict) or not data.get("probes"):
            return _from_dict(cls, data, "config")
        probes = []
        for i, entry in enumerate(data["probes"]):
            fields_ = {k: v for k, v in entry.items() if k != "kind"}
            probes.append(_from_dict(probe_class(entry.get("kind", "")), fields_, f"config.probes[{i}]"))
        return dataclasses.replace(_from_dict(cls, {**data, "probes": []}, "config"), probes=tuple(probes))


def _in_presence(error: ConfigError, where: str) -> ConfigError:
    """A presence schedule's ``error`` (its key is the schedule's field) with the key in full
    (``caregiver.presence.switch_step``); the message is ``WHERE: `` + the schedule's own."""
    return ConfigError(f"{where}.{error.key}", error.detail, value=error.value, allowed=error.allowed, where=where,
                       label=error.heading)


def dataclass_from_dict(cls: type, data: Any, where: str = "config") -> Any:
    """A config dataclass from its ``dataclasses.asdict`` form read back from JSON; ``ValueError`` naming the first
    key this version does not know. Absent fields take their defaults."""
    return _from_dict(cls, data, where)


def _from_dict(cls: type, data: Any, where: str) -> Any:
    """A dataclass from its ``asdict`` form: nested dataclasses, tuples (JSON lists) and optional values."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a table of {cls.__name__}'s fields, got {data!r}.")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where}.{unknown[0]}: not a field of {cls.__name__} in this version of internalize.")
    return cls(**{k: _from_value(hints[k], v, f"{where}.{k}") for k, v in data.items()})


def _from_value(tp: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(tp):
        return _from_dict(tp, value, where)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is tuple:
        return tuple(_from_value(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        options = [a for a in args if a is not type(None)]
        # One value or several (a JSON list): the union's tuple member takes the list.
        sequence = [a for a in options if typing.get_origin(a) is tuple]
        chosen = sequence[0] if isinstance(value, list) and sequence else next(
            a for a in options if typing.get_origin(a) is not tuple)
        return _from_value(chosen, value, where)
    return value
