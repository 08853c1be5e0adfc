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

ROW_FIELDS = ("point", "params", "status", "seeds_done", "accuracy_mean", "accuracy_std",
              "agreement", "sqnr_db", "adc_conversions", "cycles", "energy_j", "tops_per_w",
              "precision", "pareto", "best", "message")

# Objective names -> row column (accuracy and agreement are fractions in rows).
OBJECTIVES = {"accuracy": "accuracy_mean", "agreement": "agreement", "sqnr": "sqnr_db",
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


def build_rows(sweep: dict) -> list[dict]:
    """Rows of ``sweep show`` from ``store.read_sweep`` (no pareto/best marks yet)."""
    seeds = int(sweep["meta"].get("seeds", 1))
    by_point: dict[int, list[dict]] = {}
    for r in sweep["results"]:
        by_point.setdefault(r["point"], []).append(r)
    baselines = {b["key"]: b for b in sweep["baselines"]}
    rows = []
    fp32 = baselines.get("fp32")
    if fp32:
        rows.append(_baseline_row("fp32", fp32))
    for b in sweep["baselines"]:
        if b["kind"] == "int":
            rows.append(_baseline_row("int", b))
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
        accuracies = [r["accuracy"] for r in done]
        costs = p["costs"]
        rows.append({
            "point": p["id"], "params": p["params"], "status": status,
            "seeds_done": len(done),
            "accuracy_mean": _mean(accuracies),
            "accuracy_std": (statistics.stdev(accuracies) if len(accuracies) > 1
                             and None not in accuracies else 0.0 if accuracies
                             and None not in accuracies else None),
            "agreement": _mean([r["agreement"] for r in done]),
            "sqnr_db": _mean([r["sqnr_db"] for r in done]),
            "adc_conversions": costs.get("adc_conversions"), "cycles": costs.get("cycles"),
            "energy_j": costs.get("energy_j"), "tops_per_w": costs.get("tops_per_w"),
            "precision": costs.get("precision"), "int_key": p["int_key"],
            "pareto": False, "best": False, "message": message})
    return rows


def _baseline_row(name: str, b: dict) -> dict:
    return {"point": name, "params": {"precision": b["precision"]}, "status": "done",
            "seeds_done": 0, "accuracy_mean": b["accuracy"], "accuracy_std": 0.0,
            "agreement": b["agreement"], "sqnr_db": b["sqnr_db"], "adc_conversions": None,
            "cycles": None, "energy_j": None, "tops_per_w": None,
            "precision": b["precision"], "int_key": b["key"], "pareto": False, "best": False,
            "message": ""}


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
    return (Objective("accuracy", "accuracy_mean", True), cost_objective(rows))


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
RULE is  METRIC OP REFERENCE [(+|-) POINTS]:
  METRIC     accuracy | agreement (in percent) | sqnr (in dB)
  OP         >=  >  <=  <
  REFERENCE  fp32 | int (the point's own int baseline) | a number (percent, or dB for sqnr)
e.g. "accuracy >= fp32 - 1" (within 1 point of FP32), "agreement >= 99", "sqnr >= int - 3".
The best point is the cheapest done point satisfying the rule: least energy per inference
(least ADC conversions where the chip has no energy figures), then fewer cycles, then higher
accuracy, then the earlier point."""

_RULE = re.compile(r"^\s*(accuracy|agreement|sqnr)\s*(>=|<=|>|<)\s*(fp32|int|[+-]?\d+(?:\.\d*)?"
                   r"|[+-]?\.\d+)\s*(?:([+-])\s*(\d+(?:\.\d*)?|\.\d+))?\s*$")


@dataclass(frozen=True)
class BestRule:
    metric: str
    op: str
    reference: str
    offset: float
    text: str

    def threshold(self, row: dict, baselines: dict) -> float | None:
        """The threshold for ``row`` (in percent or dB), or None when the reference is unknown."""
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
        return {"accuracy": "accuracy_mean", "agreement": "agreement", "sqnr": "sqnr_db"}[
            self.metric]

    def _scaled(self, value: float) -> float:
        return value if self.metric == "sqnr" else 100.0 * value

    def holds(self, row: dict, baselines: dict) -> bool:
        value, threshold = row[self.column], self.threshold(row, baselines)
        if not _is_number(value) or threshold is None:
            return False
        value = self._scaled(value)
        # Percentages are compared at 1e-9 points, so "within 1 point" is not lost to rounding.
        eps = 1e-9
        return {">=": value >= threshold - eps, ">": value > threshold + eps,
                "<=": value <= threshold + eps, "<": value < threshold - eps}[self.op]


def parse_best(text: str) -> BestRule:
    match = _RULE.match(text)
    if not match:
        raise UsageError(f"--best {text!r}: cannot read the rule.\n{BEST_GRAMMAR}")
    metric, op, reference, sign, amount = match.groups()
    offset = float(amount) * (-1 if sign == "-" else 1) if sign else 0.0
    return BestRule(metric, op, reference, offset, " ".join(text.split()))


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

    def order(r):
        cycles = r["cycles"] if _is_number(r["cycles"]) else math.inf
        accuracy = r["accuracy_mean"] if _is_number(r["accuracy_mean"]) else -math.inf
        return (r[cost.column], cycles, -accuracy, r["point"])

    best = min(qualifying, key=order)
    best["best"] = True
    return best


def sort_rows(rows: list[dict], column: str) -> list[dict]:
    """Points sorted by a column (descending for accuracy-like ones), baselines first."""
    descending = column in ("accuracy_mean", "agreement", "sqnr_db", "tops_per_w")
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
