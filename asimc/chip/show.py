"""Human-readable derived facts for ``asimc chip show`` (rich tables; plain text when piped)."""
from __future__ import annotations

import io
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.table import Table

from .spec import ChipSpec


def render_facts(spec: ChipSpec, facts: dict[str, Any], out: TextIO) -> None:
    is_terminal = hasattr(out, "isatty") and out.isatty()
    if is_terminal:
        _render(facts, Console(file=out, highlight=False))
        return
    # Piped: plain text (rich adds no colours off a terminal), wide enough for the tables,
    # without the trailing blanks of padded table cells.
    buffer = io.StringIO()
    _render(facts, Console(file=buffer, highlight=False, width=120))
    out.write("\n".join(line.rstrip() for line in buffer.getvalue().split("\n")))


def _render(facts: dict[str, Any], console: Console) -> None:
    console.print("[bold]Derived facts[/bold]")
    summary = Table(box=None, show_header=False, padding=(0, 2))
    for label, text in _summary_rows(facts):
        summary.add_row(label, text)
    console.print(summary)

    types = Table(title="Conversion types", box=box.SIMPLE, title_justify="left")
    for column in ("type", "cycles", "ADC range", "full scale F", "LSB (MAC units, F/L)",
                   "LSB (% of FS)", "lossless"):
        types.add_column(column, justify="left" if column in ("type", "cycles") else "right")
    for t in facts["conversion_types"]:
        full = t["full_scale"]
        types.add_row(t["name"], ", ".join(f"c{c}" for c in t["cycles"]), t["range"],
                      f"{full:,}" if isinstance(full, int) else _g(full),
                      _g(t["lsb_mac"]), _g(t["lsb_percent"]), "yes" if t["lossless"] else "no")
    console.print(types)

    if facts["levels"]:
        levels = Table(title="Levels (weight bit i + input cycle c)", box=box.SIMPLE,
                       title_justify="left")
        for column in ("level", "bit products", "ADC conversions", "computed"):
            levels.add_column(column, justify="right" if column != "computed" else "left")
        for level in facts["levels"]:
            how = "digital" if level["digital"] else ("analog, voted" if level["voted"]
                                                      else "analog")
            levels.add_row(str(level["level"]), str(level["products"]),
                           str(level["conversions"]), how)
        console.print(levels)

    console.print("[bold]Peak performance[/bold]")
    for line in _performance_lines(facts["performance"], facts["precision"]):
        console.print("  " + line)

    if facts["layers"]:
        layers = Table(title="Layer overrides", box=box.SIMPLE, title_justify="left")
        for column in ("pattern", "changes", "cycles", "conversions", "digital products"):
            layers.add_column(column)
        for layer in facts["layers"]:
            if layer["digital"]:
                layers.add_row(layer["pattern"], "kept digital (off the array)", "-", "-", "-")
                continue
            changes = ", ".join(f"{c['field']} {_value(c['chip'])} -> {_value(c['layer'])}"
                                for c in layer["changes"]) or "(none)"
            layers.add_row(layer["pattern"], changes, str(layer["num_input_cycles"]),
                           str(layer["conversions_per_tile_column"]),
                           str(layer["digital_per_tile_column"]))
        console.print(layers)


def _summary_rows(facts: dict[str, Any]) -> list[tuple[str, str]]:
    p = facts["precision"]
    sign = "signed" if p["input_signed"] else "unsigned"
    rows = [("mode", facts["mode"]),
            ("precision", f"W{p['weight_bits']} x A{p['input_bits']} {sign}")]
    cycles = ", ".join(
        f"c{c['index']}: " + ("sign bit" if c["sign"] else _bit_range(c))
        for c in facts["input_cycles"])
    rows.append(("input cycles", f"{facts['num_input_cycles']} ({cycles})"))
    if facts["levels"]:
        rows.append(("levels", f"{facts['num_levels']} (0..{facts['num_levels'] - 1})"))
    rows.append(("conversions", f"{facts['conversions_per_tile_column']} ADC conversions and "
                                f"{facts['digital_per_tile_column']} digital bit products per "
                                "row tile and output column"))
    t = facts["transfer"]
    if t is not None:
        kinds = ", ".join(f"{k['bits']}-bit: {k['measured_macs']} MAC values"
                          for k in t["kinds"])
        columns = t["columns"] if isinstance(t["columns"], str) else \
            f"{len(t['columns'])} measured columns"
        rows.append(("transfer", f"{t['table']} (sha256 {t['sha256'][:16]}): "
                                 f"{t['observations']:,} conversions, {columns}, {kinds}"))
        rows.append(("unmeasured MACs", t["unmeasured"]))
        return rows
    n = facts["noise"]
    rows.append(("noise", f"random {_g(n['random_percent'])} % of full scale "
                          f"({_g(n['random_lsb'])} lsb), nonlinear "
                          f"{_g(n['nonlinear_percent'])} %"))
    mismatch = facts["mismatch"]
    rows.append(("mismatch", "; ".join(
        f"{m['what']} (σ {_g(m['sigma'])} {m['unit']})" for m in mismatch) + ", drawn per seed"
        if mismatch else "none"))
    return rows


def _bit_range(cycle: dict[str, Any]) -> str:
    low, bits = cycle["low_bit"], cycle["bits"]
    return f"bit {low}" if bits == 1 else f"bits {low}-{low + bits - 1}"


def _performance_lines(perf: dict[str, Any], precision: dict[str, Any]) -> list[str]:
    lines = []
    tag = f"W{precision['weight_bits']}xA{precision['input_bits']}"
    lines.append(f"{_g(perf['macs_per_clock'])} full-precision MACs per clock "
                 f"({perf['cycles_per_mac']} clock(s) per MAC)")
    if perf["tops"] is not None:
        lines.append(f"clock {_g(perf['clock_hz'] / 1e6)} MHz: {_g(perf['tops'])} TOPS at {tag}, "
                     f"{_g(perf['tops_1b'])} TOPS normalised to 1b x 1b")
    else:
        lines.append("throughput: no clock given (add `energy { clock ... }`)")
    if perf["tops_per_w"] is not None:
        lines.append(f"energy per MAC {_g(perf['energy_per_mac_fj'])} fJ: "
                     f"{_g(perf['tops_per_w'])} TOPS/W at {tag}, "
                     f"{_g(perf['tops_per_w_1b'])} TOPS/W normalised to 1b x 1b")
    else:
        lines.append("efficiency: needs `energy { mac ... adc ... }`")
    return lines


def _g(x: float) -> str:
    """Four significant digits, thousands separated."""
    if x == 0:
        return "0"
    if abs(x) >= 1e4:
        return f"{x:,.0f}"
    return f"{x:.4g}"


def _value(v: Any) -> str:
    if isinstance(v, dict) and "unit" in v:
        return f"{v['value']:g}{'' if v['unit'] == '%' else ' '}{v['unit']}"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)
