"""Chips as measured: transfer tables from silicon, the closed-form code distribution of the
parametric model, synthetic measurements and the maximum-likelihood fit (``asimc chip fit``).

    table = read_table("measured.csv")                   # -> TransferTable, or TableError
    table.distribution(mac=40, bits=1, rows=255, levels=255, column=3)  # P(code) for codes 0..L
    result = fit_table(table, base_chip, per_column=True)

See docs/numeric-model.md, section 8b, for the model.
"""
from .table import TableError, TransferTable, read_table, table_problems

__all__ = ["TableError", "TransferTable", "read_table", "table_problems"]
