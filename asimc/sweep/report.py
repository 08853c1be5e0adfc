"""The HTML page of ``asimc sweep --report``: the table, the best point and the figures
(inline SVG, so the page is one self-contained file)."""
from __future__ import annotations

import html

from ..report.figures import svg_markup
from ..report.html import page, table
from ..report.units import percent as _pct
from .answers import point_rows


def _num(v, unit="") -> str:
    return "-" if not isinstance(v, (int, float)) or v != v else f"{v:.4g}{unit}"


def sweep_page(sweep: dict, rows: list[dict], objectives, rule, best, figures) -> str:
    meta = sweep["meta"]
    axes = meta.get("axes", [])
    from ..metrics import METRICS
    from ..report.units import score, score_spread
    metric = rows[0]["metric"] if rows else "top1"
    headers = ["point", *axes, "precision", "status", METRICS[metric].title,
               "± (std over seeds)", "agreement", "SQNR (dB)", "ADC conversions", "cycles",
               "energy", "Pareto", "note"]
    body, classes = [], []
    for r in rows:
        baseline = r["point"] in ("fp32", "int")
        # A baseline has no field values: its precision goes in the precision column.
        params = ["" if baseline else html.escape(str(r["params"].get(a, ""))) for a in axes]
        body.append([html.escape(str(r["point"])), *params, html.escape(r["precision"] or "-"),
                     r["status"], score(metric, r["score_mean"]),
                     score_spread(metric, r["score_std"]), _pct(r["agreement"]),
                     _num(r["sqnr_db"]), _num(r["adc_conversions"]), _num(r["cycles"]),
                     _num(r["energy_j"], " J"),
                     ("yes" if r["pareto"] else "") + (" (best)" if r["best"] else ""),
                     html.escape(r["message"][:200])])
        classes.append("reference" if baseline else "")
    sections = []
    if rule is not None:
        if best is None:
            text = f"No done point satisfies <code>{html.escape(rule.text)}</code>."
        else:
            params = ", ".join(f"{k}={v}" for k, v in best["params"].items())
            text = (f"Cheapest point with <code>{html.escape(rule.text)}</code>: point "
                    f"{best['point']} ({html.escape(params)}), "
                    f"{METRICS[metric].title} {score(metric, best['score_mean'])}.")
        sections.append(("Best point", f"<p>{text}</p>"))
    sections.append(("Points", table(headers, body, classes)))
    for title, fig in figures:
        sections.append((title[0].upper() + title[1:], svg_markup(fig)))
    front = ", ".join(f"{o.name}:{'max' if o.maximize else 'min'}" for o in objectives)
    done = sum(1 for r in point_rows(rows) if r["status"] == "done")
    info = (f"{meta.get('model')} on {meta.get('chip')}, data {meta.get('data')}, "
            f"{meta.get('seeds')} seed(s), {done} of {len(point_rows(rows))} point(s) done; "
            f"Pareto objectives {front}")
    return page("asimc sweep", sections, info)
