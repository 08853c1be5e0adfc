"""Counter-based random numbers: every draw is a pure function of (stream key, counter).

A run must not depend on how a batch is cut into chunks, on the batch size, on the thread count
or on the order in which a kernel visits conversions. So no draw comes from a stateful
generator: each conversion has coordinates (layer, sample, row tile, weight bit, cycle, vote,
output element) that are mixed into a 64-bit stream key and a 64-bit counter
(``asimc.kernels.problem`` says how), and Philox4x32-10 (Salmon et al., SC'11: the generator of
cuRAND, JAX and Triton's ``tl.randint4x``) turns them into four 32-bit words:

    key     = (stream mod 2^32, stream div 2^32)
    counter = (counter mod 2^32, counter div 2^32, 0, 0)

Philox needs only 32x32->64-bit products, which AVX2 (vpmuludq), AVX-512 and GPUs all do
vectorised. A noisy conversion whose code is tabulated takes one of the four words as a uniform
32-bit integer (``conversion_model``): one call serves four neighbouring weight bits. Where a
normal is drawn instead, Box-Muller turns words (0, 1) into one pair of independent N(0, 1) and
words (2, 3) into a second pair: u1 = (w0 >> 8 + 1) / 2^24 in (0, 1], angle = 2 pi (w1 >> 8) /
2^24; the pair is r cos(angle), r sin(angle) with r = sqrt(-2 ln u1): four normals per call,
``standard_normal_quad``.

The Box-Muller transform uses no library ``log``/``cos`` (whose last bit differs between CPU,
CUDA and compilers): ln and cos(2 pi x) are evaluated with fixed polynomials in float32 basic
arithmetic (+, -, *, /, sqrt, all correctly rounded as IEEE 754 requires; see ``sqrt32``), in a
fixed order, without fused multiply-adds. The torch code here and the native kernel
(``native/convert.c``, generated with the same constants) therefore draw bit-identical numbers
on every device. Accuracy: |error| < 1e-6 in ln, < 3e-7 in cos.

Integers are held in int64 tensors: a 32-bit word is a value in [0, 2^32) and the product of
two of them, < 2^64, wraps modulo 2^64 in torch on every backend, so its low and high 32 bits
are exact; right shifts of int64 are arithmetic, so each shift is followed by a mask.
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch

_MASK64 = (1 << 64) - 1

# Salts that keep the streams of different kinds of draws apart: per-conversion noise
# (``problem``), and the static per-chip errors of ``mismatch`` (cells, ADC gain, ADC offset,
# input drivers, and the ADC code thresholds of ``mismatch { adc_dnl }``).
CONVERSION_SALT = 0x636F6E76   # "conv"
CELL_SALT = 0x63656C6C         # "cell"
GAIN_SALT = 0x6761696E         # "gain"
OFFSET_SALT = 0x6F666673       # "offs"
DRIVER_SALT = 0x64726976       # "driv"
THRESHOLD_SALT = 0x74687273    # "thrs"


def _signed(value: int) -> int:
    """An unsigned 64-bit constant as the int64 torch stores."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value




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


_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB


def mix64(value: int) -> int:
    """SplitMix64's finaliser on a Python int (used to derive stream keys)."""
    z = value & _MASK64
    z = ((z ^ (z >> 30)) * _MIX1) & _MASK64
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
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


# Philox4x32-10 (Random123's constants).
PHILOX_M0, PHILOX_M1 = 0xD2511F53, 0xCD9E8D57
PHILOX_W0, PHILOX_W1 = 0x9E3779B9, 0xBB67AE85
PHILOX_ROUNDS = 10
_LOW32 = 0xFFFFFFFF


def philox4x32(key: tuple[int, int], counter: tuple[int, int, int, int]
               ) -> tuple[int, int, int, int]:
    """Philox4x32-10 on Python ints (the scalar definition the tensor code is tested against)."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for r in range(PHILOX_ROUNDS):
        if r:
            k0, k1 = (k0 + PHILOX_W0) & _LOW32, (k1 + PHILOX_W1) & _LOW32
        p0, p1 = PHILOX_M0 * c0, PHILOX_M1 * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0, p1 & _LOW32, (p0 >> 32) ^ c3 ^ k1,
                          p0 & _LOW32)
    return c0, c1, c2, c3


def random_words(stream: torch.Tensor, counter: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Philox4x32-10's four 32-bit words (int64 in [0, 2^32)) per (stream key, counter);
    inputs broadcast."""
    stream, counter = torch.broadcast_tensors(torch.as_tensor(stream), counter)
    k0 = stream & _LOW32
    k1 = _shr(stream, 32)
    c0 = counter & _LOW32
    c1 = _shr(counter, 32)
    c2 = torch.zeros_like(c0)
    c3 = torch.zeros_like(c0)
    for r in range(PHILOX_ROUNDS):
        if r:
            k0 = (k0 + PHILOX_W0) & _LOW32
            k1 = (k1 + PHILOX_W1) & _LOW32
        p0 = c0 * PHILOX_M0
        p1 = c2 * PHILOX_M1
        c0, c1, c2, c3 = _shr(p1, 32) ^ c1 ^ k0, p1 & _LOW32, _shr(p0, 32) ^ c3 ^ k1, \
            p0 & _LOW32
    return c0, c1, c2, c3


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


def normals_from_words(w0: torch.Tensor, w1: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Box-Muller on two 32-bit words: u1 in (0, 1] from the top 24 bits of w0, a 24-bit angle
    from those of w1; the two independent N(0, 1) r cos(theta) and r sin(theta)."""
    u1 = ((w0 >> 8) + 1).to(torch.float32) * INV_2_24
    angle = w1 >> 8
    radius = sqrt32(log_unit(u1) * -2.0)
    return radius * cos_turns(angle), radius * cos_turns((angle + QUARTER_TURN) & 0xFFFFFF)


def standard_normal_quad(stream: torch.Tensor, counter: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Four independent N(0, 1) float32 per (stream key, counter); inputs broadcast."""
    w0, w1, w2, w3 = random_words(stream, counter)
    return normals_from_words(w0, w1) + normals_from_words(w2, w3)


def standard_normal(stream: torch.Tensor, counter: torch.Tensor) -> torch.Tensor:
    """One N(0, 1) float32 per (stream key, counter) (the first of the quad)."""
    w0, w1, _, _ = random_words(stream, counter)
    return normals_from_words(w0, w1)[0]
