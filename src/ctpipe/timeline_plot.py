"""The replay's timeline: ctpipe's champion against the static model and the best cron schedule.

Dates on the x axis; markers for drift days, rejected challengers, promotions, rollbacks,
quarantined batches and known change events.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path


def _values(days: list[dict], key: str) -> list[float]:
    return [float("nan") if d.get(key) is None else d[key] for d in days]


def _every(best: int) -> str:
    return "every batch" if best == 1 else f"every {best} batches"


def plot_timeline(series: dict[str, dict], path: Path) -> Path:
    """One panel per use case (``series``: name -> backtest result), written as a PNG."""
    import matplotlib.pyplot as plt

    fig = timeline_figure(series)
    path.parent.mkdir(parents=True, exist_ok=True)
    # "tight": the figure is cropped to what was drawn, legends beside the panels included.
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def timeline_figure(series: dict[str, dict]):  # noqa: ANN201 (matplotlib Figure, lazily imported)
    """The timeline's figure, one panel per use case."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    # 2 inches wider than the panels: each panel's legend sits to its right.
    fig, axes = plt.subplots(len(series), 1, figsize=(13, 3.6 * len(series)), squeeze=False)
    for ax, (name, result) in zip(axes[:, 0], series.items(), strict=True):
        days = result["days"]
        x = [dt.date.fromisoformat(d["date"]) for d in days]
        ax.plot(x, _values(days, "static_metric"), label="static model", color="tab:gray",
                linestyle="--")
        best = (result.get("cron") or {}).get("best")
        if best is not None:
            ax.plot(x, _values(days, "cron_metric"), label=f"cron {_every(best)}",
                    color="tab:orange", linestyle="-.")
        ax.plot(x, _values(days, "champion_metric"), label="ctpipe champion", color="tab:blue")
        _mark(ax, x, days, result)
        arrow = "higher is better" if result["higher_is_better"] else "lower is better"
        frequency = result.get("batch_frequency", "daily")
        ax.set_title(f"{name}: {result['metric_name']} per {frequency} batch ({arrow})")
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(
            locator, formats=_TICKS, zero_formats=_ZERO_TICKS, offset_formats=_OFFSETS))
        ax.set_ylabel(result["metric_name"])
        # Beside the axes, not inside: placed "best" inside, it covered drift ticks,
        # rejections and promotion or quarantine lines. tight_layout makes room for it.
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=7)
    fig.tight_layout()
    return fig


# Day ticks carry their month: matplotlib's default names a month only on its first day, so a
# replay starting on 2 March showed "08 15 22 Apr" with nothing saying the first three were
# March, under an offset naming the last month ("2026-Apr"). Levels: years, months, days,
# hours, minutes, seconds.
_TICKS = ["%Y", "%b", "%b %d", "%H:%M", "%H:%M", "%S.%f"]
_ZERO_TICKS = ["", "%Y", "%b %d", "%b %d", "%H:%M", "%H:%M"]
_OFFSETS = ["", "%Y", "%Y", "%Y-%m-%d", "%Y-%m-%d", "%Y-%m-%d %H:%M"]


def _mark(ax, x: list[dt.date], days: list[dict], result: dict) -> None:  # noqa: ANN001
    """What happened, each kind labelled once in the legend: drift days and rejected
    challengers as ticks along the bottom and top edges (they often share a day), promotions,
    rollbacks and quarantined batches as vertical lines, known change events dotted."""
    import matplotlib.dates as mdates

    edge = ax.get_xaxis_transform()  # x in dates, y in axes fraction
    ticks = [
        ("drift detected", "tab:purple", "^", 0.03, lambda d: d["drift_detected"]),
        ("challenger rejected", "tab:red", "x", 0.97,
         lambda d: d["retrained"] and d["gate_passed"] is False),
    ]
    for label, colour, marker, y, hit in ticks:
        hits = [day for day, d in zip(x, days, strict=True) if hit(d)]
        if hits:
            ax.scatter(hits, [y] * len(hits), transform=edge, color=colour, marker=marker,
                       s=28, label=label, zorder=3, clip_on=False)
    lines = [
        ("promotion", "tab:green", "-", lambda d: d["retrained"] and d["gate_passed"]),
        ("rollback", "black", "-", lambda d: d.get("rolled_back")),
        ("quarantined", "tab:brown", "--", lambda d: not d["validation_passed"]),
    ]
    for label, colour, style, hit in lines:
        first = True
        for day, d in zip(x, days, strict=True):
            if hit(d):
                ax.axvline(day, color=colour, linestyle=style, alpha=0.45, linewidth=1.2,
                           label=label if first else None)
                first = False
    events = [dt.date.fromisoformat(e) for e in result.get("events") or []]
    if result.get("shift_day") is not None and not events and result["shift_day"] < len(x):
        events = [x[result["shift_day"]]]
    for i, event in enumerate(events):
        ax.axvline(event, color="tab:red", linestyle=(0, (1, 3)), linewidth=2.2,
                   label="known change" if i == 0 else None)
    if x:
        # Half a batch either side: a line on the first or last batch would sit on the spine,
        # hidden by the frame and half clipped (a quarantined first batch was invisible).
        first, last = mdates.date2num(x[0]), mdates.date2num(x[-1])
        half = (last - first) / (len(x) - 1) / 2 if len(x) > 1 else 0.5
        ax.set_xlim(first - half, last + half)
