"""The HTML pages of ``asimc compare --report`` and ``asimc golden --report``.

Table cells use the terminal's units (asimc.report.units); the figures are those of
``--plot`` (asimc.report.figures), inlined as SVG.
"""
from __future__ import annotations

from .html import escape, figure, note, page, table
from .units import count, decibels, engineering, percent, score, score_spread


def _tops(value) -> str:
    return "-" if value is None else f"{value:.3g}"


def _baseline_of(row: dict) -> str:
    """The chips an ``int`` row is the baseline of."""
    if row.get("chips"):
        return ", ".join(row["chips"])
    source = row.get("source") or ""
    return source.removeprefix("quantised like ")


def compare_page(rows: list[dict], *, model: str, data: str, seeds: int) -> str:
    from .figures import compare_figure, row_kind
    chips = [r for r in rows if row_kind(r) not in ("fp32", "int")]
    fp32 = next((r for r in rows if row_kind(r) == "fp32"), None)
    from ..metrics import METRICS
    metric = next((r["metric"] for r in rows if r.get("metric")), "top1")
    headers = ["chip", "precision", METRICS[metric].title, "± (std over seeds)",
               "agreement w/ FP32", "SQNR vs FP32", "ADC conversions", "cycles",
               "energy / inference", "TOPS/W"]
    body, classes = [], []
    for r in rows:
        name = escape(r["chip"])
        if row_kind(r) == "int":
            name += f"<br><span class='meta'>baseline of {escape(_baseline_of(r))}</span>"
        body.append([name, escape(r["precision"]), score(metric, r.get("score_mean")),
                     score_spread(metric, r.get("score_std"))
                     if row_kind(r) not in ("fp32", "int") else "",
                     # (a top-1 figure means nothing on an embedding)
                     percent(r["agreement"]) if metric in ("top1", "agreement") else "-",
                     decibels(r["sqnr_db"]),
                     count(r.get("adc_conversions")), count(r.get("cycles")),
                     engineering(r.get("energy_j"), "J"), _tops(r.get("tops_per_w"))])
        classes.append("reference" if row_kind(r) in ("fp32", "int") else "")
    no_energy = [r["chip"] for r in chips
                 if r.get("energy_j") is None and not r.get("energy_figures")]
    unknown = [r["chip"] for r in chips if r.get("energy_j") is None and r.get("energy_figures")]
    notes = ["Costs are per inference. SQNR: of the model output against the FP32 model's. "
             "<i>int</i> rows: the model quantised like the chips they are the baseline of, with "
             "exact integer products (no ADC, no noise)."]
    if no_energy:
        notes.append("No energy figures (the chip file has no <code>energy</code> block), so "
                     "no energy or TOPS/W: " + ", ".join(escape(n) for n in no_energy) + ".")
    if unknown:
        notes.append("Energy not known for this model (its costs need real shapes): "
                     + ", ".join(escape(n) for n in unknown) + ".")
    sections = [("Comparison", table(headers, body, classes) + "".join(map(note, notes)))]
    title = f"{model}, data {data}, {seeds} noise seed(s)"
    sections.append(("Figures", figure(compare_figure(rows, title=title))))
    meta = f"{model}, data {data}, {seeds} noise seed(s)"
    if fp32 is not None and fp32["accuracy_mean"] is not None:
        meta += f", FP32 accuracy {percent(fp32['accuracy_mean'])}"
    return page("asimc chip comparison", sections, meta)


def golden_page(result: dict) -> str:
    from .figures import golden_figure
    from ..metrics import METRICS
    metric = result.get("metric", "top1")
    top1 = metric in ("top1", "agreement")      # else top-1 figures mean nothing (embeddings)
    rung_rows = []
    for r in result["rungs"]:
        verdict = "PASS" if r["passed"] else ("FAIL" if r["must_hold"] else "fail")
        diff = r.get("max_abs_diff")
        scores = [percent(r.get("agreement")), percent(r.get("accuracy"))] if top1 else \
            [score(metric, r.get("score"))]
        rung_rows.append([f"<span class='{verdict.lower()}'>{verdict}</span>",
                          escape(r["name"]), decibels(r.get("sqnr_db")), *scores,
                          "-" if diff is None else f"{diff:.3g}",
                          escape(r["criterion"]) + ("" if r["must_hold"] else " (measurement)")])
    layers = result["layers"]
    sections = [
        ("Ladder", table(["", "rung", "SQNR",
                          *(["agreement", "accuracy"] if top1 else [METRICS[metric].title]),
                          "max |diff|", "criterion"], rung_rows,
                         text_columns=(len(rung_rows[0]) - 1,) if rung_rows else ())),
        ("Per-layer SQNR against int, and inputs clipped", figure(golden_figure(result))),
        ("Per-layer numbers", table(
            ["layer", "op", "SQNR ideal ACiM", "SQNR noisy ACiM", "inputs clipped",
             "input range used", "array SQNR ideal", "array SQNR noisy"],
            [[escape(l["name"]), escape(l["op_type"]), decibels(l["ideal_sqnr_db"]),
              decibels(l["sqnr_db"]), percent(l["clipped_inputs"]),
              percent(l.get("input_range_used")), decibels(l.get("ideal_array_sqnr_db")),
              decibels(l.get("array_sqnr_db"))] for l in layers])),
    ]
    sections[-1] = (sections[-1][0], sections[-1][1] + "".join(
        note(escape(w)) for w in result.get("warnings", [])))
    meta = (f"{result['model']} on chip {result['chip']}, {result['samples']} samples of "
            f"{result['data']}, seed {result['seed']}")
    return page("asimc golden-model ladder", sections, meta)
