"""Whether ``training.params`` is something LightGBM accepts, asked when the config loads.

LightGBM reads its parameters only when it trains: a typo (``n_estimater``) is dropped with a
warning ctpipe's ``verbose: -1`` hides, and a wrong value (``num_leaves: seven``) fails the
first retrain, deep in a run, with a traceback. Here the names are checked against LightGBM's
own list (its scikit-learn names, every core parameter and alias), and the values by a one-round
fit on 20 synthetic rows, so a bad value fails at load with LightGBM's own words, one line.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache

# LightGBM's failed range checks: "Check failed: (learning_rate) > (0.0) at <path>, line 349".
_CHECK_FAILED = re.compile(r"Check failed: \((\w+)\) (\S+) \(([^)]*)\)")


@lru_cache(maxsize=1)
def known_names() -> frozenset[str]:
    """Every name LightGBM's scikit-learn estimators take: theirs, and each core parameter
    with its aliases."""
    import lightgbm as lgb
    from lightgbm.basic import _ConfigAliases

    names = set(lgb.LGBMRegressor().get_params()) | set(lgb.LGBMClassifier().get_params())
    for name, aliases in _ConfigAliases._get_all_param_aliases().items():
        names.add(name)
        names.update(aliases)
    return frozenset(names)


def params_problem(params: Mapping[str, object], task: str) -> str | None:
    """Why LightGBM would refuse ``params`` (``training.params.<name>: ...``), or None."""
    known = known_names()
    for name in params:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            return f"training.params.{name}: not a LightGBM parameter{hint}"
    return _fit_problem(tuple(sorted(params.items(), key=lambda kv: kv[0])), task)


@lru_cache(maxsize=64)
def _fit_problem(items: tuple[tuple[str, object], ...], task: str) -> str | None:
    import lightgbm as lgb
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 2))
    y = (rng.random(20) < 0.5).astype(float) if task == "binary" else rng.normal(size=20)
    params = {**dict(items), "n_estimators": 1, "verbose": -1, "n_jobs": 1}
    estimator = lgb.LGBMClassifier if task == "binary" else lgb.LGBMRegressor
    with _quiet_lightgbm():
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
    return " ".join(message.split())


@contextmanager
def _quiet_lightgbm() -> Iterator[None]:
    """LightGBM's native code writes '[LightGBM] [Fatal] ...' to the process's stderr before
    it raises: the refusal is reported once, by the config error. Only the probe's few
    milliseconds are muted."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
