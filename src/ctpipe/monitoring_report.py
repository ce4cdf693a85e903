"""The monitoring report of one use case: a self-contained HTML page and the PNG it embeds.

What someone without a Prefect UI or a database client opens to see how production is doing:
the champion's live metric per batch beside its label-free estimate (and the previous champion
in shadow), precision at the alert budget estimated vs realized (binary models), promotions and
rollbacks marked, the drift share of the same batches from their cycle records, the live metric
per slice, a table of recent batches (what `ctpipe monitor` prints) and every rollback's reason
in full.

Everything is read back (monitoring_view, the cycle records); nothing here decides anything.
The page loads nothing from anywhere: inline CSS, the figure as a base64 PNG, so it can be
mailed, archived as evidence or opened from a file share.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import os
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ctpipe import db as production
from ctpipe.monitoring_view import batch_rows, decision_text, slice_rows

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from ctpipe.db import Database, MonitoringDecision
    from ctpipe.workspace import Workspace

REPORT_HTML, REPORT_PNG = "monitoring.html", "monitoring.png"
PROMOTION, ROLLBACK = "promotion", "rollback"
_COLOURS = {PROMOTION: "tab:green", ROLLBACK: "tab:red"}


def report_paths(ws: Workspace, out_dir: Path | None = None) -> tuple[Path, Path]:
    """Where the report goes: ``out_dir``, by default ``<root>/reports/<use case>/``."""
    folder = out_dir if out_dir is not None else ws.root / "reports" / ws.name
    return folder / REPORT_HTML, folder / REPORT_PNG


@dataclass(frozen=True)
class Marker:
    batch: str
    kind: str  # PROMOTION or ROLLBACK
    label: str  # "v2 promoted", "rolled back to v1"


def _day(batch: str) -> dt.date | None:
    """A landed batch's date; None for `input:<file>` batches (no place on a time axis)."""
    try:
        return dt.date.fromisoformat(batch)
    except ValueError:
        return None


def _newer(version: str, than: str) -> bool:
    try:
        return int(version) > int(than)
    except ValueError:
        return version > than


def markers(rows: list[dict], rollbacks: list[MonitoringDecision]) -> list[Marker]:
    """Promotions (the champion's version goes up between consecutive scored batches) and
    rollbacks (a batch whose monitoring decision was a rollback), in batch order.

    The rollback's own batch is the last labelled batch it judged; the version drop shows up a
    few batches later (the batches scored before the rollback ran), so that drop is not marked
    again. A drop without a rollback decision is a manual `ctpipe rollback`: marked as one.
    """
    out = [Marker(d.batch, ROLLBACK, f"rolled back to v{d.target_version}") for d in rollbacks]
    pending = sorted((d.batch, str(d.target_version)) for d in rollbacks)
    for before, row in zip(rows, rows[1:], strict=False):
        old, new = str(before["version"]), str(row["version"])
        if old == new:
            continue
        if _newer(new, old):
            out.append(Marker(row["batch"], PROMOTION, f"v{new} promoted"))
            continue
        explained = next((p for p in pending if p[0] <= row["batch"] and p[1] == new), None)
        if explained is not None:
            pending.remove(explained)
        else:
            out.append(Marker(row["batch"], ROLLBACK, f"rolled back to v{new}"))
    return sorted(out, key=lambda m: m.batch)


def write_monitoring_report(ws: Workspace, db: Database,
                            out_dir: Path | None = None) -> tuple[Path, Path]:
    """Write ``monitoring.html`` and ``monitoring.png`` (each atomically); return their paths.

    A model that scored nothing yet gets a page saying so, not an error.
    """
    html_path, png_path = report_paths(ws, out_dir)
    rows = batch_rows(db, ws.model_name)
    rollbacks = [d for d in production.decisions(db, ws.model_name) if d.kind == ROLLBACK]
    dated = [r for r in rows if _day(r["batch"]) is not None]
    marks = markers(dated, rollbacks)
    if dated:
        drift = _drift_shares(ws, [r["batch"] for r in dated])
        png = _draw(ws, dated, slice_rows(db, ws.model_name), drift, marks)
    else:
        png = _draw_empty(ws, "nothing scored yet" if not rows else
                          "no dated batches scored yet (only --input files)")
    html_path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(png_path, png)
    _write_atomic(html_path, _page(ws, rows, rollbacks, marks, png).encode("utf-8"))
    return html_path, png_path


def _write_atomic(path: Path, data: bytes) -> None:
    """Temporary file in the same folder, then a rename: a reader sees the old file or the
    new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _drift_shares(ws: Workspace, batches: list[str]) -> dict[str, float]:
    """The drift share of each batch whose cycle record exists (a record is absent when the
    batch was scored without a cycle, or in a copied database)."""
    out = {}
    for batch in batches:
        try:
            record = ws.store.read_record(dt.date.fromisoformat(batch))
        except (OSError, ValueError):  # an unreadable record: its point is left out
            continue
        if record is not None:
            out[batch] = record.drift_share
    return out


# -- the figure ---------------------------------------------------------------------------------

def _figure(width: float, height: float):  # noqa: ANN202 - matplotlib.figure.Figure
    # An Agg canvas on a bare Figure: no pyplot, so no global figure registry or GUI backend
    # in a flow's process, and concurrent reports do not share state.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:  # noqa: ANN001
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _draw_empty(ws: Workspace, message: str) -> bytes:
    fig = _figure(8, 2)
    fig.text(0.5, 0.5, f"{ws.model_name}: {message}", ha="center", va="center", fontsize=14,
             color="tab:gray")
    return _png(fig)


def _nan(values: list[float | None]) -> list[float]:
    return [float("nan") if v is None else v for v in values]


def _mark(ax: Axes, days: dict[str, dt.date], marks: list[Marker], label: bool) -> None:
    span = max((max(days.values()) - min(days.values())).days, 1)
    previous, side = None, 1
    for m in marks:
        if m.batch not in days:
            continue
        day = days[m.batch]
        ax.axvline(day, color=_COLOURS[m.kind], alpha=0.5, linewidth=1.5)
        if not label:
            continue
        # Two events on (almost) the same batch would overprint: the second goes left.
        side = -side if previous is not None and (day - previous).days < span / 80 else 1
        previous = day
        ax.annotate(m.label, xy=(day, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(3 if side > 0 else -12, -3), textcoords="offset points",
                    rotation=90, va="top", fontsize=8, color=_COLOURS[m.kind],
                    fontweight="bold")


def _slices_by_column(slices: list[dict]) -> dict[str, dict[str, list[dict]]]:
    """{column: {value: [rows by batch]}} for the small multiples (one panel per column)."""
    out: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for row in sorted(slices, key=lambda r: r["batch"]):
        if _day(row["batch"]) is None:
            continue
        column, _, value = row["slice"].partition("=")
        out[column][value].append(row)
    return out


def _draw(ws: Workspace, rows: list[dict], slices: list[dict], drift: dict[str, float],
          marks: list[Marker]) -> bytes:
    from matplotlib.dates import AutoDateLocator, DateFormatter

    cfg = ws.config
    metric = cfg.evaluation.metric
    binary = cfg.data.task == "binary"
    by_column = _slices_by_column(slices)
    days = {r["batch"]: _day(r["batch"]) for r in rows}
    x = [days[r["batch"]] for r in rows]

    panels = ["live"] + (["precision"] if binary else []) + ["drift"]
    n_slice_cols = max(1, min(len(by_column), 3))
    slice_rows_n = -(-len(by_column) // n_slice_cols) if by_column else 0
    heights = [3.0] + [2.0] * (len(panels) - 1) + [2.2] * slice_rows_n
    fig = _figure(13, sum(heights) + 0.4)
    grid = fig.add_gridspec(len(heights), n_slice_cols, height_ratios=heights)
    top = fig.add_subplot(grid[0, :])
    axes = [top] + [fig.add_subplot(grid[i, :], sharex=top) for i in range(1, len(panels))]

    arrow = "higher is better" if cfg.higher_is_better else "lower is better"
    ax = axes[0]
    ax.plot(x, _nan([r["live_metric"] for r in rows]), color="tab:blue", marker="o",
            markersize=3, label="champion, live (labels arrived)")
    if any(r["estimated_metric"] is not None for r in rows):
        ax.plot(x, _nan([r["estimated_metric"] for r in rows]), color="tab:orange",
                linestyle="--", label="champion, estimated from scores (no labels)")
    if any(r["shadow_metric"] is not None for r in rows):
        ax.plot(x, _nan([r["shadow_metric"] for r in rows]), color="tab:gray", linestyle=":",
                marker=".", label="previous champion in shadow, live")
    ax.axhline(cfg.gate.floor, color="tab:red", linestyle="-.", linewidth=0.8,
               label=f"gate floor {cfg.gate.floor:g}")
    ax.set_title(f"{ws.name}: {metric} per batch ({arrow}); "
                 "green = promotion, red = rollback", loc="left")
    ax.set_ylabel(metric)

    if binary:
        ax = axes[panels.index("precision")]
        ax.plot(x, _nan([r["realized_precision"] for r in rows]), color="tab:blue", marker="o",
                markersize=3, label="realized")
        ax.plot(x, _nan([r["estimated_precision"] for r in rows]), color="tab:orange",
                linestyle="--", label="estimated (label-free)")
        ax.set_title(f"precision at the alert budget (top {cfg.evaluation.alert_budget:.1%} "
                     "of scores alerted)", loc="left")
        ax.set_ylabel("precision")

    ax = axes[panels.index("drift")]
    drift_x = [days[b] for b in drift]
    if drift:
        ax.bar(drift_x, list(drift.values()), width=0.8, color="tab:purple", alpha=0.6,
               label="share of drifted features")
    ax.axhline(cfg.drift.drift_share, color="tab:red", linestyle="-.", linewidth=0.8,
               label=f"retrain threshold {cfg.drift.drift_share:g}")
    ax.set_ylim(0, 1)
    ax.set_title("feature drift share per batch (from the cycle records)"
                 + ("" if drift else ": no cycle records for these batches"), loc="left")
    ax.set_ylabel("drift share")

    for i, (column, values) in enumerate(sorted(by_column.items())):
        ax = fig.add_subplot(grid[len(panels) + i // n_slice_cols, i % n_slice_cols],
                             sharex=top)
        for value, series in sorted(values.items()):
            ax.plot([_day(s["batch"]) for s in series], _nan([s["value"] for s in series]),
                    marker=".", markersize=3, linewidth=1, label=value)
        ax.set_title(f"live {metric} by {column}", loc="left", fontsize=10)
        axes.append(ax)

    # Shared x axes share one locator and formatter: set them once.
    top.xaxis.set_major_locator(AutoDateLocator(maxticks=10))
    top.xaxis.set_major_formatter(DateFormatter("%d %b"))
    for i, ax in enumerate(axes):
        _mark(ax, days, marks, label=i == 0)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=7, framealpha=0.8)
    fig.tight_layout()
    return _png(fig)


# -- the page -----------------------------------------------------------------------------------

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px;
       color: #222; max-width: 1320px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; }
.meta { color: #666; font-size: 13px; }
.summary { display: flex; gap: 28px; flex-wrap: wrap; margin: 14px 0; }
.summary div { background: #f4f6f8; border-radius: 6px; padding: 8px 14px; }
.summary b { display: block; font-size: 18px; }
img { max-width: 100%; border: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e3e3e3; text-align: right; }
th { background: #f4f6f8; } td.l, th.l { text-align: left; }
tr.rollback td { background: #fde8e8; } tr.degraded td { background: #fff6dd; }
tr.watching td { background: #fffbeb; }
.reason { background: #fde8e8; border-left: 4px solid #d62728; padding: 8px 12px;
          margin: 8px 0; white-space: pre-wrap; font-size: 13px; }
.events .promotion { color: #2ca02c; font-weight: 600; }
.events .rollback { color: #d62728; font-weight: 600; }
.empty { font-size: 16px; color: #555; background: #f4f6f8; padding: 14px; }
"""


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table(rows: list[dict], metric: str) -> str:
    """The columns `ctpipe monitor` prints."""
    head = ("<tr><th class=l>batch</th><th>model</th><th>scored</th><th>labelled</th>"
            f"<th>{html.escape(metric)}</th><th>estimate</th><th>shadow</th>"
            "<th class=l>decision</th></tr>")
    body = []
    for r in rows:
        shadow = "-" if r["shadow_version"] is None else \
            f"v{r['shadow_version']} {_fmt(r['shadow_metric'])}"
        labelled = "-" if r["rows_labelled"] is None else r["rows_labelled"]
        kind = r["decision"] or ""
        body.append(
            f"<tr class='{html.escape(kind)}'><td class=l>{html.escape(r['batch'])}</td>"
            f"<td>v{html.escape(str(r['version']))}</td><td>{r['rows_scored']}</td>"
            f"<td>{labelled}</td><td>{_fmt(r['live_metric'])}</td>"
            f"<td>{_fmt(r['estimated_metric'])}</td><td>{html.escape(shadow)}</td>"
            f"<td class=l>{html.escape(decision_text(r))}</td></tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _rollback_section(rollbacks: list[MonitoringDecision]) -> str:
    if not rollbacks:
        return "<p>No automatic rollback.</p>"
    parts = []
    for d in rollbacks:
        bad = d.details.get("bad_batches") or []
        evidence = f"; bad batches: {', '.join(map(str, bad))}" if bad else ""
        parts.append(
            f"<p><b>rolled back to v{html.escape(str(d.target_version))}</b> from "
            f"v{html.escape(str(d.champion_version))}, on the evidence through batch "
            f"{html.escape(d.batch)} (decided {d.decided_at:%Y-%m-%d %H:%M} UTC"
            f"{html.escape(evidence)})</p><div class=reason>{html.escape(d.reason)}</div>")
    return "".join(parts)


def _page(ws: Workspace, rows: list[dict], rollbacks: list[MonitoringDecision],
          marks: list[Marker], png: bytes) -> str:
    cfg = ws.config
    metric = cfg.evaluation.metric
    now = dt.datetime.now(dt.UTC)
    title = f"Monitoring report: {ws.name}"
    head = (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p class=meta>model {html.escape(ws.model_name)}"
            + (f" &middot; batches {html.escape(rows[0]['batch'])} to "
               f"{html.escape(rows[-1]['batch'])}" if rows else "")
            + f" &middot; generated {now:%Y-%m-%d %H:%M} UTC</p>")
    if not rows:
        return (f"{head}<p class=empty>Nothing was scored yet for {html.escape(ws.model_name)}:"
                f" the report fills in once <code>ctpipe score {html.escape(ws.name)}</code> has"
                " logged a batch and <code>ctpipe monitor</code> has measured it.</p>"
                "</body></html>")
    labelled = [r for r in rows if r["live_metric"] is not None]
    last = rows[-1]
    summary = [
        ("champion", f"v{last['version']}"),
        ("batches scored", str(len(rows))),
        ("batches labelled", str(len(labelled))),
        (f"latest live {metric}", "-" if not labelled else
         f"{_fmt(labelled[-1]['live_metric'])} ({labelled[-1]['batch']})"),
        ("latest estimate", f"{_fmt(last['estimated_metric'])} ({last['batch']})"),
        ("promotions / rollbacks", f"{sum(m.kind == PROMOTION for m in marks)} / "
                                   f"{sum(m.kind == ROLLBACK for m in marks)}"),
    ]
    boxes = "".join(f"<div>{html.escape(k)}<b>{html.escape(v)}</b></div>" for k, v in summary)
    events = " &middot; ".join(f"{html.escape(m.batch)} <span class={m.kind}>"
                               f"{html.escape(m.label)}</span>" for m in marks)
    image = base64.b64encode(png).decode("ascii")
    recent = rows[-cfg.monitoring.recent_batches:]
    return (
        f"{head}<div class=summary>{boxes}</div>"
        f"<img alt='live {html.escape(metric)}, estimate, drift share and slices over time' "
        f"src='data:image/png;base64,{image}'>"
        f"<p class=events><b>Promotions and rollbacks:</b> {events or 'none'}</p>"
        f"<h2>Rollback reasons</h2>{_rollback_section(rollbacks)}"
        f"<h2>Recent batches</h2>{_table(recent, metric)}"
        "</body></html>")
