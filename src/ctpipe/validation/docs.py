"""GX Data Docs for a stored validation result.

Data Docs (``write_data_docs``) are rendered by GX from the stored result, in a file-mode
context of their own: the batch is never validated a second time.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ctpipe.config import UseCaseConfig
from ctpipe.validation.messages import ValidationResult
from ctpipe.validation.spec import load_gx

_DOCS_LOCK = threading.Lock()
_SITE = "local_site"
# GX's pages load their logo from GX's S3 bucket, the header's with the data context id and a
# timestamp appended (a tracking pixel), the dark-mode CSS another one: point them at the copy
# GX writes next to the pages instead, so opening a report tells nobody outside anything.
_REMOTE_ASSET = re.compile(
    r"https://great-expectations-web-assets\.s3\.us-east-2\.amazonaws\.com/([\w.-]+)"
    r"(?:\?[^\"')\s]*)?")


def write_data_docs(result: ValidationResult | Mapping[str, Any] | Path,
                    config: UseCaseConfig, folder: Path, *, batch_name: str = "batch",
                    run_time: dt.datetime | None = None, keep: int = 30) -> Path:
    """Render GX Data Docs for one validation result; return the HTML page of that result.

    ``result`` is a ValidationResult, its ``gx_result`` dict, or a saved ``gx_result.json``
    (e.g. from a quarantine folder): the page is rendered from the stored result, the batch is
    not validated again. ``folder`` holds a file-mode GX project (created on first use); reuse
    one folder per use case for one site whose ``index.html`` lists the newest ``keep``
    validations: GX re-reads every stored result to build the index (0.3 s with one, 1.3 s with
    120, on 2 cores), so older results are removed from the site, pages included (the
    quarantine folder keeps each failed batch's gx_result.json, from which a page can be
    rendered again at any time).
    """
    if isinstance(result, ValidationResult):
        if result.read_error is not None:
            raise ValueError("an unreadable batch has no GX result to render")
        gx_result: Mapping[str, Any] = result.gx_result
    elif isinstance(result, Path):
        gx_result = json.loads(result.read_text(encoding="utf-8"))
    else:
        gx_result = result
    if not gx_result.get("results") and "statistics" not in gx_result:
        raise ValueError("not a GX validation result (no results or statistics)")
    gx = load_gx()
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResultSchema,
    )
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.data_context.context_factory import project_manager
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    loaded = ExpectationSuiteValidationResultSchema().load(dict(gx_result))
    suite_name = gx_result.get("suite_name") or f"ctpipe-{config.name}"
    when = run_time or dt.datetime.now(dt.UTC)
    key = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
        run_id=RunIdentifier(run_name=f"{config.name}-{batch_name}", run_time=when),
        batch_identifier=batch_name)
    folder = Path(folder).resolve()
    with _DOCS_LOCK:
        # get_context makes the file context GX's "current" one; put the previous one back so
        # nothing else in the process is redirected to it (our own objects name their context).
        previous = getattr(project_manager, "_project", None)
        try:
            context = gx.get_context(mode="file", project_root_dir=str(folder))
            site = context.variables.data_docs_sites or {}
            if site.get(_SITE, {}).get("show_how_to_buttons", True):
                # Tutorial buttons linking to GX's website have no place in an operator's report.
                site[_SITE]["show_how_to_buttons"] = False
                context.variables.data_docs_sites = site
                context.variables.save()
            store = context.validation_results_store
            store.set(key, loaded)
            _prune(store, keep)
            context.build_data_docs(site_names=[_SITE], resource_identifiers=[key])
            url = context.get_docs_sites_urls(resource_identifier=key,
                                              site_name=_SITE)[0]["site_url"]
        finally:
            project_manager.set_project(previous)
    page = Path(unquote(urlparse(url).path))
    site_root = folder / "gx" / "uncommitted" / "data_docs" / _SITE
    styles = site_root / "static" / "styles"
    for html in (page, site_root / "index.html", *styles.glob("*.css")):
        _localise_assets(html, site_root / "static" / "images")
    # GX deletes pruned results and their pages but leaves their run folders behind.
    for root in (site_root / "validations", folder / "gx" / "uncommitted" / "validations"):
        _remove_empty_dirs(root)
    return page


def _remove_empty_dirs(root: Path) -> None:
    for path, _, _ in os.walk(root, topdown=False):  # children first, so parents empty out
        if Path(path) != root and not any(Path(path).iterdir()):
            Path(path).rmdir()


def _prune(store: Any, keep: int) -> None:
    """Keep the newest ``keep`` results in a docs site's store (the index lists only those)."""
    keys = sorted(store.list_keys(), key=lambda k: (str(k.run_id.run_time), str(k.run_id)))
    for old in keys[:max(len(keys) - max(keep, 1), 0)]:
        store.remove_key(old)


def _localise_assets(path: Path, images: Path) -> None:
    if not path.is_file():
        return
    text = path.read_text(encoding="utf-8")

    def local(match: re.Match[str]) -> str:
        name = match.group(1) if (images / match.group(1)).is_file() else "logo-long.png"
        return f"{os.path.relpath(images, path.parent)}/{name}"

    fixed = _REMOTE_ASSET.sub(local, text)
    if fixed != text:
        path.write_text(fixed, encoding="utf-8")
