"""A rollback during a promotion wins, whichever reaches the model's lock first.

Real MLflow (temporary SQLite store) and real processes: one side runs in a subprocess held at
a pause point (ctpipe.faults), the other runs in this process meanwhile.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from ctpipe import faults, integrity, locks, registry
from ctpipe.decisions.retraining import ChampionChanged
from ctpipe.lineage import Lineage
from ctpipe.rollback import apply_rollback, plan_rollback

MODEL = "ctpipe-race"
PASSED = {"gate_decision": "passed", "use_case": "demand"}
WAIT = 120.0

_PROMOTE = textwrap.dedent("""
    import sys
    from ctpipe import registry
    from ctpipe.decisions.retraining import ChampionChanged
    from ctpipe.lineage import Lineage
    try:
        registry.promote(sys.argv[1], 3, 2, Lineage(previous_champion="2", promoted_at="now"))
    except ChampionChanged as exc:
        print(f"ChampionChanged: {exc}")
        sys.exit(3)
    print("promoted")
""")
_ROLLBACK = textwrap.dedent("""
    import sys
    from ctpipe.rollback import apply_rollback, plan_rollback
    done = apply_rollback(plan_rollback(sys.argv[1]), "v2 is bad", operator="ops",
                          publish=lambda decision: None)
    print(f"rolled back to v{done['to_version']}")
""")


@pytest.fixture
def champion_v2(ctpipe_home: Path) -> Path:
    """v1 then v2 promoted (v2 champion, replacing v1); v3 a gated candidate. The pause file."""
    source = ctpipe_home / "model"
    source.mkdir()
    (source / "MLmodel").write_text("flavors: {}\n", encoding="utf-8")
    c = registry.client()
    c.create_registered_model(MODEL)
    tags = {**PASSED, **integrity.record(source).to_tags()}
    for _ in range(3):
        c.create_model_version(MODEL, source=str(source), tags=tags)
    registry.promote(MODEL, 1, None, Lineage(previous_champion=""))
    registry.promote(MODEL, 2, 1, Lineage(previous_champion="1"))
    return ctpipe_home / "paused"


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=1) as executor:
        yield executor


def _paused(script: str, point: str, pause_file: Path) -> subprocess.Popen[str]:
    """The script in a subprocess, once it waits at ``point``."""
    env = {**os.environ, faults.PAUSE_AT_ENV: point, faults.PAUSE_FILE_ENV: str(pause_file),
           faults.PAUSE_TIMEOUT_ENV: str(WAIT)}
    proc = subprocess.Popen([sys.executable, "-c", script, MODEL], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + WAIT
    while not pause_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"never reached {point}: exit {proc.returncode}\n{out}\n{err[-3000:]}")
        time.sleep(0.05)
    return proc


def _finish(proc: subprocess.Popen[str], pause_file: Path) -> tuple[int, str]:
    pause_file.unlink()
    out, err = proc.communicate(timeout=WAIT)
    assert err.strip() == "" or proc.returncode in (0, 3), err[-3000:]
    return proc.returncode, out.strip()


def _blocked(future: Future, seconds: float = 1.0) -> bool:
    time.sleep(seconds)
    return not future.done()


def _champion() -> int:
    return registry.get_alias(MODEL, registry.CHAMPION).version


def _rollback() -> dict:
    return apply_rollback(plan_rollback(MODEL), "v2 is bad", operator="ana",
                          publish=lambda decision: None)


def test_rollback_while_a_promotion_waits_for_the_lock(champion_v2: Path,
                                                       pool: ThreadPoolExecutor) -> None:
    promotion = _paused(_PROMOTE, "promote.before-lock", champion_v2)
    # The promotion has not taken the lock: the rollback completes at once.
    done = pool.submit(_rollback).result(timeout=WAIT)
    assert done["to_version"] == 1 and _champion() == 1

    code, out = _finish(promotion, champion_v2)
    assert (code, out) == (3, f"ChampionChanged: {MODEL}: champion is v1 now, not v2 that v3 "
                              "was gated against; not promoted (retrain to compare with v1)")
    assert _champion() == 1
    assert "promoted_at" not in registry.get_version(MODEL, 3).tags


def test_rollback_while_a_promotion_holds_the_lock(champion_v2: Path,
                                                   pool: ThreadPoolExecutor) -> None:
    promotion = _paused(_PROMOTE, "promote.before-move", champion_v2)
    # Paused between its check and its move, holding the lock.
    assert locks.lock_path(MODEL).read_text() == f"pid {promotion.pid}, promote v3"
    rollback = pool.submit(_rollback)
    deadline = time.monotonic() + WAIT
    while True:  # until the rollback has announced itself and waits for the lock
        with locks.rollbacks_held_off(MODEL) as rollback_waiting:
            if rollback_waiting:
                break
        assert time.monotonic() < deadline and not rollback.done(), rollback
        time.sleep(0.05)
    assert _blocked(rollback) and _champion() == 2

    code, out = _finish(promotion, champion_v2)
    assert (code, out) == (3, f"ChampionChanged: {MODEL}: a rollback of champion v2 is in "
                              "progress; v3 not promoted (the rollback wins; retrain to compare "
                              "with the champion it leaves)")
    assert rollback.result(timeout=WAIT)["to_version"] == 1
    assert _champion() == 1
    assert "promoted_at" not in registry.get_version(MODEL, 3).tags
    assert registry.get_version(MODEL, 1).tags["rolled_back_from"] == "2"


def test_promotion_while_a_rollback_holds_the_lock(champion_v2: Path,
                                                   pool: ThreadPoolExecutor) -> None:
    rollback = _paused(_ROLLBACK, "rollback.before-move", champion_v2)
    promotion = pool.submit(registry.promote, MODEL, 3, 2,
                            Lineage(previous_champion="2", promoted_at="now"))
    assert _blocked(promotion) and _champion() == 2

    assert _finish(rollback, champion_v2) == (0, "rolled back to v1")
    with pytest.raises(ChampionChanged, match=f"^{MODEL}: champion is v1 now, not v2 that v3 "
                       "was gated against"):
        promotion.result(timeout=WAIT)
    assert _champion() == 1
    assert "promoted_at" not in registry.get_version(MODEL, 3).tags


def test_a_promotion_alone_is_not_held_up(champion_v2: Path) -> None:
    registry.promote(MODEL, 3, 2, Lineage(previous_champion="2"))
    assert _champion() == 3
