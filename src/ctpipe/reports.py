"""Readable summaries for Prefect artifacts and the demo's timeline plot."""

from __future__ import annotations

from pathlib import Path

from ctpipe.evaluation import Evaluation
from ctpipe.gating import GateDecision


def gate_markdown(use_case: str, day: str, decision: GateDecision, challenger: Evaluation,
                  champion: Evaluation | None, version: int | None,
                  champion_version: int | None, mlflow_link: str | None = None) -> str:
    verdict = "PASSED" if decision.passed else "REJECTED"
    lines = [
        f"# Gate {verdict}: {use_case} {day}",
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
    if champion is not None and challenger.slices:
        lines += ["", "| slice | challenger | champion |", "|---|---|---|"]
        for key, value in sorted(challenger.slices.items()):
            other = champion.slices.get(key)
            lines.append(f"| {key} | {value:.4f} | {'' if other is None else f'{other:.4f}'} |")
    if mlflow_link:
        lines += ["", f"MLflow: {mlflow_link}"]
    return "\n".join(lines)


def plot_timeline(series: dict[str, dict], path: Path) -> Path:
    """One panel per use case: champion vs static model metric per batch, promotions marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(series), 1, figsize=(10, 3.2 * len(series)), squeeze=False)
    for ax, (name, result) in zip(axes[:, 0], series.items(), strict=True):
        days = result["days"]
        x = list(range(len(days)))
        champ = [d["champion_metric"] for d in days]
        static = [d["static_metric"] for d in days]
        ax.plot(x, [float("nan") if v is None else v for v in static], label="static model",
                color="tab:gray", linestyle="--")
        ax.plot(x, [float("nan") if v is None else v for v in champ], label="ctpipe champion",
                color="tab:blue")
        for i, d in enumerate(days):
            if d["retrained"] and d["gate_passed"]:
                ax.axvline(i, color="tab:green", alpha=0.3)
            if not d["validation_passed"]:
                ax.axvline(i, color="tab:red", alpha=0.3)
        if result.get("shift_day") is not None:
            ax.axvline(result["shift_day"], color="tab:red", linestyle=":", label="scenario shift")
        arrow = "higher is better" if result["higher_is_better"] else "lower is better"
        ax.set_title(f"{name}: daily {result['metric_name']} ({arrow}); green = promotion")
        ax.set_xlabel("batch")
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
