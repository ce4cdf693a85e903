"""MLflow adapter: log and register candidates, move aliases, read lineage.

A registered version holds the whole inference path (feature spec + LightGBM booster, served by
a small pyfunc wrapper), the reference profile the drift check compares batches against and,
for a binary model, the holdout calibration the label-free estimate uses (ctpipe.estimate).
The registry is the source of truth for production: alias ``champion`` serves, ``challenger``
marks the newest candidate.

Every version records the sha256 of its stored files (ctpipe.integrity); loading, promoting and
rolling back verify it before anything parses a file. Promotion and rollback move ``champion``
under a per-model lock (ctpipe.locks).
"""

from __future__ import annotations

import functools
import subprocess
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import mlflow
import mlflow.pyfunc
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.models.signature import ModelSignature
from mlflow.tracking import MlflowClient

from ctpipe import __version__, integrity, locks, settings
from ctpipe.decisions.retraining import PromotionMove, promotion_move
from ctpipe.drift import ReferenceProfile
from ctpipe.faults import pause_point
from ctpipe.features import FeatureSpec
from ctpipe.integrity import ArtifactsUnreadable, IntegrityError
from ctpipe.lineage import Lineage, LoadedVersion, ModelVersionInfo
from ctpipe.retry import is_transient
from ctpipe.serving import ENTRY_POINT, load_scoring_model
from ctpipe.training import ScoringModel

CHAMPION, CHALLENGER = "champion", "challenger"
_BOOSTER, _FEATURES, _PROFILE = "booster.txt", "features.json", "profile.npz"
_OUTPUTS = "outputs.npz"
_CALIBRATION = "calibration.json"  # binary versions only (ctpipe.estimate)


def client() -> MlflowClient:
    uri = settings.tracking_uri()
    mlflow.set_tracking_uri(uri)
    _initialised(uri)
    return MlflowClient()


@functools.cache
def _initialised(uri: str) -> None:
    """Create and migrate an embedded (SQLite) store once, under a lock: several processes
    opening a fresh store at once race on its migrations ("table ... already exists")."""
    if not uri.startswith("sqlite:"):
        return
    with locks.held(settings.home() / "locks" / "mlflow-store.lock"):
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)


def ensure_experiment(name: str) -> str:
    """The experiment id, creating it with artifacts under CTPIPE_HOME for embedded stores."""
    c = client()
    found = c.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if settings.tracking_uri().startswith("sqlite:"):
        location = (settings.artifact_root() / name).as_uri()
    return c.create_experiment(name, artifact_location=location)


@functools.cache
def code_version() -> str:
    """ctpipe's version plus the git commit it runs from, when there is one."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
            capture_output=True, text=True, timeout=5, check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


def _signature(spec: FeatureSpec, sample: pd.DataFrame) -> ModelSignature:
    """Input schema inferred from real rows, so integer and float columns keep their types."""
    columns = [*spec.numeric, *spec.categorical]
    if spec.calendar:
        columns.append(spec.time_column)
    return infer_signature(sample[columns].head(100))


def register_candidate(model_name: str, model: ScoringModel, profile: ReferenceProfile,
                       outputs: ReferenceProfile, lineage: Lineage,
                       sample: pd.DataFrame) -> ModelVersionInfo:
    """Log the model in the active run and register it; a failure leaves no version behind."""
    c = client()
    with tempfile.TemporaryDirectory(prefix="ctpipe-model-") as tmp:
        folder = Path(tmp)
        model.booster.save_model(str(folder / _BOOSTER))
        (folder / _FEATURES).write_text(model.spec.to_json(), encoding="utf-8")
        profile.save(folder / _PROFILE)
        outputs.save(folder / _OUTPUTS)
        files = [folder / _BOOSTER, folder / _FEATURES, folder / _PROFILE, folder / _OUTPUTS]
        artifacts = {"booster": str(files[0]), "features": str(files[1]),
                     "profile": str(files[2]), "outputs": str(files[3])}
        if model.calibration is not None:
            # Inside the model directory, so the version's sha256 covers it too.
            (folder / _CALIBRATION).write_text(model.calibration.to_json(), encoding="utf-8")
            artifacts["calibration"] = str(folder / _CALIBRATION)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(ENTRY_POINT),
            artifacts=artifacts,
            signature=_signature(model.spec, sample),
            # Explicit requirements skip MLflow's slow environment inference.
            pip_requirements=[f"ctpipe=={__version__}", f"lightgbm=={lgb.__version__}",
                              f"mlflow=={mlflow.__version__}", f"pandas=={pd.__version__}"],
        )
        # Hash what MLflow stored, read back from the store, not what we handed it: MLflow
        # adds MLmodel, the code file and the environment files, and those are verified too.
        stored = c.get_logged_model(info.model_id).artifact_location
        hashes = integrity.record(_download(stored, folder / "stored"))
    all_tags = lineage.merged(hashes.merged(Lineage(code_version=code_version()))).to_tags()
    pause_point("register.after-log")
    _ensure_registered_model(c, model_name)
    # Tags go in with the version itself: a version never exists without its lineage.
    version = c.create_model_version(
        model_name, source=info.model_uri, run_id=info.run_id, model_id=info.model_id,
        tags=all_tags, await_creation_for=0)
    pause_point("register.before-alias")
    try:
        c.set_registered_model_alias(model_name, CHALLENGER, version.version)
    except BaseException:
        c.delete_model_version(model_name, version.version)
        raise
    return get_version(model_name, int(version.version))


def _ensure_registered_model(c: MlflowClient, model_name: str) -> None:
    try:
        c.create_registered_model(model_name, description="Managed by ctpipe: alias "
                                  "'champion' serves, 'challenger' is the newest candidate.")
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise


def get_version(model_name: str, version: int) -> ModelVersionInfo:
    mv = client().get_model_version(model_name, str(version))
    return version_info(mv)


def version_info(mv) -> ModelVersionInfo:  # noqa: ANN001
    return ModelVersionInfo(name=mv.name, version=int(mv.version), tags=dict(mv.tags or {}),
                            aliases=list(mv.aliases or []), run_id=mv.run_id)


# What MLflow answers for a model or alias that does not exist. Anything else (the server
# unreachable, a locked store) must propagate: "no champion" would trigger a cold-start retrain.
_ABSENT = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}


def get_alias(model_name: str, alias: str) -> ModelVersionInfo | None:
    try:
        return version_info(client().get_model_version_by_alias(model_name, alias))
    except MlflowException as exc:
        if exc.error_code in _ABSENT:
            return None
        raise


def list_versions(model_name: str) -> list[ModelVersionInfo]:
    try:
        found = client().search_model_versions(f"name = '{model_name}'")
    except MlflowException as exc:
        if exc.error_code in _ABSENT:
            return []
        raise
    return sorted((version_info(mv) for mv in found), key=lambda v: v.version)


def versions_for_batch(model_name: str, batch_date: str,
                       config_hash: str) -> list[ModelVersionInfo]:
    """Versions already trained for this batch under this config: a retrain would repeat them."""
    wanted = Lineage(batch_date=batch_date, config_hash=config_hash).to_tags()
    return [v for v in list_versions(model_name)
            if all(v.tags.get(k) == value for k, value in wanted.items())]


def promote(model_name: str, version: int, previous: int | None, tags: Lineage) -> None:
    """Move ``champion`` from ``previous`` to ``version`` and record why.

    Refuses (IntegrityError) a version whose stored files no longer match their sha256.
    Refuses (ChampionChanged) when the champion is no longer ``previous``: the gate compared
    against a model that no longer serves, and moving the alias would silently undo a
    rollback; and when a rollback is waiting to move the alias: the rollback wins. The check
    and the move happen under the model's lock (ctpipe.locks), which rollbacks take too.
    Safe to repeat after a failure: a second call finds the alias already moved and only
    writes the tags. On a failure while tagging, the alias moves back.
    """
    c = client()
    # Before the lock: hashing downloads the model, and nobody should wait for that.
    verify_version(model_name, version)
    pause_point("promote.before-lock")
    with locks.champion_lock(model_name, f"promote v{version}"):
        if _promotion_move(model_name, version, previous) == "move":
            pause_point("promote.before-move")
            with locks.rollbacks_held_off(model_name) as rollback_waiting:
                # Checked again: the lock keeps out ctpipe, not an alias moved by hand in the
                # MLflow UI meanwhile.
                if _promotion_move(model_name, version, previous,
                                   rollback_waiting) == "move":
                    _move_champion(c, model_name, version, previous, tags)
                    return
        tag_version(model_name, version, tags)


def _promotion_move(model_name: str, version: int, previous: int | None,
                    rollback_waiting: bool = False) -> PromotionMove:
    current = get_alias(model_name, CHAMPION)
    return promotion_move(model_name=model_name, version=version, expected=previous,
                          current=current.version if current else None,
                          rollback_waiting=rollback_waiting)


def _move_champion(c: MlflowClient, model_name: str, version: int, previous: int | None,
                   tags: Lineage) -> None:
    c.set_registered_model_alias(model_name, CHAMPION, str(version))
    pause_point("promote.after-move")
    try:
        tag_version(model_name, version, tags)
    except BaseException:
        if previous is None:
            c.delete_registered_model_alias(model_name, CHAMPION)
        else:
            c.set_registered_model_alias(model_name, CHAMPION, str(previous))
        raise


def tag_version(model_name: str, version: int, tags: Lineage) -> None:
    c = client()
    for key, value in tags.to_tags().items():
        c.set_model_version_tag(model_name, str(version), key, value)


def _download(artifact_uri: str, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    return Path(mlflow.artifacts.download_artifacts(
        artifact_uri=artifact_uri, dst_path=str(dst), tracking_uri=settings.tracking_uri()))


def _download_verified(info: ModelVersionInfo, dst: Path) -> tuple[Path, str]:
    """The version's stored files, copied to ``dst`` and verified; and their sha256.

    Downloads the version's artifact location itself, not ``models:/name/version``: MLflow
    up to 3.17 adds a ``registered_model_meta`` file to the latter that was never stored.
    """
    uri = client().get_model_version_download_uri(info.name, str(info.version))
    try:
        local = _download(uri, dst)
    except (MlflowException, OSError) as exc:  # OSError: requests' errors are OSErrors too
        if is_transient(exc):
            raise  # a store slow to answer: the step that loads retries, nothing is refused
        raise ArtifactsUnreadable(
            f"{info.name} v{info.version}: its stored files could not be read, so they cannot "
            f"be verified ({' '.join(str(exc).split())}); refusing to use it") from exc
    return local, integrity.verify(info.name, info.version, info.lineage, local)


def verify_version(model_name: str, version: int) -> str:
    """The version's verified sha256; IntegrityError when its stored files changed
    (ArtifactsUnreadable when they could not be read)."""
    with tempfile.TemporaryDirectory(prefix="ctpipe-verify-") as tmp:
        return _download_verified(get_version(model_name, version), Path(tmp))[1]


_Artifacts = tuple[ScoringModel, ReferenceProfile, ReferenceProfile]
_LOADED: OrderedDict[tuple[str, str, int, str], _Artifacts] = OrderedDict()
_LOADED_LOCK = threading.Lock()
_LOADED_MAX = 16


def load_version(model_name: str, version: int) -> LoadedVersion:
    """The version's model and profiles, from files verified against their sha256 first.

    Every call downloads and hashes the stored files: a file changed after an earlier load is
    refused, never served from memory. Only the parsing is cached, keyed on the sha256 just
    verified (plus store, model and version: a reset replay numbers its versions from 1
    again), so a cache hit is the same bytes parsed before. Parsing reads the verified copy,
    so nothing can change the files between the check and LightGBM.
    """
    info = get_version(model_name, version)
    with tempfile.TemporaryDirectory(prefix="ctpipe-load-") as tmp:
        local, sha = _download_verified(info, Path(tmp))
        key = (settings.tracking_uri(), model_name, version, sha)
        with _LOADED_LOCK:
            loaded = _LOADED.get(key)
            if loaded is not None:
                _LOADED.move_to_end(key)
        if loaded is None:
            art = local / "artifacts"
            loaded = (load_scoring_model(art / _BOOSTER, art / _FEATURES, art / _CALIBRATION),
                      ReferenceProfile.load(art / _PROFILE), ReferenceProfile.load(art / _OUTPUTS))
            with _LOADED_LOCK:
                _LOADED[key] = loaded
                while len(_LOADED) > _LOADED_MAX:
                    _LOADED.popitem(last=False)
    model, profile, outputs = loaded
    return LoadedVersion(info=info, model=model, profile=profile, outputs=outputs)


def load_pyfunc(model_name: str, version: int) -> mlflow.pyfunc.PyFuncModel:
    """The served pyfunc model, loaded from a verified copy of its files.

    ``mlflow.pyfunc.load_model("models:/...")`` runs the stored code file unchecked; this runs
    it only after the whole model directory matched its sha256. Versions registered before
    whole-model hashing are refused: their sha256 does not cover the code file.
    """
    info = get_version(model_name, version)
    with tempfile.TemporaryDirectory(prefix="ctpipe-pyfunc-") as tmp:
        local, _ = _download_verified(info, Path(tmp))
        if info.lineage.artifact_hash_scope != integrity.SCOPE_MODEL_DIR:
            raise IntegrityError(f"{model_name} v{version}: registered before whole-model "
                                 "hashing, so its sha256 does not cover the code file; not "
                                 "loading it as pyfunc (load_version still verifies its data "
                                 "files)")
        # load_context reads every file into memory, so the copy can go afterwards.
        return mlflow.pyfunc.load_model(str(local))


def load_champion(model_name: str) -> LoadedVersion | None:
    info = get_alias(model_name, CHAMPION)
    return None if info is None else load_version(model_name, info.version)


def delete_registered_model(model_name: str) -> None:
    try:
        client().delete_registered_model(model_name)
    except MlflowException:
        pass



@dataclass(frozen=True)
class ModelRegistry:
    """The registry as the steps see it, bound to one registered model; MLflow behind it.

    Tests of the core pass an in-memory object with the same methods instead.
    """

    model_name: str

    def champion(self) -> ModelVersionInfo | None:
        return get_alias(self.model_name, CHAMPION)

    def load_champion(self) -> LoadedVersion | None:
        return load_champion(self.model_name)

    def version(self, version: int) -> ModelVersionInfo:
        return get_version(self.model_name, version)

    def load_version(self, version: int) -> LoadedVersion:
        return load_version(self.model_name, version)

    def versions(self) -> list[ModelVersionInfo]:
        return list_versions(self.model_name)

    def versions_for_batch(self, batch_date: str, config_hash: str) -> list[ModelVersionInfo]:
        return versions_for_batch(self.model_name, batch_date, config_hash)

    def register(self, run_id: str, model: ScoringModel, profile: ReferenceProfile,
                 outputs: ReferenceProfile, lineage: Lineage,
                 sample: pd.DataFrame) -> ModelVersionInfo:
        client()  # sets the tracking URI the active run below needs
        with mlflow.start_run(run_id=run_id):
            return register_candidate(self.model_name, model, profile, outputs, lineage, sample)

    def tag(self, version: int, lineage: Lineage) -> None:
        tag_version(self.model_name, version, lineage)

    def promote(self, version: int, previous: int | None, lineage: Lineage) -> None:
        promote(self.model_name, version, previous, lineage)
