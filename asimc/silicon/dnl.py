"""ADC threshold offsets (``mismatch { adc_dnl }``, docs/numeric-model.md, section 8c) estimated
from a transfer table, one converter (a measured column, or the table's one distribution) at a
time.

With the noise sigmas known, ``P(D >= k | M) = Phi((M / F - u_k) / sigma(M))`` (asimc/silicon/
model.py) has one unknown per threshold k, its position u_k on the analog scale: the counts at
or above code k at each MAC value are a probit regression with a known slope ``1 / sigma(M)``.
Fisher scoring solves all thresholds of a block of converters at once. A line through each
converter's thresholds, ``L u_k = a (k - 1/2) + b``, is its gain and offset; what the line
leaves, ``d_k = residual / a`` LSB, its threshold offsets. Each estimate carries sampling error
(its variance from the Fisher information, scaled up to the scatter between two random halves
of the data where the model understates it), which would make an ideal converter look
non-linear: the DNL sigma is the spread of the d_k less that error (a method-of-moments
estimate), reported as 0 when it is below the detection limit (three standard errors of the
estimate under no DNL at all). docs/numeric-model.md, section 8b, gives the details.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .model import ConversionKind

_ITERATIONS = 30
_MAX_STANDARD_ERROR = 0.5     # LSB: thresholds known worse than this carry no information
_DETECTION_Z = 3.0            # standard errors of sigma^2 under no DNL for a detection
_BLOCK = 1 << 22              # converters x thresholds x MAC rows per Fisher-scoring block


@dataclass(frozen=True)
class ConverterData:
    """One converter's measurements, all conversion kinds stacked in the order of their analog
    value ``m = M / F``: the noise sigma on the same scale, the conversions ``n`` and, per
    threshold k = 1..L, how many read code k or above (``at_or_above[:, k - 1]``)."""

    m: np.ndarray
    sigma: np.ndarray
    n: np.ndarray
    at_or_above: np.ndarray


@dataclass(frozen=True, eq=False)
class DnlEstimate:
    """Threshold offsets of the converters fitted and the DNL sigma they give (LSB)."""

    sigma: float               # the DNL sigma, 0 when not detected
    measured_sd: float         # root mean square of the d_k estimates, sampling error included
    sampling_sd: float         # root mean square of their sampling error
    detection_limit: float     # the smallest sigma this table detects
    thresholds: int            # thresholds used (identified, over every converter)
    estimates: np.ndarray      # their d_k estimates (LSB), sampling error included
    positions: np.ndarray      # (converters, L) u_k on the analog scale, shrunk towards the
                               # converter's line by their sampling error (empirical Bayes);
                               # NaN where DNL was not detected or the converter not fitted
    variance_scale: float      # the halves' scatter over the Fisher information's (>= 1)

    def offsets(self, offsets_lsb, gains, levels: int) -> np.ndarray:
        """The threshold offsets d_0..d_L (LSB; d_0 unused) that put each converter's
        thresholds at ``positions`` given its fitted offset (LSB) and gain (relative):
        ``k - 1/2 + d_k = L (1 + g) u_k + o``, 0 where a position is unknown."""
        k = np.arange(1, levels + 1) - 0.5
        d = (levels * (1.0 + np.asarray(gains))[:, None] * self.positions
             + np.asarray(offsets_lsb)[:, None] - k)
        return np.pad(np.nan_to_num(d, nan=0.0), ((0, 0), (1, 0)))

    @property
    def detected(self) -> bool:
        return self.sigma > 0


def converter_data(parts, levels: int) -> ConverterData:
    """``parts``: (kind, macs, counts, noise sigmas per MAC on the analog scale) of one
    converter, one per conversion kind."""
    m, sigma, n, above = [], [], [], []
    for kind, macs, counts, sd in parts:
        counts = np.pad(counts.astype(np.float64), ((0, 0), (0, levels + 1 - counts.shape[1])))
        tail = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1]     # conversions reading >= k
        m.append(macs / kind.full_scale)
        sigma.append(sd)
        n.append(tail[:, 0])
        above.append(tail[:, 1:])
    m = np.concatenate(m)
    order = np.argsort(m, kind="stable")
    return ConverterData(m[order], np.concatenate(sigma)[order], np.concatenate(n)[order],
                         np.concatenate(above)[order])


def noise_sigma(kind: ConversionKind, macs, sigma_random: float, sigma_nonlinear: float,
                levels: int) -> np.ndarray:
    """sigma(M) on the analog scale (docs/numeric-model.md, section 5, step 3) for sigmas in
    LSB."""
    m_bin = np.asarray(macs, dtype=np.float64) / kind.full_scale * kind.rows
    return np.sqrt(sigma_random ** 2 + sigma_nonlinear ** 2 / (m_bin + 1.0)) / levels


def threshold_positions(converters: list[ConverterData], levels: int):
    """Maximum-likelihood u_k (analog scale) of thresholds k = 1..L of every converter and
    their variances: two (converters, L) arrays. A threshold the analog range never reaches,
    or always does, ends outside (0, 1)."""
    rows = max(len(c.m) for c in converters)
    per_block = max(1, _BLOCK // (levels * rows))
    u_all, var_all = [], []
    for start in range(0, len(converters), per_block):
        u, var = _score_block(converters[start:start + per_block], rows, levels)
        u_all.append(u)
        var_all.append(var)
    return np.concatenate(u_all), np.concatenate(var_all)


def _halves(parts: list[list], levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Threshold positions from two random halves of the conversions (binomial thinning, a
    fixed seed: the same table gives the same fit); NaN where a half leaves one outside the
    range."""
    rng = np.random.default_rng(0)
    first = [[(kind, macs, rng.binomial(counts, 0.5), sd) for kind, macs, counts, sd in parts_c]
             for parts_c in parts]
    second = [[(kind, macs, counts - half[2], sd) for (kind, macs, counts, sd), half
               in zip(parts_c, first_c)] for parts_c, first_c in zip(parts, first)]
    out = []
    for half in (first, second):
        u, variance = threshold_positions([converter_data(p, levels) for p in half], levels)
        out.append(np.where((u > 0) & (u < 1) & np.isfinite(variance), u, np.nan))
    return out[0], out[1]


def _score_block(block: list[ConverterData], rows: int, levels: int):
    def padded(field, fill=0.0):
        out = np.full((len(block), rows) + getattr(block[0], field).shape[1:], fill)
        for i, c in enumerate(block):
            value = getattr(c, field)
            out[i, :len(value)] = value
        return torch.as_tensor(out, dtype=torch.float64)

    m = padded("m", 2.0)                                  # (C, J), sorted; padding beyond 1
    sigma = padded("sigma", 1.0).clamp_min(1e-12)
    n = padded("n")
    above = padded("at_or_above").transpose(1, 2)        # (C, L, J)
    # Start where at least half the conversions reach the threshold; use the MAC rows within
    # 8 sigma (and 2 LSB) of there: further ones carry no information.
    reached = above >= 0.5 * n[:, None, :].clamp_min(1e-300)
    seen_below, seen_above = (above < n[:, None, :]).any(-1), (above > 0).any(-1)
    first = reached.to(torch.int8).argmax(-1)
    u = torch.where(reached.any(-1), m.gather(1, first), torch.tensor(1.0 + 1.0 / levels))
    half = 8.0 * float(sigma[n > 0].max()) + 2.0 / levels
    low = torch.searchsorted(m, (u - half).contiguous())
    width = max(1, int((torch.searchsorted(m, (u + half).contiguous()) - low).max()))
    width = min(width, rows)
    index = low.clamp(0, rows - width)[..., None] + torch.arange(width)   # (C, L, W)

    def window(values):
        return values[:, None, :].expand(-1, levels, -1).gather(2, index)

    m, sigma, n, above = window(m), window(sigma), window(n), above.gather(2, index)
    for _ in range(_ITERATIONS):
        z = (m - u[..., None]) / sigma
        log_upper, log_lower = torch.special.log_ndtr(z), torch.special.log_ndtr(-z)
        log_density = -0.5 * z * z - 0.5 * math.log(2 * math.pi)
        # d loglik / du and the Fisher information, in the tail each term lies in.
        score = -((above * torch.exp(log_density - log_upper)
                   - (n - above) * torch.exp(log_density - log_lower)) / sigma).sum(-1)
        information = (n * torch.exp(2 * log_density - log_upper - log_lower)
                       / sigma ** 2).sum(-1)
        # Steps of at most 2 LSB (the log-likelihood is concave in u); a threshold that has
        # left the analog range stays there (never or always reached).
        step = (score / information.clamp_min(1e-300)).clamp(-2.0 / levels, 2.0 / levels)
        step = torch.where((u < -2.0 / levels) | (u > 1.0 + 2.0 / levels), 0.0, step)
        u = u + step
        if float(step.abs().max()) < 1e-7 / levels:
            break
    variance = 1.0 / information.clamp_min(1e-300)
    # The probit ignores the ends of the range, where the model jumps: a threshold at or below
    # 0 is always reached (the clamped analog value's point mass at 0 reads above it), one
    # above 1 never is. Data on both sides keep it inside, at the end: a bound, not an
    # estimate (infinite variance).
    low_end, high_end = seen_below & (u <= 0), seen_above & (u > 1)
    u = torch.where(low_end, 1e-9, torch.where(high_end, 1.0 - 1e-9, u))
    variance = torch.where(low_end | high_end, math.inf, variance)
    return u.numpy(), variance.numpy()


def estimate_dnl(parts: list[list], levels: int, scale: float | None = None) -> DnlEstimate:
    """Threshold offsets and the DNL sigma of converters given by their ``parts`` (see
    ``converter_data``); ``scale`` the sampling variances' scale from an earlier estimate of
    the same table (None: measure it)."""
    u, var_u = threshold_positions([converter_data(p, levels) for p in parts], levels)
    halves = _halves(parts, levels) if scale is None else None
    x = np.arange(1, levels + 1) - 0.5
    inside = (u > 0) & (u < 1)
    known = inside & (np.sqrt(var_u) * levels < _MAX_STANDARD_ERROR)
    raw = np.zeros((len(parts), levels))       # d_k, LSB
    variance = np.full((len(parts), levels), np.inf)
    slopes = np.full((len(parts), 1), np.nan)
    residuals, variances, free, half_differences = [], [], [], []
    for c in range(len(parts)):
        if known[c].sum() < 3:
            continue
        slope, intercept = np.polyfit(x[known[c]], levels * u[c, known[c]], 1)
        slopes[c] = slope
        raw[c] = (levels * u[c] - slope * x - intercept) / slope
        variance[c] = levels ** 2 * var_u[c] / slope ** 2
        centred = x[known[c]] - x[known[c]].mean()
        leverage = 1.0 / len(centred) + centred ** 2 / (centred ** 2).sum()
        residuals.append(raw[c, known[c]])
        variances.append(variance[c, known[c]])
        free.append(1.0 - leverage)
        if halves is not None:
            half_differences.append(levels * (halves[0][c, known[c]] - halves[1][c, known[c]])
                                    / (2 * slope))
    positions = np.full((len(parts), levels), np.nan)
    if not residuals:
        return DnlEstimate(0.0, 0.0, 0.0, math.inf, 0, np.zeros(0), positions, 1.0)
    r, v, free = np.concatenate(residuals), np.concatenate(variances), np.concatenate(free)
    # The Fisher information gives each estimate's sampling variance if the model holds; where
    # it does not (a skewed error), estimates scatter more. Half the data against the other
    # half measures the scatter as it is: the variances are scaled up to it (never down).
    if scale is None:
        half = np.concatenate(half_differences)
        both = np.isfinite(half)
        scale = max(1.0, float((half[both] ** 2).sum() / v[both].sum())) if both.any() else 1.0
    v, variance = v * scale, variance * scale
    # E[sum r^2] = sum (1 - h) (sigma^2 + v): the line takes 2 degrees of freedom per converter.
    sigma2 = float(((r ** 2).sum() - (free * v).sum()) / free.sum())
    null_error = float(math.sqrt(2.0 * ((free * v) ** 2).sum()) / free.sum())
    sigma = math.sqrt(sigma2) if sigma2 > _DETECTION_Z * null_error else 0.0
    if sigma > 0:
        # Each offset shrunk by its sampling error (onto the line where it is unknown), but
        # never across an end of the analog range: a point mass lies there (the clamped analog
        # value), and whether it reads the code above is the data's to say.
        shrunk = u - slopes * (raw - raw * sigma ** 2 / (sigma ** 2 + variance)) / levels
        keeps_side = (shrunk > 0) & (shrunk <= 1)
        positions = np.where(inside & keeps_side, shrunk, u)
        positions[np.isnan(slopes[:, 0])] = np.nan
    return DnlEstimate(sigma, float(np.sqrt(np.mean(r ** 2))), float(np.sqrt(np.mean(v))),
                       math.sqrt(_DETECTION_Z * null_error), len(r), r, positions, scale)
