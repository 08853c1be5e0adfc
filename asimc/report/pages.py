"""The HTML pages of ``asimc compare --report`` and ``asimc golden --report``."""
from __future__ import annotations

import math

from .html import bar_chart, page, scatter, table


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def _db(v) -> str:
    if v is None:
        return "-"
    return "exact" if v == math.inf else f"{v:.1f} dB"


def _num(v, unit="") -> str:
    return "-" if v is None else f"{v:.4g}{unit}"


def compare_page(rows: list[dict], *, model: str, data: str, seeds: int) -> str:
    chips = [r for r in rows if r["chip"] not in ("fp32", "int")]
    fp32 = next((r for r in rows if r["chip"] == "fp32"), None)
    headers = ["chip", "precision", "accuracy", "± (std over seeds)", "agreement w/ FP32",
               "SQNR", "ADC conversions", "cycles", "energy / inference", "TOPS/W"]
    body = [[r["chip"], r["precision"], _pct(r["accuracy_mean"]), _pct(r["accuracy_std"]),
             _pct(r["agreement"]), _db(r["sqnr_db"]), _num(r.get("adc_conversions")),
             _num(r.get("cycles")), _num(r.get("energy_j"), " J"), _num(r.get("tops_per_w"))]
            for r in rows]
    classes = ["reference" if r["chip"] in ("fp32", "int") else "" for r in rows]
    sections = [("Comparison", table(headers, body, classes))]
    has_accuracy = any(r["accuracy_mean"] is not None for r in chips)
    references = [(r["chip"] + (" " + r["precision"] if r["chip"] == "int" else ""),
                   100 * r["accuracy_mean"]) for r in rows
                  if r["chip"] in ("fp32", "int") and r["accuracy_mean"] is not None]
    if has_accuracy:
        sections.append(("Accuracy (mean and std over noise seeds)", bar_chart(
            [r["chip"] for r in chips], [100 * r["accuracy_mean"] for r in chips],
            [100 * (r["accuracy_std"] or 0) for r in chips], unit="%",
            reference_lines=references, lower=0.0)))
    sections.append(("Agreement with the FP32 model", bar_chart(
        [r["chip"] for r in chips], [100 * r["agreement"] for r in chips], unit="%",
        lower=0.0)))
    metric = "accuracy_mean" if has_accuracy else "agreement"
    energy = scatter([(r["chip"], r.get("energy_j"), 100 * r[metric]) for r in chips],
                     x_label="energy per inference (J)", y_label=f"{metric} (%)", log_x=True)
    if energy:
        sections.append(("Accuracy against energy", energy))
    conversions = scatter([(r["chip"], r.get("adc_conversions"), 100 * r[metric])
                           for r in chips], x_label="ADC conversions per inference",
                          y_label=f"{metric} (%)", log_x=True)
    if conversions:
        sections.append(("Accuracy against ADC conversions", conversions))
    meta = f"{model}, data {data}, {seeds} noise seed(s)"
    if fp32 is not None and fp32["accuracy_mean"] is not None:
        meta += f", FP32 accuracy {_pct(fp32['accuracy_mean'])}"
    return page("asimc chip comparison", sections, meta)


def golden_page(result: dict) -> str:
    rung_rows = []
    for r in result["rungs"]:
        verdict = "PASS" if r["passed"] else "FAIL"
        rung_rows.append([f"<span class='{verdict.lower()}'>{verdict}</span>", r["name"],
                          _db(r.get("sqnr_db")), _pct(r.get("agreement")),
                          _pct(r.get("accuracy")), _num(r.get("max_abs_diff")),
                          r["criterion"] + ("" if r["must_hold"] else " (measurement)")])
    layers = result["layers"]
    sections = [
        ("Ladder", table(["", "rung", "SQNR", "agreement", "accuracy", "max |diff|",
                          "criterion"], rung_rows)),
        ("Per-layer SQNR against int (noisy ACiM)", bar_chart(
            [l["name"] for l in layers], [l["sqnr_db"] for l in layers], unit=" dB")),
        ("Per-layer SQNR against int (ideal ACiM: the ADC alone)", bar_chart(
            [l["name"] for l in layers], [l["ideal_sqnr_db"] for l in layers], unit=" dB")),
        ("Inputs clipped by the quantiser", table(
            ["layer", "op", "clipped"], [[l["name"], l["op_type"], _pct(l["clipped_inputs"])]
                                         for l in layers])),
    ]
    meta = (f"{result['model']} on chip {result['chip']}, {result['samples']} samples of "
            f"{result['data']}, seed {result['seed']}")
    return page("asimc golden-model ladder", sections, meta)
