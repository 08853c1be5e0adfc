"""Whole-model benchmark: images per second of a CIFAR ResNet-18-shaped ONNX model.

    python benchmarks/bench_model.py [--batch 16] [--device cpu|cuda] [--json OUT]
                                     [--memory-budget 1G] [--repeats 3] [--acim-repeats 1]
                                     [--threads N] [--model resnet18|vit_b32]
                                     [--noise 1lsb|asim]

``--model vit_b32`` times a ViT-B/32-shaped model at 224 px instead (``export_vit_b32``);
``--noise asim`` uses 0.4 % random + 0.4 % non-linear noise instead of 1 LSB.

Builds a CIFAR ResNet-18 in torch (3x3 stem conv with 64 channels, four stages of two
BasicBlocks with 64/128/256/512 channels and strides 1/2/2/2, BatchNorm, 1x1 downsample convs,
global average pool, linear 10; random init, eval mode), exports it to ONNX in a temporary
directory (``torch.onnx.export(..., dynamo=False, opset_version=17)`` with a dynamic batch),
compiles it with ``asimc.compile`` for the ASiM reference chip with 1 LSB random noise (the chip
of bench_kernels.py), and times ``Program.run`` on a batch of random 32x32 images:

* ``acim``:  the bit-level simulation (fast kernel): the figure of interest;
  ``cpu s`` is the process's CPU time (all threads), steadier than wall time on a shared
  machine;
* ``int``:   quantised operands, exact integer products; ``float``: no quantisation (context).

Each mode gets one warm-up run on a single image, then ``--repeats`` timed runs (float, int)
or ``--acim-repeats`` (acim, default 1: it takes minutes on a small CPU); the median is
reported as images/second. Also reported: export and compile times, the model's ADC
conversions per image (from the compiler's cost report) and conversions per second.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_kernels import NOISES, benchmark_chip, machine_info  # noqa: E402


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + self.shortcut(x))


class CifarResNet18(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64),
                                  nn.ReLU())
        blocks, cin = [], 64
        for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
            blocks += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        y = self.pool(self.blocks(self.stem(x)))
        return self.fc(torch.flatten(y, 1))


def export_model(path: Path) -> None:
    torch.manual_seed(0)
    model = CifarResNet18().eval()
    # Random BatchNorm statistics, so that the normalisation is not the identity.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    torch.onnx.export(model, (torch.randn(1, 3, 32, 32),), str(path), dynamo=False,
                      opset_version=17, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}})


def export_vit_b32(path: Path) -> None:
    """A ViT-B/32-shaped model at 224 px (random init): examples/train_digits_vit.py's encoder
    (hand-written attention, so Q.K^T and A.V are on-chip MatMuls) at ViT-B/32's sizes:
    32-px patches of a 3-channel 224-px image (49 patches + the class token), width 768,
    12 heads, MLP 3072, 12 blocks; 10 classes."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
    import train_digits_vit as vit
    # The example's module constants fix the token count of its reshapes.
    vit.IMAGE, vit.PATCH = 224, 32
    vit.PATCHES = (vit.IMAGE // vit.PATCH) ** 2
    vit.TOKENS = vit.PATCHES + 1
    torch.manual_seed(0)
    model = vit.DigitsViT(dim=768, heads=12, mlp_dim=3072, depth=12)
    model.patch_embed = nn.Conv2d(3, 768, kernel_size=32, stride=32)
    model.eval()
    torch.onnx.export(model, (torch.randn(1, 3, 224, 224),), str(path), dynamo=False,
                      opset_version=17, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}})


MODELS = {"resnet18": ("CIFAR ResNet-18", export_model, 32),
          "vit_b32": ("ViT-B/32 shape", export_vit_b32, 224)}


def time_mode(program, images: np.ndarray, mode: str, repeats: int, device: str,
              memory_budget: int) -> tuple[list[float], list[float], np.ndarray]:
    """Wall times, CPU times (all threads of this process: steadier on a shared machine) and
    the last output."""
    def run(x):
        return program.run(x, mode=mode, seed=0, device=device, memory_budget=memory_budget)

    run(images[:1])                                                # warm-up
    times, cpu_times, output = [], [], None
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        output = run(images).output
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    return times, cpu_times, output


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description="Images/second of a CIFAR ResNet-18-shaped ONNX model on the noisy "
                    "ASiM reference chip (acim, int and float modes).")
    parser.add_argument("--batch", type=int, default=16, help="images per run (default 16)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--json", metavar="OUT", help="write every number to this JSON file")
    parser.add_argument("--memory-budget", default="1G",
                        help="bytes of kernel temporaries, e.g. 512M or 2G (default 1G)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs in float and int mode (default 3)")
    parser.add_argument("--acim-repeats", type=int, default=1,
                        help="timed runs in acim mode (default 1)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (default: torch's; 1 is steadier on a busy machine)")
    parser.add_argument("--model", choices=list(MODELS), default="resnet18",
                        help="resnet18 (CIFAR, 32 px; default) or vit_b32 (ViT-B/32 shape, "
                             "224 px)")
    parser.add_argument("--noise", choices=list(NOISES), default="1lsb",
                        help="1lsb: 1 LSB random (default); asim: 0.4 %% random + 0.4 %% "
                             "non-linear")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if min(args.batch, args.repeats, args.acim_repeats) < 1:
        parser.error("--batch, --repeats and --acim-repeats must be at least 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    from asimc.commands.common import parse_size
    memory_budget = parse_size(args.memory_budget)

    import asimc
    info = machine_info(args.device)
    print(f"# asimc model benchmark {info['date']}")
    print(f"# machine: {info['cpu']} ({info['cpu_count']} CPUs), torch {info['torch']}, "
          f"{info['threads']} threads, device {args.device}: {info['device_name']}, "
          f"load average {info['load_average'][0]:.2f}")
    print(f"# asimc commit {info['commit']}, fast kernel: {info['fast_backend']}, SIMD level "
          f"{info['simd']}", flush=True)

    chip = benchmark_chip(signed=False, noise=args.noise)
    model_name, export, side = MODELS[args.model]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{args.model}.onnx"
        start = time.perf_counter()
        export(path)
        export_s = time.perf_counter() - start
        start = time.perf_counter()
        program = asimc.compile(path, chip)
        compile_s = time.perf_counter() - start

    on_chip = [layer for layer in program.layers.values() if layer.on_chip]
    conversions = sum(layer.cost.adc_conversions for layer in on_chip if layer.cost)
    images = np.random.default_rng(0).standard_normal(
        (args.batch, 3, side, side)).astype(np.float32)

    results, outputs = {}, {}
    for mode in ("float", "int", "acim"):
        repeats = args.acim_repeats if mode == "acim" else args.repeats
        print(f"  running {mode} ...", file=sys.stderr, flush=True)
        times, cpu_times, outputs[mode] = time_mode(program, images, mode, repeats,
                                                    args.device, memory_budget)
        median = statistics.median(times)
        results[mode] = {"times_s": times, "median_s": median,
                         "images_per_s": args.batch / median, "cpu_times_s": cpu_times,
                         "cpu_s": statistics.median(cpu_times)}
    results["acim"]["conversions_per_s"] = conversions * args.batch / results["acim"]["median_s"]
    agree = float(np.mean(outputs["acim"].argmax(1) == outputs["int"].argmax(1)))
    logits_int = outputs["int"].astype(np.float64)
    rel_rms = float(np.sqrt(np.mean((outputs["acim"] - logits_int) ** 2)
                            / np.mean(logits_int ** 2)))
    info["load_average_after"] = [round(x, 2) for x in os.getloadavg()]

    print(f"# model: {model_name} (random init), {len(on_chip)} matrix products on chip, "
          f"{conversions / 1e6:.1f} M ADC conversions per image; batch {args.batch}; chip "
          f"{NOISES[args.noise][0]}")
    print(f"# export {export_s:.1f} s, compile {compile_s:.2f} s")
    print()
    print(f"{'mode':>6}  {'runs':>4}  {'median s':>9}  {'images/s':>9}  {'time/float':>10}"
          f"  {'cpu s':>8}  {'cpu/float':>9}")
    for mode in ("acim", "int", "float"):
        r = results[mode]
        slower = r["median_s"] / results["float"]["median_s"]
        cpu_slower = r["cpu_s"] / results["float"]["cpu_s"]
        print(f"{mode:>6}  {len(r['times_s']):>4}  {r['median_s']:>9.3f}  "
              f"{r['images_per_s']:>9.2f}  {slower:>9.0f}x  {r['cpu_s']:>8.3f}  "
              f"{cpu_slower:>8.1f}x")
    print()
    print(f"# acim is {results['acim']['median_s'] / results['int']['median_s']:.1f}x slower "
          f"than int in this run ({results['acim']['images_per_s']:.2f} vs "
          f"{results['int']['images_per_s']:.2f} images/s)")
    print(f"# acim: {results['acim']['conversions_per_s'] / 1e6:.1f} M conversions/s; logits "
          f"acim vs int: relative RMS difference {rel_rms:.3f}, same top-1 on {agree:.0%} of "
          f"these random images (a sanity check, not an accuracy figure)")
    print(f"# load average after {info['load_average_after'][0]:.2f}")
    if args.json:
        results["acim_over_int"] = results["acim"]["median_s"] / results["int"]["median_s"]
        report = {"benchmark": "model", "machine": info, "model": f"{model_name} (random)",
                  "chip": f"asim-bitserial-255 + {NOISES[args.noise][0]}", "batch": args.batch,
                  "memory_budget_bytes": memory_budget, "export_s": export_s,
                  "compile_s": compile_s, "layers_on_chip": len(on_chip),
                  "conversions_per_image": conversions, "modes": results,
                  "top1_agreement_acim_vs_int": agree,
                  "logits_relative_rms_acim_vs_int": rel_rms}
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"# wrote {args.json}")


if __name__ == "__main__":
    main()
