"""docs/numeric-model.md transcribed literally, one scalar conversion at a time, in exact
rational arithmetic (fractions) wherever the model is exact. Tiny sizes only: it is the yardstick
the kernels are measured against, not a kernel.
"""
from __future__ import annotations

from fractions import Fraction


def twos_bits(value: int, bits: int) -> list[int]:
    u = value % (1 << bits)
    return [(u >> i) & 1 for i in range(bits)]


def cycles_of(bits: int, signed: bool, per_cycle: int):
    """(low bit, width, is_sign) per cycle, LSB group first."""
    magnitude = bits - 1 if signed else bits
    out, low = [], 0
    while low < magnitude:
        width = min(per_cycle, magnitude - low)
        out.append((low, width, False))
        low += width
    if signed:
        out.append((bits - 1, 1, True))
    return out


def f32(x: float) -> float:
    """Round a Python float to float32 (the kernels' working precision)."""
    import struct
    return struct.unpack("f", struct.pack("f", x))[0]


def literal_acc(x: list[list[int]], w: list[list[int]], *, wbits: int, xbits: int, signed: bool,
                per_cycle: int, rows: int, adc_bits: int, tiles: list[tuple[int, int]],
                digital_levels: int = 0) -> list[list[Fraction]]:
    """Noiseless charge-domain bit-level product: sum over tiles, weight bits and cycles of
    sign * D/L * F * 2^(i + b_c), D = round_half_even(f32(f32(M/F) * L))."""
    L = (1 << adc_bits) - 1
    cyc = cycles_of(xbits, signed, per_cycle)
    R, N = len(x), len(w[0])
    out = [[Fraction(0) for _ in range(N)] for _ in range(R)]
    for r in range(R):
        xb = [twos_bits(v, xbits) if signed else [(v >> j) & 1 for j in range(xbits)]
              for v in x[r]]
        for n in range(N):
            wb = [twos_bits(w[k][n], wbits) for k in range(len(w))]
            total = Fraction(0)
            for k0, k1 in tiles:
                for i in range(wbits):
                    for c, (low, width, is_sign) in enumerate(cyc):
                        M = 0
                        for k in range(k0, k1):
                            g = sum(xb[k][low + j] << j for j in range(width))
                            M += g * wb[k][i]
                        F = ((1 << width) - 1) * rows
                        m = min(max(f32(M / F), 0.0), 1.0)
                        D = round(f32(m * L))          # Python's round is half-to-even
                        s = -1 if (i == wbits - 1) != is_sign else 1
                        total += s * Fraction(D, L) * F * 2 ** (i + low)
            out[r][n] = total
    return out
