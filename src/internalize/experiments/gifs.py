"""GIFs of each condition's trained learner after the caregiver left, for the report.

:func:`learner_gifs` runs, for every condition of an experiment, the run's first seed's learner greedily (as the
held-out evaluation does) on the first autonomy world, from the same layouts for every condition, and writes
``OUT/NAME/gifs/<condition>.gif`` (two episodes, at most ``max_steps`` steps, small tiles: the report embeds them
and stays self-contained). The runner calls it with the trained parameters it holds at the end of a run;
``internalize play --from`` shows any other seed, condition or world.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax

from internalize.agents.evaluate import policy_trajectory
from internalize.experiments import phases
from internalize.experiments.spec import Experiment
from internalize.worlds.render import save_gif


def learner_gifs(exp: Experiment, finals: dict[tuple[str, str], Any], gif_dir: str | Path, *, tile_size: int = 24,
                 fps: float = 6.0, max_steps: int = 120) -> list[Path]:
    """Write ``gif_dir/<condition>.gif`` for every condition (see the module docstring); ``finals``: the runner's
    ``(condition, world) -> seed-batched parameters``. Nothing for an experiment without autonomy."""
    if not exp.autonomy_worlds:
        return []
    spec, seed = exp.autonomy_worlds[0], exp.seeds[0]
    env, world_params = phases.env(exp), phases.world_params(exp, spec)
    network = phases.policy_network(exp)
    steps = min(2 * int(world_params.max_steps), max_steps)
    run = jax.jit(lambda p, k: policy_trajectory(network.apply, p, env, world_params, k, steps))
    written = []
    for condition in exp.conditions:
        if (condition, spec.name) not in finals:
            continue
        params = jax.tree.map(lambda x: x[0], finals[(condition, spec.name)])
        states = jax.device_get(run(params, jax.random.key(seed)).states)  # the same layouts for every condition
        frames = spec.record.render(jax.tree.map(lambda x: x[:, 0], states), tile_size, world_params)
        written.append(Path(save_gif(frames, Path(gif_dir) / f"{condition}.gif", fps)))
    return written
