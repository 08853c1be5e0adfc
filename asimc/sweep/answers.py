"""The answers of a sweep: one row per point (mean over seeds), the Pareto front, ``--best``.

Rows: the ``fp32`` and ``int`` baselines (``point`` = "fp32" / "int"), then one per point in
the order the points were first swept. A metric that is missing or NaN never enters a front or
qualifies for ``--best``: it is neither better nor worse than a number.
"""
from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass

from ..errors import UsageError

ROW_FIELDS = ("point", "params", "status", "seeds_done", "metric", "score_mean", "score_std",
              "accuracy_mean", "accuracy_std", "agreement", "sqnr_db", "cosine", "cosine_worst",
              "mse", "adc_conversions", "cycles", "energy_j", "tops_per_w", "precision",
              "pareto", "best", "message")

# The metrics of asimc.metrics -> row column (accuracy and agreement are fractions in rows).
METRIC_COLUMNS = {"top1": "accuracy_mean", "agreement": "agreement", "cosine": "cosine",
                  "sqnr": "sqnr_db", "mse": "mse"}
# Objective names -> row column.
OBJECTIVES = {"accuracy": "accuracy_mean", "agreement": "agreement", "sqnr": "sqnr_db",
              "cosine": "cosine", "mse": "mse", "score": "score_mean",
              "energy": "energy_j", "conversions": "adc_conversions", "cycles": "cycles",
              "tops_per_w": "tops_per_w"}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and not math.isnan(value)


def _mean(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return statistics.fmean(values) if all(math.isfinite(v) for v in values) else \
        (values[0] if len(set(values)) == 1 else math.nan)


def sweep_metric(sweep: dict, metric: str | None = None) -> str:
    """The headline metric: ``metric``, else the one the sweep ran with, else the default
    (top1 for labelled class scores, else cosine; asimc.metrics)."""
    from ..metrics import get_metric
    metric = metric or sweep["meta"].get("metric")
    if metric:
        metric = get_metric(metric).name
        fp32 = next((b for b in sweep["baselines"] if b["kind"] == "fp32"), None)
        if metric == "top1" and fp32 is not None and fp32["accuracy"] is None:
            raise UsageError("--metric top1: the sweep's data have no labels; use agreement, "
                             "cosine, sqnr or mse")
        return metric
    fp32 = next((b for b in sweep["baselines"] if b["kind"] == "fp32"), None)
    labelled = fp32 is None or fp32["accuracy"] is not None
    return "top1" if labelled and sweep["meta"].get("class_scores", True) else "cosine"


def _scores(row: dict, metric: str, values: list[dict]) -> None:
    """Means over seeds of every metric (std for the headline one) into ``row``."""
    for name in ("agreement", "sqnr_db", "cosine", "mse"):
        row[name] = _mean([v[name] for v in values])
    row["cosine_worst"] = min((v["cosine_worst"] for v in values
                               if v["cosine_worst"] is not None), default=None)
    row["accuracy_mean"] = _mean([v["accuracy"] for v in values])
    row["accuracy_std"] = _std([v["accuracy"] for v in values])
    source = "accuracy" if metric == "top1" else METRIC_COLUMNS[metric]
    row["metric"] = metric
    row["score_mean"] = row[METRIC_COLUMNS[metric]]
    row["score_std"] = _std([v[source] for v in values])


def _std(values):
    if not values or None in values:
        return None
    return statistics.stdev(values) if len(values) > 1 and all(
        math.isfinite(v) for v in values) else 0.0


def build_rows(sweep: dict, metric: str | None = None) -> list[dict]:
    """Rows of ``sweep show`` from ``store.read_sweep`` (no pareto/best marks yet)."""
    metric = sweep_metric(sweep, metric)
    seeds = int(sweep["meta"].get("seeds", 1))
    by_point: dict[int, list[dict]] = {}
    for r in sweep["results"]:
        by_point.setdefault(r["point"], []).append(r)
    baselines = {b["key"]: b for b in sweep["baselines"]}
    rows = []
    fp32 = baselines.get("fp32")
    if fp32:
        rows.append(_baseline_row("fp32", fp32, metric))
    for b in sweep["baselines"]:
        if b["kind"] == "int":
            rows.append(_baseline_row("int", b, metric))
    for p in sweep["points"]:
        results = [r for r in by_point.get(p["id"], []) if r["seed"] < seeds]
        done = [r for r in results if r["status"] == "done"]
        failed = [r for r in results if r["status"] == "failed"]
        if not p["valid"]:
            status, message = "invalid", p["message"]
        elif len(done) == seeds:
            status, message = "done", ""
        elif failed:
            status, message = "failed", failed[0]["message"]
        else:
            status, message = "pending", ""
        costs = p["costs"]
        row = {"point": p["id"], "params": p["params"], "status": status,
               "seeds_done": len(done)}
        _scores(row, metric, done)
        row.update({
            "adc_conversions": costs.get("adc_conversions"), "cycles": costs.get("cycles"),
            "energy_j": costs.get("energy_j"), "tops_per_w": costs.get("tops_per_w"),
            "precision": costs.get("precision"), "int_key": p["int_key"],
            "pareto": False, "best": False, "message": message})
        rows.append(row)
    return rows


def _baseline_row(name: str, b: dict, metric: str) -> dict:
    row = {"point": name, "params": {"precision": b["precision"]}, "status": "done",
           "seeds_done": 0}
    _scores(row, metric, [b])
    row.update({"adc_conversions": None, "cycles": None, "energy_j": None, "tops_per_w": None,
                "precision": b["precision"], "int_key": b["key"], "pareto": False,
                "best": False, "message": ""})
    return row


def rows_metric(rows: list[dict]) -> str:
    """The headline metric of rows (``build_rows`` names it; top1 otherwise)."""
    return next((r["metric"] for r in rows if r.get("metric")), "top1")


def point_rows(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["point"] not in ("fp32", "int")]


# -- objectives and the Pareto front --------------------------------------------------------------

@dataclass(frozen=True)
class Objective:
    name: str
    column: str
    maximize: bool


def parse_objectives(text: str) -> tuple[Objective, ...]:
    """``accuracy:max,energy:min`` -> objectives; a UsageError says what was expected."""
    objectives = []
    for item in text.split(","):
        name, sep, sense = item.strip().partition(":")
        if name not in OBJECTIVES:
            raise UsageError(f"--pareto {text!r}: unknown objective `{name}`: expected one of "
                             f"{', '.join(OBJECTIVES)}")
        if not sep or sense not in ("max", "min"):
            raise UsageError(f"--pareto {text!r}: write each objective as NAME:max or "
                             f"NAME:min, e.g. accuracy:max,energy:min")
        objectives.append(Objective(name, OBJECTIVES[name], sense == "max"))
    if len(objectives) < 2:
        raise UsageError(f"--pareto {text!r}: a front needs at least two objectives")
    return tuple(objectives)


def cost_objective(rows: list[dict]) -> Objective:
    """Energy where every done point has an energy figure, else ADC conversions."""
    done = [r for r in point_rows(rows) if r["status"] == "done"]
    if done and all(_is_number(r["energy_j"]) for r in done):
        return Objective("energy", "energy_j", False)
    return Objective("conversions", "adc_conversions", False)


def default_objectives(rows: list[dict]) -> tuple[Objective, ...]:
    """The rows' metric (accuracy for top1) against the cost."""
    from ..metrics import METRICS
    metric = rows_metric(rows)
    first = Objective("accuracy", "accuracy_mean", True) if metric == "top1" else \
        Objective(metric, METRIC_COLUMNS[metric], METRICS[metric].higher_is_better)
    return (first, cost_objective(rows))


def mark_pareto(rows: list[dict], objectives) -> list[dict]:
    """Set ``pareto`` on every done point that no other done point dominates (at least as good
    in every objective, better in one). Points with equal objectives are all on the front."""
    candidates = [r for r in point_rows(rows) if r["status"] == "done"
                  and all(_is_number(r[o.column]) for o in objectives)]

    def key(r):
        return tuple(r[o.column] if o.maximize else -r[o.column] for o in objectives)

    keys = [key(r) for r in candidates]
    for r in rows:
        r["pareto"] = False
    for r, k in zip(candidates, keys):
        r["pareto"] = not any(all(a >= b for a, b in zip(other, k)) and other != k
                              for other in keys)
    return rows


# -- --best ---------------------------------------------------------------------------------------

BEST_GRAMMAR = """\
RULE is  METRIC OP REFERENCE [(+|-) AMOUNT]:
  METRIC     accuracy (or top1) | agreement (in percent) | sqnr (in dB) | cosine | mse
  OP         >=  >  <=  <
  REFERENCE  fp32 | int (the point's own int baseline) | a number (percent for accuracy and
             agreement, dB for sqnr, plain for cosine and mse)
e.g. "accuracy >= fp32 - 1" (within 1 point of FP32), "agreement >= 99", "sqnr >= int - 3",
"cosine >= 0.99". The best point is the cheapest done point satisfying the rule: least energy
per inference (least ADC conversions where the chip has no energy figures), then fewer cycles,
then the better score, then the earlier point."""

_RULE = re.compile(r"^\s*(accuracy|top1|agreement|sqnr|cosine|mse)\s*(>=|<=|>|<)\s*"
                   r"(fp32|int|[+-]?\d+(?:\.\d*)?|[+-]?\.\d+)"
                   r"\s*(?:([+-])\s*(\d+(?:\.\d*)?|\.\d+))?\s*$")
_RULE_METRIC = {"accuracy": "top1", "top1": "top1", "agreement": "agreement",
                "sqnr": "sqnr", "cosine": "cosine", "mse": "mse"}


@dataclass(frozen=True)
class BestRule:
    metric: str                # a name of asimc.metrics.METRICS
    op: str
    reference: str
    offset: float
    text: str

    def threshold(self, row: dict, baselines: dict) -> float | None:
        """The threshold for ``row`` (in the metric's unit), or None when the reference is
        unknown."""
        if self.reference in ("fp32", "int"):
            base = baselines.get("fp32") if self.reference == "fp32" else \
                baselines.get(row.get("int_key"))
            value = None if base is None else base[self.column]
            if not _is_number(value):
                return None
            return self._scaled(value) + self.offset
        return float(self.reference) + self.offset

    @property
    def column(self) -> str:
        return METRIC_COLUMNS[self.metric]

    def _scaled(self, value: float) -> float:
        return 100.0 * value if self.metric in ("top1", "agreement") else value

    def holds(self, row: dict, baselines: dict) -> bool:
        value, threshold = row[self.column], self.threshold(row, baselines)
        if not _is_number(value) or threshold is None:
            return False
        value = self._scaled(value)
        # Compared at 1e-9, so "within 1 point" is not lost to rounding.
        eps = 1e-9
        return {">=": value >= threshold - eps, ">": value > threshold + eps,
                "<=": value <= threshold + eps, "<": value < threshold - eps}[self.op]


def parse_best(text: str) -> BestRule:
    match = _RULE.match(text)
    if not match:
        raise UsageError(f"--best {text!r}: cannot read the rule.\n{BEST_GRAMMAR}")
    metric, op, reference, sign, amount = match.groups()
    offset = float(amount) * (-1 if sign == "-" else 1) if sign else 0.0
    return BestRule(_RULE_METRIC[metric], op, reference, offset, " ".join(text.split()))


def baselines_by_key(rows: list[dict]) -> dict:
    out = {}
    for r in rows:
        if r["point"] == "fp32":
            out["fp32"] = r
        elif r["point"] == "int":
            out[r["int_key"]] = r
    return out


def find_best(rows: list[dict], rule: BestRule) -> dict | None:
    """Mark and return the best point for ``rule`` (None when no done point qualifies)."""
    baselines = baselines_by_key(rows)
    cost = cost_objective(rows)
    qualifying = [r for r in point_rows(rows) if r["status"] == "done"
                  and rule.holds(r, baselines) and _is_number(r[cost.column])]
    for r in rows:
        r["best"] = False
    if not qualifying:
        return None

    from ..metrics import METRICS
    metric = rows_metric(rows)
    sign = 1.0 if METRICS[metric].higher_is_better else -1.0
    column = METRIC_COLUMNS[metric]

    def order(r):
        cycles = r["cycles"] if _is_number(r["cycles"]) else math.inf
        score = sign * r[column] if _is_number(r[column]) else -math.inf
        return (r[cost.column], cycles, -score, r["point"])

    best = min(qualifying, key=order)
    best["best"] = True
    return best


def sort_rows(rows: list[dict], column: str) -> list[dict]:
    """Points sorted by a column (descending for accuracy-like ones), baselines first."""
    descending = column in ("accuracy_mean", "agreement", "sqnr_db", "cosine", "tops_per_w") \
        or column in ("score", "score_mean") and rows_metric(rows) != "mse"
    names = {**OBJECTIVES, **{c: c for c in ROW_FIELDS}}
    if column not in names:
        raise UsageError(f"--sort {column!r}: expected one of {', '.join(sorted(names))}")
    column = names[column]
    base = [r for r in rows if r not in point_rows(rows)]

    def key(r):
        value = r.get(column)
        if column == "params":
            return (0, str(value))
        if not _is_number(value):
            return (1, 0.0)
        return (0, -value if descending else value)

    return base + sorted(point_rows(rows), key=key)
