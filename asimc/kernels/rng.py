"""Counter-based random numbers: every draw is a pure function of (stream key, counter).

A run must not depend on how a batch is cut into chunks, on the batch size, or on the order in
which a kernel visits conversions. So no draw comes from a stateful generator: each conversion
has coordinates (layer, sample, row tile, weight bit, cycle, vote, output element) that are mixed
into a 64-bit stream key and a 64-bit counter, and the SplitMix64 finaliser turns
``key + counter * golden_gamma`` into 64 random bits. Box-Muller turns those into one N(0, 1).

Everything is plain int64/float32 torch arithmetic, so CPU and CUDA draw the same integers.
int64 multiplication wraps modulo 2**64 in torch on every backend; right shifts of int64 are
arithmetic, so each shift is followed by a mask to make it logical.
"""
from __future__ import annotations

import hashlib
import math

import torch

_MASK64 = (1 << 64) - 1


def _signed(value: int) -> int:
    """An unsigned 64-bit constant as the int64 torch stores."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


GOLDEN_GAMMA = _signed(0x9E3779B97F4A7C15)
_MIX1 = _signed(0xBF58476D1CE4E5B9)
_MIX2 = _signed(0x94D049BB133111EB)


def mix64(value: int) -> int:
    """SplitMix64's finaliser on a Python int (used to derive stream keys)."""
    z = value & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def combine(*parts: int) -> int:
    """A 64-bit key from several integers (order matters), as a signed int64 value."""
    key = 0x6A09E667F3BCC908
    for part in parts:
        key = mix64(key ^ mix64(part & _MASK64))
    return _signed(key)


def name_key(name: str) -> int:
    """A stable 64-bit key for a string (a layer name)."""
    return _signed(int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little"))


def bytes_key(data: bytes) -> int:
    return _signed(int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little"))


def _shr(z: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical right shift of int64 values."""
    return (z >> bits) & ((1 << (64 - bits)) - 1)


def random_bits(stream: torch.Tensor, counter: torch.Tensor) -> torch.Tensor:
    """64 random bits (int64) for each (stream key, counter) pair; inputs broadcast."""
    z = stream + counter * GOLDEN_GAMMA
    z = (z ^ _shr(z, 30)) * _MIX1
    z = (z ^ _shr(z, 27)) * _MIX2
    return z ^ _shr(z, 31)


_TWO_PI = 2.0 * math.pi
_INV_2_24 = 1.0 / (1 << 24)


def standard_normal(stream: torch.Tensor, counter: torch.Tensor) -> torch.Tensor:
    """One N(0, 1) float32 per (stream key, counter) pair (Box-Muller on 48 of the 64 bits).

    u1 is in (0, 1] with 24-bit resolution (tails reach 5.8 sigma), u2 in [0, 1).
    """
    z = random_bits(stream, counter)
    u1 = (_shr(z, 40) + 1).to(torch.float32) * _INV_2_24
    u2 = ((z >> 16) & 0xFFFFFF).to(torch.float32) * _INV_2_24
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(_TWO_PI * u2)
