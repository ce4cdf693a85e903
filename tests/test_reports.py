import datetime as dt
from pathlib import Path

import pandas as pd

from ctpipe.config import load_config
from ctpipe.drift import build_profile, detect_drift
from ctpipe.reports import plot_drift
from ctpipe.simulate import generate_day


def test_drift_plot_shows_the_most_drifted_features(tmp_path: Path) -> None:
    cfg = load_config("fraud")
    start = dt.date(2026, 3, 2)
    ref = pd.concat([generate_day("fraud", i, start + dt.timedelta(days=i), rows=5000)
                     for i in range(3)], ignore_index=True)
    cur = generate_day("fraud", 40, start + dt.timedelta(days=40), rows=5000, shift_day=30)
    profile = build_profile(ref, cfg.features.numeric, cfg.features.categorical)
    report = detect_drift(profile, cur, cfg.drift)
    assert {"channel", "jurisdiction"} <= set(report.drifted_features)
    path = plot_drift(profile, cur, report, tmp_path / "drift.png", top=4)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 20_000


def test_a_feature_with_one_value_everywhere_is_drawn_without_warnings(tmp_path: Path) -> None:
    # A dry spell: rain is 0 in the reference and in the batch, so min == max.
    import warnings

    cfg = load_config("fraud")
    start = dt.date(2026, 3, 2)
    ref = generate_day("fraud", 0, start, rows=2000).assign(amount=0.0)
    cur = generate_day("fraud", 40, start + dt.timedelta(days=40), rows=2000,
                       shift_day=30).assign(amount=0.0)
    profile = build_profile(ref, cfg.features.numeric, cfg.features.categorical)
    report = detect_drift(profile, cur, cfg.drift)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's divide by zero, matplotlib's invalid value
        path = plot_drift(profile, cur, report, tmp_path / "drift.png",
                          top=len(report.features))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
