"""The worlds' Gymnasium ids, registered by ``import internalize`` (as ``import minigrid`` registers its own).

Only ids and entry-point strings live here, so registering imports neither JAX nor the environments: Gymnasium
imports :mod:`internalize.worlds.gym` when ``gymnasium.make`` first builds one of them.

* ``internalize/Navigation-v0`` — the navigation world with 3 random blocks per layout (Figs 1b, 4a);
* ``internalize/NavigationMap-v0`` — a fixed map (``map="T"`` by default; pass ``map=`` to ``gymnasium.make``);
* ``internalize/Prosocial-v0`` — the prosocial world of Fig 7;
* ``internalize/Peer-v0`` — the empathy probe's two-agent world (a scripted peer walks to the goal too);
* ``internalize/TwoGoal-v0`` — navigation with a green and a blue goal, 1 random block per layout.
"""

from __future__ import annotations

from typing import Any

__all__ = ["GYM_IDS", "register"]

# id -> (entry point, default kwargs)
GYM_IDS: dict[str, tuple[str, dict[str, Any]]] = {
    "internalize/Navigation-v0": ("internalize.worlds.gym:NavigationEnv", {"n_blocks": 3}),
    "internalize/NavigationMap-v0": ("internalize.worlds.gym:NavigationEnv", {"map": "T", "n_blocks": 0}),
    "internalize/Prosocial-v0": ("internalize.worlds.gym:ProsocialEnv", {}),
    "internalize/Peer-v0": ("internalize.worlds.gym:PeerEnv", {}),
    "internalize/TwoGoal-v0": ("internalize.worlds.gym:TwoGoalEnv", {}),
}


def register() -> None:
    """Register every id in :data:`GYM_IDS` with Gymnasium (idempotent; a no-op without Gymnasium)."""
    try:
        import gymnasium
    except ImportError:  # Gymnasium is a dependency, but the package's core does not need it
        return
    for env_id, (entry_point, kwargs) in GYM_IDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=entry_point, kwargs=dict(kwargs))
