"""Watch a trained learner: any condition's learner of a finished experiment, on any of its worlds, as a GIF.

``internalize play --from OUT/EXPERIMENT [--condition C] [--seed S] [--world W]`` loads the experiment from its
manifest, the learner's parameters from its finished units (nothing is recomputed) and runs the greedy policy,
as the held-out evaluation does, on fresh layouts of the chosen world, rendered by the world's own renderer.
``--condition socialization`` shows the learner as the caregiver left it; any other condition its learner at the
end of the autonomous phase (``frozen`` is the socialized learner, on the autonomy world).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from internalize.agents.evaluate import policy_trajectory
from internalize.agents.networks import ActorCritic
from internalize.agents.scripted import Trajectory
from internalize.experiments import phases
from internalize.experiments.layout import trained
from internalize.experiments.runner import SOCIALIZATION
from internalize.experiments.spec import Experiment, WorldSpec
from internalize.storage import read_json_verified


class Watched(NamedTuple):
    """What was recorded: the trajectory (``(steps, 1, ...)`` arrays), its frames and what they show."""

    trajectory: Trajectory
    frames: list[np.ndarray]
    condition: str
    world: str
    seed: int
    kind: str  # the world's kind (worlds.kinds): what its rewarded event is


def load_experiment(run_dir: str | Path) -> Experiment:
    """The Experiment a finished (or started) run directory ``OUT/NAME`` was made from, read from its manifest."""
    run_dir = Path(run_dir)
    manifest = run_dir / "manifest.json"
    if not manifest.is_file():
        raise ValueError(f"--from: {run_dir} has no manifest.json; give OUT/EXPERIMENT, a directory "
                         "'internalize run' wrote (e.g. runs/fig4a).")
    exp = Experiment.from_dict(read_json_verified(manifest)["config"])
    if exp.name != run_dir.name:
        raise ValueError(f"--from: {run_dir} holds experiment {exp.name!r}; its directory must keep that name.")
    return exp


class Policy(NamedTuple):
    """One trained learner of a run: its network and parameters, and the world (and its parameters) it acts in."""

    exp: Experiment
    condition: str
    world: WorldSpec
    seed: int
    network: ActorCritic
    params: Any


def trained_policy(run_dir: str | Path, condition: str | None = None, seed: int | None = None,
                   world: str | None = None, log=lambda _: None) -> Policy:
    """Load one trained learner of the run in ``run_dir`` (see the module docstring).

    Defaults: the ``isr`` condition if the experiment has it (else its first), its first seed, and the
    condition's first world. Raises ``ValueError`` naming what is allowed for a choice the run does not have,
    ``LookupError`` when the learner's trained state is not there (unfinished, or cleaned).
    """
    run_dir = Path(run_dir)
    exp = load_experiment(run_dir)
    names = [*exp.conditions, SOCIALIZATION]
    condition = condition or ("isr" if "isr" in exp.conditions else names[0])
    if condition not in names:
        raise ValueError(f"--condition: {exp.name} has no condition {condition!r}; allowed: {' | '.join(names)}.")
    worlds = [exp.socialization_world] if condition == SOCIALIZATION else list(exp.autonomy_worlds)
    spec = worlds[0] if world is None else next((w for w in worlds if w.name == world), None)
    if spec is None:
        raise ValueError(f"--world: {condition!r} of {exp.name} ran on {' | '.join(w.name for w in worlds)}, "
                         f"not {world!r}.")
    seed = exp.seeds[0] if seed is None else seed
    if seed not in exp.seeds:
        raise ValueError(f"--seed: {exp.name} ran seeds {', '.join(map(str, exp.seeds))}, not {seed}.")
    finals = trained(exp, run_dir.parent, worlds=(spec.name,), log=log)
    params = jax.tree.map(lambda x: x[exp.seeds.index(seed)], finals[(condition, spec.name)])
    return Policy(exp, condition, spec, seed, phases.policy_network(exp), params)


def watch(run_dir: str | Path, condition: str | None = None, seed: int | None = None, world: str | None = None,
          steps: int = 40, tile_size: int = 32, log=lambda _: None) -> Watched:
    """Record ``steps`` greedy steps of one trained learner (:func:`trained_policy`) on fresh layouts of its world
    (the layouts' key is the seed's), with the world's renderer."""
    pol = trained_policy(run_dir, condition, seed, world, log)
    env, world_params = phases.env(pol.exp), phases.world_params(pol.exp, pol.world)
    run = jax.jit(lambda p, k: policy_trajectory(pol.network.apply, p, env, world_params, k, steps))
    trajectory = jax.device_get(run(pol.params, jax.random.key(pol.seed)))
    frames = pol.world.record.render(jax.tree.map(lambda x: x[:, 0], trajectory.states), tile_size, world_params)
    return Watched(trajectory, frames, pol.condition, pol.world.name, pol.seed, pol.world.kind)


def summary(w: Watched) -> dict[str, Any]:
    """Goals reached and the caregiver's reward (R_e + R_s) over the recorded steps."""
    ch = w.trajectory.channels
    return {"steps": int(np.asarray(w.trajectory.actions).shape[0]), "goals": int(np.asarray(ch.event).sum()),
            "caregiver_return": float(np.asarray(ch.extrinsic + ch.social).sum())}
