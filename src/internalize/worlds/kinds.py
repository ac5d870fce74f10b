"""World kinds as data: one record per world says everything the rest of the library needs to know about it.

An experiment's world (``experiments.spec.WorldSpec``) names a *kind*; the spec, the file schema, the command line
(``internalize play``), the report's GIFs and the Gymnasium adapters all read the kind's :class:`WorldKind`
record here instead of branching on its name. Adding a world is its module (a pure ``reset``/``step`` world with a
``make_params``, in the gymnax style) plus one record in :data:`KINDS` (and a renderer, if it draws something new).

References to code are ``"module:attribute"`` strings, imported when first used (:func:`load`), so reading the
records (``internalize schema``, validating a file) imports no world and no JAX program.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from internalize.config_error import ConfigError


def load(ref: str) -> Any:
    """The attribute a ``"module:attribute"`` reference names (imported now)."""
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class WorldKind:
    """One kind of world: its code, which ``WorldSpec`` fields it reads, how it is drawn and shown.

    Attributes:
      name: the kind as a file writes it (``kind = "two-goal"``).
      about: one line for ``internalize schema`` (what the world is).
      world: ``"module:Class"`` of the world (a ``worlds.base.World``; constructed without arguments).
      make_params: ``"module:function"`` building the world's validated parameters.
      fields: the ``WorldSpec`` fields the kind reads -> what each means in this world (the schema's help); every
        other field must stay at its default in a world of this kind.
      params: ``WorldSpec``-like object -> keyword arguments of ``make_params`` (the spec's fields by their
        ``make_params`` names).
      own_event: spec -> the event its own R_s is paid for (what an empty ``caregiver.event`` means).
      frames: ``"module:function"`` ``(states, tile_size, params) -> list of RGB frames`` for a stacked state.
      event_noun: what ``internalize play`` calls its rewarded event in a summary (``goal(s)``).
      play: ``(blocks, map) -> make_params keyword arguments`` for ``internalize play``'s ``--blocks``/``--map``;
        raises ``ValueError`` naming an option the world has not.
      scripted: ``"module:policy"`` of its scripted agent (``internalize play``'s default), or "" (random only).
      gym_id: its Gymnasium id (``worlds.gym_registry``).
      labels: a short label (``blocks-3``, ``prosocial``) -> the ``WorldSpec`` fields it stands for (``kind``
        included), or None when the label is not one of this kind's (``experiments.spec.world``).
      label_help: the labels the kind reads, for the message that refuses an unknown one.
      hints: field -> a hint added when a world of this kind sets it (``use n_walls``).
    """

    name: str
    about: str
    world: str
    make_params: str
    fields: dict[str, str]
    params: Callable[[Any], dict[str, Any]]
    own_event: Callable[[Any], str]
    frames: str
    event_noun: str
    play: Callable[[int | None, str | None], dict[str, Any]]
    labels: Callable[[str], dict[str, Any] | None]
    label_help: str
    scripted: str = ""
    gym_id: str = ""
    hints: dict[str, str] = field(default_factory=dict)

    def env(self) -> Any:
        """A new world object of this kind."""
        return load(self.world)()

    def build_params(self, spec: Any) -> Any:
        """The world's parameters for a ``WorldSpec`` of this kind (``ConfigError`` from ``make_params``)."""
        return load(self.make_params)(**self.params(spec))

    def render(self, states: Any, tile_size: int, params: Any) -> list:
        """RGB frames of a stacked state (leading time axis)."""
        return load(self.frames)(states, tile_size, params)


def _grid_params(spec: Any) -> dict[str, Any]:
    return {"n_blocks": spec.n_blocks, "map": spec.map, "check_reachable": spec.check_reachable}


def _goal(spec: Any) -> str:
    return "goal"


def _no_map(world: str) -> Callable[[int | None, str | None], dict[str, Any]]:
    def check(blocks: int | None, map_name: str | None) -> dict[str, Any]:
        if map_name is not None:
            raise ValueError(f"--map: the {world} world has no fixed maps; allowed: navigation, two-goal.")
        return {} if blocks is None else {"n_blocks": blocks}

    return check


def _play_grid(default_blocks: int) -> Callable[[int | None, str | None], dict[str, Any]]:
    def options(blocks: int | None, map_name: str | None) -> dict[str, Any]:
        return {"n_blocks": (0 if map_name else default_blocks) if blocks is None else blocks, "map": map_name}

    return options


def _play_prosocial(blocks: int | None, map_name: str | None) -> dict[str, Any]:
    if map_name is not None:
        raise ValueError("--map: the prosocial world has no fixed maps; allowed: navigation, two-goal.")
    if blocks is not None:
        raise ValueError("--blocks: the prosocial world's walls come from its layout bank; leave it unset.")
    return {}


def _navigation_label(label: str) -> dict[str, Any] | None:
    from internalize.worlds.layouts import PAPER_MAPS

    if label.startswith("blocks-") and label[7:].isdigit():
        return {"n_blocks": int(label[7:])}
    return {"map": label} if label in PAPER_MAPS else None


def _prosocial_label(label: str) -> dict[str, Any] | None:
    named = {"prosocial": {}, "prosocial-instrumental": {"rewarded_event": "boulder_lift"}}
    return {"kind": "prosocial", **named[label]} if label in named else None


#: Random blocks of the peer world's labels (``peer-SIMILARITY-VIEW``).
PEER_BLOCKS = 2


def _peer_label(label: str) -> dict[str, Any] | None:
    parts = label.split("-")
    if parts[0] != "peer" or len(parts) != 3:
        return None
    return {"kind": "peer", "n_blocks": PEER_BLOCKS, "similarity": parts[1], "view": parts[2]}


def _two_goal_label(label: str) -> dict[str, Any] | None:
    if label == "two-goal":
        return {"kind": "two-goal", "n_blocks": 1}
    head, _, blocks = label.rpartition("-")
    return {"kind": "two-goal", "n_blocks": int(blocks)} if head == "two-goal-blocks" and blocks.isdigit() else None


def _prosocial_params(spec: Any) -> dict[str, Any]:
    extra = {} if spec.n_walls is None else {"n_walls": spec.n_walls}
    return {"layout": spec.map, "drop": spec.drop, "helper": spec.helper, "rewarded_event": spec.rewarded_event,
            **extra}


def _peer_params(spec: Any) -> dict[str, Any]:
    return {"n_blocks": spec.n_blocks, "similarity": spec.similarity, "view": spec.view,
            "peer_noise": spec.peer_noise}


_RENDER = "internalize.worlds.render"
_BLOCKS = "random blocks per layout (0..8), added on a map's free cells"
_MAP = "a built-in map name or an ASCII map (rows of '#' and '.'); unset = an open 5x5 interior"
_REACHABLE = "redraw layouts whose goal is unreachable (false = the reference code)"

#: Every world kind, by name.
KINDS: dict[str, WorldKind] = {k.name: k for k in (
    WorldKind(
        name="navigation", about="the paper's goal-reaching world",
        world="internalize.worlds.navigation:Navigation", make_params="internalize.worlds.navigation:make_params",
        fields={"n_blocks": _BLOCKS, "map": _MAP, "check_reachable": _REACHABLE},
        params=_grid_params, own_event=_goal, frames=f"{_RENDER}:render_frames", event_noun="goal(s)",
        play=_play_grid(3), scripted="internalize.agents.scripted:shortest_path_policy",
        labels=_navigation_label, label_help="blocks-N (N in 0..8), one of plus, x, U, T, four_rooms",
        gym_id="internalize/Navigation-v0"),
    WorldKind(
        name="prosocial", about="move a boulder so that a helped agent reaches its goal (Figure 7)",
        world="internalize.worlds.prosocial:Prosocial", make_params="internalize.worlds.prosocial:make_params",
        fields={"map": "a layout of '# . B H G L' (wall, free, boulder, helped agent, goal, learner); unset = the "
                       "generated bank of tree layouts",
                "n_walls": "interior walls of the generated layouts (unset = the paper's 7)",
                "drop": "place (paper) or noop (the reference's drop that loses the boulder)",
                "helper": "the helped agent's planner, shortest (paper) or reference-dfs (plans through the boulder)",
                "rewarded_event": "what the caregiver pays for, helped_goal (prosocial) or boulder_lift "
                                  "(instrumental)"},
        params=_prosocial_params, own_event=lambda spec: spec.rewarded_event,
        frames=f"{_RENDER}:render_prosocial_frames", event_noun="helped-agent goal(s)", play=_play_prosocial,
        labels=_prosocial_label, label_help="prosocial, prosocial-instrumental",
        gym_id="internalize/Prosocial-v0", hints={"n_blocks": "use n_walls"}),
    WorldKind(
        name="peer", about="navigation beside a scripted peer that walks to the goal too (the empathy probe)",
        world="internalize.worlds.peer:PeerNavigation", make_params="internalize.worlds.peer:make_params",
        fields={"n_blocks": "random blocks per episode (0..6)",
                "similarity": "how the peer looks, identical to the learner, colour (same kind, blue) or kind "
                              "(a blue ball)",
                "view": "egocentric (the paper's crop) or allocentric (the whole grid with a self marker)",
                "peer_noise": "probability that the peer takes a random action instead of a shortest-path one"},
        params=_peer_params, own_event=_goal, frames=f"{_RENDER}:render_peer_frames", event_noun="goal(s)",
        play=_no_map("peer"), scripted="internalize.agents.scripted:shortest_path_policy",
        labels=_peer_label, label_help="peer-SIMILARITY-VIEW (e.g. peer-identical-allocentric)",
        gym_id="internalize/Peer-v0",
        hints={"map": "the peer world draws its blocks at random and always keeps the goal reachable",
               "check_reachable": "the peer world always keeps the goal reachable"}),
    WorldKind(
        name="two-goal", about="navigation with a green and a blue goal, each its own event (conflicting "
                               "caregivers)",
        world="internalize.worlds.two_goal:TwoGoal", make_params="internalize.worlds.two_goal:make_params",
        fields={"n_blocks": _BLOCKS, "map": _MAP, "check_reachable": "redraw layouts where either goal is "
                                                                       "unreachable"},
        params=_grid_params, own_event=_goal, frames=f"{_RENDER}:render_two_goal_frames",
        event_noun="goal(s) (green or blue)", play=_play_grid(1),
        scripted="internalize.worlds.two_goal:nearest_goal_policy", labels=_two_goal_label,
        label_help="two-goal (1 block), two-goal-blocks-N", gym_id="internalize/TwoGoal-v0"),
)}


def kind(name: str, where: str | None = None) -> WorldKind:
    """The record of kind ``name``; ``ConfigError`` (key ``kind``) naming the kinds for another."""
    if name not in KINDS:
        raise ConfigError.got("kind", name, " | ".join(KINDS), where=where)
    return KINDS[name]


def field_help(name: str) -> str:
    """A ``WorldSpec`` field's help: what it means in each kind that reads it (``navigation: ...; peer: ...``)."""
    return "; ".join(f"{k.name}: {k.fields[name]}" for k in KINDS.values() if name in k.fields)


def kinds_help() -> str:
    """The ``kind`` field's help: every kind with what it is."""
    return "; ".join(f"{k.name}: {k.about}" for k in KINDS.values())
