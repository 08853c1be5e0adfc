"""Kernel benchmark: the fast bit-level kernel against the reference kernel and plain matmuls.

    python benchmarks/bench_kernels.py [--quick] [--device cpu|cuda] [--json OUT]
                                       [--shapes NAME ...] [--memory-budget 1G]
                                       [--repeats 3] [--threads N] [--skip-reference]
                                       [--profile]

The chip is the ASiM reference chip (chips/asim-bitserial-255.acim: W8A8 bit-serial, 255 rows,
8-bit ADC) with 1 LSB of random noise, so every conversion goes through the noisy ADC path.
The shapes (``--shapes``, default all) are the 3x3 conv layers of a CIFAR ResNet-18 at batch 64
and one ViT-B MLP layer at batch 8, as the (R x K) x (K x N) integer products the executor
hands to the kernels:

    conv64   64 ch @ 32x32   R = 64*32*32, K = 9*64,  N = 64,   unsigned inputs
    conv128 128 ch @ 16x16   R = 64*16*16, K = 9*128, N = 128,  unsigned inputs
    conv256 256 ch @ 8x8     R = 64*8*8,   K = 9*256, N = 256,  unsigned inputs
    conv512 512 ch @ 4x4     R = 64*4*4,   K = 9*512, N = 512,  unsigned inputs
    vit_mlp 768 -> 3072      R = 8*197,    K = 768,   N = 3072, SIGNED inputs

Conv layers use the chip's channel mapping (``row_tiles(K, 255, kernel_area=9)``: 28 whole input
channels, 252 rows, per tile); the MLP layer flat tiles of 255 rows. ``--quick`` uses batch 8 for
the conv layers and batch 1 for the MLP layer.

Each shape is measured in a fresh Python process (so that peak memory is its own):

* fast:      ``asimc.kernels.fast.run`` - one warm-up call, then the median of ``--repeats``
             calls (at least 3).
* peak:      the fast kernel's peak memory during the warm-up call, with the operands already
             allocated: ``ru_maxrss`` after minus before (CPU), ``max_memory_allocated`` minus
             the memory allocated before (CUDA). Compared with ``--memory-budget``.
* reference: ``asimc.kernels.reference.run``, one call; ``same`` says whether its output is
             bit-identical to the fast kernel's (it must be: both draw the same random numbers);
             the JSON has the number of differing outputs.
* matmul:    the same binary work as plain fp32 matrix products: for each row tile, one
             ``torch.matmul`` of a (C*R) x Kt matrix of 0/1 with a Kt x (bw*N) matrix of 0/1
             (C = 8 input cycles, bw = 8 weight bits); median of ``--repeats`` after a warm-up.
             GFLOP/s = 2*C*R*K*bw*N / time.

``--threads N`` sets torch's thread count (which the native conversion step also uses) in every
measuring process; the default is torch's own (one per core). On a machine shared with other
busy processes, ``--threads 1`` gives far steadier numbers: a thread pool whose threads wait for
a core that another process holds turns every small parallel op into a scheduler time slice.

Targets: reference/fast >= 5 on every shape (issue 4); fast/matmul <= 0.4 (issue 8) and <= 1 ns
per noisy conversion per core (issue 17; ``--five-layers`` runs issue 8's layers and noise);
peak <= budget.
``--profile`` runs ``torch.profiler`` over one fast call of each shape and prints the top ops.
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
CHIP_FILE = REPO / "chips" / "asim-bitserial-255.acim"
RESULT_MARK = "BENCH-RESULT "


@dataclass(frozen=True)
class Shape:
    name: str
    description: str
    batch: int            # full run
    quick_batch: int      # --quick
    positions: int        # output pixels (conv) or tokens (MLP) per sample
    k: int
    n: int
    signed: bool
    kernel_area: int      # 9 for a 3x3 conv (channel-mapped row tiles), 1 for flat tiles


def conv_shape(channels: int, side: int) -> Shape:
    return Shape(f"conv{channels}", f"3x3 conv {channels} ch @ {side}x{side}", 64, 8,
                 side * side, 9 * channels, channels, False, 9)


SHAPES = {s.name: s for s in [
    conv_shape(64, 32), conv_shape(128, 16), conv_shape(256, 8), conv_shape(512, 4),
    Shape("vit_mlp", "ViT-B MLP 768->3072, 197 tokens", 8, 1, 197, 768, 3072, True, 1),
]}


NOISES = {"1lsb": ("noise random 1 lsb", ((1, "lsb"), (0, "%"))),
          "asim": ("noise random 0.4 % + nonlinear 0.4 %", ((0.4, "%"), (0.4, "%")))}


def benchmark_chip(signed: bool, noise: str = "1lsb", chip_file: str | None = None):
    """The reference chip with the chosen noise, or ``chip_file`` as written (its noise,
    mismatch, transfer table); signed inputs where the shape asks."""
    import asimc
    from asimc.chip.spec import NoiseSpec, Quantity
    if chip_file:
        chip = asimc.load_chip(chip_file)
    else:
        chip = asimc.load_chip(CHIP_FILE)
        (random, nonlinear) = NOISES[noise][1]
        chip = replace(chip, noise=NoiseSpec(Quantity(*random), Quantity(*nonlinear)))
    if signed:
        chip = replace(chip, input=replace(chip.input, signed=True))
    return chip


# ------------------------------------------------------------------------------------------
# Machine description
# ------------------------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str:
    """HEAD of the repository, with ``+dirty`` when asimc/ has uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True,
                              capture_output=True, timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "asimc"], cwd=REPO,
                               text=True, capture_output=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + ("+dirty" if dirty else "")


def fast_backend(device: str) -> str:
    """Which implementation the fast kernel's conversion step uses (``native`` C or
    ``torch``), where the kernel says so."""
    from asimc.kernels import fast
    return fast.backend(device) if hasattr(fast, "backend") else "torch"


def simd_level() -> str:
    from asimc.kernels import native
    return native.simd_level()


def generator_ns_per_word(count: int = 4_000_000, chunk: int = 1 << 14) -> float | None:
    """The native Philox4x32-10 alone: ns per 32-bit word (one per noisy conversion, four per
    counter), one thread, in chunks of ``chunk`` counters whose results stay in cache (as in
    the kernel, which draws 32 columns at a time): memory traffic of a long output is not the
    generator's."""
    from asimc.kernels import native
    if not native.available():
        return None
    counters = torch.arange(chunk, dtype=torch.int64)
    out = torch.empty(chunk, 4, dtype=torch.int32)
    draw = native.library().asimc_random_words      # the C entry point: no tensor copies
    calls = max(1, count // 4 // chunk)
    times = []
    for _ in range(3):
        start = time.process_time()             # CPU time: steady on a shared machine
        for k in range(calls):
            draw(k, counters.data_ptr(), chunk, out.data_ptr())
        times.append(time.process_time() - start)
    return statistics.median(times) / (calls * chunk * 4) * 1e9


def machine_info(device: str) -> dict:
    info = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": device,
        "device_name": cpu_model(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "commit": git_commit(),
        "fast_backend": fast_backend(device),
        "simd": simd_level(),
        "generator_ns_per_word": generator_ns_per_word() if device == "cpu" else None,
    }
    if device == "cuda":
        info["device_name"] = torch.cuda.get_device_name()
    return info


# ------------------------------------------------------------------------------------------
# One shape, measured in a child process
# ------------------------------------------------------------------------------------------

def build_problem(shape: Shape, batch: int, device: torch.device, seed: int = 0,
                  noise: str = "1lsb", chip_file: str | None = None):
    """The AcimProblem of one shape: random operands in range, noise keys like the executor's."""
    from asimc.chip.conversions import ConversionPlan
    from asimc.kernels import rng
    from asimc.kernels.mismatch import static_mismatch
    from asimc.kernels.problem import AcimProblem, NoiseKeys
    from asimc.passes.tile import row_tiles
    from asimc.runtime.batch import BatchLayout
    from asimc.runtime.samples import SampleKeys, row_noise_keys

    chip = benchmark_chip(shape.signed, noise, chip_file)
    plan = ConversionPlan(chip)
    rows, k, n = batch * shape.positions, shape.k, shape.n
    gen = torch.Generator().manual_seed(seed)
    bx, bw = chip.input.bits, chip.weight.bits
    # Generated directly as float32 so that no bigger temporary raises the peak RSS early.
    if shape.signed:
        top = (1 << (bx - 1)) - 1
        x = torch.randint(-top, top + 1, (1, rows, k), generator=gen, dtype=torch.float32)
    else:
        x = torch.randint(0, 1 << bx, (1, rows, k), generator=gen, dtype=torch.float32)
    top_w = (1 << (bw - 1)) - 1
    w = torch.randint(-top_w, top_w + 1, (1, k, n), generator=gen, dtype=torch.float32)
    tiles, _ = row_tiles(k, chip.array.rows, kernel_area=shape.kernel_area,
                         mapping=chip.array.mapping)

    # Noise keys as asimc.runtime.executor builds them: one stream per sample, each row's
    # offset is the output element index (within its sample) of its column 0.
    sample_keys = SampleKeys(tuple(int(v) for v in torch.randint(
        -2 ** 62, 2 ** 62, (batch,), generator=gen)), whole_batch=12345)
    row = torch.arange(rows)
    if shape.kernel_area > 1:      # conv output (batch, N, positions); row = (sample, pixel)
        out_shape = (batch, n, shape.positions)
        b, p = row // shape.positions, row % shape.positions
        first, col_stride = b * n * shape.positions + p, shape.positions
    else:                          # matmul output (batch, tokens, N); row = (sample, token)
        out_shape = (batch, shape.positions, n)
        first, col_stride = row * n, 1
    layer_key = rng.name_key(f"bench/{shape.name}")
    stream, offset, elements = row_noise_keys(
        out_shape, BatchLayout(0), first, col_stride, n, sample_keys, seed, layer_key)
    noise = NoiseKeys(stream.view(1, rows).to(device), offset.view(1, rows).to(device),
                      col_stride, elements) if plan.has_noise else None
    mismatch = static_mismatch(plan, seed, layer_key, tiles, k, n, device)
    problem = AcimProblem(x.to(device), w.to(device), plan, tiles, noise, mismatch.cells,
                          mismatch.gain, mismatch.offset, mismatch.drivers, mismatch.thresholds)
    return problem


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: torch.device):
    sync(device)
    start = time.perf_counter()
    result = fn()
    sync(device)
    return time.perf_counter() - start, result


def maxrss_bytes() -> int:
    # Linux reports ru_maxrss in KiB (macOS in bytes).
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def current_rss_bytes() -> int:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def matmul_baseline(problem, repeats: int, device: torch.device) -> tuple[list[float], int]:
    """Per row tile one fp32 (C*R) x Kt @ Kt x (bw*N) product of 0/1 matrices; (times, flops)."""
    plan = problem.plan
    cycles, bw = len(plan.cycles), plan.weight_bits
    rows, n = problem.x.shape[1], problem.w.shape[-1]
    k = problem.x.shape[2]
    gen = torch.Generator().manual_seed(1)
    left = [torch.randint(0, 2, (cycles * rows, k1 - k0), generator=gen,
                          dtype=torch.float32).to(device) for k0, k1 in problem.tiles]
    right = torch.randint(0, 2, (k, bw * n), generator=gen, dtype=torch.float32).to(device)
    out = torch.empty(cycles * rows, bw * n, dtype=torch.float32, device=device)

    def all_tiles():
        for a, (k0, k1) in zip(left, problem.tiles):
            torch.matmul(a, right[k0:k1], out=out)

    all_tiles()                                                   # warm-up
    times = [timed(all_tiles, device)[0] for _ in range(repeats)]
    flops = 2 * cycles * rows * k * bw * n
    return times, flops


def measure_shape(shape: Shape, batch: int, device: torch.device, memory_budget: int,
                  repeats: int, skip_reference: bool, profile: bool,
                  noise: str = "1lsb", chip_file: str | None = None) -> dict:
    from asimc.kernels import fast, reference

    problem = build_problem(shape, batch, device, noise=noise, chip_file=chip_file)
    plan = problem.plan
    rows = problem.x.shape[1]
    conversions = plan.conversions_per_tile_column * len(problem.tiles) * rows * shape.n
    result = {
        "shape": shape.name, "description": shape.description, "batch": batch,
        "rows": rows, "k": shape.k, "n": shape.n, "signed_inputs": shape.signed,
        "row_tiles": len(problem.tiles), "tile_rows": [k1 - k0 for k0, k1 in problem.tiles],
        "input_cycles": len(plan.cycles), "weight_bits": plan.weight_bits,
        "conversions": conversions, "memory_budget_bytes": memory_budget,
        "threads": torch.get_num_threads(), "commit": git_commit(),
        "fast_backend": fast_backend(device.type),
    }

    # Warm-up call of the fast kernel, which also gives its peak memory.
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        first_time, fast_out = timed(lambda: fast.run(problem, memory_budget), device)
        peak = torch.cuda.max_memory_allocated() - before
        result["peak_method"] = "torch.cuda.max_memory_allocated - memory_allocated before"
    else:
        result["rss_before_bytes"] = current_rss_bytes()
        before = maxrss_bytes()
        result["maxrss_before_bytes"] = before
        first_time, fast_out = timed(lambda: fast.run(problem, memory_budget), device)
        peak = maxrss_bytes() - before
        result["peak_method"] = "ru_maxrss after - before (operands already allocated)"
    result["fast_first_call_s"] = first_time
    result["peak_bytes"] = peak

    fast_times, cpu_times = [], []
    for _ in range(repeats):
        cpu_before = time.process_time()
        elapsed, fast_out = timed(lambda: fast.run(problem, memory_budget), device)
        cpu_times.append(time.process_time() - cpu_before)
        fast_times.append(elapsed)
    result["fast_times_s"] = fast_times
    result["fast_s"] = statistics.median(fast_times)
    result["fast_ns_per_conversion"] = result["fast_s"] / conversions * 1e9
    # Per core: the CPU time (all threads) a conversion costs; on a shared machine this is
    # steadier than wall time x threads, which counts the time slices other processes take.
    result["fast_cpu_s"] = statistics.median(cpu_times)
    result["fast_ns_per_conversion_per_core"] = result["fast_cpu_s"] / conversions * 1e9

    if profile:
        result["profile"] = profile_fast(problem, memory_budget, device)

    if not skip_reference:
        ref_time, ref_out = timed(lambda: reference.run(problem), device)
        result["reference_s"] = ref_time
        result["reference_over_fast"] = ref_time / result["fast_s"]
        differ = ref_out != fast_out
        result["identical"] = not bool(differ.any())
        result["differing_outputs"] = int(differ.sum())
        result["max_abs_difference"] = float((ref_out - fast_out).abs().max())
        del ref_out
    del fast_out

    times, flops = matmul_baseline(problem, repeats, device)
    result["matmul_times_s"] = times
    result["matmul_s"] = statistics.median(times)
    result["matmul_flops"] = flops
    result["gflops"] = flops / result["matmul_s"] / 1e9
    result["fast_over_matmul"] = result["fast_s"] / result["matmul_s"]
    return result


def profile_fast(problem, memory_budget: int, device: torch.device) -> str:
    from torch.profiler import ProfilerActivity, profile

    from asimc.kernels import fast
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        fast.run(problem, memory_budget)
        sync(device)
        wall = time.perf_counter() - start
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    averages = prof.key_averages()
    text = averages.table(sort_by=key, row_limit=20)
    if device.type == "cpu":
        # The profiler sees torch ops only; a native (ctypes) step shows up as the remainder.
        aten = sum(e.self_cpu_time_total for e in averages) / 1e6
        text += (f"\nwall {wall:.3f} s; torch ops {aten:.3f} s; the rest (native code "
                 f"called from Python, Python itself) {wall - aten:.3f} s")
    return text


def child_main(args) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    shape = SHAPES[args.child]
    result = measure_shape(shape, args.batch, device, args.memory_budget_bytes, args.repeats,
                           args.skip_reference, args.profile, args.noise, args.chip)
    print(RESULT_MARK + json.dumps(result), flush=True)


# ------------------------------------------------------------------------------------------
# The parent: one child per shape, then the table
# ------------------------------------------------------------------------------------------

def run_child(shape: Shape, batch: int, args) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", shape.name,
               "--batch", str(batch), "--device", args.device,
               "--memory-budget", str(args.memory_budget_bytes), "--repeats", str(args.repeats),
               "--noise", args.noise]
    if args.chip:
        command += ["--chip", args.chip]
    env = dict(os.environ)
    if args.threads:
        command += ["--threads", str(args.threads)]
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
    if args.skip_reference:
        command.append("--skip-reference")
    if args.profile:
        command.append("--profile")
    start = time.perf_counter()
    proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env)
    wall = time.perf_counter() - start
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            result = json.loads(line[len(RESULT_MARK):])
            result["process_wall_s"] = wall
            return result
    return {"shape": shape.name, "description": shape.description, "batch": batch,
            "error": f"exit status {proc.returncode}: {proc.stderr.strip()[-2000:]}",
            "process_wall_s": wall}


def fmt(value, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


COLUMNS = [
    # header, width, how to get the cell from a result
    ("shape", 8, lambda r: r["shape"]),
    ("batch", 5, lambda r: str(r["batch"])),
    ("R", 6, lambda r: str(r.get("rows", "-"))),
    ("K", 5, lambda r: str(r.get("k", "-"))),
    ("N", 5, lambda r: str(r.get("n", "-"))),
    ("tiles", 5, lambda r: str(r.get("row_tiles", "-"))),
    ("conv(M)", 8, lambda r: fmt(r.get("conversions") and r["conversions"] / 1e6, ".1f")),
    ("fast s", 8, lambda r: fmt(r.get("fast_s"), ".3f")),
    ("ns/conv", 7, lambda r: fmt(r.get("fast_ns_per_conversion"), ".1f")),
    ("cpu ns/conv", 11, lambda r: fmt(r.get("fast_ns_per_conversion_per_core"), ".1f")),
    ("ref s", 8, lambda r: fmt(r.get("reference_s"), ".2f")),
    ("ref/fast", 8, lambda r: fmt(r.get("reference_over_fast"), ".2f")),
    ("same", 4, lambda r: {True: "yes", False: "NO"}.get(r.get("identical"), "-")),
    ("matmul s", 8, lambda r: fmt(r.get("matmul_s"), ".3f")),
    ("fast/mm", 7, lambda r: fmt(r.get("fast_over_matmul"), ".1f")),
    ("GFLOP/s", 7, lambda r: fmt(r.get("gflops"), ".1f")),
    ("peak MB", 8, lambda r: fmt(r.get("peak_bytes") and r["peak_bytes"] / 2 ** 20, ".0f")),
    ("budget", 7, lambda r: fmt(r.get("memory_budget_bytes") and
                                r["memory_budget_bytes"] / 2 ** 20, ".0f")),
]


def table(results: list[dict]) -> str:
    lines = ["  ".join(h.rjust(w) for h, w, _ in COLUMNS)]
    for r in results:
        if "error" in r:
            lines.append(f"{r['shape'].rjust(8)}  FAILED: {r['error'].splitlines()[-1]}")
            continue
        lines.append("  ".join(get(r).rjust(w) for _, w, get in COLUMNS))
    return "\n".join(lines)


def targets(results: list[dict]) -> list[str]:
    ok = [r for r in results if "error" not in r]
    lines = []
    if any("reference_over_fast" in r for r in ok):
        worst = min(r["reference_over_fast"] for r in ok if "reference_over_fast" in r)
        lines.append(f"reference/fast >= 5 on every shape: {'met' if worst >= 5 else 'MISSED'}"
                     f" (worst {worst:.2f}x)")
    if ok:
        worst = max(r["fast_over_matmul"] for r in ok)
        lines.append(f"fast/matmul <= 0.4 on every shape: {'met' if worst <= 0.4 else 'MISSED'}"
                     f" (worst {worst:.2f}x)")
        worst = max(r["fast_ns_per_conversion_per_core"] for r in ok)
        lines.append(f"<= 1 ns per noisy conversion per core (issue 17): "
                     f"{'met' if worst <= 1 else 'MISSED'} (worst {worst:.2f} ns)")
        over = [r["shape"] for r in ok if r["peak_bytes"] > r["memory_budget_bytes"]]
        lines.append("peak memory <= budget: " + ("met" if not over else
                                                  "MISSED on " + ", ".join(over)))
    return lines


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Benchmark the fast ACiM kernel against the reference kernel and plain "
                    "fp32 matmuls on ResNet-18 conv and ViT-B MLP shapes.")
    parser.add_argument("--quick", action="store_true",
                        help="batch 8 for the conv layers and batch 1 for the MLP layer")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--json", metavar="OUT", help="write every number to this JSON file")
    parser.add_argument("--shapes", nargs="+", metavar="NAME", choices=list(SHAPES),
                        default=list(SHAPES), help=f"shapes to run: {', '.join(SHAPES)}")
    parser.add_argument("--memory-budget", default="1G",
                        help="bytes of kernel temporaries, e.g. 512M or 2G (default 1G)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed calls of the fast kernel and of the matmuls (default 3)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads in the measuring processes (default: torch's)")
    parser.add_argument("--skip-reference", action="store_true",
                        help="do not run the (slow) reference kernel")
    parser.add_argument("--noise", choices=list(NOISES), default="1lsb",
                        help="1lsb: 1 LSB random (default); asim: 0.4 %% random + 0.4 %% "
                             "non-linear, ASiM's setting of issue 8")
    parser.add_argument("--chip", metavar="FILE.acim",
                        help="run the shapes on this chip as written (noise, mismatch, "
                             "transfer table) instead of the reference chip with --noise")
    parser.add_argument("--five-layers", action="store_true",
                        help="issue 8's five layers: the conv shapes at batch 8, the MLP at "
                             "394 tokens (batch 2), with --noise asim")
    parser.add_argument("--profile", action="store_true",
                        help="print a torch.profiler table of one fast call per shape")
    # Internal: measure one shape in this process and print its JSON.
    parser.add_argument("--child", choices=list(SHAPES), help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.five_layers and not args.chip:
        args.noise = "asim"
    if args.repeats < 1 or args.threads < 0:
        parser.error("--repeats must be at least 1 and --threads at least 0")
    if args.memory_budget.isdigit():
        args.memory_budget_bytes = int(args.memory_budget)
    else:
        from asimc.commands.common import parse_size
        args.memory_budget_bytes = parse_size(args.memory_budget)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    return args


def chip_description(args) -> str:
    if args.chip:
        return f"{args.chip} as written"
    return (f"asim-bitserial-255 + {NOISES[args.noise][0]} (W8A8 bit-serial, 255 rows, "
            "ADC 8)")


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        child_main(args)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine_info(args.device)
    mode = "quick" if args.quick else "full"
    print(f"# asimc kernel benchmark ({mode}) {info['date']}")
    print(f"# machine: {info['cpu']} ({info['cpu_count']} CPUs), torch {info['torch']}, "
          f"{info['threads']} threads, device {args.device}: {info['device_name']}, "
          f"load average {info['load_average'][0]:.2f}")
    print(f"# asimc commit {info['commit']}, fast kernel: {info['fast_backend']}, "
          f"SIMD level {info['simd']}")
    if info.get("generator_ns_per_word"):
        print(f"# generator alone (native Philox, 1 thread, CPU time): "
              f"{info['generator_ns_per_word']:.2f} ns per word (one per noisy conversion), "
              f"{1e3 / info['generator_ns_per_word']:.0f} M words/s")
    print(f"# chip: {chip_description(args)}, memory budget "
          f"{args.memory_budget_bytes / 2 ** 20:.0f} MB, "
          f"median of {args.repeats} after a warm-up", flush=True)
    results = []
    start = time.perf_counter()
    for name in args.shapes:
        shape = SHAPES[name]
        batch = shape.quick_batch if args.quick else shape.batch
        if args.five_layers:
            batch = 2 if name == "vit_mlp" else 8
        print(f"  running {name} (batch {batch}) ...", file=sys.stderr, flush=True)
        result = run_child(shape, batch, args)
        print(f"  {name}: {result['process_wall_s']:.0f} s", file=sys.stderr, flush=True)
        if "profile" in result:
            print(f"\n# profile of one fast call, {name}:\n{result['profile']}", flush=True)
        results.append(result)
    total = time.perf_counter() - start
    info["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print()
    print(table(results))
    print()
    for line in targets(results):
        print("# " + line)
    commits = {r["shape"]: r.get("commit") for r in results if "commit" in r}
    if len(set(commits.values())) > 1:
        print("# NOTE: the code changed during the run; commit per shape: "
              + ", ".join(f"{k}@{v}" for k, v in commits.items()))
    for r in results:
        if r.get("identical") is False:
            print(f"# NOTE: {r['shape']}: fast and reference differ in {r['differing_outputs']}"
                  f" of {r['rows'] * r['n']} outputs (max |difference| "
                  f"{r['max_abs_difference']:g})")
    print(f"# total wall time {total:.0f} s; load average after "
          f"{info['load_average_after'][0]:.2f}")
    if args.json:
        report = {"benchmark": "kernels", "mode": mode, "machine": info,
                  "chip": chip_description(args),
                  "memory_budget_bytes": args.memory_budget_bytes, "repeats": args.repeats,
                  "total_wall_s": total, "targets": targets(results), "shapes": results}
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"# wrote {args.json}")


if __name__ == "__main__":
    main()
