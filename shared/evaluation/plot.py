"""The report's plot: nDCG@10 against vector RAM per document, with the Pareto front.

matplotlib is imported on use (Agg backend), so the rest of the evaluation runs without it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .configs import MODES
from .metrics import PRIMARY, EvalRow
from .units import fmt_bytes

if TYPE_CHECKING:
    from .report import EvalReport

_OURS = "m3-hybrid"
_PALETTE = ("#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#d62728", "#8c564b", "#e377c2", "#17becf")
#: (marker, preset family) in legend order; :func:`_marker` picks a config's.
_FAMILIES = (
    ("o", "float / float16"),
    ("s", "int8"),
    ("v", "binary"),
    ("D", "TurboQuant"),
    ("P", "MRL funnel"),
    ("X", "other"),
)


def plot_report(
    report: EvalReport,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    recommended: tuple[str, str] | None = None,
) -> Path:
    """Draw ``report`` to a PNG at ``path`` (see :meth:`EvalReport.plot`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _plotted_rows(report.rows)
    ours = [r for r in rows if r.system == _OURS]
    others = [r for r in rows if r.system != _OURS]
    modes = list(dict.fromkeys(r.mode for r in ours))
    color = {m: _PALETTE[i % len(_PALETTE)] for i, m in enumerate(modes)}
    fig, ax = plt.subplots(figsize=(11, 6.5), dpi=130)  # labels are measured at the saved dpi
    for r in others:
        _errorbar(ax, r, fmt="s", color="0.55", ms=6, capsize=2, alpha=0.6, zorder=1)
    for r in ours:
        fill = "white" if r.mode.endswith("-norescore") else color[r.mode]
        _errorbar(
            ax,
            r,
            fmt=_marker(r.config),
            color=color[r.mode],
            mfc=fill,
            ms=7,
            capsize=2,
            elinewidth=0.8,
            alpha=0.9,
            zorder=3,
        )
    front = _pareto(ours)
    if front:
        ax.step(
            [_x(r) for r in front],
            [_y(r) for r in front],
            where="post",
            color="black",
            lw=1,
            ls="--",
            alpha=0.7,
            zorder=2,
            label="Pareto front",
        )
    rec_row = _recommended_row(ours, recommended)
    if rec_row is not None:
        ax.scatter(
            [_x(rec_row)], [_y(rec_row)], s=380, facecolors="none", edgecolors="black", linewidths=2, zorder=4
        )
    _style_axes(ax)
    ax.legend(
        handles=_legend_handles(modes, color, ours, bool(front), rec_row is not None, bool(others)),
        fontsize=8,
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
        frameon=False,
    )
    ax.set_title(
        title or f"{report.dataset}: {report.num_docs:,} docs, {report.num_queries:,} queries", fontsize=11
    )
    fig.tight_layout()
    fig.canvas.draw()  # final scales and layout first: labels are placed in display space
    labelled = front + ([rec_row] if rec_row is not None and rec_row not in front else [])
    ordered = ([rec_row] if rec_row is not None else []) + [r for r in labelled if r is not rec_row]
    _place_labels(fig, ax, ordered + others, rec_row, [(_x(r), _y(r)) for r in rows])
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out


def _plotted_rows(rows: Sequence[EvalRow]) -> list[EvalRow]:
    """Rows with a RAM figure; of ours, only built-in modes (experiments stay in the table)."""
    return [
        r
        for r in rows
        if r.ram_bytes_per_doc
        and r.ram_bytes_per_doc > 0
        and (r.system != _OURS or r.mode.removesuffix("-norescore") in MODES)
    ]


def _x(r: EvalRow) -> float:
    return float(r.ram_bytes_per_doc or 0)


def _y(r: EvalRow) -> float:
    return r.metrics[PRIMARY]


def _errorbar(ax: Any, r: EvalRow, **style: Any) -> None:
    y = _y(r)
    ax.errorbar([_x(r)], [y], yerr=[[y - r.ndcg_ci[0]], [r.ndcg_ci[1] - y]], **style)


def _recommended_row(ours: Sequence[EvalRow], recommended: tuple[str, str] | None) -> EvalRow | None:
    if recommended is None:
        return None
    return next((r for r in ours if (r.config, r.mode) == recommended), None)


def _style_axes(ax: Any) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_bytes(v)))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.set_xlabel("vector RAM per document (log scale; quantized presets with originals on disk)")
    ax.set_ylabel("nDCG@10 (95% bootstrap CI)")
    ax.grid(True, which="major", alpha=0.3)


def _legend_handles(
    modes: Sequence[str],
    color: dict[str, str],
    ours: Sequence[EvalRow],
    front: bool,
    recommended: bool,
    others: bool,
) -> list[Any]:
    from matplotlib.lines import Line2D

    handles: list[Any] = [Line2D([], [], marker="o", ls="", color=color[m], label=m) for m in modes]
    present = {_marker(r.config) for r in ours}
    handles += [
        Line2D([], [], marker=mk, ls="", color="0.3", label=lab) for mk, lab in _FAMILIES if mk in present
    ]
    if front:
        handles.append(Line2D([], [], color="black", ls="--", label="Pareto front"))
    if recommended:
        handles.append(
            Line2D([], [], marker="o", ms=12, ls="", mfc="none", mec="black", mew=2, label="recommended")
        )
    if others:
        handles.append(Line2D([], [], marker="s", ls="", color="0.55", label="other system"))
    return handles


def _marker(config: str) -> str:
    first = config.split("+")[0]
    if "mrl" in config:
        return "P"
    if first in ("none", "float16"):
        return "o"
    if first == "int8":
        return "s"
    if first.startswith("binary"):
        return "v"
    if first.startswith("turbo"):
        return "D"
    return "X"


def _short(config: str) -> str:
    """A short point label: the preset and MRL size, without the layout suffix."""
    return "+".join(p for p in config.split("+") if p != "on-disk")


def _pareto(rows: Sequence[EvalRow]) -> list[EvalRow]:
    """Rows no other row beats on both memory (lower) and nDCG@10 (higher), by memory."""
    ordered = sorted(rows, key=lambda r: (float(r.ram_bytes_per_doc or 0), -r.metrics[PRIMARY]))
    front: list[EvalRow] = []
    best = -math.inf
    for r in ordered:
        if r.metrics[PRIMARY] > best:
            front.append(r)
            best = r.metrics[PRIMARY]
    return front


def _place_labels(
    fig: Any,
    ax: Any,
    rows: Sequence[EvalRow],
    highlight: EvalRow | None,
    points: Sequence[tuple[float, float]] = (),
) -> None:
    """Label points without overlaps: try a few offsets per label, keep the first free one;
    a label that fits nowhere is left out (except the highlighted one)."""
    from matplotlib.transforms import Bbox

    renderer = fig.canvas.get_renderer()
    # Markers are obstacles too: a label must not hide another point.
    taken: list[Any] = []
    for px, py in points:
        cx, cy = ax.transData.transform((px, py))
        taken.append(Bbox.from_extents(cx - 4, cy - 4, cx + 4, cy + 4))
    if highlight is not None:  # the ring around the recommended point
        cx, cy = ax.transData.transform((float(highlight.ram_bytes_per_doc or 0), highlight.metrics[PRIMARY]))
        taken.append(Bbox.from_extents(cx - 13, cy - 13, cx + 13, cy + 13))
    offsets = [(dx, dy) for dy in (6, -14, 16, -24) for dx in (8, -8)]
    for r in rows:
        x, y = float(r.ram_bytes_per_doc or 0), r.metrics[PRIMARY]
        text = f"{_short(r.config)} · {r.mode}" if r.system == "m3-hybrid" else r.system
        placed = None
        for dx, dy in offsets:
            t = ax.annotate(
                text,
                (x, y),
                xytext=(dx, dy),
                textcoords="offset points",
                fontsize=7.5,
                ha="left" if dx > 0 else "right",
                zorder=5,
                fontweight="bold" if r is highlight else "normal",
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
            )
            box = t.get_window_extent(renderer).expanded(1.04, 1.3)
            inside = ax.bbox.contains(box.x0, box.y0) and ax.bbox.contains(box.x1, box.y1)
            if inside and not any(box.overlaps(o) for o in taken):
                placed = box
                # A thin leader from the label to its point (a separate artist: not an obstacle).
                ax.annotate(
                    "",
                    (x, y),
                    xytext=(dx, dy + 3),
                    textcoords="offset points",
                    arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.5, "shrinkA": 0, "shrinkB": 3},
                    zorder=4,
                )
                break
            t.remove()
        if placed is None and r is not highlight:
            continue  # every offset collides: leave this point unlabelled (the table has it)
        if placed is None:  # the recommended point is always labelled
            dx, dy = offsets[0]
            t = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=7.5, zorder=5)
            placed = t.get_window_extent(renderer)
        taken.append(placed)
