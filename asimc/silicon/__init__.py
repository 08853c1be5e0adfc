"""Chips as measured: transfer tables from silicon, the closed-form code distribution of the
parametric model, synthetic measurements and the maximum-likelihood fit (``asimc chip fit``).

    table = read_table("measured.csv")                   # -> TransferTable, or TableError
    table.distribution(mac=40, bits=1, rows=255, levels=255, column=3)  # P(code) for codes 0..L
    result = fit_table(table, base_chip, per_column=True)    # FitResult (sigmas, offsets...)
    text = measure_chip(chip, repeats=1000, seed=0).text     # a synthetic table

See docs/numeric-model.md, section 8b, for the model.
"""
from .table import TableError, TransferTable, read_table, table_problems

__all__ = ["TableError", "TransferTable", "read_table", "table_problems", "fit_table",
           "FitResult", "measure_chip"]


def __getattr__(name):
    # Lazy: the chip resolver reads tables without loading torch.
    if name in ("fit_table", "FitResult"):
        from . import fit
        return getattr(fit, name)
    if name == "measure_chip":
        from .measure import measure_chip
        return measure_chip
    raise AttributeError(f"module 'asimc.silicon' has no attribute {name!r}")
