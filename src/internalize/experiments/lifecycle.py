"""One lifecycle for every unit of an experiment: skip it if finished, reuse a shared identical one, compute it,
store it atomically, publish it.

A *unit* is a phase of all of an experiment's seeds (socialization, the ISRs, one autonomy program, evaluation):
a pure function of its inputs that returns a *product* (final training states, ISR parameters, or nothing) and
its rows of the results table. :func:`run_unit` is the only place that decides whether a unit is computed:

1. a unit whose rows verify (checksum and this configuration's identity, ``ResultsStore.unit_done``) and whose
   product loads from ``checkpoints/<unit>/final.ckpt`` is done: the product is loaded, nothing is computed;
2. a unit the output directory's ``.shared`` folder holds for identical inputs is copied in first
   (``SharedUnits.fetch``), and then loads as in 1;
3. otherwise ``compute()`` runs (a training unit resumes from its own partial checkpoint inside it), the product
   is checkpointed, then the rows are written — last, so a unit counts as done only once both are stored — and a
   shareable unit is published for the next experiment.

A stored product that fails its checksum is never used: its rows are set aside with a one-line warning and the
unit is computed again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import jax
import pandas as pd

from internalize.agents.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from internalize.experiments.phases import SeedKeys
from internalize.experiments.progress import Progress
from internalize.experiments.results import ResultsStore
from internalize.experiments.shared import SharedUnits
from internalize.experiments.spec import Experiment
from internalize.storage import CorruptFile


class UnitContext(Protocol):
    """What a unit needs of the run it belongs to (``experiments.runner.Runner`` provides it)."""

    exp: Experiment
    store: ResultsStore
    shared: SharedUnits
    reuse_shared: bool
    progress: Progress
    keys: SeedKeys
    world: Any  # the experiment's world object (every world of an experiment is of one kind)
    units: list[str]  # finished units, in order; run_unit appends each one's name
    log: Callable[[str], None]
    load_only: bool  # only load finished units' products (internalize play --from); never compute one


@dataclass(frozen=True)
class Shared:
    """How a shareable unit's rows travel through ``OUT/.shared``: ``publish`` turns this experiment's rows into
    the experiment-independent ones that are published; ``relabel`` turns those into this experiment's."""

    publish: Callable[[pd.DataFrame], pd.DataFrame]
    relabel: Callable[[pd.DataFrame], pd.DataFrame]


class Finished(NamedTuple):
    """A unit's product (None for a unit without one) and the metadata stored with it."""

    product: Any
    meta: dict


Compute = Callable[[], tuple[Any, pd.DataFrame, dict]]


def initial_state(ctx: UnitContext, init: Callable[..., Any], *args: Any) -> Any:
    """A unit's initial state, ``init(*args)`` (also the template its checkpoint loads into); only its shapes
    (``jax.eval_shape``) when the run only loads (``ctx.load_only``): the checkpoint fills them, and tracing alone
    compiles nothing."""
    return jax.eval_shape(init, *args) if ctx.load_only else init(*args)


def run_unit(ctx: UnitContext, unit: str, compute: Compute, *, template: Any = None,
             shared: Shared | None = None) -> Finished:
    """Run ``unit`` through its lifecycle (see the module docstring) and return its product.

    Args:
      unit: the unit's name (``socialization``, ``isr``, ``autonomy-blocks-3``, ``evaluation`` ...).
      compute: ``() -> (product, rows, meta)``; ``meta`` (JSON) is stored beside the product.
      template: a pytree shaped like the product, to load a stored one into; None for a unit without a product.
      shared: for a unit other experiments may share (socialization, ISR), how its rows are published.
    """
    if shared is None or ctx.load_only:
        return _run_unit(ctx, unit, compute, template, shared)
    # Two runs needing the same shared unit at once (seeds of a sweep's points on a cluster): one computes and
    # publishes it while the other waits, then takes it.
    with ctx.shared.lock(ctx.exp, unit):
        return _run_unit(ctx, unit, compute, template, shared)


def _run_unit(ctx: UnitContext, unit: str, compute: Compute, template: Any, shared: Shared | None) -> Finished:
    store, name = ctx.store, ctx.exp.name
    path = store.checkpoint_dir(unit) / "final.ckpt"
    if shared is not None and ctx.reuse_shared and not ctx.load_only and ctx.shared.fetch(ctx.exp, unit, store,
                                                                                          shared.relabel):
        ctx.log(f"{name}/{unit}: identical to a finished one in {ctx.shared.root}, reused")
    if store.unit_done(unit):
        if template is None:
            ctx.units.append(unit)
            return Finished(None, {})
        if path.exists():
            try:
                product, meta = load_checkpoint(path, template)
            except CheckpointError as err:  # the rows verify but the product does not: compute the unit again
                path.unlink()
                store.discard(store.unit_path(unit), CorruptFile(str(err)), f"recomputing unit {unit}")
            else:
                ctx.units.append(unit)
                ctx.log(f"{name}/{unit}: done, loaded")
                return Finished(product, meta)
    if ctx.load_only:
        raise LookupError(f"{store.dir}: unit {unit} is not finished, or its trained state was removed "
                          f"(internalize clean); run the experiment again (--force after a clean)")
    started = time.perf_counter()
    product, rows, meta = compute()
    if template is not None:
        save_checkpoint(path, product, meta, compress=True)  # kept after the run: a tenth of the disk
    store.write_unit(unit, rows, time.perf_counter() - started)
    if shared is not None:
        ctx.shared.publish(ctx.exp, unit, store, shared.publish(rows))
    ctx.units.append(unit)
    return Finished(product, meta)
