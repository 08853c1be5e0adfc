"""Scheduling and cost: how many conversions, cycles and joules one inference takes.

Counts are per sample. A layer's array tiles (row tiles x column tiles x groups) are spread over
the chip's macros; tiles beyond ``macros`` run in further waves, each wave a weight reload.
Each output position takes one clock per input cycle per wave (a voted cycle takes one
conversion slot per vote); a weight-parallel chip converts all input bits in one cycle.
"""
from __future__ import annotations

from ..chip.conversions import ConversionPlan
from ..program import Accumulate, ArrayTile, LayerCost
from .tile import Tiling, channels_per_column_tile


def schedule(tiling: Tiling, *, n: int, groups: int, weight_bits: int, cols: int,
             macros: int) -> tuple[tuple[ArrayTile, ...], Accumulate]:
    """The array tiles of one matrix product, group by group, row tile by row tile, spread
    round-robin over the macros in waves; then the accumulation of the row tiles' partial sums."""
    per_tile = channels_per_column_tile(weight_bits, cols)
    tiles = []
    for g in range(groups):
        for t, rows in enumerate(tiling.row_tiles):
            for c0 in range(0, n, per_tile):
                index = len(tiles)
                tiles.append(ArrayTile(group=g, row_tile=t, rows=rows,
                                       channels=(c0, min(n, c0 + per_tile)),
                                       macro=index % macros, wave=index // macros))
    return tuple(tiles), Accumulate(row_tiles=len(tiling.row_tiles), outputs=groups * n)


def cycles_per_position(plan: ConversionPlan) -> int:
    if plan.weight_parallel:
        return 1
    return sum(max(plan.votes(i, c) for i in range(plan.weight_bits)) for c in plan.cycles)


def layer_cost(plan: ConversionPlan, tiling: Tiling, *, k: int, n: int, groups: int,
               positions: int, dynamic_groups: int = 0) -> LayerCost:
    """Cost of one matrix product: ``positions`` output rows per sample, each producing ``n``
    columns per group; ``dynamic_groups`` run-time operands written per sample (0: static)."""
    chip = plan.chip
    bw = plan.weight_bits
    input_cycles = 1 if plan.weight_parallel else len(plan.cycles)
    row_tiles = len(tiling.row_tiles)
    array_tiles = groups * row_tiles * tiling.column_tiles
    waves = -(-array_tiles // chip.array.macros)
    per_group_rows = sum(k1 - k0 for k0, k1 in tiling.row_tiles)
    cell_ops = positions * groups * per_group_rows * n * bw * input_cycles
    adc = positions * groups * row_tiles * n * plan.conversions_per_tile_column
    cycles = positions * cycles_per_position(plan) * waves
    energy = None
    if chip.energy.mac is not None:
        energy = cell_ops * chip.energy.mac.si()
        if chip.energy.adc is not None:
            energy += adc * chip.energy.adc.si()
    clock = chip.energy.clock_hz()
    return LayerCost(
        positions=positions,
        macs=positions * groups * k * n,
        cell_ops=cell_ops,
        adc_conversions=adc,
        digital_bit_products=positions * groups * row_tiles * n * plan.digital_per_tile_column,
        accumulations=positions * groups * n * (row_tiles - 1),
        row_tiles=row_tiles,
        column_tiles=tiling.column_tiles,
        array_tiles=array_tiles,
        used_cells=groups * k * n * bw,
        allocated_cells=array_tiles * chip.array.rows * chip.array.cols,
        cycles=cycles,
        weight_writes=dynamic_groups * k * n * bw,
        energy_j=energy,
        latency_s=cycles / clock if clock else None,
    )
