"""``asimc chip fit``: asimc's parametric conversion model fitted to a measured transfer table by
maximum likelihood.

The parameters are the random and the non-linear noise sigma (in LSB) and a column ADC offset
(LSB) and gain (relative): one offset and gain for the whole table, or one per measured column
with ``per_column``. The likelihood of a table is the product over its bins of
P(code | MAC)^count with P from the closed form of ``model`` (Gaussian on the analog value,
clamp, round), so the fit uses every observed code, tails included. Then each column's code
thresholds (asimc/silicon/dnl.py): with ``per_column`` their spread is the chip's `adc_dnl`,
and where it is detected the noise is fitted again with the thresholds in place. The quality
figure is the G statistic against the saturated model (each MAC value its own histogram)
divided by its degrees of freedom: about 1 when the parametric model explains the table within
sampling error, well above 1 when it cannot (a skewed or bimodal error, a pooled table's DNL).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..chip.fields import Domain
from ..errors import UsageError
from .dnl import DnlEstimate, estimate_dnl, noise_sigma
from .model import ConversionKind, code_probability, conversion_kinds, threshold_shifts
from .table import TableError, TransferTable, table_problems


@dataclass(frozen=True)
class MacSpread:
    """Measured against fitted code statistics of one MAC value (columns pooled: the spread is
    the root mean square of the per-column spreads, the error the mean over columns)."""

    bits: int
    mac: int
    conversions: int
    measured_error: float    # mean code minus M x L / F (the noiseless analog value), LSB
    fitted_error: float
    measured_spread: float   # standard deviation of the code, LSB
    fitted_spread: float


@dataclass(frozen=True, eq=False)
class FitResult:
    sigma_random: float              # LSB of the ADC as configured
    sigma_nonlinear: float           # LSB
    columns: tuple[int | None, ...]  # None: one offset and gain for every column
    offsets: tuple[float, ...]       # LSB, per entry of ``columns``
    gains: tuple[float, ...]         # relative (0.01 = 1 %)
    dnl: DnlEstimate                 # threshold offsets, per entry of ``columns``
    threshold_offsets: np.ndarray | None   # (columns, L + 1) d_k in the fitted model (LSB);
                                           # None: ideal thresholds
    g_per_dof: float
    degrees_of_freedom: int
    log_likelihood: float
    conversions: int
    spreads: tuple[MacSpread, ...]

    @property
    def adc_dnl(self) -> float | None:
        """The fitted `adc_dnl` sigma (LSB; 0 when not detected), or None for a table without
        columns: its one distribution serves every column, so its threshold offsets are one
        converter's, not a spread over columns."""
        return self.dnl.sigma if self.columns != (None,) else None

    @property
    def offset_sd(self) -> float:
        return float(np.std(self.offsets, ddof=1)) if len(self.offsets) > 1 else 0.0

    @property
    def gain_sd(self) -> float:
        return float(np.std(self.gains, ddof=1)) if len(self.gains) > 1 else 0.0


@dataclass(frozen=True)
class _Bins:
    """The observed bins of a table, flattened: column index, kind, MAC, code, count."""

    column: torch.Tensor
    kind: list[ConversionKind]
    kind_index: torch.Tensor
    mac: torch.Tensor
    code: torch.Tensor
    count: torch.Tensor
    shifts: tuple = (0.0, 0.0)    # DNL offsets (LSB) of each bin's lower and upper threshold

    def with_dnl(self, offsets: np.ndarray) -> "_Bins":
        """The bins with each column's threshold offsets d_k (columns x codes 0..L) fixed."""
        table = torch.as_tensor(offsets, dtype=torch.float64)
        top = table.shape[1] - 1
        return replace(self, shifts=(table[self.column, self.code.clamp(0, top)],
                                     table[self.column, (self.code + 1).clamp(0, top)]))


def fittable_problems(chip) -> list[str]:
    """Why asimc's parametric model cannot be fitted for this base chip."""
    problems = []
    if chip.weight.parallel:
        problems.append("weight `parallel` converts whole products with a signed ADC; a "
                        "transfer table describes bit-level conversions")
    if chip.domain.kind != Domain.CHARGE:
        problems.append("the fit models the charge domain (no gain compression); the base "
                        "chip is `domain current`")
    if chip.adc.transfer:
        problems.append("the chip draws its codes from a transfer table already (its "
                        "parametric model is the chip without `transfer`)")
    return problems


def fit_table(table: TransferTable, chip, per_column: bool = False) -> FitResult:
    """Maximum-likelihood fit of the parametric model to ``table`` for ``chip`` (a ChipSpec)."""
    problems = fittable_problems(chip) + table_problems(table, chip)
    if problems:
        raise TableError("the table cannot be fitted for this chip:\n  " + "\n  ".join(problems))
    if per_column and not table.per_column:
        raise UsageError(f"--per-column needs a table with a `column` field; {table.name} has "
                         "one distribution for every column")
    kinds = {k.bits: k for k in conversion_kinds(chip)}
    columns = table.columns if per_column else (None,)
    bins = _bins(table, kinds, columns)
    levels = next(iter(kinds.values())).levels
    start = _start(table, kinds, columns, levels)
    theta = _maximise(bins, start, len(columns), levels)
    dnl = _threshold_offsets(table, kinds, columns, theta, levels)
    n_params = len(theta)
    model_dnl = None
    if dnl.detected and per_column:
        # The noise fitted with ideal thresholds absorbs part of their spread: fit it again
        # with the thresholds where they were found, then the thresholds with that noise (a
        # second round changes the sigmas by less than 0.2 %).
        theta = _gradient_search(bins.with_dnl(_model_dnl(dnl, theta, len(columns), levels)),
                                 theta, len(columns), levels, free=2)
        dnl = _threshold_offsets(table, kinds, columns, theta, levels, dnl.variance_scale)
        model_dnl = _model_dnl(dnl, theta, len(columns), levels)
        bins = bins.with_dnl(model_dnl)
        n_params += dnl.thresholds
    # A table without columns keeps ideal thresholds in the fitted model: its chip cannot
    # express one converter's offsets for every column (see FitResult.adc_dnl).
    sr, snl = abs(theta[0]), abs(theta[1])
    offsets = theta[2:2 + len(columns)]
    gains = theta[2 + len(columns):] / levels
    log_likelihood = float(-_negative_log_likelihood(torch.tensor(theta), bins, len(columns),
                                                     levels))
    g_stat, dof = _g_test(table, kinds, columns, sr, snl, offsets, gains, levels, n_params,
                          model_dnl)
    spreads = _spreads(table, kinds, columns, sr, snl, offsets, gains, levels, model_dnl)
    return FitResult(float(sr), float(snl), tuple(columns), tuple(float(o) for o in offsets),
                     tuple(float(g) for g in gains), dnl, model_dnl, g_stat / max(dof, 1), dof,
                     log_likelihood, table.observations, spreads)


def _model_dnl(dnl: DnlEstimate, theta, n_columns: int, levels: int) -> np.ndarray:
    """Each column's threshold offsets d_0..d_L for its fitted offset and gain."""
    return dnl.offsets(theta[2:2 + n_columns], theta[2 + n_columns:] / levels, levels)


def _threshold_offsets(table, kinds, columns, theta, levels, scale=None) -> DnlEstimate:
    """Each column's threshold offsets given the fitted noise (asimc/silicon/dnl.py; ``scale``
    as there)."""
    sr, snl = abs(theta[0]), abs(theta[1])
    parts = [[] for _ in columns]
    for index, kind, group in _used_groups(table, kinds, columns):
        parts[index].append((kind, group.macs, group.counts,
                             noise_sigma(kind, group.macs, sr, snl, levels)))
    return estimate_dnl(parts, levels, scale)


def _used_groups(table: TransferTable, kinds, columns):
    for group in table.groups:
        if group.bits in kinds:
            index = 0 if columns == (None,) else columns.index(group.column)
            yield index, kinds[group.bits], group


def _bins(table, kinds, columns) -> _Bins:
    kind_list = list(kinds.values())
    col, kind, mac, code, count = [], [], [], [], []
    for index, k, group in _used_groups(table, kinds, columns):
        j, c = np.nonzero(group.counts)
        col.append(np.full(len(j), index))
        kind.append(np.full(len(j), kind_list.index(k)))
        mac.append(group.macs[j])
        code.append(c)
        count.append(group.counts[j, c])
    cat = np.concatenate
    return _Bins(torch.as_tensor(cat(col)), kind_list, torch.as_tensor(cat(kind)),
                 torch.as_tensor(cat(mac), dtype=torch.float64), torch.as_tensor(cat(code)),
                 torch.as_tensor(cat(count), dtype=torch.float64))


def _probabilities(theta: torch.Tensor, bins: _Bins, n_columns: int, levels: int):
    sr, snl = theta[0] / levels, theta[1] / levels
    offset = theta[2:2 + n_columns][bins.column] / levels
    gain = theta[2 + n_columns:][bins.column] / levels
    p = torch.zeros_like(bins.mac)
    for i, kind in enumerate(bins.kind):
        sel = bins.kind_index == i
        p = torch.where(sel, code_probability(kind, bins.mac, bins.code, sr, snl, offset, gain,
                                              bins.shifts), p)
    return p


def _negative_log_likelihood(theta, bins, n_columns, levels) -> torch.Tensor:
    p = _probabilities(theta, bins, n_columns, levels)
    return -(bins.count * torch.log(p.clamp_min(1e-300))).sum()


def _maximise(bins: _Bins, start: np.ndarray, n_columns: int, levels: int) -> np.ndarray:
    x = _polish_columns(_gradient_search(bins, start, n_columns, levels), bins, n_columns,
                        levels)
    return _gradient_search(bins, x, n_columns, levels)


def _gradient_search(bins: _Bins, x: np.ndarray, n_columns: int, levels: int,
                     free: int | None = None) -> np.ndarray:
    """L-BFGS on the first ``free`` parameters (all by default), the others held."""
    scale = float(bins.count.sum())
    free = len(x) if free is None else free
    varied = torch.tensor(x[:free], dtype=torch.float64, requires_grad=True)
    held = torch.tensor(x[free:], dtype=torch.float64)
    optimizer = torch.optim.LBFGS([varied], lr=1.0, max_iter=1000, history_size=20,
                                  tolerance_grad=1e-10, tolerance_change=1e-15,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        theta = torch.cat([varied, held])
        value = _negative_log_likelihood(theta, bins, n_columns, levels) / scale
        value.backward()
        return value

    optimizer.step(closure)
    return np.concatenate([varied.detach().numpy(), x[free:]])


def _polish_columns(theta: np.ndarray, bins: _Bins, n_columns: int,
                    levels: int) -> np.ndarray:
    """Each column's offset and gain by a derivative-free search (the sigmas fixed). The
    likelihood jumps where a clamped value's point mass (the analog value at 0 or at full
    scale, then the column's gain and offset) crosses a code threshold; a gradient search
    stops at such a step, a pattern search steps over it."""
    theta = theta.copy()
    for c in range(n_columns):
        mine = bins.column == c
        if not bool(mine.any()):
            continue
        own = _Bins(torch.zeros(int(mine.sum()), dtype=torch.long), bins.kind,
                    bins.kind_index[mine], bins.mac[mine], bins.code[mine], bins.count[mine])

        def objective(pair):
            trial = torch.tensor([theta[0], theta[1], pair[0], pair[1]], dtype=torch.float64)
            with torch.no_grad():
                return float(_negative_log_likelihood(trial, own, 1, levels))

        pair = _pattern_search(objective, np.array([theta[2 + c], theta[2 + n_columns + c]]))
        theta[2 + c], theta[2 + n_columns + c] = pair
    return theta


def _pattern_search(f, x: np.ndarray, step: float = 0.3, tolerance: float = 1e-4) -> np.ndarray:
    """Compass search: move along an axis while that lowers f, else halve the step."""
    best = f(x)
    while step > tolerance:
        for axis, sign in [(a, s) for a in range(len(x)) for s in (1.0, -1.0)]:
            trial = x.copy()
            trial[axis] += sign * step
            value = f(trial)
            if value < best:
                x, best = trial, value
                break
        else:
            step /= 2
    return x


def _moments(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    codes = np.arange(p.shape[-1])
    total = p.sum(axis=-1)
    mean = (p * codes).sum(axis=-1) / total
    variance = (p * codes ** 2).sum(axis=-1) / total - mean ** 2
    return mean, np.sqrt(np.maximum(variance, 0.0))


def _start(table, kinds, columns, levels) -> np.ndarray:
    """Starting point: offsets and gains from a line through the mean codes (away from the
    clamps), the sigmas from the median spread."""
    xs = [[] for _ in columns]
    ys = [[] for _ in columns]
    inverse_bins, variances = [], []
    for index, kind, group in _used_groups(table, kinds, columns):
        mean, sd = _moments(group.counts.astype(np.float64))
        ideal = group.macs * levels / kind.full_scale
        inside = (mean > 2) & (mean < levels - 2) & (ideal > 2) & (ideal < levels - 2)
        xs[index].append(ideal[inside])
        ys[index].append(mean[inside])
        # sd^2 ~ sr^2 + snl^2 / (M_bin + 1) + 1/12 (the rounding), in LSB^2
        inverse_bins.append(1.0 / (group.macs[inside] / kind.full_scale * kind.rows + 1.0))
        variances.append(sd[inside] ** 2 - 1.0 / 12.0)
    offsets, gains = [], []
    for x, y in zip(xs, ys):
        x, y = np.concatenate(x), np.concatenate(y)
        slope, intercept = np.polyfit(x, y, 1) if len(x) >= 2 and np.ptp(x) > 0 else (1.0, 0.0)
        offsets.append(intercept)
        gains.append((slope - 1.0) * levels)
    x, y = np.concatenate(inverse_bins), np.concatenate(variances)
    if len(x) >= 2 and np.ptp(x) > 0:
        snl2, sr2 = np.polyfit(x, y, 1)
    else:
        snl2, sr2 = 0.0, float(np.mean(y)) if len(y) else 1.0
    return np.array([math.sqrt(max(sr2, 0.01)), math.sqrt(max(snl2, 0.01))] + offsets + gains)


def _fitted(kind: ConversionKind, macs, sr, snl, offset, gain, levels,
            dnl=None) -> np.ndarray:
    codes = torch.arange(levels + 1)[None, :]
    with torch.no_grad():
        return code_probability(kind, torch.as_tensor(macs, dtype=torch.float64)[:, None],
                                codes, sr / levels, snl / levels, offset / levels, gain,
                                threshold_shifts(dnl, codes, levels)).numpy()


def _row(dnl, index):
    return None if dnl is None else dnl[index]


def _g_test(table, kinds, columns, sr, snl, offsets, gains, levels, n_params, dnl=None):
    g_stat, dof = 0.0, -n_params
    for index, kind, group in _used_groups(table, kinds, columns):
        p = _fitted(kind, group.macs, sr, snl, offsets[index], gains[index], levels,
                    _row(dnl, index))
        counts = group.counts.astype(np.float64)
        counts = np.pad(counts, ((0, 0), (0, p.shape[1] - counts.shape[1])))
        n = counts.sum(axis=1, keepdims=True)
        seen = counts > 0
        ratio = np.where(seen, counts / np.maximum(n * p, 1e-300), 1.0)
        g_stat += 2.0 * float((counts * np.log(ratio)).sum())
        dof += int(seen.sum())            # observed codes + "any other code" - 1, per MAC
    return g_stat, dof


def _spreads(table, kinds, columns, sr, snl, offsets, gains, levels,
             dnl=None) -> tuple[MacSpread, ...]:
    rows: dict[tuple[int, int], list] = {}
    for index, kind, group in _used_groups(table, kinds, columns):
        p = _fitted(kind, group.macs, sr, snl, offsets[index], gains[index], levels,
                    _row(dnl, index))
        fitted_mean, fitted_sd = _moments(p)
        measured_mean, measured_sd = _moments(group.counts.astype(np.float64))
        ideal = group.macs * levels / kind.full_scale      # the noiseless analog value, LSB
        for j, mac in enumerate(group.macs):
            rows.setdefault((kind.bits, int(mac)), []).append(
                (int(group.counts[j].sum()), measured_mean[j] - ideal[j],
                 fitted_mean[j] - ideal[j], measured_sd[j] ** 2, fitted_sd[j] ** 2))
    out = []
    for (bits, mac), values in sorted(rows.items()):
        a = np.array(values)
        out.append(MacSpread(bits, mac, int(a[:, 0].sum()), float(a[:, 1].mean()),
                             float(a[:, 2].mean()), math.sqrt(a[:, 3].mean()),
                             math.sqrt(a[:, 4].mean())))
    return tuple(out)


# ---- the fitted chip -------------------------------------------------------------------------

def _sig(x: float) -> str:
    return f"{x:.4g}" if x != 0 else "0"


def fitted_chip_text(result: FitResult, table: TransferTable, base_name: str,
                     extends: str) -> str:
    """A chip that extends the base with the fitted noise (and, per column, the spread of the
    fitted offsets and gains as mismatch sigmas), commented with the fit's quality."""
    lines = [
        f"# Fitted by `asimc chip fit` to {table.name} (sha256 {table.digest[:16]}, "
        f"{result.conversions:,} conversions).",
        f"# Quality: G/dof {result.g_per_dof:.3g} over {result.degrees_of_freedom:,} degrees of "
        "freedom (about 1: the model explains the table",
        "# within sampling error; well above 1: it cannot, e.g. a skewed error or ADC DNL).",
    ]
    offsets, gains = np.array(result.offsets), np.array(result.gains)
    if result.columns == (None,):
        lines.append(f"# One ADC offset {_sig(offsets[0])} lsb and gain {_sig(gains[0] * 100)} % "
                     "for every column (systematic: not written below, the chip")
        lines.append("# language models column offsets and gains as random mismatch).")
        lines += ["# " + line for line in dnl_summary(result)]
        mismatch = ""
    else:
        lines.append(f"# {len(offsets)} column offsets: {_sig(offsets.min())} .. "
                     f"{_sig(offsets.max())} lsb, mean {_sig(offsets.mean())}, sd "
                     f"{_sig(result.offset_sd)}; gains sd {_sig(result.gain_sd * 100)} %.")
        lines += ["# " + line for line in dnl_summary(result)]
        lines.append("# The chip draws new offsets, gains and thresholds with these sigmas per "
                     "seed.")
        mismatch = (f"    mismatch {{ adc_offset {_sig(result.offset_sd)} lsb  adc_gain "
                    f"{_sig(result.gain_sd * 100)}%  adc_dnl {_sig(result.adc_dnl)} lsb }}\n")
    from ..chip.format import quote
    return ("\n".join(lines) + "\n"
            + f"chip {quote(base_name + '-fitted')} extends {quote(extends)} {{\n"
            + f"    noise {{ random {_sig(result.sigma_random)} lsb  nonlinear "
              f"{_sig(result.sigma_nonlinear)} lsb }}\n"
            + mismatch + "}\n")


def dnl_summary(result: FitResult) -> list[str]:
    """What the fit found of the ADC's threshold offsets, in a few lines."""
    dnl = result.dnl
    label = ("ADC thresholds (adc_dnl)" if result.adc_dnl is not None else
             "ADC thresholds of the table's one converter")
    if not dnl.thresholds:
        return [f"{label}: too few identified to estimate their offsets."]
    found = (f"{dnl.sigma:.4g} lsb" if dnl.detected else
             f"not detected (below {dnl.detection_limit:.2g} lsb, the detection limit)")
    lines = [f"{label}: {found}, from {dnl.thresholds:,} thresholds whose "
             f"offsets spread {dnl.measured_sd:.3g} lsb",
             f"  with {dnl.sampling_sd:.3g} lsb (rms) of sampling error"
             + (f" (detection limit {dnl.detection_limit:.2g} lsb)." if dnl.detected else ".")]
    if result.adc_dnl is None:
        lines += ["  Not written as adc_dnl: this fit takes the table as one converter for "
                  "every column, and a table",
                  "  pooled over columns blurs their thresholds into noise (fit a per-column "
                  "table with --per-column)."]
    return lines


def plot_fit(result: FitResult, table: TransferTable, chip, path: str,
             per_column: bool = False) -> None:
    """Measured against fitted: code error and spread per MAC value, and three histograms."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    kinds = {k.bits: k for k in conversion_kinds(chip)}
    bits = min(kinds)
    rows = [s for s in result.spreads if s.bits == bits]
    macs = np.array([s.mac for s in rows])
    fig, (left, right, thresholds) = plt.subplots(1, 3, figsize=(16, 4.8))
    measured = np.array([s.measured_error for s in rows])
    fitted = np.array([s.fitted_error for s in rows])
    # One error bar per MAC value: thin and translucent, or a few hundred of them hide the means.
    left.errorbar(macs, measured, yerr=[s.measured_spread for s in rows], fmt=".", ms=3,
                  elinewidth=0.4, ecolor=(0.12, 0.47, 0.71, 0.35), color="tab:blue",
                  label="measured: mean ± sd")
    spread = np.array([s.fitted_spread for s in rows])
    left.plot(macs, fitted, color="tab:red", lw=1, label="fitted: mean ± sd")
    left.fill_between(macs, fitted - spread, fitted + spread, color="tab:red", alpha=0.2)
    left.set_xlabel(f"MAC value ({bits}-bit conversions)")
    left.set_ylabel("code - M·L/F (LSB)")
    left.set_title(f"code error per MAC value (fit G/dof {result.g_per_dof:.3g})")
    # Below the axes: the bars fill the whole MAC range, so no corner inside is free.
    left.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    kind = kinds[bits]
    group = table.group(bits, result.columns[0] if per_column else
                        (table.columns[0] if table.per_column else None))
    index = 0
    for j in np.unique(np.linspace(0, len(group.macs) - 1, 3).round().astype(int)):
        mac = group.macs[j]
        p = _fitted(kind, [mac], result.sigma_random, result.sigma_nonlinear,
                    result.offsets[index], result.gains[index], kind.levels,
                    _row(result.threshold_offsets, index))[0]
        counts = group.counts[j] / group.counts[j].sum()
        ideal = int(np.rint(mac * kind.levels / kind.full_scale))
        codes = np.flatnonzero((p > 1e-4) | (np.pad(counts, (0, len(p) - len(counts))) > 0))
        line = right.plot(codes - ideal, p[codes], lw=1.2, marker=".", ms=3)[0]
        seen = np.flatnonzero(counts)
        right.bar(seen - ideal, counts[seen], width=0.8, alpha=0.3, color=line.get_color(),
                  label=f"MAC {mac}")
    right.set_xlabel("code - round(M·L/F) (LSB)" + (f", column {group.column}"
                                              if group.column is not None else ""))
    right.set_ylabel("probability")
    right.set_title("measured (bars) and fitted (lines)")
    right.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3)
    _plot_thresholds(thresholds, result)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_thresholds(axes, result: FitResult) -> None:
    """The threshold offsets found, against their sampling error alone and with the fitted
    adc_dnl."""
    dnl = result.dnl
    axes.set_xlabel("threshold offset d_k, estimated (LSB)")
    name = "adc_dnl" if result.adc_dnl is not None else "one converter's offsets, sd"
    axes.set_title("ADC thresholds: " + (f"{name} {dnl.sigma:.3g} lsb" if dnl.detected else
                                         "no DNL detected"))
    if not dnl.thresholds:
        return
    heights = axes.hist(dnl.estimates, bins=60, density=True, color="tab:blue", alpha=0.5,
                        label=f"{dnl.thresholds:,} thresholds")[0]
    x = np.linspace(dnl.estimates.min(), dnl.estimates.max(), 400)
    # The sampling error alone (no DNL), and with the fitted spread when there is one: the
    # y range is the histogram's and the expected curve's, the other may leave it.
    curves = [(dnl.sampling_sd, "sampling error alone", "tab:gray")]
    if dnl.detected:
        curves.append((math.hypot(dnl.sigma, dnl.sampling_sd), "with the fitted spread",
                       "tab:red"))
    for sd, label, color in curves:
        if sd > 0:
            axes.plot(x, np.exp(-0.5 * (x / sd) ** 2) / (sd * math.sqrt(2 * math.pi)),
                      color=color, lw=1.2, label=label)
    expected = 1.0 / (curves[-1][0] * math.sqrt(2 * math.pi)) if curves[-1][0] > 0 else 0.0
    axes.set_ylim(0, 1.2 * max(heights.max(), expected))
    axes.set_ylabel("density")
    axes.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
