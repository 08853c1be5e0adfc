"""The figures of ``asimc compare`` and ``asimc golden``, drawn with matplotlib.

One function per figure, each returning a ``matplotlib.figure.Figure`` on the Agg canvas (no
pyplot, no display, no global state): ``--plot FILE`` saves it (:func:`save`) and the HTML
report embeds the very same figure as inline SVG (:func:`svg_markup`).

Point labels are placed by :func:`_plan_labels` so that no two labels overlap, none covers a
point and none leaves the axes; the layout is fixed before they are placed, so what was checked
is what is drawn.
"""
from __future__ import annotations

import io
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from .units import count, prefix_for

FORMATS = ("png", "svg", "pdf")

# Text as paths in SVG (looks the same in every browser and viewer, whatever fonts it has);
# TrueType in PDF (journals refuse Type 3 fonts); fixed ids and no dates: the same data give
# the same bytes.
STYLE = {"svg.fonttype": "path", "svg.hashsalt": "asimc", "pdf.fonttype": 42,
       "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
       "xtick.labelsize": 8, "ytick.labelsize": 8, "axes.spines.top": False,
       "axes.spines.right": False}
_METADATA = {"svg": {"Date": None, "Creator": None, "Format": None, "Type": None},
             "pdf": {"CreationDate": None, "Creator": None, "Producer": None},
             "png": {"Software": None}}

_CHIP = "#3b6ea8"
_IDEAL = "#7fa7d4"
_NOISY = "#3b6ea8"
_CLIPPED = "#c0504d"
_LABEL_SIZE = 7.5


# Figures are laid out, and their labels placed, at the resolution a PNG is written at: text
# rendered at another resolution has other widths (hinting), and labels checked apart at one
# can touch at the other.
DPI = 200


def new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained", dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _chips(rows: list[dict]) -> list[dict]:
    return [r for r in rows if row_kind(r) not in ("fp32", "int")]


def _finite(value) -> bool:
    return value is not None and math.isfinite(value)


@dataclass(frozen=True)
class _MetricAxis:
    """How the rows' metric (asimc.metrics) is drawn: its value, label and scale."""

    metric: str
    label: str          # the axis label, with its unit
    title: str          # the word in panel titles ("Accuracy against energy")
    scale: float        # 100 for fractions drawn in percent
    key: str = "score_mean"
    spread: str = "score_std"

    @property
    def percent(self) -> bool:
        return self.scale == 100.0


def _metric(rows: list[dict]) -> _MetricAxis:
    """The rows' metric: accuracy (top1) and agreement in percent, cosine, SQNR, MSE."""
    metric = next((r.get("metric") for r in rows if r.get("metric")), "top1")
    return {"top1": _MetricAxis("top1", "Accuracy (%)", "Accuracy", 100.0, "accuracy_mean",
                                "accuracy_std"),
            "agreement": _MetricAxis("agreement", "Agreement with FP32 (%)", "Agreement",
                                     100.0, "agreement"),
            "cosine": _MetricAxis("cosine", "Cosine similarity with FP32 (mean over samples)",
                                  "Cosine", 1.0),
            "sqnr": _MetricAxis("sqnr", "Output SQNR vs FP32 (dB)", "SQNR", 1.0),
            "mse": _MetricAxis("mse", "MSE vs FP32", "MSE", 1.0)}[metric]


def _value(row: dict, axis: _MetricAxis) -> float:
    value = row.get(axis.key)
    return math.nan if value is None else axis.scale * value


def row_kind(row: dict) -> str:
    """What a compare row is: ``fp32``, ``int`` or ``chip`` (its ``kind``; rows without one
    are told by their name), so that a chip named ``int`` or ``fp32`` stays a chip."""
    return row.get("kind", row["chip"])


def _int_baseline(chip: dict, rows: list[dict]) -> dict | None:
    """The ``int`` row quantised like ``chip``: the one that names it, else the only one of
    its precision (several of one precision that do not name it: none, rather than a guess)."""
    ints = [r for r in rows if row_kind(r) == "int"]
    named = [r for r in ints if chip["chip"] in (r.get("chips") or ())
             or r.get("source") == f"quantised like {chip['chip']}"]
    if named:
        return named[0]
    same = [r for r in ints if r["precision"] == chip["precision"]]
    return same[0] if len(same) == 1 else None


# -- asimc compare ---------------------------------------------------------------------------

def compare_figure(rows: list[dict], *, title: str = "") -> Figure:
    """Accuracy per chip (bars, spread over seeds, FP32 and int baselines), then accuracy
    against energy per inference and against ADC conversions per inference."""
    with rc_context(STYLE):
        return _compare_figure(rows, title)


def _compare_figure(rows: list[dict], title: str) -> Figure:
    chips = _chips(rows)
    bar_height = 0.24 * max(3, len(chips)) + 1.3
    figure = new_figure(10.0, bar_height + 5.0)
    if title:
        figure.suptitle(title, fontsize=10)
    top, bottom = figure.subfigures(2, 1, height_ratios=[bar_height, 5.0])
    _accuracy_bars(top, rows)
    energy_ax, conversions_ax = bottom.subplots(1, 2)
    axis = _metric(rows)
    _energy_scatter(energy_ax, chips, axis)
    _conversions_scatter(conversions_ax, chips, axis)
    place_labels(figure, (energy_ax, conversions_ax))
    return figure


def place_labels(figure: Figure, scatters) -> None:
    """Place the labels of every ``labelled_scatter`` axes of ``figure`` on its final layout.

    A key of labels without a free spot takes room under the axes, which changes the layout,
    so plan again until the keys stay the same; a label once in a key stays there, so this
    settles within a few rounds."""
    keyed: dict = {ax: [] for ax in scatters}
    plans: dict = {}
    for _ in range(6):
        fix_layout(figure)
        plans = {ax: _plan_labels(ax, keyed[ax]) for ax in scatters}
        if all(plans[ax][2] == keyed[ax] for ax in scatters):
            break
        for ax in scatters:
            keyed[ax] = plans[ax][2]
            _note(ax, "; ".join(f"{n}: {name}".replace("\n", ", ")
                                for n, name in enumerate(keyed[ax], start=1)), slot="key")
    for ax in scatters:
        _draw_labels(ax, plans[ax])


def _accuracy_bars(subfigure, rows: list[dict]) -> None:
    chips = _chips(rows)
    axis = _metric(rows)
    # The top-1 agreement beside the accuracy; any other metric: one panel.
    if axis.metric == "top1":
        ax_metric, ax_agree = subfigure.subplots(1, 2, sharey=True,
                                                 gridspec_kw={"width_ratios": [3, 2]})
    else:
        ax_metric, ax_agree = subfigure.subplots(1, 1), None
    names = [r["chip"] for r in chips]
    ys = list(range(len(chips)))
    values = [_value(r, axis) for r in chips]
    spread = [axis.scale * (r.get(axis.spread) or 0.0) for r in chips]
    ax_metric.barh(ys, values, xerr=spread if any(spread) else None, color=_CHIP, height=0.65,
                   error_kw={"elinewidth": 1, "capsize": 2, "ecolor": "#222"},
                   label="chip (mean ± std over noise seeds)")
    baselines = [(y, _int_baseline(r, rows)) for y, r in zip(ys, chips)]
    marked = [(y, _value(b, axis)) for y, b in baselines
              if b is not None and b.get(axis.key) is not None]
    if marked:
        ax_metric.scatter([v for _, v in marked], [y for y, _ in marked], marker="D", s=18,
                          color="#f0a030", edgecolor="#222", linewidth=0.5, zorder=3,
                          clip_on=False,              # a baseline at 100 % stays whole
                          label="int baseline of the chip's quantisation (no ADC, no noise)")
    fp32 = next((r for r in rows if row_kind(r) == "fp32"), None)
    if axis.metric == "top1" and fp32 is not None and fp32.get(axis.key) is not None:
        ax_metric.axvline(_value(fp32, axis), color="#b00020", linestyle="--", linewidth=1,
                          label=f"FP32 model (onnxruntime): {_value(fp32, axis):.2f}%")
    if axis.percent:
        ax_metric.set_xlim(0, 100)
    ax_metric.set_xlabel(axis.label)
    ax_metric.set_yticks(ys, names)
    ax_metric.invert_yaxis()
    subfigure.legend(*ax_metric.get_legend_handles_labels(), loc="outside upper center",
                     ncol=3, frameon=False)
    if ax_agree is not None:
        ax_agree.barh(ys, [100 * r["agreement"] if r["agreement"] is not None else math.nan
                           for r in chips], color="#8a8a8a", height=0.65)
        ax_agree.set_xlim(0, 100)
        ax_agree.set_xlabel("Agreement with FP32 (%)")
        ax_agree.tick_params(axis="y", left=False)
    for ax in (ax_metric, ax_agree)[:2 if ax_agree is not None else 1]:
        ax.grid(axis="x", color="#e4e4e4", linewidth=0.7)
        ax.set_axisbelow(True)


def _energy_scatter(ax, chips: list[dict], axis: _MetricAxis) -> None:
    measured = [r for r in chips if _finite(r.get("energy_j")) and r["energy_j"] > 0
                and _finite(r.get(axis.key))]
    missing = [r["chip"] for r in chips if r not in measured]
    if measured:
        scale, prefix = prefix_for(sorted(r["energy_j"] for r in measured)[len(measured) // 2])
        labelled_scatter(ax, [(r["chip"], r["energy_j"] / scale, _value(r, axis))
                              for r in measured], _plain_number, axis.percent)
        ax.set_xlabel(f"Energy per inference ({prefix}J)")
    else:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.text(0.5, 0.5, "no chip has energy figures", transform=ax.transAxes,
                ha="center", va="center", color="#666")
        ax.set_xlabel("Energy per inference")
    ax.set_ylabel(axis.label)
    ax.set_title(f"{axis.title} against energy")
    unknown = [r["chip"] for r in chips if r not in measured and r.get("energy_figures")]
    no_figures = [name for name in missing if name not in unknown]
    if no_figures:
        _note(ax, f"Not shown (no energy figures in the chip file): {', '.join(no_figures)}.")
    if unknown:
        _note(ax, f"Not shown (energy not known for this model): {', '.join(unknown)}.",
              slot="unknown")


def _conversions_scatter(ax, chips: list[dict], axis: _MetricAxis) -> None:
    points = [(r["chip"], r["adc_conversions"], _value(r, axis)) for r in chips
              if _finite(r.get("adc_conversions")) and r["adc_conversions"] > 0
              and _finite(r.get(axis.key))]
    labelled_scatter(ax, points, lambda v, _: count(v), axis.percent)
    ax.set_xlabel("ADC conversions per inference")
    ax.set_ylabel(axis.label)
    ax.set_title(f"{axis.title} against ADC conversions")


def _note(ax, text: str, slot: str = "note") -> None:
    """A note under the axes; an axes' notes (by slot) go into one text, one per line."""
    if not hasattr(ax, "_asimc_notes"):
        ax._asimc_notes = (ax.text(0.0, -0.16, "", transform=ax.transAxes, ha="left",
                                   va="top", fontsize=7, color="#444"), {})
    artist, notes = ax._asimc_notes
    notes[slot] = textwrap.fill(text, 72, break_on_hyphens=False, break_long_words=False) \
        if text.strip() else ""
    artist.set_text("\n".join(n for n in notes.values() if n))


def _plain_number(value: float, _position=None) -> str:
    return f"{value:g}"


def labelled_scatter(ax, points: list[tuple[str, float, float]], formatter,
                     percent: bool = True) -> None:
    """Points with their names as labels; x on a log scale when it spans a decade or more.
    ``percent``: y is a percentage (ticks within 0-100); else any number."""
    if not points:
        return
    xs = [x for _, x, _ in points]
    ys = [y for _, _, y in points]
    ax.scatter(xs, ys, s=22, color=_CHIP, zorder=3)
    if max(xs) >= 10 * min(xs):
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_major_formatter(FuncFormatter(formatter))
    # Room for labels: a quarter of the span on each side, some above and below, also past
    # 0 and 100 % (a point at 0 % is drawn whole, not cut by the axis), where no tick promises
    # an accuracy beyond them.
    ax.margins(x=0.25, y=0.12)
    low, high = min(ys), max(ys)
    if percent:
        room = 0.15 * (high - low + 10)
        bottom, top = max(-4.0, low - room), min(104.0, high + room)
        ax.set_ylim(bottom, top)
        ax.set_yticks([t for t in ax.get_yticks() if max(0.0, bottom) <= t <= 100.0])
    else:
        pad = 0.15 * (high - low) or 0.05 * (abs(high) or 1.0)
        ax.set_ylim(low - pad, high + pad)
    ax.grid(color="#eeeeee", linewidth=0.7)
    ax.set_axisbelow(True)
    ax._asimc_labels = list(points)         # placed by place_labels once the layout is final


def fix_layout(figure: Figure) -> None:
    """Run the layout engine once and freeze it, so that labels placed in display
    coordinates afterwards stay where they were checked."""
    figure.set_layout_engine("constrained")
    figure.canvas.draw()
    figure.set_layout_engine("none")


def _plan_labels(ax, keyed: list[str]):
    """Place each point's label where it overlaps no other label, no point and no leader line
    and stays inside the axes: the nearest free spot on growing rings around the point, with a
    leader line beyond the first ring. Points that sit within a few pixels of each other share
    one label (their names one per line). A label that finds no free spot becomes a number
    next to its point and an entry in a key under the axes: nothing is drawn over anything.

    ``keyed``: labels that go to the key whatever happens (an earlier plan's). Returns the
    labels, their spots and the labels of the key, in key order."""
    entries = getattr(ax, "_asimc_labels", [])
    if not entries:
        return [], {}, []
    renderer = ax.figure.canvas.get_renderer()
    box = ax.get_window_extent(renderer)
    scale = ax.figure.dpi / 72.0                       # pixels per point
    marker = 3.5 * scale
    groups = _near_groups([tuple(ax.transData.transform((x, y))) for _, x, y in entries],
                          2.5 * marker)
    labels = []
    for members in groups:
        members.sort(key=lambda k: -entries[k][2])     # top to bottom, like the points
        px = sum(ax.transData.transform(entries[k][1:])[0] for k in members) / len(members)
        py = sum(ax.transData.transform(entries[k][1:])[1] for k in members) / len(members)
        labels.append(("\n".join(entries[k][0] for k in members), (px, py)))
    markers = [(x - marker, y - marker, x + marker, y + marker)
               for x, y in (ax.transData.transform(e[1:]) for e in entries)]
    for x, y, radius in getattr(ax, "_asimc_obstacles", ()):     # larger marks (a best point)
        cx, cy = ax.transData.transform((x, y))
        markers.append((cx - radius * scale, cy - radius * scale,
                        cx + radius * scale, cy + radius * scale))
    sizes = [_text_size(ax, renderer, text) for text, _ in labels]

    def crowding(k):
        return min((math.dist(labels[k][1], other[1]) for j, other in enumerate(labels)
                    if j != k), default=0.0)
    # The most crowded points first (they have the fewest free spots); then, while some find
    # no spot, again with those first.
    keyed_here = [k for k in range(len(labels)) if labels[k][0] in keyed]
    order = sorted((k for k in range(len(labels)) if k not in keyed_here), key=crowding)
    best = None
    for _ in range(4):
        spots, failed = _arrange(order, labels, sizes, markers, box, scale)
        if best is None or len(failed) < len(best[1]):
            best = (spots, failed)
        if not failed:
            break
        order = failed + [k for k in order if k not in failed]
    spots, failed = best
    failed = sorted(keyed_here, key=lambda k: keyed.index(labels[k][0])) + failed
    occupied = list(markers) + [spot[4] for spot in spots.values()]
    leaders = [spot[5] for spot in spots.values() if spot[5]]
    names = [labels[k][0] for k in failed]
    for number, k in enumerate(failed, start=1):
        spot = _find_spot(_text_size(ax, renderer, str(number)), labels[k][1], occupied,
                          leaders, box, scale)
        if spot:
            spots[k] = spot
            occupied.append(spot[4])
            labels[k] = (str(number), labels[k][1])
    return labels, spots, names


def _draw_labels(ax, plan) -> None:
    labels, spots, _ = plan
    scale = ax.figure.dpi / 72.0
    for k, (dx, dy, ha, va, _, leader) in spots.items():
        arrow = {"arrowstyle": "-", "color": "#999", "linewidth": 0.6, "shrinkA": 0,
                 "shrinkB": 4} if leader else None
        ax.annotate(labels[k][0], ax.transData.inverted().transform(labels[k][1]),
                    xytext=(dx / scale, dy / scale), textcoords="offset points", ha=ha, va=va,
                    fontsize=_LABEL_SIZE, color="#222", zorder=4, arrowprops=arrow)


def _text_size(ax, renderer, text: str) -> tuple[float, float]:
    probe = ax.text(0, 0, text, fontsize=_LABEL_SIZE, transform=None)
    extent = probe.get_window_extent(renderer)
    probe.remove()
    return extent.width, extent.height


def _arrange(order, labels, sizes, markers, box, scale):
    """Spots for the labels in ``order``: ({label: spot}, [labels without one])."""
    occupied, leaders, spots, failed = list(markers), [], {}, []
    for k in order:
        spot = _find_spot(sizes[k], labels[k][1], occupied, leaders, box, scale)
        if spot is None:
            failed.append(k)
            continue
        spots[k] = spot
        occupied.append(spot[4])
        if spot[5]:
            leaders.append(spot[5])
    return spots, failed


def _near_groups(points, distance: float) -> list[list[int]]:
    """Indices of points chained together by gaps below ``distance`` (single linkage)."""
    parent = list(range(len(points)))

    def root(k):
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k
    for i in range(len(points)):
        for j in range(i):
            if math.dist(points[i], points[j]) < distance:
                parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for k in range(len(points)):
        groups.setdefault(root(k), []).append(k)
    return list(groups.values())


_ANGLES = tuple(math.radians(a) for a in (0, 30, -30, 180, 150, -150, 60, -60, 120, -120,
                                          90, -90, 15, -15, 165, -165, 45, -45, 135, -135,
                                          75, -75, 105, -105))
_RADII = (4, 9, 16, 24, 34, 46, 60, 76, 95, 120, 150, 190, 240)          # points


def _find_spot(size, anchor, occupied, leaders, box, scale):
    """The first free spot for a label of ``size`` (pixels) around ``anchor``: (dx, dy, ha, va,
    bounds, leader segment or None), or None."""
    # Leader lines crossing each other are allowed only where nothing else is left.
    return _spot(size, anchor, occupied, leaders, box, scale) \
        or _spot(size, anchor, occupied, (), box, scale)


def _spot(size, anchor, occupied, leaders, box, scale):
    width, height = size
    pad = 2.5 * scale
    px, py = anchor
    for ring, radius in enumerate(_RADII):
        for angle in _ANGLES:
            dx, dy = math.cos(angle) * radius * scale, math.sin(angle) * radius * scale
            ha = "left" if dx > 0.3 * radius else "right" if dx < -0.3 * radius else "center"
            va = "bottom" if dy > 0.3 * radius else "top" if dy < -0.3 * radius else "center"
            x0 = px + dx - {"left": 0.0, "center": width / 2, "right": width}[ha]
            y0 = py + dy - {"bottom": 0.0, "center": height / 2, "top": height}[va]
            bounds = (x0 - pad, y0 - pad, x0 + width + pad, y0 + height + pad)
            if not (bounds[0] >= box.x0 and bounds[2] <= box.x1 and bounds[1] >= box.y0
                    and bounds[3] <= box.y1):
                continue
            if any(_overlap(bounds, other) for other in occupied):
                continue
            leader = None
            if ring > 0:
                end = (min(max(px, bounds[0]), bounds[2]), min(max(py, bounds[1]), bounds[3]))
                leader = ((px, py), end)
                if any(_crosses(leader, other) for other in occupied
                       if not _contains(other, anchor)) or \
                        any(_segments_cross(leader, other) for other in leaders):
                    continue
            return dx, dy, ha, va, bounds, leader
    return None


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _contains(bounds, point) -> bool:
    return bounds[0] <= point[0] <= bounds[2] and bounds[1] <= point[1] <= bounds[3]


def _crosses(segment, bounds) -> bool:
    """Whether a segment passes through a box (sampled finely enough for label boxes)."""
    (x0, y0), (x1, y1) = segment
    steps = 24
    return any(_contains(bounds, (x0 + (x1 - x0) * t / steps, y0 + (y1 - y0) * t / steps))
               for t in range(1, steps))


def _segments_cross(a, b) -> bool:
    def side(p, q, r):
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
    (p1, p2), (q1, q2) = a, b
    return side(p1, p2, q1) * side(p1, p2, q2) < 0 and side(q1, q2, p1) * side(q1, q2, p2) < 0


# -- asimc golden ----------------------------------------------------------------------------

def golden_figure(result: dict) -> Figure:
    """Per on-chip layer: the SQNR of its output against ``int`` with the chip's noise off
    (the ADC alone) and on, and the share of its inputs the quantiser clips."""
    with rc_context(STYLE):
        return _golden_figure(result)


def _golden_figure(result: dict) -> Figure:
    layers = result["layers"]
    height = 0.3 * max(3, len(layers)) + 1.6
    figure = new_figure(10.0, height)
    figure.suptitle(f"{Path(str(result['model'])).name} on chip {result['chip']}: "
                    f"{result['samples']} samples, seed {result['seed']}", fontsize=10)
    ax_sqnr, ax_clip = figure.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [3, 1.2]})
    names = [l["name"] for l in layers]
    ys = list(range(len(layers)))
    finite = [v for l in layers for v in (l["ideal_sqnr_db"], l["sqnr_db"]) if _finite(v)]
    exact_at = max(finite + [0.0]) if finite else 1.0
    for shift, field, color, label in ((-0.2, "ideal_sqnr_db", _IDEAL, "ideal ACiM (noise off)"),
                                       (0.2, "sqnr_db", _NOISY, "noisy ACiM")):
        values = [l[field] for l in layers]
        ax_sqnr.barh([y + shift for y in ys], [v if _finite(v) else 0.0 for v in values],
                     height=0.38, color=color, label=label)
        for y, v in zip(ys, values):
            if v is not None and math.isinf(v) and v > 0:
                ax_sqnr.text(0.0, y + shift, " exact (no error)", va="center", ha="left",
                             fontsize=7, color="#333")
    ax_sqnr.axvline(0.0, color="#444", linewidth=0.8)
    ax_sqnr.set_xlabel("SQNR of the layer output against int (dB)")
    if not finite:
        ax_sqnr.set_xlim(0, max(1.0, exact_at) * 10)
    ax_sqnr.set_yticks(ys, names)
    ax_sqnr.invert_yaxis()
    ax_sqnr.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, frameon=False,
                   borderaxespad=0.3)
    ax_clip.barh(ys, [100 * l["clipped_inputs"] for l in layers], height=0.6, color=_CLIPPED)
    for y, layer in zip(ys, layers):      # a zero-length bar reads as missing data: say "none"
        if layer["clipped_inputs"] == 0:
            ax_clip.text(0.0, y, " none", va="center", ha="left", fontsize=7, color="#333")
    ax_clip.set_xlim(0, max(5.0, 1.1 * max([100 * l["clipped_inputs"] for l in layers] + [0])))
    ax_clip.set_xlabel("Inputs clipped (%)")
    ax_clip.tick_params(axis="y", left=False)
    for ax in (ax_sqnr, ax_clip):
        ax.grid(axis="x", color="#e4e4e4", linewidth=0.7)
        ax.set_axisbelow(True)
    fix_layout(figure)
    return figure


# -- output ----------------------------------------------------------------------------------

def save(figure: Figure, path: str | Path) -> None:
    """Write ``figure`` to ``path``, in the format its extension names (png, svg or pdf)."""
    fmt = Path(path).suffix.lower().lstrip(".")
    with rc_context(STYLE):
        figure.savefig(path, format=fmt, dpi="figure",
                       metadata=_METADATA[fmt])


def svg_markup(figure: Figure) -> str:
    """The figure as an ``<svg>`` element to inline in an HTML page (no XML prolog, no
    DOCTYPE with its external DTD)."""
    buffer = io.StringIO()
    with rc_context(STYLE):
        figure.savefig(buffer, format="svg", metadata=_METADATA["svg"])
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def plot_path(text: str) -> str:
    """Check a ``--plot`` file name: its extension must be a format we write."""
    fmt = Path(text).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"{text!r}: the figure format comes from the extension: give a file "
                         f"ending in {', '.join('.' + f for f in FORMATS)}")
    folder = Path(text).parent
    if not folder.is_dir():
        raise ValueError(f"{text!r}: the folder {str(folder)!r} does not exist")
    return text

