"""Readable summaries for Prefect artifacts and the drift plot (the timeline: timeline_plot)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ctpipe.decisions.gate import TOO_SMALL, VETO, GateDecision
from ctpipe.drift import DriftReport, FeatureDrift, ReferenceProfile
from ctpipe.evaluation import Evaluation


def gate_markdown(use_case: str, day: str, decision: GateDecision, challenger: Evaluation,
                  champion: Evaluation | None, version: int | None,
                  champion_version: int | None, mlflow_link: str | None = None,
                  run_link: str | None = None) -> str:
    lines = [
        f"# Gate {decision.verdict.upper()}: {use_case} {day}",
        "",
        f"Challenger: version {version}  |  champion: "
        f"{'version ' + str(champion_version) if champion_version else 'none (cold start)'}",
        "",
        f"| model | {challenger.metric} | holdout rows |",
        "|---|---|---|",
        f"| challenger | {challenger.value:.4f} | {challenger.rows} |",
    ]
    if champion is not None:
        lines.append(f"| champion | {champion.value:.4f} | {champion.rows} |")
    lines += ["", "| check | passed | detail |", "|---|---|---|"]
    lines += [f"| {c.name} | {'yes' if c.passed else '**no**'} | {c.detail} |"
              for c in decision.checks]
    if decision.unjudged:
        lines += ["", "Not promoted: the holdout cannot measure the metric, so the gate has no "
                  "verdict on the challenger (no rejection for the cooldown)."]
    if decision.slices:  # the paired comparison the gate judged, one row per slice
        def num(v: float | None, fmt: str) -> str:
            return "" if v is None or not math.isfinite(v) else format(v, fmt)

        lines += ["", "Slices: a slice vetoes only when worse by more than the tolerance AND "
                  "significantly worse (upper bound below 0). Slices too small to judge are "
                  "never a veto.", "",
                  "| slice | rows | challenger | champion | relative gain | upper bound | "
                  "verdict |", "|---|---|---|---|---|---|---|"]
        for j in decision.slices:
            s = j.comparison
            verdict = f"**{j.verdict}**" if j.verdict == VETO else j.verdict
            note = f" ({s.unjudged})" if s.unjudged else ""
            lines.append(f"| {s.key} | {s.rows} | {num(s.challenger, '.4f')} | "
                         f"{num(s.champion, '.4f')} | {num(s.gain, '+.1%')} | "
                         f"{num(s.upper, '+.1%')} | {verdict}{note} |")
        small = [j.comparison.key for j in decision.slices if j.verdict == TOO_SMALL]
        if small:
            lines += ["", f"Too small to judge ({len(small)}): {', '.join(small)}"]
    elif champion is not None and challenger.slices:
        lines += ["", "| slice | challenger | champion |", "|---|---|---|"]
        for key, value in sorted(challenger.slices.items()):
            other = champion.slices.get(key)
            lines.append(f"| {key} | {value:.4f} | {'' if other is None else f'{other:.4f}'} |")
    if mlflow_link:
        lines += ["", f"Model version in MLflow: [{use_case} v{version}]({mlflow_link})"]
    if run_link:
        lines += ["", f"MLflow run (metrics, drift plot): [{run_link}]({run_link})"]
    return "\n".join(lines)


def _severity(f: FeatureDrift) -> float:
    """How far past its threshold a feature is, comparable across tests."""
    if not f.tested:
        return -math.inf
    if f.p_value is not None:
        return -math.log10(max(f.p_value, 1e-300)) / -math.log10(f.threshold)
    return f.statistic / f.threshold if f.threshold > 0 else math.inf


def plot_drift(profile: ReferenceProfile, current: pd.DataFrame, report: DriftReport,
               path: Path, top: int = 4) -> Path:
    """Reference vs current distributions of the most drifted features, one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    worst = sorted(report.features, key=_severity, reverse=True)[:top]
    fig, axes = plt.subplots(1, len(worst), figsize=(4.2 * len(worst), 3.2), squeeze=False)
    for ax, f in zip(axes[0], worst, strict=True):
        if f.kind == "numeric":
            ref = profile.numeric[f.feature]
            cur = pd.to_numeric(current[f.feature], errors="coerce").to_numpy(dtype="float64")
            cur = cur[np.isfinite(cur)]
            present = [v for v in (ref, cur) if v.size]
            low, high = (min(v.min() for v in present), max(v.max() for v in present)) \
                if present else (0.0, 1.0)
            if low == high:  # one value everywhere (a dry spell's rain): bins of width 0
                low, high = low - 0.5, high + 0.5
            bins = np.linspace(low, high, 40)
            ax.hist(ref, bins=bins, density=True, alpha=0.5, label="reference")
            ax.hist(cur, bins=bins, density=True, alpha=0.5, label="current")
        else:
            ref_counts = profile.categorical[f.feature]
            cur_counts = current[f.feature].astype("str").value_counts()
            levels = sorted(set(ref_counts) | set(cur_counts.index))[:20]
            x = np.arange(len(levels))
            ref_total = max(sum(ref_counts.values()), 1)
            cur_total = max(int(cur_counts.sum()), 1)
            ax.bar(x - 0.2, [ref_counts.get(k, 0) / ref_total for k in levels], 0.4,
                   label="reference")
            ax.bar(x + 0.2, [cur_counts.get(k, 0) / cur_total for k in levels], 0.4,
                   label="current")
            ax.set_xticks(x, levels, rotation=45, ha="right", fontsize=7)
        mark = "DRIFT" if f.drifted else "ok"
        ax.set_title(f"{f.feature}: {f.test} {f.statistic:.3g} ({mark})", fontsize=9)
        # "best" searches every position over all the bars: slow, and matplotlib warns so.
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
