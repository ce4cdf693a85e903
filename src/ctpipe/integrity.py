"""Whether a model version's stored files are the ones registered: one sha256 over the model.

A version's files live in the artifact store, apart from the registry database. Anyone who can
write there could change the booster (then scored, used for drift, accepted as a rollback
target), append code to the pyfunc entry file (run by ``mlflow.pyfunc.load_model``), or cut the
booster short (LightGBM aborts the whole process on it). So registration records a sha256 of
the files MLflow stored, and every loader (``registry.load_version``, ``registry.promote``,
``rollback.apply_rollback``, ``registry.load_pyfunc``) downloads, hashes and compares before
anything parses a file. A mismatch raises ``IntegrityError``; files that cannot be read
raise its subclass ``ArtifactsUnreadable``.

How a version verifies depends on its ``artifact_hash_scope`` tag:

- ``model-dir-v1``: every file of the version's artifact directory as MLflow stored it
  (MLmodel, the pyfunc code file, requirements and environment files, booster, feature spec,
  both profiles), except ``registered_model_meta``, which MLflow up to 3.17 adds to a local
  store's folder on a ``models:/`` load (3.18 no longer does). The sha256 is taken over the
  manifest: one line ``<relative path>\\0<sha256 of the file>\\n`` per file, in sorted path
  order. The manifest itself goes to tag ``artifact_files`` so a mismatch can name the first
  file that differs.
- no scope tag: versions registered before whole-model hashing recorded the sha256 of the four
  data files only (``booster.txt``, ``features.json``, ``profile.npz``, ``outputs.npz``, each
  preceded by its name). They verify with that rule, so they keep loading and serving as
  before; their code file and MLmodel are not covered, so ``registry.load_pyfunc`` (which runs
  the code file) refuses them. Retraining registers a fully covered version.
- no ``artifact_sha256`` at all (a version not registered by ctpipe): nothing to compare
  with, so refused everywhere a model is loaded, promoted or rolled back to.

The tags live in the registry database: this guards the artifact store, not a database an
attacker can also write.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ctpipe.lineage import TAG_VALUE_LIMIT, Lineage

SCOPE_MODEL_DIR = "model-dir-v1"
# The pre-scope rule's files, under the model directory's ``artifacts/``.
LEGACY_FILES = ("booster.txt", "features.json", "profile.npz", "outputs.npz")
# MLflow's client up to 3.17 writes this (registered model name and version) into the stored
# folder itself when ``mlflow.pyfunc.load_model("models:/...")`` reads a local store, long
# after registration; 3.18 no longer does, but folders loaded before an upgrade keep it.
# Nothing loads a model from it.
_WRITTEN_BY_MLFLOW_ON_LOAD = "registered_model_meta"


class IntegrityError(ValueError):
    """A version's stored files do not match the sha256 recorded when it was registered."""


class ArtifactsUnreadable(IntegrityError):
    """A version's stored files could not be read (store unreachable, folder gone), so they
    could not be verified. An IntegrityError, so every loader refuses the version as it
    refuses tampered files; reports tell the two apart, since this one may pass by itself."""


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def manifest(root: Path) -> dict[str, str]:
    """Every file under ``root``: relative POSIX path -> sha256 of its bytes."""
    return {rel: file_sha256(p) for p in sorted(root.rglob("*"))
            if p.is_file() and (rel := p.relative_to(root).as_posix())
            != _WRITTEN_BY_MLFLOW_ON_LOAD}


def manifest_sha256(files: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for rel in sorted(files):
        # NUL and newline cannot occur in a hex digest, and NUL not in a path: no two
        # manifests share a byte stream.
        digest.update(f"{rel}\0{files[rel]}\n".encode())
    return digest.hexdigest()


def legacy_sha256(paths: list[Path]) -> str:
    """The pre-scope rule: each file's name, then its bytes, in the order given."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def record(root: Path) -> Lineage:
    """The tags a version registered from the model directory ``root`` carries."""
    files = manifest(root)
    listing = json.dumps(files, separators=(",", ":"), sort_keys=True)
    return Lineage(artifact_sha256=manifest_sha256(files), artifact_hash_scope=SCOPE_MODEL_DIR,
                   # Diagnosis only; a listing the tag limit would cut is left out.
                   artifact_files=listing if len(listing) <= TAG_VALUE_LIMIT else None)


def verify(model_name: str, version: int, lineage: Lineage, root: Path) -> str:
    """The sha256 of the model directory ``root``; IntegrityError unless it is the recorded one."""
    where = f"{model_name} v{version}"
    expected = lineage.artifact_sha256
    if not expected:
        raise IntegrityError(f"{where}: no artifact_sha256 recorded, so its files cannot be "
                             "verified; refusing to use it")
    scope = lineage.artifact_hash_scope
    if scope == SCOPE_MODEL_DIR:
        files = manifest(root)
        actual = manifest_sha256(files)
        first = _first_difference(lineage, files)
    elif scope is None:
        art = root / "artifacts"
        missing = [name for name in LEGACY_FILES if not (art / name).is_file()]
        actual = "none" if missing else legacy_sha256([art / name for name in LEGACY_FILES])
        first = f"artifacts/{missing[0]} (missing)" if missing else None
        scope = "four data files (registered before whole-model hashing)"
    else:
        raise IntegrityError(f"{where}: unknown artifact_hash_scope {scope!r} (this ctpipe "
                             f"knows {SCOPE_MODEL_DIR!r}); refusing to use it")
    if actual != expected:
        detail = f"; first differing file: {first}" if first else ""
        raise IntegrityError(f"{where}: stored files do not match the sha256 recorded at "
                             f"registration (expected {expected}, actual {actual}, scope "
                             f"{scope}{detail}); refusing to use it")
    return actual


def _first_difference(lineage: Lineage, files: dict[str, str]) -> str | None:
    try:
        recorded = json.loads(lineage.artifact_files or "")
    except ValueError:
        return None
    # A listing that does not add up to the recorded sha256 would point at the wrong file.
    if not isinstance(recorded, dict) or manifest_sha256(recorded) != lineage.artifact_sha256:
        return None
    for rel in sorted(set(recorded) | set(files)):
        if rel not in files:
            return f"{rel} (missing)"
        if rel not in recorded:
            return f"{rel} (added)"
        if recorded[rel] != files[rel]:
            return f"{rel} (changed)"
    return None
