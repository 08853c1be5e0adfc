"""The figures of a sweep, drawn as compare's are (``asimc.report.figures``: the same style,
width and resolution, figures on their own Agg canvas that nothing has to close, and point
labels placed so that none overlaps another label or a point).

* accuracy against each varied field, with error bars over seeds and the FP32 and ``int``
  lines (the other fields' values as separate series): a numeric field in numeric order with
  its points joined, a categorical one (``input.encoding``) in the order the command line gave,
  its points not joined (there is nothing between ``serial`` and ``parallel 2``);
* a heatmap of mean accuracy when exactly two fields vary;
* the Pareto scatter: cost (energy with its SI prefix, else conversions) against accuracy,
  every point labelled with its number, the front drawn and the ``--best`` point marked.

``make_figures`` gives one figure per panel (the HTML report shows each); ``sweep_figure``
draws them all on one figure (``--plot``).
"""
from __future__ import annotations

import math

from matplotlib import rc_context
from matplotlib.ticker import FuncFormatter

from ..report.figures import (STYLE, labelled_scatter, new_figure, place_labels,
                              plot_path, save)
from ..report.units import count, prefix_for
from .answers import _is_number, cost_objective, point_rows

__all__ = ["make_figures", "plot_path", "save", "sweep_figure"]

WIDTH = 10.0                  # inches, as compare's figure
_LABEL_SIZE = 7.5


def _number(text: str) -> float | None:
    """The number a value starts with ("0.25 lsb" -> 0.25, "2%" -> 2), or None."""
    head = text.split()[0].rstrip("%") if text.strip() else ""
    try:
        return float(head)
    except ValueError:
        return None


def _order(axis: str, done: list[dict]) -> tuple[list[str], bool]:
    """The values of ``axis`` in plotting order, and whether they are numbers: numbers
    ascending, words in the order the points were made (the command line's)."""
    values = list(dict.fromkeys(r["params"].get(axis, "")
                                for r in sorted(done, key=lambda r: r["point"])))
    numeric = all(_number(v) is not None for v in values)
    if numeric:
        values.sort(key=lambda v: (_number(v), v))
    return values, numeric


_PERCENT = ("top1", "agreement")
_LABELS = {"top1": "Accuracy (%)", "agreement": "Agreement with FP32 (%)",
           "cosine": "Cosine vs FP32", "sqnr": "SQNR vs FP32 (dB)", "mse": "MSE vs FP32"}


def _scale(r) -> float:
    """Fractions (top1, agreement) are drawn in percent; cosine, SQNR and MSE as they are."""
    return 100.0 if r["metric"] in _PERCENT else 1.0


def _accuracy(r):
    """The row's metric (accuracy for top1), as drawn."""
    return _scale(r) * r["score_mean"] if _is_number(r["score_mean"]) else None


def _metric(rows) -> str:
    return rows[0]["metric"] if rows else "top1"


def _panels(sweep: dict, rows: list[dict], objectives, rule, best) -> list:
    """(title, height in inches, draw(container) -> axes whose labels to place)."""
    axes = sweep["meta"].get("axes", [])
    done = [r for r in point_rows(rows) if r["status"] == "done" and _accuracy(r) is not None]
    fp32 = next((r for r in rows if r["point"] == "fp32"), None)
    ints = [r for r in rows if r["point"] == "int" and _is_number(r["score_mean"])]
    name = _LABELS[_metric(rows)].split(" (")[0]
    panels = []
    if done:
        for axis in axes:
            panels.append((f"{name} against {axis}", 4.2,
                           lambda box, axis=axis: _accuracy_panel(box, axis, axes, done, fp32,
                                                                  ints)))
        if len(axes) == 2:
            ys, _ = _order(axes[1], done)
            panels.append((f"{name} heatmap", 1.6 + 0.45 * len(ys),
                           lambda box: _heatmap(box, axes, done)))
    if _pareto_points(rows, objectives)[2]:
        panels.append(("Pareto front", 4.6,
                       lambda box: _pareto(box, rows, objectives, rule, best, fp32)))
    return panels


def make_figures(sweep: dict, rows: list[dict], objectives, rule, best) -> list:
    """A list of (title, matplotlib Figure), one per panel."""
    figures = []
    with rc_context(STYLE):
        for title, height, draw in _panels(sweep, rows, objectives, rule, best):
            figure = new_figure(WIDTH, height)
            place_labels(figure, draw(figure))
            figures.append((title, figure))
    return figures


def sweep_figure(sweep: dict, rows: list[dict], objectives, rule, best):
    """Every panel on one figure (what ``sweep show --plot`` writes), or None before any
    point is done."""
    panels = _panels(sweep, rows, objectives, rule, best)
    if not panels:
        return None
    with rc_context(STYLE):
        heights = [height for _, height, _ in panels]
        figure = new_figure(WIDTH, sum(heights))
        boxes = figure.subfigures(len(panels), 1, height_ratios=heights, squeeze=False)[:, 0]
        scatters = [ax for box, (_, _, draw) in zip(boxes, panels) for ax in draw(box)]
        place_labels(figure, scatters)
    return figure


def _legend_above(ax, ncol: int = 3) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=ncol,
                  frameon=False, borderaxespad=0.3)


def _accuracy_panel(box, axis: str, axes: list[str], done, fp32, ints) -> list:
    ax = box.subplots()
    label = _LABELS[_metric(done)]
    box.suptitle(f"{label.split(' (')[0]} against {axis}", fontsize=10)
    others = [a for a in axes if a != axis]
    values, numeric = _order(axis, done)
    positions = {v: k for k, v in enumerate(values)}
    groups: dict[tuple, list] = {}
    for r in done:
        groups.setdefault(tuple(r["params"].get(a, "") for a in others), []).append(r)
    order = {a: _order(a, done)[0] for a in others}
    keys = sorted(groups, key=lambda g: [order[a].index(v) for a, v in zip(others, g)])
    # Side by side within a category, so that error bars of several series do not hide
    # each other; on a numeric axis the lines tell the series apart.
    spread = 0.0 if numeric or len(keys) < 2 else min(0.3, 0.6 / len(keys))
    for k, group in enumerate(keys):
        members = sorted(groups[group], key=lambda r: positions[r["params"].get(axis, "")])
        shift = (k - (len(keys) - 1) / 2) * spread
        ax.errorbar([positions[r["params"].get(axis, "")] + shift for r in members],
                    [_accuracy(r) for r in members],
                    yerr=[_scale(r) * (r["score_std"] or 0) for r in members],
                    marker="o", markersize=4, capsize=3, linewidth=1.2,
                    linestyle="-" if numeric else "none",
                    label=", ".join(f"{a}={v}" for a, v in zip(others, group)) or "points")
    if fp32 is not None and _accuracy(fp32) is not None:
        ax.axhline(_accuracy(fp32), color="#b00020", linestyle="--", linewidth=1,
                   label=f"FP32: {_accuracy(fp32):.2f}%" if _metric(done) in _PERCENT
                   else f"FP32: {_accuracy(fp32):.4g}")
    for r in ints:
        ax.axhline(_accuracy(r), color="#777", linestyle=":", linewidth=1,
                   label=f"int {r['precision']}" if len(ints) > 1 else "int")
    ax.set_xticks(range(len(values)), values)
    ax.set_xlim(-0.5, len(values) - 0.5)
    ax.set_xlabel(axis)
    ax.set_ylabel(label)
    if _metric(done) in _PERCENT:
        top = max([_accuracy(r) + 100 * (r["score_std"] or 0) for r in done] + [0.0])
        ax.set_ylim(0, min(105.0, max(10.0, top * 1.05)))
        ax.set_yticks([t for t in ax.get_yticks() if 0 <= t <= 100])
    ax.grid(axis="y", color="#e4e4e4", linewidth=0.7)
    ax.set_axisbelow(True)
    _legend_above(ax, ncol=3)
    _readable_ticks(box, ax)
    return []


def _readable_ticks(box, ax) -> None:
    """Slant the x tick labels when, side by side, they would touch (the axes take at most
    four fifths of the panel's width, the rest being margins, labels and a colour bar)."""
    renderer = box.figure.canvas.get_renderer()
    widths = [t.get_window_extent(renderer).width for t in ax.get_xticklabels()]
    slot = 0.8 * box.bbox.width / max(1, len(widths))
    if widths and max(widths) > 0.8 * slot:
        ax.tick_params(axis="x", labelrotation=30)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")


def _heatmap(box, axes: list[str], done) -> list:
    import numpy as np
    xs, _ = _order(axes[0], done)
    ys, _ = _order(axes[1], done)
    grid = np.full((len(ys), len(xs)), np.nan)
    for r in done:
        grid[ys.index(r["params"].get(axes[1], "")), xs.index(r["params"].get(axes[0], ""))] = \
            _accuracy(r)
    ax = box.subplots()
    label = _LABELS[_metric(done)]
    box.suptitle(f"Mean {label[0].lower()}{label[1:]}", fontsize=10)
    percent = _metric(done) in _PERCENT
    limits = (0.0, 100.0) if percent else (float(np.nanmin(grid)), float(np.nanmax(grid)))
    image = ax.imshow(grid, cmap="viridis", aspect="auto", origin="lower", vmin=limits[0],
                      vmax=limits[1])
    middle = 0.6 * limits[1] + 0.4 * limits[0]
    for i in range(len(ys)):
        for j in range(len(xs)):
            if not math.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.1f}" if percent else f"{grid[i, j]:.3g}",
                        ha="center", va="center", fontsize=_LABEL_SIZE,
                        color="white" if grid[i, j] < middle else "black")
    ax.set_xticks(range(len(xs)), xs)
    ax.set_yticks(range(len(ys)), ys)
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    box.colorbar(image, ax=ax, label=label)
    _readable_ticks(box, ax)
    return []


_SCORE_COLUMNS = {"accuracy_mean": "Accuracy (%)", "agreement": "Agreement with FP32 (%)",
                  "cosine": "Cosine vs FP32", "sqnr_db": "SQNR vs FP32 (dB)",
                  "mse": "MSE vs FP32", "score_mean": None}


def _pareto_points(rows, objectives):
    cost = cost_objective(rows)
    scored = [o for o in objectives if o.column in _SCORE_COLUMNS]
    metric = scored[0].column if scored else "score_mean"
    points = [r for r in point_rows(rows) if r["status"] == "done"
              and _is_number(r[cost.column]) and r[cost.column] > 0 and _is_number(r[metric])]
    return cost, metric, points


def _pareto(box, rows, objectives, rule, best, fp32) -> list:
    cost, metric, points = _pareto_points(rows, objectives)
    ylabel = _SCORE_COLUMNS[metric] or _LABELS[_metric(points)]
    percent = ylabel.endswith("(%)")
    value = 100.0 if percent else 1.0
    ax = box.subplots()
    box.suptitle(f"Cost against {ylabel.split(' (')[0].lower()}", fontsize=10)
    if cost.name == "energy":
        scale, prefix = prefix_for(sorted(r["energy_j"] for r in points)[len(points) // 2])
        formatter, xlabel = (lambda v, _: f"{v:g}"), f"Energy per inference ({prefix}J)"
    else:
        scale, formatter, xlabel = 1.0, (lambda v, _: count(v)), "ADC conversions per inference"
    labelled_scatter(ax, [(str(r["point"]), r[cost.column] / scale, value * r[metric])
                          for r in points], formatter, percent)
    ax.xaxis.set_major_formatter(FuncFormatter(formatter))
    front = sorted((r for r in points if r["pareto"]), key=lambda r: r[cost.column])
    if front:
        ax.plot([r[cost.column] / scale for r in front], [value * r[metric] for r in front],
                color="#c0504d", linewidth=1.2, zorder=2, label="Pareto front")
    if fp32 is not None and _is_number(fp32.get(metric)):
        low, high = ax.get_ylim()
        level = value * fp32[metric]
        if low <= level <= high:
            ax.axhline(level, color="#b00020", linestyle="--", linewidth=1,
                       label=f"FP32: {level:.2f}%" if percent else f"FP32: {level:.4g}")
    if best is not None:
        ax.scatter([best[cost.column] / scale], [value * best[metric]], marker="*", s=220,
                   color="gold", edgecolor="black", zorder=5, label=f"best: {rule.text}")
        # Labels keep clear of the star (about 15 points across), as of any point.
        ax._asimc_obstacles = [(best[cost.column] / scale, value * best[metric], 8.0)]
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    _legend_above(ax, ncol=3)
    return [ax]
