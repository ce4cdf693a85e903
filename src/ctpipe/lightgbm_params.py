"""Whether ``training.params`` is something LightGBM accepts, asked when a workspace opens.

LightGBM reads its parameters only when it trains: a typo (``n_estimater``) is dropped with a
warning ctpipe's ``verbose: -1`` hides, and a wrong value (``num_leaves: seven``) fails the
first retrain, deep in a run, with a traceback. Here the names are checked against LightGBM's
own list (its scikit-learn names, every core parameter and alias), and the values by a one-round
fit on 20 synthetic rows, so a bad value fails before anything runs, in LightGBM's own words,
one line. Not in the config's own validation: loading a config stays free of LightGBM (and
the scipy it imports), as with GX's expectations (workspace.open_workspace).
"""

from __future__ import annotations

import difflib
import os
import re
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from ctpipe.config import ConfigError, UseCaseConfig

# LightGBM's failed range checks: "Check failed: (learning_rate) > (0.0) at <path>, line 349".
_CHECK_FAILED = re.compile(r"Check failed: \((\w+)\) (\S+) \(([^)]*)\)")


# Settings a probe on 20 synthetic rows of 2 unnamed features cannot judge: sized or named
# per feature, files, devices this host may lack. Their names are checked, not their values.
_NOT_PROBED = frozenset({
    "monotone_constraints", "max_bin_by_feature", "feature_contri",
    "cegb_penalty_feature_coupled", "cegb_penalty_feature_lazy", "interaction_constraints",
    "forcedsplits_filename", "forcedbins_filename", "categorical_feature", "ignore_column",
    "weight_column", "group_column", "label_column", "input_model", "output_model", "data",
    "valid", "device_type", "num_gpu", "gpu_device_id", "gpu_use_dp", "gpu_device_id_list",
    "gpu_platform_id"})
# Set by the probe itself (one round, silent, one thread): the user's values of these are
# checked here, then left out of the probe, whose own must win whatever alias the user wrote.
_COUNTS = {"num_iterations": 1, "num_threads": None, "verbosity": None}


@lru_cache(maxsize=1)
def _aliases() -> dict[str, str]:
    """Every name LightGBM's scikit-learn estimators take -> its core parameter's name (the
    estimators' own names that are no alias map to themselves)."""
    from lightgbm.basic import _ConfigAliases

    canonical = {}
    for name, aliases in _ConfigAliases._get_all_param_aliases().items():
        canonical[name] = name
        canonical.update(dict.fromkeys(aliases, name))
    for name in _estimator_names():
        canonical.setdefault(name, name)
    return canonical


@lru_cache(maxsize=1)
def _estimator_names() -> frozenset[str]:
    """The names the scikit-learn estimators take (num_leaves, n_estimators): the configs'."""
    import lightgbm as lgb

    return frozenset({*lgb.LGBMRegressor().get_params(), *lgb.LGBMClassifier().get_params()})


def _nearest(name: str, canonical: dict[str, str]) -> str | None:
    """The name ``name`` most likely misspells, as a config would write it: the estimators'
    own name or LightGBM's core name, never a bare alias (num_leafs: num_leaves, whose alias
    num_leaf is a letter closer; num_boost_roud: n_estimators, not num_boost_round)."""
    close = difflib.get_close_matches(name, sorted(canonical), n=1)
    if not close:
        return None
    known = close[0]
    if known in _estimator_names() or canonical[known] == known:
        return known
    core = canonical[known]  # an alias: the estimators' own name for it, if they have one
    return next((own for own in sorted(_estimator_names()) if canonical.get(own) == core),
                core)


def check_training_params(config: UseCaseConfig, source: Path) -> None:
    """Raise ConfigError naming ``source`` when LightGBM would refuse training.params."""
    if config.training.params:
        problem = params_problem(config.training.params, config.data.task)
        if problem is not None:
            raise ConfigError(f"{source}: {problem}")


def params_problem(params: Mapping[str, object], task: str) -> str | None:
    """Why LightGBM would refuse ``params`` (``training.params.<name>: ...``), or None."""
    canonical = _aliases()
    probed = {}
    for name, value in params.items():
        core = canonical.get(name)
        if core is None:
            close = _nearest(name, canonical)
            hint = f" (did you mean {close}?)" if close else ""
            return f"training.params.{name}: not a LightGBM parameter{hint}"
        if core in _COUNTS:
            whole = isinstance(value, int) and not isinstance(value, bool)
            if not whole or (_COUNTS[core] is not None and value < _COUNTS[core]):
                least = f" >= {_COUNTS[core]}" if _COUNTS[core] is not None else ""
                return (f"training.params.{name}: must be a whole number{least}, got "
                        f"{value!r}")
        elif core not in _NOT_PROBED and not core.startswith("gpu_"):
            probed[name] = value
    # The type is part of the key: 3 == 3.0 == True for a cache, not for LightGBM.
    return _fit_problem(tuple(sorted((k, type(v).__name__, v) for k, v in probed.items())),
                        task)


@lru_cache(maxsize=64)
def _fit_problem(items: tuple[tuple[str, str, object], ...], task: str) -> str | None:
    import lightgbm as lgb
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 2))
    # Positive and inside (0, 1): what tweedie, poisson, gamma and cross_entropy accept.
    y = (rng.random(20) < 0.5).astype(float) if task == "binary" \
        else rng.uniform(0.05, 0.95, size=20)
    params = {**{k: v for k, _, v in items}, "n_estimators": 1, "verbose": -1, "n_jobs": 1}
    estimator = lgb.LGBMClassifier if task == "binary" else lgb.LGBMRegressor
    with _quiet_stderr():
        try:
            estimator(**params).fit(x, y)
        except (lgb.basic.LightGBMError, ValueError, TypeError) as exc:
            return f"training.params: LightGBM refuses them: {_plain(str(exc))}"
    return None


def _plain(message: str) -> str:
    """LightGBM's message on one line, a failed check in words, without its source path."""
    found = _CHECK_FAILED.search(message)
    if found:
        name, op, bound = found.groups()
        return f"{name} must be {op} {bound}"
    return " ".join(_SOURCE_PATH.sub("", message).split())


_SOURCE_PATH = re.compile(r"\s+at \S+\.(?:cpp|h|hpp), line \d+\s*\.?")
_MUTED = threading.Lock()


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """LightGBM's native code writes '[LightGBM] [Fatal] ...' to the process's stderr before
    it raises: the refusal is reported once, by the config error. Only the probe's few
    milliseconds are muted, one probe at a time (two overlapping would leave fd 2 muted);
    where fd 2 cannot be redirected, the probe runs unmuted."""
    with _MUTED:
        try:
            if sys.stderr is not None:
                sys.stderr.flush()
            saved = os.dup(2)
        except OSError:
            yield
            return
        try:
            with open(os.devnull, "wb") as devnull:
                os.dup2(devnull.fileno(), 2)
                yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
