"""The kernels' model of one conversion: what code the ADC returns for a MAC value M.

A bit-level conversion of a row tile, weight bit and input cycle sees an integer MAC value M
(0 <= M <= tile rows x (2^e' - 1)) and static context: the tile's ADC range (f x F), the current
domain's compression, the noise sigmas, the ADC levels L. docs/numeric-model.md gives the model:

    m     = clamp(M' / (f F), 0, 1),  M' = M / (1 + alpha M)            (``adc.analog_value``)
    sigma = sqrt(sr^2 + snl^2 / (m f rows + 1))                         (``adc.noise_sigma``)
    code  = round(clamp(m + sigma N(0, 1), 0, 1) L)   (round half to even; ties have measure 0)

so the code's distribution given M is known in closed form:

    P(code <= k) = Phi(((k + 1/2) / L - m) / sigma)   for k < L   (1 for k = L).

Every conversion kind (a distinct context) gets a ``CodeTable`` over M = 0..most, built ONCE
per layer and tile set (``tables``, cached) and shared by every kernel (reference, native C,
torch, Triton); measured transfer tables of a real chip can replace the closed form here
without touching a kernel. A noisy conversion draws its code from ONE uniform 32-bit word w
(a Philox4x32-10 call serves four conversions, see ``problem``):

    code = low[M] + #{j : w > threshold[M, j]}

with ``threshold[M, j] = round(P(code <= low[M] + j) 2^32) - 1`` for the codes whose
cumulative probability rounds strictly between 0 and 2^32: every code's probability is
matched within 2^-33 per threshold, so a code with probability above 2^-32 is drawn with its
probability to within 2^-32, and no tail is cut off beyond that. Padding thresholds are
2^32 - 1 (never exceeded).

The fast kernels find the same code through a guide table (Chen and Asau's method): the top
``GUIDE_BITS`` of w select a cell of [0, 2^32); ``guide[M, cell]`` packs the code every w of
the cell reaches (bits 32..47), the one threshold that may still be crossed inside the cell
(bits 0..31; 2^32 - 1 if none) and, in bit 48, whether the cell holds two or more thresholds
(rare: the far tails), in which case the kernel counts over the thresholds as above. Both give
the same code for every w (a test holds them to it).

Where the analog value is not a function of an integer M (perturbed cells), or the column ADC's
gain and offset act on the noisy value per column, or the ADC is the weight-parallel signed one,
the kernels keep drawing a normal (``rng`` Box-Muller) and use ``analog``/``sigma`` from here.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
import torch

from ..chip.conversions import ConversionPlan
from . import adc

GUIDE_BITS = 8
GUIDE_CELLS = 1 << GUIDE_BITS
GUIDE_SHIFT = 32 - GUIDE_BITS
NEVER = 0xFFFFFFFF                  # a threshold no 32-bit word exceeds
SCAN_FLAG = 1 << 48                 # guide entry: the cell holds two thresholds or more
# Beyond 7 sigma a normal's tail is below 1.3e-12 < 2^-33: such codes round to probability 0.
TAIL_SIGMAS = 7.0


@dataclass(frozen=True)
class ConversionKind:
    """The static context of a conversion (everything but M)."""

    full_scale: float       # f x F as float32 (the range the MAC divides by)
    alpha: float            # current-domain compression (0 on digital levels)
    sigma_random: float     # in units of the range (0 on digital levels and noiseless chips)
    sigma_nonlinear: float
    rows: float             # f x rows: M_bin = m x rows
    levels: int             # L
    transfer: tuple[str, str, int] | None = None   # a measured table: (path, sha256, bits)
    most: int = 0           # the largest M the kind's tiles can produce


@dataclass(frozen=True, eq=False)
class CodeTable:
    """One conversion kind over M = 0..most (row M of every tensor).

    analog:     (M,) float32 m, the noiseless analog value in [0, 1].
    sigma:      (M,) float32 the noise sigma in units of the range (0: noiseless).
    code:       (M,) float32 the noiseless code round(m L).
    low:        (M,) int64 the lowest code a draw can give.
    thresholds: (M, W) int64 in [0, 2^32): code = low + #{j : w > thresholds[j]}.
    guide:      (M, GUIDE_CELLS) int64 packed guide entries (module docstring).
    """

    kind: ConversionKind
    analog: torch.Tensor
    sigma: torch.Tensor
    code: torch.Tensor
    low: torch.Tensor
    thresholds: torch.Tensor
    guide: torch.Tensor


def _noisy(kind: ConversionKind) -> bool:
    """A kind whose codes are drawn: noise, or a measured table."""
    return kind.sigma_random > 0 or kind.sigma_nonlinear > 0 or kind.transfer is not None


def build(kind: ConversionKind) -> CodeTable:
    """The table of one kind: the closed form above, or a measured transfer table's
    distributions (docs/numeric-model.md, section 8b). A per-column table's conversions draw
    from ``ColumnTables`` instead: its kind keeps one unused row (code 0)."""
    table = _read_transfer(kind) if kind.transfer is not None else None
    if table is not None and table.per_column:
        kind, table = ConversionKind(1.0, 0.0, 0.0, 0.0, kind.rows, kind.levels), None
    mac = torch.arange(kind.most + 1, dtype=torch.float32)
    analog = adc.analog_value(mac, kind.full_scale, kind.alpha)
    code = adc.adc_code(analog, kind.levels)
    noisy = _noisy(kind)
    sigma = adc.noise_sigma(analog, kind.sigma_random, kind.sigma_nonlinear, kind.rows) \
        if noisy and kind.transfer is None else torch.zeros_like(analog)
    if table is not None:
        low, thresholds = _cut(*_measured_cdf(kind, table), kind.levels)
    elif noisy:
        low, thresholds = _thresholds(*_exact_parameters(kind), kind.levels)
    else:
        low, thresholds = code.to(torch.int64).numpy(), np.zeros((kind.most + 1, 0), np.int64)
    return CodeTable(kind, analog, sigma, code, torch.from_numpy(low),
                     torch.from_numpy(thresholds), torch.from_numpy(_guide(low, thresholds)))


def _exact_parameters(kind: ConversionKind) -> tuple[np.ndarray, np.ndarray]:
    """m and sigma of every M in float64: the thresholds follow the model itself, not the
    float32 steps of a normal draw (whose rounding alone would move a code's probability by
    about 1e-8, far above 2^-32)."""
    mac = np.arange(kind.most + 1, dtype=np.float64)
    m = np.clip(mac / (1.0 + kind.alpha * mac) / kind.full_scale, 0.0, 1.0)
    sigma = np.sqrt(kind.sigma_random ** 2 + kind.sigma_nonlinear ** 2 / (m * kind.rows + 1.0))
    return m, sigma


def _thresholds(m: np.ndarray, sigma: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """(low, thresholds) of every M from P(code <= k) = Phi(((k + 1/2)/L - m) / sigma)."""
    spread = TAIL_SIGMAS * sigma * levels
    first = np.clip(np.floor(m * levels - spread) - 1, 0, levels).astype(np.int64)
    last = np.clip(np.ceil(m * levels + spread) + 1, 0, levels).astype(np.int64)
    width = int((last - first).max()) + 1
    k = first[:, None] + np.arange(width)[None, :]                      # candidate codes
    inside = k < levels                                                 # P(code <= L) = 1
    z = ((k + 0.5) / levels - m[:, None]) / sigma[:, None]
    cdf = np.where(inside, torch.special.ndtr(torch.from_numpy(z)).numpy(), 1.0)
    return _cut(cdf, first, levels)


def _read_transfer(kind: ConversionKind):
    """The measured table of a kind (``silicon.table.TransferTable``), as the chip pinned it."""
    from ..errors import UsageError
    from ..silicon.table import read_table
    path, digest, _ = kind.transfer
    table = read_table(path)
    if digest and table.digest != digest:
        raise UsageError(f"the transfer table {path} has changed since the chip was loaded "
                         "(its SHA-256 differs): load the chip again")
    return table


def _measured_cdf(kind: ConversionKind, table) -> tuple[np.ndarray, np.ndarray]:
    """P(code <= k) for every M of a measured kind (codes 0..L) and the first code (0)."""
    p = table.distributions(kind.transfer[2], int(round(kind.rows)), kind.levels)
    p = p[:kind.most + 1]
    return np.cumsum(p, axis=1), np.zeros(len(p), np.int64)


def _cut(cdf: np.ndarray, first: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """(low, thresholds) from P(code <= first + j) (column j; 1 from code L on)."""
    k = first[:, None] + np.arange(cdf.shape[1])[None, :]
    inside = k < levels                                                 # P(code <= L) = 1
    scaled = np.where(inside, np.rint(cdf * 2.0 ** 32), 2.0 ** 32).astype(np.int64)
    # Codes below the first positive cumulative threshold, and from the first that reaches
    # 2^32 on, have probability 0 as drawn.
    positive = scaled > 0
    low = first + np.argmax(positive, axis=1)
    low = np.where(positive.any(axis=1), low, levels)
    crossing = (scaled > 0) & (scaled < 2 ** 32)
    count = crossing.sum(axis=1)
    out = np.full((len(cdf), max(1, int(count.max()))), NEVER, np.int64)
    rows, cols = np.nonzero(crossing)
    order = cols - (low - first)[rows]                                  # 0.. within each row
    out[rows, order] = scaled[rows, cols] - 1
    return low, out


def _guide(low: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """The guide entries of every (M, cell)."""
    start = torch.arange(GUIDE_CELLS, dtype=torch.int64) << GUIDE_SHIFT  # a cell's first word
    end = start + (1 << GUIDE_SHIFT) - 1                                 # and its last
    sorted_thresholds = torch.from_numpy(thresholds).contiguous()
    rows = len(low)
    # Thresholds every word of the cell exceeds (< start), and those only some exceed.
    passed = torch.searchsorted(sorted_thresholds, start.expand(rows, -1).contiguous())
    inside = torch.searchsorted(sorted_thresholds, end.expand(rows, -1).contiguous()) - passed
    padded = torch.cat([sorted_thresholds, torch.full((rows, 1), NEVER, dtype=torch.int64)], 1)
    next_threshold = torch.gather(padded, 1, passed)
    code = torch.from_numpy(low).unsqueeze(1) + passed
    flag = torch.where(inside >= 2, SCAN_FLAG, 0)
    return (next_threshold | (code << 32) | flag).numpy()


def draw(table: "FlatTables", row: torch.Tensor, word: torch.Tensor) -> torch.Tensor:
    """The definition: code = low + #{j : w > threshold[j]} for table rows ``row`` (int64)
    and words ``word`` (int64 in [0, 2^32)); float32 codes."""
    above = word.unsqueeze(-1) > table.thresholds[row]
    return (table.low[row] + above.sum(dim=-1)).to(torch.float32)


def draw_guided(table: "FlatTables", row: torch.Tensor, word: torch.Tensor) -> torch.Tensor:
    """The same codes through the guide table: one look-up and one comparison per word, the
    count over the thresholds only where the cell is flagged."""
    entry = table.guide.view(-1)[row * GUIDE_CELLS + (word >> GUIDE_SHIFT)]
    code = ((entry >> 32) & 0xFFFF) + (word > (entry & NEVER)).to(torch.int64)
    flagged = (entry & SCAN_FLAG) != 0
    if bool(flagged.any()):
        code[flagged] = draw(table, row[flagged], word[flagged]).to(torch.int64)
    return code.to(torch.float32)


class _Tensors:
    """A frozen dataclass of tensors (their names in ``TENSORS``): their size, and copies on
    other devices (made once per device)."""

    TENSORS: tuple[str, ...] = ()

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, name).numel() * getattr(self, name).element_size()
                   for name in self.TENSORS)

    def to(self, device: torch.device):
        """These tables on ``device``."""
        device = torch.device(device)
        if device.type == "cpu":
            return self
        if device not in self._devices:
            self._devices[device] = replace(
                self, _devices={}, **self._moved(device),
                **{name: getattr(self, name).to(device) for name in self.TENSORS})
        return self._devices[device]

    def _moved(self, device: torch.device) -> dict:
        return {}


@dataclass(frozen=True, eq=False)
class ColumnTables(_Tensors):
    """A transfer table with one distribution per physical column (docs/numeric-model.md,
    section 8b), as the kernels draw from it. The rule for MAC values that were not measured is
    a draw, a shift and a clamp: the conversion of M in physical column p draws D* from the
    measured distribution of (p, M*), M* the nearest measured MAC value, and reads
    ``clamp(D* + round(M L / F) - round(M* L / F), 0, L)``, so only MEASURED distributions
    become table rows, and without a guide: low and thresholds as in ``CodeTable``, drawn by
    counting the thresholds below the word (``draw``), a few per row (the codes a column was
    seen to read), so that the tables are in proportion to the measured table and stay in
    cache; per (M, p) an int32 ``source`` row and ``shift`` say which and how far. The
    input-bit widths e' lie one after the other in ``source``/``shift``: entry
    ``start[e'] + M * physical + p``. Built once per table content, bit widths, rows, ADC
    levels and columns (``column_tables``), shared by every layer."""

    physical: int                   # physical columns P (the map's stride per MAC value)
    levels: int                     # L (codes are clamped to 0..L)
    start: tuple[tuple[int, int], ...]   # (e', the first map entry of its M = 0)
    low: torch.Tensor               # (D,) int64 per measured distribution
    thresholds: torch.Tensor        # (D, W) int64
    source: torch.Tensor            # (sum of (F_e' + 1) P,) int32: a row of the above
    shift: torch.Tensor             # (same,) int32: ideal code of M minus that of M*
    _devices: dict = field(default_factory=dict, repr=False)

    TENSORS = ("low", "thresholds", "source", "shift")

    def map_start(self, bits: int) -> int:
        return dict(self.start)[bits]


_COLUMN_TABLES: dict[tuple, ColumnTables] = {}
_COLUMN_TABLES_KEPT = 4


def column_tables(table, bits: tuple[int, ...], rows: int, levels: int,
                  physical: int) -> ColumnTables:
    """The ``ColumnTables`` of a per-column ``TransferTable`` (cached by its content)."""
    key = (table.digest, bits, rows, levels, physical)
    if key not in _COLUMN_TABLES:
        if len(_COLUMN_TABLES) >= _COLUMN_TABLES_KEPT:
            _COLUMN_TABLES.pop(next(iter(_COLUMN_TABLES)))
        _COLUMN_TABLES[key] = _build_column_tables(table, bits, rows, levels, physical)
    return _COLUMN_TABLES[key]


def _build_column_tables(table, bits: tuple[int, ...], rows: int, levels: int,
                         physical: int) -> ColumnTables:
    from ..silicon.table import TableError, ideal_codes, nearest_measured
    cuts, sources, shifts, start = [], [], [], []
    distributions = entries = 0
    for b in bits:
        full_scale = ((1 << b) - 1) * rows
        macs = np.arange(full_scale + 1)
        ideal = ideal_codes(macs, full_scale, levels)
        source = np.empty((full_scale + 1, physical), np.int64)
        shift = np.empty((full_scale + 1, physical), np.int64)
        for p in range(physical):          # one column at a time: small temporaries
            group = table.group(b, p)
            if group is None:
                raise TableError(f"{table.name}: no data for {b}-bit conversions of column {p}")
            nearest = nearest_measured(group.macs, macs)
            source[:, p] = distributions + nearest
            shift[:, p] = ideal - ideal_codes(group.macs, full_scale, levels)[nearest]
            cdf = np.cumsum(group.counts / group.counts.sum(axis=1, keepdims=True), axis=1)
            cuts.append(_cut(cdf, np.zeros(len(cdf), np.int64), levels))
            distributions += len(group.macs)
        start.append((b, entries))
        entries += source.size
        sources.append(source.reshape(-1))
        shifts.append(shift.reshape(-1))
    width = max(thresholds.shape[1] for _, thresholds in cuts)
    thresholds = np.concatenate([np.pad(t, ((0, 0), (0, width - t.shape[1])),
                                        constant_values=NEVER) for _, t in cuts])
    return ColumnTables(physical, levels, tuple(start),
                        torch.from_numpy(np.concatenate([low for low, _ in cuts])),
                        torch.from_numpy(thresholds),
                        torch.from_numpy(np.concatenate(sources).astype(np.int32)),
                        torch.from_numpy(np.concatenate(shifts).astype(np.int32)))


def physical_columns(weight_bits: int, array_columns: int, columns: torch.Tensor
                     ) -> torch.Tensor:
    """(bw, N) int64: weight bit i of output channel n sits in physical column
    ``(n mod floor(cols / bw)) * bw + i`` (docs/numeric-model.md, section 8b)."""
    channels = array_columns // weight_bits
    bit = torch.arange(weight_bits, dtype=torch.int64, device=columns.device).unsqueeze(1)
    return (columns.unsqueeze(0) % channels) * weight_bits + bit


def draw_measured(columns: ColumnTables, entry: torch.Tensor, word: torch.Tensor
                  ) -> torch.Tensor:
    """The codes of per-column conversions at map entries ``entry`` (int64: start + M P + p)
    with words ``word``: D* from the measured row (``draw``), shifted, clamped to 0..L;
    float32."""
    drawn = draw(columns, columns.source[entry].to(torch.int64), word).to(torch.int64)
    return (drawn + columns.shift[entry]).clamp(0, columns.levels).to(torch.float32)


@dataclass(frozen=True, eq=False)
class FlatTables(_Tensors):
    """Every kind's table of one layer, stacked: kind q's row for M is ``start[q] + M``; the
    conversions of tile t and pair p (= c * bw + i, ``ConversionPlan.pairs``) are of kind
    ``kind_of[t][p]``, so their row is ``base[t][p] + M``."""

    kinds: tuple[ConversionKind, ...]
    kind_of: tuple[tuple[int, ...], ...]
    start: tuple[int, ...]
    analog: torch.Tensor            # (rows,) float32
    sigma: torch.Tensor             # (rows,) float32
    code: torch.Tensor              # (rows,) float32
    low: torch.Tensor               # (rows,) int64
    thresholds: torch.Tensor        # (rows, W) int64, padded with NEVER
    guide: torch.Tensor             # (rows, GUIDE_CELLS) int64
    # A per-column transfer table: its draws, and per (tile, pair) the map start of the
    # pair's input-bit width, or -1 for a pair that draws from the rows above.
    columns: ColumnTables | None = None
    column_map: tuple[tuple[int, ...], ...] = ()
    _devices: dict = field(default_factory=dict, repr=False)

    @property
    def base(self) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(self.start[q] for q in row) for row in self.kind_of)

    TENSORS = ("analog", "sigma", "code", "low", "thresholds", "guide")

    @property
    def nbytes(self) -> int:
        return super().nbytes + (self.columns.nbytes if self.columns is not None else 0)

    def _moved(self, device: torch.device) -> dict:
        return {} if self.columns is None else {"columns": self.columns.to(device)}


def kinds_of(plan: ConversionPlan, tile_rows: tuple[int, ...], noisy: bool
             ) -> tuple[tuple[ConversionKind, ...], tuple[tuple[int, ...], ...]]:
    """The distinct kinds of a layer and the kind of each (tile, pair): the ONE place where a
    conversion's range, compression and noise sigmas are decided (``plan.noise_sigmas``)."""
    keys: dict[tuple, int] = {}
    most: dict[tuple, int] = {}
    kind_keys = []
    for rows_t in tile_rows:
        fraction = plan.range_fraction(rows_t)
        sigma_random, sigma_nonlinear = plan.noise_sigmas(fraction) if noisy else (0.0, 0.0)
        row = []
        for c, i in plan.pairs:
            digital = plan.is_digital(i, c)
            transfer = (plan.chip.adc.transfer, plan.chip.adc.transfer_sha256, c.bits) \
                if plan.chip.adc.transfer and noisy and not digital else None
            key = (plan.ranged_full_scale(plan.full_scale(c), fraction),
                   0.0 if digital else plan.alpha,
                   0.0 if digital else sigma_random,
                   0.0 if digital else sigma_nonlinear,
                   float(np.float32(plan.rows * fraction)), plan.adc_levels, transfer)
            keys.setdefault(key, len(keys))
            most[key] = max(most.get(key, 0), rows_t * c.max_group_value)
            row.append(keys[key])
        kind_keys.append(tuple(row))
    kinds = tuple(ConversionKind(*key, most=most[key]) for key in keys)
    return kinds, tuple(kind_keys)


@lru_cache(maxsize=64)
def _tables(plan: ConversionPlan, tile_rows: tuple[int, ...], noisy: bool) -> FlatTables:
    kinds, kind_of = kinds_of(plan, tile_rows, noisy)
    built = [build(k) for k in kinds]
    start = tuple(int(s) for s in np.cumsum([0] + [len(t.low) for t in built])[:-1])
    width = max(t.thresholds.shape[1] for t in built)
    thresholds = torch.cat([torch.nn.functional.pad(t.thresholds,
                                                    (0, width - t.thresholds.shape[1]),
                                                    value=NEVER) for t in built])
    return FlatTables(kinds, kind_of, start,
                      *(torch.cat([getattr(t, name) for t in built])
                        for name in ("analog", "sigma", "code", "low")),
                      thresholds, torch.cat([t.guide for t in built]),
                      *_per_column(plan, kinds, kind_of))


def _per_column(plan: ConversionPlan, kinds: tuple[ConversionKind, ...],
                kind_of: tuple[tuple[int, ...], ...]) -> tuple:
    """(ColumnTables, column_map) of a layer whose kinds draw from a per-column table, else
    (None, ())."""
    measured = [k for k in kinds if k.transfer is not None]
    table = _read_transfer(measured[0]) if measured else None
    if table is None or not table.per_column:
        return None, ()
    bits = tuple(sorted({k.transfer[2] for k in measured}))
    columns = column_tables(table, bits, plan.rows, plan.adc_levels, plan.chip.array.cols)
    map_of = [columns.map_start(k.transfer[2]) if k.transfer is not None else -1
              for k in kinds]
    return columns, tuple(tuple(map_of[q] for q in row) for row in kind_of)


def tables(problem) -> FlatTables:
    """The layer's tables (built once per chip, tile shape and noise: cached), on the
    problem's device."""
    rows = tuple(k1 - k0 for k0, k1 in problem.tiles)
    return _tables(problem.plan, rows, problem.noise is not None).to(problem.x.device)
