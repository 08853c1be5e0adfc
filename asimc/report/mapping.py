"""The mapping report: where every matrix product runs and what one inference costs.

``mapping_report`` builds a JSON-able dict (``asimc compile --json``, ``asimc inspect --json``);
``render_mapping`` prints it as tables for people.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..chip.conversions import precision
from ..program import PER_POSITION, MatrixLayer, Program
from .units import engineering

COST_FIELDS = ("macs", "cell_ops", "adc_conversions", "digital_bit_products", "accumulations",
               "cycles", "weight_writes", "energy_j", "latency_s")


def _layer_entry(layer: MatrixLayer, note: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "node": layer.node, "op_type": layer.op_type, "kind": layer.kind,
        "placement": layer.placement, "reason": layer.reason,
        "precision": precision(layer.chip) if layer.on_chip else "float32",
        "k": layer.k, "n": layer.n, "groups": layer.groups,
        "row_tiles": [k1 - k0 for k0, k1 in layer.tiles],
    }
    if layer.cost is not None:
        cost = asdict(layer.cost)
        del cost["row_tiles"]                      # the sizes above say more than the count
        entry.update(cost)
        entry["utilization"] = layer.cost.utilization
        entry["cost_known"] = layer.cost.known
    if layer.schedule:
        entry["waves"] = layer.schedule[-1].wave + 1
        entry["accumulate"] = {"row_tiles": layer.accumulate.row_tiles,
                               "outputs": layer.accumulate.outputs}
    if note:
        entry["note"] = note
    return entry


def _sum(layers: list[dict[str, Any]], key: str) -> Any:
    if key in PER_POSITION and any(not l.get("cost_known", True) for l in layers):
        return None            # a total over layers of unknown cost would be a guess
    values = [l[key] for l in layers if l.get(key) is not None]
    return sum(values) if values else None


def mapping_report(program: Program, notes: dict[str, str] | None = None,
                   warnings: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """notes: per node; warnings: about the whole compile (a glob that matches nothing)."""
    notes = notes or {}
    entries = [_layer_entry(l, notes.get(l.node, "")) for l in program.layers.values()]
    on_chip = [e for e in entries if e["placement"] == "acim"]
    static_tiles = sum(e.get("array_tiles", 0) for e in on_chip if e["kind"] == "static")
    macros = program.chip.array.macros
    total: dict[str, Any] = {key: _sum(on_chip, key) for key in COST_FIELDS}
    used = _sum(on_chip, "used_cells") or 0
    allocated = _sum(on_chip, "allocated_cells") or 0
    total.update({
        "matrix_products": len(entries),
        "on_chip": len(on_chip),
        "digital": len(entries) - len(on_chip),
        "array_tiles": static_tiles,
        "macros": macros,
        "fits_on_chip": static_tiles <= macros,
        "weight_reloads": max(0, static_tiles - macros),
        "utilization": used / allocated if allocated else None,
        "costs_known": all(e.get("cost_known", True) for e in on_chip),
    })
    if not total["costs_known"]:
        symbolic = [f"{i.name} {_shape(i.shape)}" for i in program.graph.inputs
                    if i.shape is None or not all(isinstance(d, int) for d in i.shape[1:])]
        total["costs_unknown_why"] = (
            "the output shape of some layers is not known at compile time (symbolic "
            f"dimensions in {', '.join(symbolic) or 'the graph'}); give the input's shape "
            "(--input-shape, e.g. 1x8x8) to count their conversions, cycles and energy")
    if total.get("energy_j") and total.get("macs"):
        total["tops_per_w"] = 2 * total["macs"] / total["energy_j"] / 1e12
    return {"model": program.source, "chip": program.chip.name, "layers": entries,
            "total": total, "warnings": list(warnings)}


def _shape(shape) -> str:
    if shape is None:
        return "[?]"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return engineering(value, unit) if unit else f"{value:.4g}"
    if isinstance(value, int) and value >= 10000:
        for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
            if value >= scale:
                return f"{value / scale:.3g}{suffix}"
    return str(value)


def render_mapping(report: dict[str, Any]) -> str:
    """Tables for people: one row per matrix product, then the totals."""
    from .table import render_table
    rows = []
    for e in report["layers"]:
        where = e["placement"] if e["placement"] == "acim" else f"digital ({e['reason']})"
        rows.append([
            e["node"], e["op_type"] + ("*" if e["kind"] == "dynamic" else ""), where,
            e["precision"], f"{e['k']}x{e['n']}" + (f" g{e['groups']}" if e["groups"] > 1 else ""),
            _fmt(len(e["row_tiles"]) or None), "+".join(str(t) for t in e["row_tiles"]) or "-",
            _fmt(e.get("column_tiles")), _fmt(e.get("utilization") and
                                              f"{100 * e['utilization']:.0f}%"),
            _fmt(e.get("macs")), _fmt(e.get("adc_conversions")), _fmt(e.get("cycles")),
            _fmt(e.get("energy_j"), "J"),
        ])
    # Both tile columns count tiles; the rows each row tile fills come in their own column.
    headers = ["node", "op", "runs on", "precision", "KxN", "row tiles", "rows per tile",
               "col tiles", "util",
               "MACs", "ADC conv", "cycles", "energy"]
    out = [f"model {report['model'] or '(in memory)'} on chip \"{report['chip']}\"  "
           f"(* = activation x activation, second operand written at run time)",
           render_table(headers, rows)]
    t = report["total"]
    fits = "fits" if t["fits_on_chip"] else \
        f"does NOT fit: {t['weight_reloads']} weight reloads per inference"
    util = f"{100 * t['utilization']:.0f}%" if t["utilization"] is not None else "-"
    lines = [
        f"{t['on_chip']} of {t['matrix_products']} matrix products on the array; "
        f"{t['array_tiles']} array tiles on {t['macros']} macro{'s' if t['macros'] != 1 else ''}"
        f" ({fits}); utilisation {util}",
        f"per inference: {_fmt(t['macs'])} MACs, {_fmt(t['adc_conversions'])} ADC conversions, "
        f"{_fmt(t['digital_bit_products'])} digital bit products, "
        f"{_fmt(t['accumulations'])} partial-sum additions, {_fmt(t['cycles'])} cycles",
    ]
    if t.get("energy_j") is not None:
        lines.append(f"energy {_fmt(t['energy_j'], 'J')}, latency {_fmt(t['latency_s'], 's')}"
                     + (f", {t['tops_per_w']:.3g} TOPS/W" if t.get("tops_per_w") else ""))
    if t.get("energy_j") is None and t.get("costs_known", True) and t["on_chip"]:
        lines.append(f"energy '-': chip \"{report['chip']}\" gives no energy figures (add "
                     "`energy { mac ... fJ  adc ... pJ  clock ... MHz }` to its file)")
    if t.get("costs_unknown_why"):
        lines.append(f"costs '-': {t['costs_unknown_why']}")
    notes = [f"note: {e['node']}: {e['note']}" for e in report["layers"] if e.get("note")]
    warnings = [f"warning: {w}" for w in report.get("warnings", ())]
    return "\n".join(out + lines + notes + warnings)
