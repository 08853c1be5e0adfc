"""Tiling: cut a matrix product into row tiles (the analog MAC length) and column tiles.

Row tiles change the numerics (each tile is converted separately, with the chip's ``rows`` as
full scale); column tiles only change cost. A convolution's reduction (C*kh*kw, channel-major
like im2col) is cut by whole input channels, floor(rows / (kh*kw)) per tile, as ASiM does; the
``flat`` mapping (and any product that is not a convolution) cuts it into chunks of ``rows``.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..chip.fields import ConvMapping


@dataclass(frozen=True)
class Tiling:
    row_tiles: tuple[tuple[int, int], ...]   # [k0, k1) ranges of one group's reduction
    column_tiles: int                        # per group
    note: str = ""


def row_tiles(k: int, rows: int, kernel_area: int = 1, mapping: str = ConvMapping.CHANNELS
              ) -> tuple[tuple[tuple[int, int], ...], str]:
    """Row tiles of a reduction of length ``k`` and a note when the mapping had to change."""
    step, note = rows, ""
    if mapping == ConvMapping.CHANNELS and kernel_area > 1:
        if kernel_area <= rows:
            step = (rows // kernel_area) * kernel_area
        else:
            note = (f"a {kernel_area}-tap kernel does not fit in {rows} rows: "
                    f"mapped flat (kernels split across row tiles)")
    return tuple((k0, min(k, k0 + step)) for k0 in range(0, k, step)), note


def channels_per_column_tile(weight_bits: int, cols: int) -> int:
    """Output channels one column tile holds: one column per weight bit."""
    return max(1, cols // weight_bits)


def column_tiles(n: int, weight_bits: int, cols: int) -> int:
    """Column tiles for n output channels of ``weight_bits`` columns each."""
    return -(-n // channels_per_column_tile(weight_bits, cols))


def tile(k: int, n: int, rows: int, cols: int, weight_bits: int, kernel_area: int = 1,
         mapping: str = ConvMapping.CHANNELS) -> Tiling:
    tiles, note = row_tiles(k, rows, kernel_area, mapping)
    return Tiling(tiles, column_tiles(n, weight_bits, cols), note)
