"""asimc against ASiM itself: the same noisy layers, the same weights and inputs, one run.

    python benchmarks/bench_vs_asim.py --asim DIR [--repeats 3] [--threads N] [--json OUT]
                                       [--layers NAME ...]

DIR is a local copy of ASiM's public repository (github.com/Keio-CSG/ASiM); its modules
(``module/asim_conv.py``, ``module/asim_linear.py``) are imported from there and never enter
this project. Chip: W8A8 bit-serial, 255 rows, 8-bit ADC, 0.4 % random and 0.4 % non-linear
noise (ASiM's ``rand_noise_sigma=0.4, non_linear_sigma=0.4``; asimc's
``noise { random 0.4 %; nonlinear 0.4 % }``). Layers (batch 8):

    conv64    3x3 conv 64->64 at 32x32, padding 1       unsigned inputs
    conv128   3x3 conv 128->128 at 16x16
    conv256   3x3 conv 256->256 at 8x8
    conv512   3x3 conv 512->512 at 4x4
    vit_mlp   linear 768->3072, 394 tokens               signed inputs

Both sides start from the same float32 input and weight tensors and end with the dequantised
float32 output. ASiM: its module's forward in 'Simulation' mode. asimc: ASiM's own quantisation
of that input and weight (the integers ASiM simulates, so the two compute the same product),
im2col, ``asimc.kernels.fast.run`` and the dequantisation. Timings are interleaved (ASiM, asimc,
ASiM, ...) and the median is reported. Before timing, both run once with the noise off; the
outputs must agree (max |difference| relative to the output range is printed, and the run fails
above 1e-5: ASiM sums in float32).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
import types
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_kernels import cpu_model                                         # noqa: E402

from asimc.chip.conversions import ConversionPlan                          # noqa: E402
from asimc.chip.spec import (AdcSpec, ArraySpec, ChipSpec, InputSpec, NoiseSpec,  # noqa: E402
                             Quantity, WeightSpec)
from asimc.kernels import fast, native, rng                                 # noqa: E402
from asimc.kernels.problem import AcimProblem, NoiseKeys                    # noqa: E402

ROWS, ADC, BITS, SIGMA = 255, 8, 8, 0.4


@dataclass(frozen=True)
class Layer:
    name: str
    conv: bool
    channels_in: int
    channels_out: int
    side: int = 0          # conv: input height = width
    tokens: int = 0        # linear


LAYERS = {layer.name: layer for layer in [
    Layer("conv64", True, 64, 64, side=32), Layer("conv128", True, 128, 128, side=16),
    Layer("conv256", True, 256, 256, side=8), Layer("conv512", True, 512, 512, side=4),
    Layer("vit_mlp", False, 768, 3072, tokens=394),
]}
BATCH = 8


def asim_module(asim_dir: Path, layer: Layer, noise: bool):
    if str(asim_dir) not in sys.path:
        sys.path.insert(0, str(asim_dir))
    # ASiM's modules import tools.common_tools for its testbench's seed helper only; that module
    # pulls torchvision and matplotlib, which the simulation does not use.
    if "tools.common_tools" not in sys.modules:
        helpers = types.ModuleType("tools.common_tools")
        helpers.setup_seed = torch.manual_seed
        sys.modules["tools.common_tools"] = helpers
    sigma = SIGMA if noise else 0.0
    common = dict(wbit=BITS, xbit=BITS, adc_prec=ADC, nrow=ROWS, rand_noise_sigma=sigma,
                  non_linear_sigma=sigma, act_enc=None, mode="Simulation", device="cpu")
    if layer.conv:
        from module.asim_conv import ASiMConv2d
        return ASiMConv2d(layer.channels_in, layer.channels_out, 3, padding=1, bias=False,
                          signed_act=False, **common)
    from module.asim_linear import ASiMLinear
    return ASiMLinear(layer.channels_in, layer.channels_out, bias=False, signed_act=True,
                      layer="fc", **common)


def asimc_chip(signed: bool, noise: bool) -> ChipSpec:
    sigma = SIGMA if noise else 0.0
    return ChipSpec("asim-w8a8-255", weight=WeightSpec(BITS), input=InputSpec(BITS, signed, 1),
                    array=ArraySpec(rows=ROWS), adc=AdcSpec(ADC),
                    noise=NoiseSpec(Quantity(sigma, "%"), Quantity(sigma, "%")))


def row_tiles(k: int, kernel_area: int) -> tuple[tuple[int, int], ...]:
    """ASiM's mapping: whole input channels per weight update (floor(255 / 9) = 28 for 3x3)."""
    step = (ROWS // kernel_area) * kernel_area
    return tuple((k0, min(k, k0 + step)) for k0 in range(0, k, step))


class AsimcLayer:
    """The asimc side: ASiM's quantisation, im2col, the fast kernel, dequantisation."""

    def __init__(self, module, layer: Layer, noise: bool):
        self.module, self.layer = module, layer
        self.plan = ConversionPlan(asimc_chip(not layer.conv, noise))
        w_quant, self.w_scale = module._quantize_weight_infer(module.weight)
        self.w = w_quant.detach().reshape(layer.channels_out, -1).t().contiguous().unsqueeze(0)
        self.tiles = row_tiles(self.w.shape[1], 9 if layer.conv else 1)
        self.layer_key = rng.name_key(layer.name)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        layer, m = self.layer, self.module
        with torch.no_grad():
            if layer.conv:
                q, x_scale = m._quantize_unsigned_feature_infer(x)
                cols = F.unfold(q, 3, padding=1)                     # (B, C*9, L)
                rows = cols.transpose(1, 2).reshape(1, -1, cols.shape[1])
                denominator = (2.0 ** (BITS - 1) - 1) * (2.0 ** BITS - 1)
            else:
                q, x_scale = m._quantize_signed_feature_infer(x)
                rows = q.reshape(1, -1, q.shape[-1])
                denominator = (2.0 ** (BITS - 1) - 1) ** 2
            r, n = rows.shape[1], self.w.shape[2]
            keys = None
            if self.plan.has_noise:
                stream = torch.full((1, r), rng.combine(1, self.layer_key), dtype=torch.int64)
                keys = NoiseKeys(stream, torch.arange(r).view(1, r) * n, 1, r * n)
            acc = fast.run(AcimProblem(rows.contiguous(), self.w, self.plan, self.tiles, keys))
            out = acc.float() * (self.w_scale * x_scale) / denominator
            if layer.conv:
                side = layer.side
                return out.view(x.shape[0], side, side, n).permute(0, 3, 1, 2)
            return out.view(x.shape[0], n)


def inputs(layer: Layer, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    if layer.conv:
        x = torch.rand(BATCH, layer.channels_in, layer.side, layer.side, generator=gen)
        w = torch.randn(layer.channels_out, layer.channels_in, 3, 3, generator=gen)
    else:
        x = torch.randn(layer.tokens, layer.channels_in, generator=gen)
        w = torch.randn(layer.channels_out, layer.channels_in, generator=gen)
    return x, w


def timed(fn, x) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        fn(x)
    return time.perf_counter() - start


def run_layer(asim_dir: Path, layer: Layer, repeats: int) -> dict:
    gen = torch.Generator().manual_seed(0)
    x, w = inputs(layer, gen)
    sides = {}
    for noise in (False, True):
        module = asim_module(asim_dir, layer, noise)
        with torch.no_grad():
            module.weight.copy_(w)
        sides[noise] = (module, AsimcLayer(module, layer, noise))
    # Equality with the noise off (both lossless here: F = 255 = L).
    module, ours = sides[False]
    with torch.no_grad():
        want = module(x)
    got = ours(x)
    difference = ((got - want).abs().max() / want.abs().max()).item()
    module, ours = sides[True]
    ours(x)                                           # warm-up (packs the weights)
    asim_times, asimc_times = [], []
    for _ in range(repeats):
        asim_times.append(timed(module, x))
        asimc_times.append(timed(ours, x))
    a, b = statistics.median(asim_times), statistics.median(asimc_times)
    conversions = math.prod(got.shape) * len(ours.tiles) * BITS * BITS
    return dict(layer=layer.name, asim_s=a, asimc_s=b, ratio=a / b, noiseless_difference=difference,
                conversions=conversions, asimc_ns_per_conversion=b * 1e9 / conversions)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--asim", type=Path, required=True,
                        help="a local copy of github.com/Keio-CSG/ASiM")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--layers", nargs="+", choices=list(LAYERS), default=list(LAYERS))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if not (args.asim / "module" / "asim_conv.py").is_file():
        parser.error(f"--asim {args.asim}: expected ASiM's repository (module/asim_conv.py)")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# asimc vs ASiM, {time.strftime('%Y-%m-%dT%H:%M:%S%z')}")
    print(f"# machine: {cpu_model()} ({os.cpu_count()} CPUs, SIMD {native.simd_level()}), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, asimc kernel "
          f"{fast.backend('cpu')}, load average {os.getloadavg()[0]:.2f}")
    print(f"# W8A8 bit-serial, {ROWS} rows, ADC {ADC}, noise {SIGMA} % random + {SIGMA} % "
          f"non-linear, batch {BATCH}, median of {args.repeats} interleaved runs")
    results = []
    print(f"{'layer':>8} {'ASiM s':>9} {'asimc s':>9} {'ASiM/asimc':>11} {'ns/conv':>8} "
          f"{'noiseless diff':>15}")
    for name in args.layers:
        r = run_layer(args.asim, LAYERS[name], args.repeats)
        results.append(r)
        print(f"{r['layer']:>8} {r['asim_s']:9.3f} {r['asimc_s']:9.3f} {r['ratio']:10.1f}x "
              f"{r['asimc_ns_per_conversion']:8.2f} {r['noiseless_difference']:15.2e}",
              flush=True)
    worst = max(r["noiseless_difference"] for r in results)
    print(f"# noiseless outputs agree: {'yes' if worst <= 1e-5 else 'NO'} (worst {worst:.1e})")
    print(f"# worst ratio {min(r['ratio'] for r in results):.1f}x (goal >= 10x)")
    if args.json:
        args.json.write_text(json.dumps(dict(results=results, threads=torch.get_num_threads(),
                                             simd=native.simd_level(), cpu=cpu_model()),
                                        indent=2))
    return 0 if worst <= 1e-5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
