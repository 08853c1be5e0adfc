"""Counter-based random numbers: every draw is a pure function of (stream key, counter).

A run must not depend on how a batch is cut into chunks, on the batch size, or on the order in
which a kernel visits conversions. So no draw comes from a stateful generator: each conversion
has coordinates (layer, sample, row tile, weight bit, cycle, vote, output element) that are mixed
into a 64-bit stream key and a 64-bit counter, and the SplitMix64 finaliser turns
``key + counter * golden_gamma`` into 64 random bits. Box-Muller turns 48 of them into two
independent N(0, 1) (the kernels give them to two neighbouring weight bits).

The Box-Muller transform uses no library ``log``/``cos`` (whose last bit differs between CPU,
CUDA and compilers): ln and cos(2 pi x) are evaluated with fixed polynomials in float32 basic
arithmetic (+, -, *, /, sqrt, all correctly rounded as IEEE 754 requires; see ``sqrt32``), in a
fixed order. The torch code
here and the native kernel (``native/convert.c``, generated with the same constants) therefore
draw bit-identical numbers on every device. Accuracy: |error| < 1e-6 in ln, < 3e-7 in cos.

int64 multiplication wraps modulo 2**64 in torch on every backend; right shifts of int64 are
arithmetic, so each shift is followed by a mask to make it logical.
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch

_MASK64 = (1 << 64) - 1


def _signed(value: int) -> int:
    """An unsigned 64-bit constant as the int64 torch stores."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


GOLDEN_GAMMA = _signed(0x9E3779B97F4A7C15)
_MIX1 = _signed(0xBF58476D1CE4E5B9)
_MIX2 = _signed(0x94D049BB133111EB)


def f32(value: float) -> float:
    """``value`` rounded to float32 (exactly representable as a Python float)."""
    return float(np.float32(value))


# Float32 constants of the Box-Muller polynomials, shared with native/convert.c.
LN2 = f32(0.6931471805599453)
SQRT2 = f32(1.4142135623730951)
# ln(m) = 2 atanh(s), s = (m-1)/(m+1): 2 s (1 + s^2/3 + s^4/5 + s^6/7 + s^8/9)
LN_SERIES = tuple(f32(2.0 / k) for k in (1, 3, 5, 7, 9))
HALF_PI = f32(1.5707963267948966)
QUARTER_STEP = f32(1.5707963267948966 / (1 << 22))      # (pi/2) / 2^22
# cos(b) = 1 - b^2/2! + b^4/4! - ... - b^14/14!  on [0, pi/2]
COS_SERIES = tuple(f32((-1) ** k / float(np.prod(np.arange(1, 2 * k + 1)))) for k in range(8))
INV_2_24 = f32(1.0 / (1 << 24))


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
    return bytes_key(name.encode())


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


def _polynomial(x: torch.Tensor, coefficients: tuple[float, ...]) -> torch.Tensor:
    """c0 + x (c1 + x (c2 + ...)), Horner's rule from the highest coefficient."""
    result = torch.full_like(x, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        result = result * x + c
    return result


def log_unit(u: torch.Tensor) -> torch.Tensor:
    """ln(u) for float32 u in (0, 1]: u = m 2^e, m in [sqrt(1/2), sqrt(2)), ln u = ln m + e ln 2."""
    bits = u.view(torch.int32)
    exponent = ((bits >> 23) & 255) - 127
    m = ((bits & 0x7FFFFF) | 0x3F800000).view(torch.float32)           # [1, 2)
    big = m > SQRT2
    m = torch.where(big, m * 0.5, m)
    exponent = exponent + big.to(torch.int32)
    s = (m - 1.0) / (m + 1.0)
    return s * _polynomial(s * s, LN_SERIES) + exponent.to(torch.float32) * LN2


def cos_turns(k: torch.Tensor) -> torch.Tensor:
    """cos(2 pi k / 2^24) for integers k in [0, 2^24): quadrant from the top 2 bits."""
    quadrant = k >> 22
    a = (k & 0x3FFFFF).to(torch.float32) * QUARTER_STEP                # [0, pi/2)
    odd = (quadrant & 1) == 1
    b = torch.where(odd, HALF_PI - a, a)
    c = _polynomial(b * b, COS_SERIES)
    negative = (quadrant == 1) | (quadrant == 2)
    return torch.where(negative, -c, c)


def sqrt32(x: torch.Tensor) -> torch.Tensor:
    """The correctly rounded float32 square root. torch's own float32 sqrt is off by an ulp
    now and then on some CPUs (it is not IEEE's); one rounded from float64 is exact (double
    rounding is harmless for sqrt), and so equals C's sqrtf and CUDA's."""
    return torch.sqrt(x.double()).to(torch.float32)


QUARTER_TURN = 3 << 22      # sin(2 pi k / 2^24) = cos(2 pi (k + 3/4 * 2^24) / 2^24)


def normals_from_bits(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Box-Muller on 48 of 64 random bits, u1 in (0, 1] (24 bits) and a 24-bit angle: the two
    independent N(0, 1) of one draw, r cos(theta) and r sin(theta)."""
    u1 = (_shr(z, 40) + 1).to(torch.float32) * INV_2_24
    angle = (z >> 16) & 0xFFFFFF
    radius = sqrt32(log_unit(u1) * -2.0)
    return radius * cos_turns(angle), radius * cos_turns((angle + QUARTER_TURN) & 0xFFFFFF)


def standard_normal_pair(stream: torch.Tensor, counter: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent N(0, 1) float32 per (stream key, counter); inputs broadcast."""
    return normals_from_bits(random_bits(stream, counter))


def standard_normal(stream: torch.Tensor, counter: torch.Tensor) -> torch.Tensor:
    """One N(0, 1) float32 per (stream key, counter) (the cosine half of the pair)."""
    return standard_normal_pair(stream, counter)[0]
