"""The figures of a sweep (matplotlib, no display needed).

* accuracy against each varied field, with error bars over seeds and the FP32 and ``int`` lines
  (the other fields' values as separate lines);
* a heatmap of mean accuracy when exactly two fields vary;
* the Pareto scatter: cost (energy, else conversions) against accuracy, the front drawn, the
  FP32 - 1 point line and the ``--best`` point marked.
"""
from __future__ import annotations

import io
import math
import os

from .answers import _is_number, cost_objective, point_rows


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")          # files only; never a window
    import matplotlib.pyplot as plt
    return plt


def _sort_key(text: str):
    """Order values numerically where they are numbers ("10" after "9"), else as words."""
    head = text.split()[0].rstrip("%") if text else ""
    try:
        return (0, float(head), text)
    except ValueError:
        tail = text.split()[-1]
        try:
            return (1, text.split()[0], float(tail))
        except ValueError:
            return (2, text, 0.0)


def _scale(r) -> float:
    """Fractions (top1, agreement) are drawn in percent; cosine, SQNR and MSE as they are."""
    return 100.0 if r["metric"] in ("top1", "agreement") else 1.0


def _accuracy(r):
    """The row's metric (accuracy for top1), as drawn."""
    return _scale(r) * r["score_mean"] if _is_number(r["score_mean"]) else None


def _metric_label(rows) -> str:
    metric = rows[0]["metric"] if rows else "top1"
    return {"top1": "accuracy (%)", "agreement": "agreement with FP32 (%)",
            "cosine": "cosine vs FP32", "sqnr": "SQNR vs FP32 (dB)",
            "mse": "MSE vs FP32"}[metric]


def make_figures(sweep: dict, rows: list[dict], objectives, rule, best) -> list:
    """A list of (title, matplotlib Figure)."""
    plt = _pyplot()
    axes = sweep["meta"].get("axes", [])
    done = [r for r in point_rows(rows) if r["status"] == "done" and _accuracy(r) is not None]
    fp32 = next((r for r in rows if r["point"] == "fp32"), None)
    ints = [r for r in rows if r["point"] == "int" and _is_number(r["score_mean"])]
    label = _metric_label(rows)
    name = label.split(" (")[0]
    figures = []
    for axis in axes:
        others = [a for a in axes if a != axis]
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        values = sorted({r["params"].get(axis, "") for r in done}, key=_sort_key)
        positions = {v: k for k, v in enumerate(values)}
        groups: dict[tuple, list] = {}
        for r in done:
            groups.setdefault(tuple(r["params"].get(a, "") for a in others), []).append(r)
        for group, members in sorted(groups.items(),
                                    key=lambda kv: [_sort_key(v) for v in kv[0]]):
            members.sort(key=lambda r: positions[r["params"].get(axis, "")])
            label = ", ".join(f"{a}={v}" for a, v in zip(others, group)) or None
            ax.errorbar([positions[r["params"].get(axis, "")] for r in members],
                        [_accuracy(r) for r in members],
                        yerr=[_scale(r) * (r["score_std"] or 0) for r in members],
                        marker="o", capsize=3, label=label)
        if fp32 is not None and _is_number(fp32["score_mean"]):
            ax.axhline(_accuracy(fp32), color="black", linestyle="--",
                       linewidth=1, label="FP32")
        for r in ints:
            ax.axhline(_accuracy(r), color="gray", linestyle=":", linewidth=1,
                       label=f"int {r['precision']}" if len(ints) > 1 else "int")
        ax.set_xticks(range(len(values)), values, rotation=30 if len(values) > 6 else 0)
        ax.set_xlabel(axis)
        ax.set_ylabel(label)
        ax.set_title(f"{name} against {axis}")
        if len(groups) <= 12:
            ax.legend(fontsize=7)
        fig.tight_layout()
        figures.append((f"{name} against {axis}", fig))
    if len(axes) == 2 and done:
        figures.append((f"{name} heatmap", _heatmap(plt, axes, done, label)))
    scatter = _pareto(plt, rows, objectives, rule, best, fp32)
    if scatter is not None:
        figures.append(scatter)
    return figures


def _heatmap(plt, axes, done, label):
    import numpy as np
    xs = sorted({r["params"].get(axes[0], "") for r in done}, key=_sort_key)
    ys = sorted({r["params"].get(axes[1], "") for r in done}, key=_sort_key)
    grid = np.full((len(ys), len(xs)), np.nan)
    for r in done:
        grid[ys.index(r["params"].get(axes[1], "")), xs.index(r["params"].get(axes[0], ""))] = \
            _accuracy(r)
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * len(xs), 1.2 + 0.5 * len(ys)))
    image = ax.imshow(grid, cmap="viridis", aspect="auto", origin="lower")
    for i in range(len(ys)):
        for j in range(len(xs)):
            if not math.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center", fontsize=7,
                        color="white" if grid[i, j] < np.nanmean(grid) else "black")
    ax.set_xticks(range(len(xs)), xs)
    ax.set_yticks(range(len(ys)), ys)
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title(f"mean {label}")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    return fig


def _pareto(plt, rows, objectives, rule, best, fp32):
    cost = cost_objective(rows)
    scores = {"accuracy_mean", "agreement", "cosine", "sqnr_db", "mse", "score_mean"}
    scored = [o for o in objectives if o.column in scores]
    metric = scored[0].column if scored else "score_mean"
    scale = 100.0 if metric in ("accuracy_mean", "agreement") else 1.0
    points = [r for r in point_rows(rows) if r["status"] == "done"
              and _is_number(r[cost.column]) and _is_number(r[metric])]
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.scatter([r[cost.column] for r in points], [scale * r[metric] for r in points],
               color="tab:blue", s=18, label="points")
    front = sorted((r for r in points if r["pareto"]), key=lambda r: r[cost.column])
    if front:
        ax.plot([r[cost.column] for r in front], [scale * r[metric] for r in front],
                color="tab:red", marker="o", label="Pareto front")
    if fp32 is not None and _is_number(fp32["accuracy_mean"]) and metric == "accuracy_mean":
        ax.axhline(100 * fp32["accuracy_mean"] - 1, color="black", linestyle="--",
                   linewidth=1, label="FP32 - 1 point")
    if best is not None:
        ax.scatter([best[cost.column]], [scale * best[metric]], marker="*", s=220,
                   color="gold", edgecolor="black", zorder=5, label=f"best: {rule.text}")
    costs = [r[cost.column] for r in points]
    if min(costs) > 0 and max(costs) / min(costs) > 20:
        ax.set_xscale("log")
    ax.set_xlabel("energy per inference (J)" if cost.name == "energy"
                  else "ADC conversions per inference")
    named = {"accuracy_mean": "accuracy (%)", "agreement": "agreement with FP32 (%)",
             "cosine": "cosine vs FP32", "sqnr_db": "SQNR vs FP32 (dB)", "mse": "MSE vs FP32"}
    ylabel = named.get(metric) or _metric_label(points)
    ax.set_ylabel(ylabel)
    ax.set_title(f"cost against {ylabel.split(' (')[0]}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return ("Pareto front", fig)


def save(figures, path: str) -> None:
    """One file: a single figure as it is, several stacked (PDF: one page each)."""
    from ..errors import UsageError
    plt = _pyplot()
    if not figures:
        raise UsageError(f"{path}: nothing to plot yet (no point is done)")
    try:
        if path.lower().endswith(".pdf"):
            from matplotlib.backends.backend_pdf import PdfPages
            with PdfPages(path) as pdf:
                for _, fig in figures:
                    pdf.savefig(fig)
            return
        if len(figures) == 1:
            figures[0][1].savefig(path, dpi=120)
            return
        _combined(plt, figures).savefig(path, dpi=120)
    except OSError as error:
        raise UsageError(f"{path}: cannot write the figure ({error.strerror or error})") \
            from None


def _combined(plt, figures):
    """Several figures as images on one tall figure."""
    import matplotlib.image as mpimg
    images = []
    for _, fig in figures:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=120)
        buffer.seek(0)
        images.append(mpimg.imread(buffer))
    height = sum(im.shape[0] for im in images) / 120
    width = max(im.shape[1] for im in images) / 120
    combined, axes = plt.subplots(len(images), 1, figsize=(width, height))
    for ax, image in zip(axes, images):
        ax.imshow(image)
        ax.axis("off")
    combined.tight_layout(pad=0)
    return combined


def svg_text(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.find("<svg"):]


def write_each(figures, folder: str, stem: str, ext: str = "png") -> list[str]:
    """One file per figure (for examples): FOLDER/STEM-<title>.EXT."""
    paths = []
    for title, fig in figures:
        safe = "".join(c if c.isalnum() else "-" for c in title).strip("-")
        name = f"{stem}-{safe}.{ext}"
        path = os.path.join(folder, name)
        fig.savefig(path, dpi=110)
        paths.append(path)
    return paths
