"""Tampered model files are refused before anything parses them: real models, real MLflow.

Each test registers real models in a temporary SQLite registry, then edits the files MLflow
stored under CTPIPE_HOME/mlartifacts, as someone with write access to the artifact store
could.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlparse

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests

from ctpipe import integrity, registry
from ctpipe.config import load_config
from ctpipe.decisions.rollback import RollbackRefused
from ctpipe.drift import ReferenceProfile, build_profile
from ctpipe.integrity import IntegrityError
from ctpipe.landing import BATCH_KEY
from ctpipe.lineage import Lineage
from ctpipe.rollback import TargetTampered, apply_rollback, plan_rollback
from ctpipe.simulate import generate_day
from ctpipe.training import ScoringModel, train_model
from tests.helpers import day

MODEL = "ctpipe-integrity"
MARKER = "tampered-code-ran"  # written next to the model folder by appended code, if it runs


@functools.cache
def _model() -> tuple[ScoringModel, ReferenceProfile, pd.DataFrame]:
    cfg = load_config("demand")
    cfg = cfg.model_copy(update={"training": cfg.training.model_copy(
        update={"params": {"n_estimators": 30}})})
    frame = pd.concat([generate_day("demand", i, pd.Timestamp(day(i)).date())
                       .assign(**{BATCH_KEY: day(i)}) for i in range(5)], ignore_index=True)
    model = train_model(cfg, frame)
    return model, build_profile(frame, cfg.features.numeric, cfg.features.categorical), frame


def _stored(version: int, model: str = MODEL) -> Path:
    """The folder MLflow stored the version's files in (not a downloaded copy)."""
    uri = registry.client().get_model_version_download_uri(model, str(version))
    return Path(unquote(urlparse(uri).path))


def _register_two(model: str, experiment: str) -> None:
    """v1 and v2 of a real model under ``model``; v2 is champion, having replaced v1."""
    fitted, profile, frame = _model()
    with mlflow.start_run(experiment_id=registry.ensure_experiment(experiment)):
        for _ in range(2):
            registry.register_candidate(model, fitted, profile, profile,
                                        Lineage(gate_decision="passed", use_case="demand"),
                                        sample=frame)
    registry.promote(model, 1, None, Lineage(previous_champion=""))
    registry.promote(model, 2, 1, Lineage(previous_champion="1"))


@pytest.fixture
def versions(ctpipe_home: Path) -> dict[int, Path]:
    """v1 and v2 of a real model; v2 is champion, having replaced v1. Their stored folders."""
    _register_two(MODEL, "ctpipe-integrity")
    folders = {v: _stored(v) for v in (1, 2)}
    assert all(f.is_relative_to(ctpipe_home / "mlartifacts") for f in folders.values())
    return folders


def _whole_sha(folder: Path) -> str:
    """The documented model-dir-v1 rule, recomputed independently of ctpipe.integrity."""
    files = {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in folder.rglob("*") if p.is_file() and p.name != "registered_model_meta"}
    return hashlib.sha256("".join(f"{r}\0{files[r]}\n" for r in sorted(files)).encode()
                          ).hexdigest()


def _booster_same_length(folder: Path) -> str:
    path = folder / "artifacts" / "booster.txt"
    text = path.read_bytes()
    start = text.index(b"leaf_value=") + len(b"leaf_value=")
    at = next(i for i in range(start, len(text)) if text[i:i + 1].isdigit())
    digit = b"9" if text[at:at + 1] != b"9" else b"8"
    path.write_bytes(text[:at] + digit + text[at + 1:])
    return "artifacts/booster.txt (changed)"


def _booster_length_change(folder: Path) -> str:
    # One leaf value too many: LightGBM aborts the process on it (see the subprocess test).
    path = folder / "artifacts" / "booster.txt"
    path.write_bytes(path.read_bytes().replace(b"leaf_value=", b"leaf_value=1 ", 1))
    return "artifacts/booster.txt (changed)"


def _code_appended(folder: Path) -> str:
    with (folder / "pyfunc_entry.py").open("a", encoding="utf-8") as code:
        code.write(f"\nimport pathlib\npathlib.Path({str(folder.parent / MARKER)!r})"
                   ".write_text('ran')\n")
    return "pyfunc_entry.py (changed)"


def _mlmodel_edited(folder: Path) -> str:
    # Points the served booster at another file: nothing about the booster itself changed.
    path = folder / "MLmodel"
    text = path.read_text(encoding="utf-8")
    assert "path: artifacts/booster.txt" in text
    path.write_text(text.replace("path: artifacts/booster.txt", "path: artifacts/profile.npz"),
                    encoding="utf-8")
    return "MLmodel (changed)"


TAMPERS: dict[str, Callable[[Path], str]] = {
    "booster-same-length": _booster_same_length, "booster-length-change": _booster_length_change,
    "code-appended": _code_appended, "mlmodel-edited": _mlmodel_edited}


def _refusal(version: int, expected: str, actual: str, first: str) -> str:
    return (rf"^{MODEL} v{version}: stored files do not match the sha256 recorded at "
            rf"registration \(expected {expected}, actual {actual}, scope model-dir-v1; first "
            rf"differing file: {re.escape(first)}\); refusing to use it")


_LOAD_SCRIPT = textwrap.dedent("""
    import sys
    from ctpipe import registry
    from ctpipe.integrity import IntegrityError
    try:
        registry.load_version(sys.argv[1], int(sys.argv[2]))
    except IntegrityError as exc:
        print(exc)
        sys.exit(3)
    print("loaded")
""")


def _load_in_subprocess(version: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _LOAD_SCRIPT, MODEL, str(version)],
                          capture_output=True, text=True, timeout=300, check=False)


def test_untouched_version_verifies_loads_and_serves(versions: dict[int, Path]) -> None:
    tags = registry.get_version(MODEL, 2).tags
    assert tags["artifact_hash_scope"] == "model-dir-v1"
    assert tags["artifact_sha256"] == _whole_sha(versions[2])
    assert {"MLmodel", "pyfunc_entry.py", "requirements.txt", "python_env.yaml", "conda.yaml",
            "artifacts/booster.txt", "artifacts/features.json", "artifacts/profile.npz",
            "artifacts/outputs.npz"} == set(json.loads(tags["artifact_files"]))
    assert registry.verify_version(MODEL, 2) == tags["artifact_sha256"]

    rows = generate_day("demand", 6, pd.Timestamp(day(6)).date())
    loaded = registry.load_version(MODEL, 2)
    served = registry.load_pyfunc(MODEL, 2).predict(rows)
    np.testing.assert_allclose(np.asarray(served), loaded.model.predict(rows))
    assert loaded.model.predict(rows).std() > 0
    # MLflow's own models:/ load serves it too. Up to 3.17 that load also wrote
    # registered_model_meta into the stored folder (3.18 no longer does); a folder that holds
    # it, as any version loaded so before an upgrade does, still verifies and still loads.
    direct = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion").predict(rows)
    np.testing.assert_allclose(np.asarray(direct), np.asarray(served))
    (versions[2] / "registered_model_meta").write_text(
        f"model_name: {MODEL}\nmodel_version: '2'\n", encoding="utf-8")  # what 3.17 writes
    assert registry.verify_version(MODEL, 2) == tags["artifact_sha256"]
    assert registry.load_version(MODEL, 2).model is loaded.model


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_tampered_version_is_refused_by_load_promote_and_rollback(
        versions: dict[int, Path], tamper: str) -> None:
    expected = registry.get_version(MODEL, 1).tags["artifact_sha256"]
    first = TAMPERS[tamper](versions[1])
    actual = _whole_sha(versions[1])
    assert actual != expected
    refusal = _refusal(1, expected, actual, first)

    if tamper != "booster-length-change":  # parsing that one aborts: see the subprocess test
        with pytest.raises(IntegrityError, match=refusal + "$"):
            registry.load_version(MODEL, 1)
        with pytest.raises(IntegrityError, match=refusal + "$"):
            registry.load_pyfunc(MODEL, 1)
    with pytest.raises(IntegrityError, match=refusal + "$"):
        registry.promote(MODEL, 1, 2, Lineage(previous_champion="2"))
    plan = plan_rollback(MODEL)
    assert plan.target.version == 1
    with pytest.raises(TargetTampered, match=refusal + "; name another version with --to$"):
        apply_rollback(plan, "v2 is bad", operator="ana", publish=lambda d: None)

    # Nothing moved, nothing was tagged, no tampered code ran; the untouched version serves.
    assert registry.get_alias(MODEL, registry.CHAMPION).version == 2
    assert "rolled_back_from" not in registry.get_version(MODEL, 1).tags
    assert not (versions[1].parent / MARKER).exists()
    rows = generate_day("demand", 6, pd.Timestamp(day(6)).date())
    assert np.isfinite(registry.load_version(MODEL, 2).model.predict(rows)).all()


def test_tampered_target_is_a_refusal_even_when_forced(versions: dict[int, Path]) -> None:
    _booster_same_length(versions[1])
    with pytest.raises(RollbackRefused, match=f"^{MODEL} v1: stored files do not match"):
        apply_rollback(plan_rollback(MODEL, to_version=1, force=True), "v2 is bad",
                       operator="ana", publish=lambda d: None)
    assert registry.get_alias(MODEL, registry.CHAMPION).version == 2


def test_a_length_change_is_refused_without_aborting_the_process(
        versions: dict[int, Path]) -> None:
    expected = registry.get_version(MODEL, 1).tags["artifact_sha256"]
    _booster_length_change(versions[1])
    # The edit is one LightGBM dies on: parsing it kills the process with a signal.
    crash = subprocess.run(
        [sys.executable, "-c", "import lightgbm, sys; lightgbm.Booster(model_file=sys.argv[1])",
         str(versions[1] / "artifacts" / "booster.txt")],
        capture_output=True, text=True, timeout=300, check=False)
    assert crash.returncode < 0, crash

    refused = _load_in_subprocess(1)
    assert refused.returncode == 3, refused.stderr[-2000:]
    [line] = refused.stdout.splitlines()
    assert re.match(_refusal(1, expected, _whole_sha(versions[1]),
                             "artifacts/booster.txt (changed)") + "$", line)
    assert _load_in_subprocess(2).stdout.splitlines() == ["loaded"]


def test_appended_code_runs_only_through_an_unverified_load(versions: dict[int, Path]) -> None:
    _code_appended(versions[1])
    with pytest.raises(IntegrityError):
        registry.load_pyfunc(MODEL, 1)
    assert not (versions[1].parent / MARKER).exists()
    # What the check prevents: MLflow's own loader runs the stored code file as it is.
    mlflow.pyfunc.load_model(f"models:/{MODEL}/1")
    assert (versions[1].parent / MARKER).read_text() == "ran"


def test_a_load_is_never_served_from_memory_without_checking_the_files(
        versions: dict[int, Path]) -> None:
    first = registry.load_version(MODEL, 2)
    booster = versions[2] / "artifacts" / "booster.txt"
    original = booster.read_bytes()
    _booster_same_length(versions[2])
    with pytest.raises(IntegrityError, match=f"^{MODEL} v2: stored files do not match"):
        registry.load_version(MODEL, 2)
    with pytest.raises(IntegrityError):
        registry.load_champion(MODEL)
    booster.write_bytes(original)
    # The same verified bytes again: the parsed model comes from the cache.
    assert registry.load_version(MODEL, 2).model is first.model


def test_versions_hashed_before_whole_model_hashing_verify_their_four_files(
        versions: dict[int, Path]) -> None:
    # A version as ctpipe registered it before: four data files hashed, no scope tag.
    folder, c = versions[1], registry.client()
    art = folder / "artifacts"
    old_sha = integrity.legacy_sha256([art / n for n in integrity.LEGACY_FILES])
    c.set_model_version_tag(MODEL, "1", "artifact_sha256", old_sha)
    for key in ("artifact_hash_scope", "artifact_files"):
        c.delete_model_version_tag(MODEL, "1", key)

    assert registry.verify_version(MODEL, 1) == old_sha
    registry.load_version(MODEL, 1)
    # Its code file was never covered: pyfunc loading (which runs it) is refused.
    with pytest.raises(IntegrityError, match=f"^{MODEL} v1: registered before whole-model "
                       "hashing, so its sha256 does not cover the code file"):
        registry.load_pyfunc(MODEL, 1)

    booster = art / "booster.txt"
    original = booster.read_bytes()
    _booster_same_length(folder)
    with pytest.raises(IntegrityError, match=(
            rf"^{MODEL} v1: stored files do not match the sha256 recorded at registration "
            rf"\(expected {old_sha}, actual [0-9a-f]{{64}}, scope four data files \(registered "
            r"before whole-model hashing\)\); refusing to use it$")):
        registry.load_version(MODEL, 1)
    booster.write_bytes(original)
    (art / "outputs.npz").unlink()
    with pytest.raises(IntegrityError, match=r"actual none, scope four data files .*; first "
                       r"differing file: artifacts/outputs.npz \(missing\)\)"):
        registry.promote(MODEL, 1, 2, Lineage(previous_champion="2"))


def test_a_version_without_a_recorded_sha256_is_refused(versions: dict[int, Path]) -> None:
    registry.client().delete_model_version_tag(MODEL, "1", "artifact_sha256")
    refusal = (f"^{MODEL} v1: no artifact_sha256 recorded, so its files cannot be verified; "
               "refusing to use it")
    with pytest.raises(IntegrityError, match=refusal + "$"):
        registry.load_version(MODEL, 1)
    with pytest.raises(IntegrityError, match=refusal + "$"):
        registry.promote(MODEL, 1, 2, Lineage())
    with pytest.raises(TargetTampered, match=refusal):
        apply_rollback(plan_rollback(MODEL), "v2 is bad", operator="ana", publish=lambda d: None)
    assert registry.get_alias(MODEL, registry.CHAMPION).version == 2


def test_a_deleted_file_is_named(versions: dict[int, Path]) -> None:
    (versions[1] / "requirements.txt").unlink()
    with pytest.raises(IntegrityError, match=r"first differing file: requirements.txt "
                       r"\(missing\)\); refusing"):
        registry.load_version(MODEL, 1)


def test_unreadable_files_are_refused_and_reported_as_not_checked(
        ctpipe_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The folder moved away stands for an artifact store that cannot be reached: the version
    # cannot be verified, so it cannot serve, and every report says "not checked", not
    # "tampered" (nothing suggests it was), until the files can be read again.
    from typer.testing import CliRunner

    from ctpipe.cli import app
    from ctpipe.decisions.retraining import Unservable
    from ctpipe.steps.score import servable_champion

    name = load_config("demand").registered_model
    _register_two(name, "ctpipe-demand")
    folder = _stored(2, name)
    folder.rename(folder.with_name("elsewhere"))

    why = f"{name} v2: its stored files could not be read, so they cannot be verified ("
    with pytest.raises(integrity.ArtifactsUnreadable) as raised:
        registry.load_version(name, 2)
    assert str(raised.value).startswith(why) and "\n" not in str(raised.value)
    assert str(raised.value).endswith("); refusing to use it")
    assert servable_champion(registry.ModelRegistry(name)) == (
        None, Unservable(str(raised.value), unread=True))

    shown = CliRunner().invoke(app, ["status", "demand"])
    assert shown.exit_code == 0
    assert f"  integrity not checked, it cannot serve until it is: {why}" in shown.output
    assert "INTEGRITY FAILED" not in shown.output
    report = CliRunner().invoke(app, ["status", "demand", "--json"])
    assert report.exit_code == 0
    integrity_of = {v["version"]: v["integrity"] for v in json.loads(report.output)["versions"]}
    assert integrity_of[1] == "verified"
    assert integrity_of[2].startswith(f"not checked: {why}")
    found = CliRunner().invoke(app, ["doctor", "demand", "--json"])
    assert found.exit_code == 1
    # (The bare lineage and the untraced moves of this fixture are problems too.)
    codes = [p["code"] for p in json.loads(found.output)["problems"]]
    assert "champion-unverified" in codes and "champion-tampered" not in codes

    folder.with_name("elsewhere").rename(folder)  # the store is back: nothing else to do
    report = CliRunner().invoke(app, ["status", "demand", "--json"])
    assert {v["integrity"] for v in json.loads(report.output)["versions"]} == {"verified"}
    found = CliRunner().invoke(app, ["doctor", "demand", "--json"])
    assert found.exit_code == 1  # the fixture's own problems, as before
    assert "champion-unverified" not in [p["code"] for p in json.loads(found.output)["problems"]]

    # A store that does not answer is no refusal: the error is raised for the step to retry
    # (steps retry transient errors); the reports say "not checked" and go on.
    def store_down(uri: str, dst: Path) -> Path:
        raise requests.exceptions.ConnectionError("Connection refused")

    monkeypatch.setattr(registry, "_download", store_down)
    with pytest.raises(requests.exceptions.ConnectionError):
        registry.load_version(name, 2)
    report = CliRunner().invoke(app, ["status", "demand", "--json"])
    assert report.exit_code == 0
    assert json.loads(report.output)["versions"][-1]["integrity"] == (
        f"not checked: {name} v2: ConnectionError: Connection refused")
