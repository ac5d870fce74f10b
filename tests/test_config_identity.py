"""A configuration's identity survives upgrades: a setting a later version adds at a default that keeps the old
behaviour refuses no output directory and misses no shared unit; a changed value is still refused, in one line.

The setting is added the way a new version would add it: a ``PPOConfig`` with one more defaulted field, put where
the spec resolves its learner (``spec.PPOConfig``), so defaults, configs read back and the runs all use it. The
older directory is one the code before identity versions wrote: its manifest, units and table carry the hash of
every value (``results.config_identity``) and its shared units sit under the hash of every field (:func:`old_key`,
that code's ``shared.unit_key``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from internalize.agents import ppo_config
from internalize.empathy.study import EmpathyStudy, empathy_study
from internalize.experiments import identity, phases, spec, units
from internalize.experiments.paper import EXPERIMENTS, paper_experiment
from internalize.experiments.results import ResultsStore, config_identity, rows_frame
from internalize.experiments.runner import Runner, run_experiment
from internalize.experiments.shared import SHARED_DIR, VERSION, legacy_unit_key, unit_key
from internalize.experiments.spec import Experiment
from internalize.storage import read_parquet_verified, remove_verified, write_json_verified, write_parquet_verified
from test_experiments import TINY_STEPS, tiny


@dataclasses.dataclass(frozen=True)
class PPOConfig(ppo_config.PPOConfig):
    """The learner's config as a later version might have it: one more setting, whose default is the old
    behaviour."""

    replay_ratio: float = 0.0


def upgraded(exp: Experiment) -> Experiment:
    """``exp`` as the upgraded version reads it back from its file (under :func:`upgrade`)."""
    return Experiment.from_dict(json.loads(json.dumps(exp.to_dict(), default=str)))


def upgrade(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spec, "PPOConfig", PPOConfig)


def old_key(exp: Experiment, unit: str) -> str:
    """The shared unit key of the code before identity versions: the hash of every field of every input, as its
    classes had them (a learner or ISR field added since, at its default, was not there to hash)."""
    asdict = dataclasses.asdict

    def then(config) -> dict:
        return {k: v for k, v in asdict(config).items() if k in identity.V1_FIELDS[type(config).__name__]}

    inputs = {"version": VERSION, "unit": unit, "world": asdict(exp.socialization_world),
              "learner": then(exp.learner), "steps": exp.socialization_steps, "seeds": list(exp.seeds),
              "chunk_rollouts": exp.chunk_rollouts, "utility": asdict(exp.utility),
              "caregiver": [asdict(c) for c in exp.caregiver] if isinstance(exp.caregiver, tuple)
              else asdict(exp.caregiver)}
    if unit == "isr":
        inputs["isr"] = then(phases.isr_config(exp))
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:16]


def old_manifest(store: ResultsStore, exp: Experiment) -> str:
    """A manifest as the code before identity versions wrote it for ``exp``, and a unit under its token."""
    config = json.loads(json.dumps(exp.to_dict(), sort_keys=True, default=str))
    token = config_identity(config)
    write_json_verified(store.manifest_path, {"experiment": exp.name, "config": config, "identity": token,
                                              "layout": "vmap", "status": "running", "timings": {}})
    write_parquet_verified(store.unit_path("socialization"), rows_frame([]), token)
    return token


def different(store: ResultsStore) -> str:
    return (f"output directory {store.dir} holds results of {store.name!r} with a different configuration (preset, "
            "seeds or budgets changed); choose another --out or pass --force to start afresh.")


# ------------------------------------------------------------------------------------------------ identities
def test_identity_is_the_values_that_differ_from_their_defaults():
    exp = tiny("fig4a")
    fields_ = exp.identity()["config"]
    assert "evaluation_episodes" in fields_ and "utility" not in fields_ and "caregiver" not in fields_, fields_
    # A nested config is listed by the values that differ from its own class's defaults.
    assert fields_["learner"] == {"total_timesteps": 0, "torso": "mlp", "n_envs": 4, "n_steps": 32, "n_epochs": 2,
                                  "learning_rate": 1e-3}, fields_["learner"]
    assert "evaluation_episodes" not in dataclasses.replace(exp, evaluation_episodes=100).identity()["config"]
    assert exp.identity()["version"] == identity.IDENTITY_VERSION
    assert identity.identity_token(exp.identity()).startswith(f"config-v{identity.IDENTITY_VERSION}-")


def test_a_setting_added_at_its_default_keeps_identity_and_shared_keys_and_a_changed_value_does_not(monkeypatch):
    exp = tiny("fig4b")
    before = exp.identity(), unit_key(exp, "socialization"), unit_key(exp, "isr")
    upgrade(monkeypatch)
    new = upgraded(exp)
    assert type(new.learner) is PPOConfig and new.to_dict()["learner"]["replay_ratio"] == 0.0, "stored in full"
    assert (new.identity(), unit_key(new, "socialization"), unit_key(new, "isr")) == before
    assert [legacy_unit_key(new, u) for u in ("socialization", "isr")] == [old_key(exp, "socialization"),
                                                                            old_key(exp, "isr")]
    changed = dataclasses.replace(new, learner=dataclasses.replace(new.learner, replay_ratio=0.5))
    assert changed.identity() != before[0] and unit_key(changed, "socialization") != before[1]
    assert legacy_unit_key(changed, "socialization") is None, "no older shared unit can be for it"


def _sets_a_newer_field(exp: Experiment) -> bool:
    """Whether ``exp``'s learner sets a field the classes of the older version did not have (the quick Fig 7
    learner's obs_channel_scale): no unit an older version published can be for it."""
    known = identity.V1_FIELDS["PPOConfig"]
    return any(getattr(exp.learner, f.name) != f.default for f in dataclasses.fields(exp.learner)
               if f.name not in known)


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_the_older_shared_keys_are_found_for_every_preset(name):
    for preset in ("quick", "paper"):
        exp = paper_experiment(name, preset)
        for unit in ("socialization", "isr"):
            want = None if _sets_a_newer_field(exp) else old_key(exp, unit)
            assert legacy_unit_key(exp, unit) == want, (preset, unit)
        assert Experiment.identity_of(json.loads(json.dumps(exp.to_dict(), default=str))) == exp.identity()


def test_the_empathy_study_reads_its_identity_back_from_its_manifest():
    study = empathy_study("quick")
    config = json.loads(json.dumps(study.to_dict(), default=str))
    assert EmpathyStudy.identity_of(config) == study.identity()
    other = EmpathyStudy.identity_of({**config, "n_stimuli": 64})
    assert other != study.identity() and other["config"]["n_stimuli"] == 64


# ------------------------------------------------------------------------------------------------ claims
def test_an_older_manifest_is_claimed_after_the_upgrade_with_the_token_its_units_carry(tmp_path, monkeypatch):
    exp = tiny("fig4a")
    store = ResultsStore(tmp_path, exp.name)
    token = old_manifest(store, exp)
    upgrade(monkeypatch)
    new = upgraded(exp)
    store.claim(new.to_dict(), identify=Experiment.identity_of)
    assert store.identity == token and store.unit_done("socialization")
    reader = ResultsStore(tmp_path, exp.name)
    reader.attach(new.to_dict(), Experiment.identity_of)  # internalize play --from reads it the same way
    assert reader.identity == token
    # A changed value is refused in one line, and nothing is written.
    written = store.manifest_path.read_bytes()
    changed = dataclasses.replace(new, learner=dataclasses.replace(new.learner, replay_ratio=0.5))
    for refused in (lambda: store.claim(changed.to_dict(), identify=Experiment.identity_of),
                    lambda: reader.attach(changed.to_dict(), Experiment.identity_of)):
        with pytest.raises(ValueError) as err:
            refused()
        assert str(err.value) == different(store)
    assert store.manifest_path.read_bytes() == written


def test_a_bumped_identity_version_or_an_unreadable_config_is_refused_saying_why(tmp_path, monkeypatch):
    exp = tiny("fig4a")
    store = ResultsStore(tmp_path, exp.name)
    old_manifest(store, exp)
    monkeypatch.setattr(identity, "IDENTITY_VERSION", 2)
    with pytest.raises(ValueError) as err:
        store.claim(exp.to_dict(), identify=Experiment.identity_of)
    assert str(err.value) == (
        f"output directory {store.dir} holds results of 'fig4a' computed under configuration identity version 1, "
        "and this version of internalize is at version 2 (a default's value or meaning changed); choose another "
        "--out or pass --force to recompute.")
    monkeypatch.setattr(identity, "IDENTITY_VERSION", 1)
    manifest = store.read_manifest()
    manifest["config"]["learner"]["warp_drive"] = True  # a field a later version has and this one does not
    write_json_verified(store.manifest_path, manifest)
    with pytest.raises(ValueError) as err:
        store.claim(exp.to_dict(), identify=Experiment.identity_of)
    assert str(err.value) == (
        f"output directory {store.dir} holds results of 'fig4a' whose configuration this version of internalize "
        "cannot read (config.learner.warp_drive: not a field of PPOConfig in this version of internalize); choose "
        "another --out or pass --force to start afresh.")
    store.claim(exp.to_dict(), force=True, identify=Experiment.identity_of)  # --force starts afresh
    assert store.read_manifest()["identity"] == identity.identity_token(exp.identity())


# ------------------------------------------------------------------------------------------------ end to end
def age(out: Path, exp: Experiment) -> None:
    """Make ``out``'s directory of ``exp`` what the code before identity versions wrote: every stored table under
    the hash of every value, the shared units under that code's keys."""
    store = ResultsStore(out, exp.name)
    manifest = store.read_manifest()
    token = config_identity(manifest["config"])
    assert token != manifest["identity"]
    for path in [*store.dir.glob("units/*.parquet"), store.table_path]:
        write_parquet_verified(path, read_parquet_verified(path, manifest["identity"]), token)
    write_json_verified(store.manifest_path, {**manifest, "identity": token})
    for unit in ("socialization", "isr"):
        (out / SHARED_DIR / f"{unit}-{unit_key(exp, unit)}").rename(out / SHARED_DIR / f"{unit}-{old_key(exp, unit)}")


@pytest.mark.expensive
def test_an_older_directory_resumes_after_the_upgrade_and_its_shared_units_are_reused(tmp_path, monkeypatch):
    out = tmp_path / "runs"
    exp = tiny("fig4a", conditions=("none", "isr"))  # test_run_lock's: compiled programs are shared
    df = run_experiment(exp, out, progress=False, log=lambda _: None)
    age(out, exp)
    store = ResultsStore(out, exp.name)  # interrupted before its evaluation
    remove_verified(store.unit_path("evaluation"))
    remove_verified(store.table_path)
    write_json_verified(store.manifest_path, {**store.read_manifest(), "status": "running"})
    upgrade(monkeypatch)
    trained: list[str] = []
    train, train_isrs = Runner._train, units._train_isrs
    monkeypatch.setattr(Runner, "_train", lambda self, unit, *a, **k: trained.append(unit) or train(self, unit, *a,
                                                                                                      **k))
    monkeypatch.setattr(units, "_train_isrs", lambda *a, **k: trained.append("isr") or train_isrs(*a, **k))
    logs: list[str] = []
    new = upgraded(exp)
    pd.testing.assert_frame_equal(run_experiment(new, out, progress=False, log=logs.append), df)
    assert trained == [], trained
    for unit in ("socialization", "isr", "autonomy-blocks-3"):
        assert f"fig4a/{unit}: done, loaded" in logs, logs
    # A new experiment with the same socialization and ISR takes them from the older version's shared units.
    isr_only = dataclasses.replace(new, name="isr-only", conditions=(), autonomy_worlds=(), autonomy_steps=0,
                                   evaluation_episodes=0, isr=dataclasses.replace(new.isr, data_sizes=(TINY_STEPS,)))
    logs.clear()
    run_experiment(isr_only, out, progress=False, log=logs.append)
    assert trained == [], trained
    assert any(m.startswith("isr-only/socialization: identical to a finished one") for m in logs), logs
    assert any(m.startswith("isr-only/isr: identical to a finished one") for m in logs), logs
    assert ResultsStore(out, "isr-only").read_manifest()["config"]["learner"]["replay_ratio"] == 0.0
    # A changed value is still refused, in one line, and nothing is touched.
    before = {p: p.read_bytes() for p in sorted(store.dir.rglob("*")) if p.is_file()}
    changed = dataclasses.replace(new, learner=dataclasses.replace(new.learner, replay_ratio=0.5))
    with pytest.raises(ValueError) as err:
        run_experiment(changed, out, progress=False, log=lambda _: None)
    assert str(err.value) == different(store)
    assert {p: p.read_bytes() for p in sorted(store.dir.rglob("*")) if p.is_file()} == before
