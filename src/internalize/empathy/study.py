"""The ``empathy`` study: does a learnt reward model reward *another* agent's goal reaching, and when?

Beyond the paper. The study is an instrument, validated before it is read (``analysis.empathy_section``):

Data. Per seed, a scripted epsilon-greedy shortest-path learner (``empathy.data``) acts in the allocentric peer
world with the ``rgb`` colour encoding (``worlds.peer``), where self and other differ only in colour and in the
self-marker channel; the peer is blue while the caregiver teaches, so the input weights of both colours are
trained. Two arms: ``exposed`` (the peer walks to the goal and takes it, unpaid, in view) and ``naive`` (it walks
at random and never enters the goal).

Models (``probe_model``; ``empathy.reward_model``, the ISR's network and optimizer): ``isr`` -- trained on the
learner's own paid and unpaid samples, at every width of ``widths`` (capacity) in the exposed arm and at ``width``
in the naive arm; the controls at ``width``, exposed: ``positive-control`` (the caregiver also pays for the peer's
goals: peer samples marked on the peer, paid), ``negative-control`` (the same peer samples, never paid: explicit
negatives), ``untrained`` (fresh parameters: the null); and the hand-built calibrations ``oracle-own`` (index 0)
and ``oracle-any`` (index 1). Every learned ISR is trained by the same stopping rule
(``empathy.reward_model.train_to_convergence``): in chunks of ``check_every`` updates until, for every seed, another
``converge_window`` updates explained less than ``converge_tol`` more of the held-out payments' variance (at most
``isr.n_updates``); each model is read at its last checkpoint, and at ``width`` at every checkpoint (the time
course).

Stimuli: each seed's held-out layouts along two continua (``empathy.instrument``): appearance (the peer's colour
from the learner's red to the taught blue, ``appearance_levels`` steps, identity 0) and identity (the self-marker's
value on the peer, ``identity_levels`` steps, at appearance 1).

World models (``world-model``; ``empathy.world_model``): per latent size in ``world_model_latents``, a next-observation
predictor trained without reward on the exposed arm's data, and a reward head on its frozen code, trained like an
ISR but for a fixed budget (``world_model_head_updates`` updates at ``world_model_head_lr``, in ``n_checkpoints``
chunks); its rows carry the latent size as ``width``.

Units (each computed once, resumable): ``capacity`` (the exposed isr at every width), ``naive``, ``controls``,
``world-model``.
Randomness: a seed's data, training and stimuli derive from ``key(seed)`` by fixed tags.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd

from internalize.agents.isr import isr_init_params
from internalize.agents.isr_config import IsrConfig
from internalize.empathy import instrument as ins
from internalize.empathy import probe as stim
from internalize.empathy import reward_model as rm
from internalize.empathy import world_model as wm
from internalize.empathy.data import collect
from internalize.empathy.unit import stimulus_key
from internalize.experiments.identity import identity, identity_fields
from internalize.experiments.paper import PAPER_SEEDS
from internalize.experiments.results import ResultsStore, rows_frame
from internalize.experiments.spec import dataclass_from_dict
from internalize.seeding import offset_seeds
from internalize.seeding import seed_offset as env_seed_offset
from internalize.worlds.kinds import PEER_BLOCKS
from internalize.worlds.peer import SELF_CHANNEL, PeerParams, make_params

WORLD = "peer-rgb-allocentric"
MAIN_CELL = ins.Cell(1.0, 0.0)
UNITS = ("capacity", "naive", "controls", "world-model")
_TAG_DATA = {"exposed": 1, "naive": 2}
_TAG_TRAIN, _TAG_INIT, _TAG_WORLD = 3, 4, 5


def _isr() -> IsrConfig:
    return IsrConfig(network="reference", encoding="onehot", batch_size=64, n_updates=32000, obs_scale=0.1,
                     self_channel=SELF_CHANNEL)


@dataclass(frozen=True)
class EmpathyStudy:
    """The empathy study as data; validated at construction (see the module docstring)."""

    name: str = "empathy"
    title: str = "Empathy: does a learnt reward model reward another agent's goal reaching?"
    seeds: tuple[int, ...] = PAPER_SEEDS + tuple(range(1244, 1250))
    n_blocks: int = PEER_BLOCKS
    peer_noise: float = field(default=0.2, metadata={"help": "the exposed arm's peer: random-action probability"})
    epsilon: float = field(default=0.2, metadata={"help": "the scripted learner's random-action probability"})
    n_envs: int = field(default=16, metadata={"help": "parallel worlds of the data source"})
    n_steps: int = field(default=2048, metadata={"help": "steps of each world: n_envs * n_steps samples per seed"})
    widths: tuple[float, ...] = field(default=(0.25, 0.5, 1.0, 2.0, 4.0), metadata={"help": "ISR capacities"})
    width: float = field(default=1.0, metadata={"help": "the width of the naive arm, the controls and the time "
                                                "course; one of widths"})
    isr: IsrConfig = field(default_factory=_isr, metadata={"help": "the reward models' network and training "
                                                          "(n_updates: the most any ISR trains)"})
    check_every: int = field(default=1000, metadata={"help": "updates between an ISR's checkpoints (the stopping "
                                                      "rule's and the time course's step)"})
    converge_window: int = field(default=2000, metadata={"help": "stopping rule: updates over which the held-out "
                                                          "fit must have stopped improving"})
    converge_tol: float = field(default=1e-3, metadata={"help": (
        "stopping rule: the most the held-out MSE may still fall over the window, as a fraction of the held-out "
        "payments' variance")})
    n_checkpoints: int = field(default=8, metadata={"help": "chunks of the world models' reward heads (read at "
                                                    "the last)"})
    world_model_latents: tuple[int, ...] = field(default=(64, 256), metadata={"help": (
        "latent sizes of the world models whose frozen codes get a reward head (empty: none)")})
    world_model_updates: int = field(default=8000, metadata={"help": "updates of each world model"})
    world_model_head_updates: int = field(default=8000, metadata={"help": (
        "updates of the reward head on a frozen world model (a multiple of n_checkpoints)")})
    world_model_head_lr: float = field(default=1e-3, metadata={"help": "the reward head's learning rate"})
    appearance_levels: int = 6
    identity_levels: int = 6
    n_stimuli: int = 256
    min_rewarded: int = 1000
    min_heldout_r: float = 0.9
    min_own_gap: float = 0.1
    equivalence_margin: float = field(default=0.2, metadata={"help": "|index| below this is 'no empathy' (TOST)"})
    figures: tuple[str, ...] = ("empathy",)

    def __post_init__(self) -> None:
        def bad(name: str, allowed: str) -> ValueError:
            return ValueError(f"{name}: got {getattr(self, name)!r}; allowed: {allowed}.")

        if len(self.seeds) < 2 or len(set(self.seeds)) != len(self.seeds):
            raise bad("seeds", "at least 2 distinct seeds (CIs and paired tests)")
        if not self.widths or len(set(self.widths)) != len(self.widths) or any(
                not isinstance(w, (int, float)) or isinstance(w, bool) or not 0 < w <= 64 for w in self.widths):
            raise bad("widths", "distinct numbers in (0, 64]")
        if self.width not in self.widths:
            raise bad("width", f"one of widths {self.widths!r}")
        if self.isr.network not in ("reference", "mlp"):
            raise bad("isr", "an IsrConfig with network 'reference' or 'mlp' (latents are read from them)")
        if any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in self.world_model_latents):
            raise bad("world_model_latents", "positive integers")
        for name, low in (("n_envs", 1), ("n_steps", 1), ("n_checkpoints", 2), ("appearance_levels", 2),
                          ("check_every", 1), ("converge_window", 1),
                          ("world_model_updates", 100), ("world_model_head_updates", 1),
                          ("identity_levels", 2), ("n_stimuli", 4), ("min_rewarded", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise bad(name, f"an integer >= {low}")
        if self.isr.n_updates is None or self.isr.n_updates % self.check_every:
            raise bad("isr", f"an IsrConfig whose n_updates is a multiple of check_every ({self.check_every})")
        if self.converge_window < self.check_every:
            raise bad("converge_window", f"at least check_every ({self.check_every})")
        if not 0 < self.converge_tol < 1:
            raise bad("converge_tol", "a number in (0, 1)")
        if self.world_model_head_updates % self.n_checkpoints:
            raise bad("world_model_head_updates", f"a multiple of n_checkpoints ({self.n_checkpoints})")
        if not 0 < self.world_model_head_lr <= 1:
            raise bad("world_model_head_lr", "a number in (0, 1]")
        for name in ("peer_noise", "epsilon"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise bad(name, "a probability in [0, 1]")
        self.world_params("exposed")  # validates the world now, before anything runs

    # --- the world and the cells ------------------------------------------------------------------------------

    def world_params(self, arm: str) -> PeerParams:
        """The data world of ``arm``: exposed (the blue peer takes goals) or naive (it walks at random, never
        entering the goal)."""
        naive = arm == "naive"
        return make_params(self.n_blocks, similarity="colour", view="allocentric", colours="rgb",
                           peer_noise=1.0 if naive else self.peer_noise, peer_enters_goal=not naive)

    def cells(self) -> list[ins.Cell]:
        """The appearance continuum at identity 0, then the identity continuum at appearance 1; both pass through
        the main cell, :data:`MAIN_CELL` (1, 0): the peer as it looked while the caregiver taught."""
        a = [ins.Cell(float(x), 0.0) for x in np.linspace(0, 1, self.appearance_levels)]
        return a + [ins.Cell(1.0, float(x)) for x in np.linspace(0, 1, self.identity_levels)[1:]]

    def thresholds(self) -> ins.Thresholds:
        return ins.Thresholds(self.min_rewarded, self.min_heldout_r, self.min_own_gap)

    # --- identity (as experiments) ----------------------------------------------------------------------------

    def with_seeds(self, n: int) -> EmpathyStudy:
        """The same study with the first ``n`` seeds (or more, continuing the sequence)."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 2:
            raise ValueError(f"seeds: got {n!r}; allowed: an integer >= 2.")
        seeds = self.seeds[:n] + tuple(range(self.seeds[-1] + 1, self.seeds[-1] + 1 + max(0, n - len(self.seeds))))
        return dataclasses.replace(self, seeds=seeds)

    def to_dict(self) -> dict[str, Any]:
        """Every field's value and the world, as the manifest records them."""
        return {**dataclasses.asdict(self), "socialization_world": {"name": WORLD}, "autonomy_worlds": []}

    def identity(self) -> dict[str, Any]:
        return identity(identity_fields(self))

    @classmethod
    def identity_of(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """The :meth:`identity` of a stored :meth:`to_dict`; ``ValueError`` if this version cannot read it."""
        fields_ = {k: v for k, v in config.items() if k not in ("socialization_world", "autonomy_worlds")}
        return dataclass_from_dict(cls, fields_).identity()


def empathy_study(preset: str = "quick", seed_offset: int | None = None) -> EmpathyStudy:
    """The study under ``preset``: ``paper`` (16 seeds, 32k samples per seed, ISRs trained to convergence within
    64,000 updates, world models 16,000) or ``quick`` (8 seeds, 16k samples, ISRs to convergence within 32,000
    updates; under 30 minutes on 2 cores). ``seed_offset`` K shifts every seed
    (None: ``$INTERNALIZE_SEED_OFFSET``)."""
    k = env_seed_offset() if seed_offset is None else env_seed_offset(seed_offset)
    base = EmpathyStudy()
    if preset == "paper":  # more data, and more updates where convergence needs them
        return dataclasses.replace(base, seeds=offset_seeds(base.seeds, k),
                                   isr=dataclasses.replace(base.isr, n_updates=64000), world_model_updates=16000,
                                   world_model_head_updates=16000)
    if preset == "quick":
        return dataclasses.replace(base, seeds=offset_seeds(base.seeds[:8], k), n_steps=1024)
    raise ValueError(f"preset: unknown preset {preset!r}; allowed: quick | paper.")


# --- computing ------------------------------------------------------------------------------------------------

def _keys(seeds: tuple[int, ...], tag: int) -> jax.Array:
    return jax.numpy.stack([jax.random.fold_in(jax.random.key(s), tag) for s in seeds])


def _data(study: EmpathyStudy, arm: str):
    params = study.world_params(arm)
    run = jax.jit(jax.vmap(lambda k: collect(params, k, study.n_envs, study.n_steps, study.epsilon)))
    return run(_keys(study.seeds, _TAG_DATA[arm]))


def _train(study: EmpathyStudy, samples: Any, peer: str, width: float,
           log: Callable[[str], None] = lambda _: None) -> rm.Trained:
    """One ISR per seed, trained by the study's stopping rule."""
    config = dataclasses.replace(study.isr, width=float(width))
    goal_reward = float(study.world_params("exposed").goal_reward)
    data = jax.vmap(lambda s: rm.training_data(s, peer, goal_reward))(samples)
    return rm.train_to_convergence(config, data, _keys(study.seeds, _TAG_TRAIN), study.check_every, config.n_updates,
                                   study.converge_window, study.converge_tol, log)


class _Cells:
    """Every cell's stimuli (or only ``cells``) for the study's seeds, built once per run."""

    def __init__(self, study: EmpathyStudy, cells: list[ins.Cell] | None = None):
        params = study.world_params("exposed")
        bases = [stim.build_stimuli(params, stimulus_key(s), study.n_stimuli) for s in study.seeds]
        scale = float(study.isr.obs_scale)
        self.cells = {c: ins.cell_stimuli(bases, params, c, scale) for c in (cells or study.cells())}


class _Inputs:
    """What the units of one run share, computed on first use: the cells' stimuli and each arm's data."""

    def __init__(self, study: EmpathyStudy):
        self.study = study
        self._cells: _Cells | None = None
        self._data: dict[str, Any] = {}

    @property
    def cells(self) -> _Cells:
        if self._cells is None:
            self._cells = _Cells(self.study)
        return self._cells

    def data(self, arm: str) -> Any:
        if arm not in self._data:
            self._data[arm] = _data(self.study, arm)
        return self._data[arm]


def _rows(study: EmpathyStudy, label: str, width: float, arm: str, step: int,
          readings: dict[ins.Cell, list[dict[str, float]]], extra: dict[str, np.ndarray]) -> list[dict]:
    rows = []
    for cell, per_seed in readings.items():
        cond = ins.condition(label, width, arm, cell)
        for i, seed in enumerate(study.seeds):
            values = {**per_seed[i], **{k: float(v[i]) for k, v in extra.items()}}
            rows += [{"experiment": study.name, "condition": cond, "world": WORLD, "seed": seed, "phase": "empathy",
                      "step": step, "episode": np.nan, "metric": m, "value": float(v)} for m, v in values.items()]
    return rows


def _read_trained(study: EmpathyStudy, cells: _Cells, trained: rm.Trained, label: str, width: float, arm: str,
                  every_checkpoint: bool) -> list[dict]:
    config = dataclasses.replace(study.isr, width=float(width))
    k = trained.heldout_r.shape[1]
    rows = []
    for c in range(k) if every_checkpoint else [k - 1]:
        params = jax.tree.map(lambda x, c=c: x[:, c], trained.params)
        reading = ins.isr_reading(config, params, np.asarray(trained.n_rewarded), np.asarray(trained.heldout_r[:, c]))
        extra = {"n_rewarded": np.asarray(trained.n_rewarded), "isr_heldout_corr": trained.heldout_r[:, c],
                 "converged": np.asarray(trained.converged, float)}
        rows += _rows(study, label, width, arm, (c + 1) * study.check_every,
                      ins.read(reading, cells.cells, study.seeds, study.thresholds()), extra)
    return rows


def _world_model(study: EmpathyStudy, cells: _Cells, samples: Any, latent: int) -> list[dict]:
    """A world model of ``latent`` size per seed, a reward head on its frozen code, read in every cell."""
    config = dataclasses.replace(study.isr, width=1.0)
    head = dataclasses.replace(config, learning_rate=study.world_model_head_lr)
    out = int(np.prod(samples.next_obs.shape[2:]))
    apply = functools.partial(wm.reward, config, latent, out)

    def one(samples: Any, key: jax.Array):
        k_world, k_head, k_train = jax.random.split(key, 3)
        data = rm.training_data(samples, "none", 0.0)
        world, mse = wm.train_world_model(config, data, samples.next_obs, k_world, latent, study.world_model_updates)
        params = {"world": world, "head": wm.head_init(k_head, latent)}
        return rm.train(head, data, k_train, study.world_model_head_updates, study.n_checkpoints, apply,
                        params), mse

    trained, mse = jax.device_get(jax.jit(jax.vmap(one))(samples, _keys(study.seeds, _TAG_WORLD)))
    final = jax.tree.map(lambda x: x[:, -1], trained.params)
    reading = ins.Reading(final, apply, functools.partial(wm.latents, config, latent, out),
                          np.asarray(trained.n_rewarded), np.asarray(trained.heldout_r[:, -1]))
    extra = {"n_rewarded": np.asarray(trained.n_rewarded), "isr_heldout_corr": trained.heldout_r[:, -1],
             "converged": np.asarray(trained.converged, float), "world_model_mse": np.asarray(mse)}
    return _rows(study, "world-model", latent, "exposed", study.world_model_head_updates,
                 ins.read(reading, cells.cells, study.seeds, study.thresholds()), extra)


def _unit(study: EmpathyStudy, unit: str, inputs: _Inputs, log: Callable[[str], None]) -> pd.DataFrame:
    cells = inputs.cells
    rows: list[dict] = []
    if unit == "capacity":
        samples = inputs.data("exposed")
        for w in study.widths:
            started = time.perf_counter()
            trained = _train(study, samples, "none", w, lambda m, w=w: log(f"{study.name}: isr width {w:g}: {m}"))
            rows += _read_trained(study, cells, trained, "isr", w, "exposed", every_checkpoint=w == study.width)
            log(f"{study.name}: isr width {w:g} (exposed) {time.perf_counter() - started:.1f} s")
    elif unit == "world-model":
        samples = inputs.data("exposed")
        for latent in study.world_model_latents:
            rows += _world_model(study, cells, samples, latent)
    elif unit == "naive":
        trained = _train(study, inputs.data("naive"), "none", study.width, lambda m: log(f"{study.name}: naive: {m}"))
        rows += _read_trained(study, cells, trained, "isr", study.width, "naive", every_checkpoint=True)
    else:  # controls: learned positive and negative, the untrained null, the hand-built calibrations
        samples = inputs.data("exposed")
        for label, peer in (("positive-control", "paid"), ("negative-control", "unpaid")):
            trained = _train(study, samples, peer, study.width, lambda m, x=label: log(f"{study.name}: {x}: {m}"))
            rows += _read_trained(study, cells, trained, label, study.width, "exposed", every_checkpoint=False)
        config = dataclasses.replace(study.isr, width=float(study.width))
        shape = tuple(study.world_params("exposed").fixed_walls.shape) + (12,)
        fresh = jax.vmap(lambda k: isr_init_params(config, k, shape))(_keys(study.seeds, _TAG_INIT))
        null = ins.isr_reading(config, fresh, None, None, null=True)
        rows += _rows(study, "untrained", study.width, "exposed", 0,
                      ins.read(null, cells.cells, study.seeds, study.thresholds()), {})
        for label, model in ins.oracles("allocentric").items():
            rows += _rows(study, label, 0, "exposed", 0, ins.read(ins.oracle_reading(model), cells.cells, study.seeds,
                                                                  study.thresholds()), {})
    return rows_frame(rows)


def run_empathy(study: EmpathyStudy, out: str | Path = "runs", *, force: bool = False, progress: bool = True,
                log: Callable[[str], None] = print) -> pd.DataFrame:
    """Run ``study`` into ``out/<study.name>/``; returns its table. Finished units are loaded, not recomputed
    (``force`` recomputes all); ``progress`` is accepted for the runner's signature (units log their times)."""
    del progress
    store = ResultsStore(out, study.name)
    with store.lock():
        store.claim(study.to_dict(), force=force, identify=EmpathyStudy.identity_of)
        if store.is_complete():
            log(f"{study.name}: complete in {store.dir}, skipped (use --force to recompute)")
            return store.read_table()
        units = [u for u in UNITS if u != "world-model" or study.world_model_latents]
        inputs = _Inputs(study)
        for unit in units:
            if store.unit_done(unit):
                log(f"{study.name}: unit {unit} done, loaded")
                continue
            started = time.perf_counter()
            df = _unit(study, unit, inputs, log)
            values = df["value"].to_numpy(float)
            trained = df["metric"].isin(["isr_heldout_corr", "own_gap"]).to_numpy()
            if np.isnan(values[trained]).any():
                raise FloatingPointError(f"{study.name}: unit {unit} produced NaN rewards (a diverged model); "
                                         "lower isr.learning_rate")
            store.write_unit(unit, df, time.perf_counter() - started)
            log(f"{study.name}: unit {unit} {time.perf_counter() - started:.1f} s")
        df = store.finish(units)
    log(f"{study.name}: {len(df)} rows -> {store.table_path}")
    return df
