"""The timeline PNG: the legend hides no marker, and marks on the first/last batch are seen.

A synthetic replay result (no Prefect) rendered through timeline_figure and plot_timeline,
which `ctpipe backtest --png` and `ctpipe demo` call.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

START = dt.date(2026, 3, 2)


def _replay(batches: int = 20, step_days: int = 1) -> dict:
    """A replay whose markers sit in every corner: quarantined first and last batches, drift
    and rejections early and late (where a legend placed "best" inside the axes lands)."""
    days = []
    for i in range(batches):
        quarantined = i in (0, batches - 1)
        metric = None if quarantined or i < 3 else 0.2 + 0.01 * (i % 4)
        days.append({
            "date": (START + dt.timedelta(days=i * step_days)).isoformat(),
            "validation_passed": not quarantined,
            "drift_detected": i in (1, 2, batches - 3),
            "retrained": i in (2, 3, 10, batches - 2),
            "gate_passed": {2: False, 3: True, 10: True, batches - 2: False}.get(i),
            "rolled_back": i == 12,
            "champion_metric": metric,
            "static_metric": None if metric is None else metric + 0.1,
            "cron_metric": None if metric is None else metric - 0.02,
        })
    return {"metric_name": "wape", "higher_is_better": False, "shift_day": None,
            "batch_frequency": "daily" if step_days == 1 else "weekly",
            "cron": {"best": 4}, "events": [(START + dt.timedelta(days=5 * step_days)).isoformat()],
            "days": days}


def _series() -> dict[str, dict]:
    return {"demand": _replay(), "fraud": _replay(12, step_days=7)}


def test_legends_sit_outside_every_panel_and_inside_the_figure() -> None:
    import matplotlib.pyplot as plt

    from ctpipe.timeline_plot import timeline_figure

    fig = timeline_figure(_series())
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    panels = [ax.get_window_extent(renderer) for ax in fig.axes]
    legends = [ax.get_legend() for ax in fig.axes]
    assert len(panels) == 2 and all(legend is not None for legend in legends)
    for legend in legends:
        box = legend.get_window_extent(renderer)
        # Over no panel (its markers) and not cut by the figure's edge.
        assert not any(box.overlaps(panel) for panel in panels), (box, panels)
        assert fig.bbox.contains(box.x0, box.y0) and fig.bbox.contains(box.x1, box.y1)
    assert {"quarantined", "drift detected", "challenger rejected"} <= {
        t.get_text() for t in legends[0].get_texts()}
    plt.close(fig)


@pytest.mark.parametrize("name", ["demand", "fraud"])
def test_quarantine_on_the_first_and_last_batch_is_inside_the_axes(name: str) -> None:
    import matplotlib.colors as mcolors
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    from ctpipe.timeline_plot import timeline_figure

    series = _series()
    fig = timeline_figure(series)
    ax = fig.axes[list(series).index(name)]
    days = series[name]["days"]
    first, last = (mdates.date2num(dt.date.fromisoformat(days[i]["date"])) for i in (0, -1))
    brown = mcolors.to_rgba("tab:brown", alpha=0.45)
    marks = sorted(mdates.date2num(line.get_xdata()[0]) for line in ax.get_lines()
                   if mcolors.to_rgba(line.get_color(), line.get_alpha()) == brown)
    assert marks == [first, last]
    # Not on the spine, where the frame hides it and clipping cuts it in half: a few pixels in.
    fig.canvas.draw()
    to_pixels = ax.transData.transform
    left, right = (to_pixels((x, 0))[0] for x in ax.get_xlim())
    assert to_pixels((first, 0))[0] - left > 5
    assert right - to_pixels((last, 0))[0] > 5
    plt.close(fig)


def test_the_png_is_not_cropped_to_the_axes(tmp_path: Path) -> None:
    # Saved "tight", the image spans the legends beside the panels: wider than the axes.
    import matplotlib.image as mimage
    import matplotlib.pyplot as plt

    from ctpipe.timeline_plot import plot_timeline, timeline_figure

    path = plot_timeline(_series(), tmp_path / "timeline.png")
    width = mimage.imread(path).shape[1]
    fig = timeline_figure(_series())
    fig.set_dpi(110)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent(renderer)
    axes = ax.get_window_extent(renderer)
    assert width >= legend.x1 - axes.x0 > axes.width
    plt.close(fig)


def test_every_day_tick_names_its_month() -> None:
    # A replay from 2 March (the demo's start): the default formatter labelled the first
    # ticks "08 15 22" with no month, then "Apr".
    import matplotlib.pyplot as plt

    from ctpipe.timeline_plot import timeline_figure

    fig = timeline_figure({"demand": _replay(batches=45)})
    fig.canvas.draw()
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels[:4] == ["Mar 08", "Mar 15", "Mar 22", "Apr 01"]
    assert ax.xaxis.get_major_formatter().get_offset() == "2026"
    plt.close(fig)
