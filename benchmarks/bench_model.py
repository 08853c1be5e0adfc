"""Whole-model benchmark: images per second of a CIFAR ResNet-18-shaped ONNX model.

    python benchmarks/bench_model.py [--batch 16] [--device cpu|cuda] [--json OUT]
                                     [--memory-budget 1G] [--repeats 3] [--acim-repeats 1]
                                     [--threads N] [--modes float,int,ideal,acim]
                                     [--model resnet18|vit_b32] [--noise 1lsb|asim]

``--model vit_b32`` times a ViT-B/32-shaped model at 224 px instead (``export_vit_b32``);
``--noise asim`` uses 0.4 % random + 0.4 % non-linear noise instead of 1 LSB.

Builds a CIFAR ResNet-18 in torch (3x3 stem conv with 64 channels, four stages of two
BasicBlocks with 64/128/256/512 channels and strides 1/2/2/2, BatchNorm, 1x1 downsample convs,
global average pool, linear 10; random init, eval mode), exports it to ONNX in a temporary
directory (``torch.onnx.export(..., dynamo=False, opset_version=17)`` with a dynamic batch),
compiles it with ``asimc.compile`` for the ASiM reference chip with 1 LSB random noise (the chip
of bench_kernels.py), and times ``Program.run`` on a batch of random 32x32 images:

* ``acim``:  the bit-level simulation (fast kernel): the figure of interest;
* ``ideal``: acim mode on the same chip without noise (the file as it is): every conversion is
  lossless, so the fast kernel merges each product into one exact integer product
  (``asimc.kernels.exact``), equal to ``int`` bit for bit (checked);
* ``int``:   quantised operands, exact integer products; ``float``: no quantisation (context).

Each mode gets one warm-up run on a single image, then ``--repeats`` timed runs (float, int,
ideal) or ``--acim-repeats`` (acim, default 1: it takes minutes on a small CPU); the median is
reported as images/second, with each mode's time over the float time (the goal for ``int``:
at most 3x). ``--modes float,int,ideal`` skips the minutes-long acim run. Also reported:
export and compile times, the model's ADC conversions per image (from the compiler's cost
report) and conversions per second; ``cpu s`` is the process's CPU time (all threads),
steadier than wall time on a shared machine.
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

# Before torch: asimc sets OMP_WAIT_POLICY=PASSIVE, which only counts before torch loads its
# OpenMP runtime. Spinning waiters made 2-thread runs on the shared machine 5-9x slower (float
# 744 ms against 82 ms per batch) and their ratios meaningless.
import asimc
import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_kernels import CHIP_FILE, NOISES, benchmark_chip, machine_info  # noqa: E402


MODES = ("float", "int", "ideal", "acim")


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
    parser.add_argument("--modes", default=",".join(MODES),
                        help="comma-separated modes to time (default float,int,ideal,acim; "
                             "float is always timed: the ratios are over its time)")
    parser.add_argument("--model", choices=list(MODELS), default="resnet18",
                        help="resnet18 (CIFAR, 32 px; default) or vit_b32 (ViT-B/32 shape, "
                             "224 px)")
    parser.add_argument("--noise", choices=list(NOISES), default="1lsb",
                        help="1lsb: 1 LSB random (default); asim: 0.4 %% random + 0.4 %% "
                             "non-linear")
    args = parser.parse_args(argv)
    modes = [m for m in MODES if m == "float" or m in args.modes.split(",")]
    if any(m not in MODES for m in args.modes.split(",")):
        parser.error("--modes: a comma-separated list of " + ", ".join(MODES))
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if min(args.batch, args.repeats, args.acim_repeats) < 1:
        parser.error("--batch, --repeats and --acim-repeats must be at least 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    from asimc.commands.common import parse_size
    memory_budget = parse_size(args.memory_budget)

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
        programs = {mode: program for mode in modes}
        if "ideal" in modes:
            programs["ideal"] = asimc.compile(path, asimc.load_chip(CHIP_FILE))

    on_chip = [layer for layer in program.layers.values() if layer.on_chip]
    conversions = sum(layer.cost.adc_conversions for layer in on_chip if layer.cost)
    images = np.random.default_rng(0).standard_normal(
        (args.batch, 3, side, side)).astype(np.float32)

    results, outputs = {}, {}
    for mode in modes:
        repeats = args.acim_repeats if mode == "acim" else args.repeats
        print(f"  running {mode} ...", file=sys.stderr, flush=True)
        times, cpu_times, outputs[mode] = time_mode(programs[mode], images,
                                                    "acim" if mode == "ideal" else mode,
                                                    repeats, args.device, memory_budget)
        median, cpu = statistics.median(times), statistics.median(cpu_times)
        float_run = results.get("float", {"median_s": median, "cpu_s": cpu})
        results[mode] = {"times_s": times, "median_s": median,
                         "images_per_s": args.batch / median, "cpu_times_s": cpu_times,
                         "cpu_s": cpu, "over_float": median / float_run["median_s"],
                         "cpu_over_float": cpu / float_run["cpu_s"]}
    info["load_average_after"] = [round(x, 2) for x in os.getloadavg()]

    print(f"# model: {model_name} (random init), {len(on_chip)} matrix products on chip, "
          f"{conversions / 1e6:.1f} M ADC conversions per image; batch {args.batch}; chip "
          f"{NOISES[args.noise][0]}")
    print(f"# export {export_s:.1f} s, compile {compile_s:.2f} s")
    print()
    print(f"{'mode':>6}  {'runs':>4}  {'median s':>9}  {'images/s':>9}  {'time/float':>10}"
          f"  {'cpu s':>8}  {'cpu/float':>9}")
    for mode in reversed(modes):
        r = results[mode]
        print(f"{mode:>6}  {len(r['times_s']):>4}  {r['median_s']:>9.3f}  "
              f"{r['images_per_s']:>9.2f}  {r['over_float']:>9.2f}x  {r['cpu_s']:>8.3f}  "
              f"{r['cpu_over_float']:>8.2f}x")
    print()
    if "int" in results:
        print(f"# int/float time ratio {results['int']['over_float']:.2f} (goal: at most 3)")
    summary = {}
    if "int" in results and "ideal" in results:
        summary["ideal_equals_int"] = bool(np.array_equal(outputs["ideal"], outputs["int"]))
        print(f"# ideal (noiseless, lossless acim) equals int bit for bit: "
              f"{summary['ideal_equals_int']}")
    if "acim" in results and "int" in results:
        results["acim"]["conversions_per_s"] = \
            conversions * args.batch / results["acim"]["median_s"]
        agree = float(np.mean(outputs["acim"].argmax(1) == outputs["int"].argmax(1)))
        logits_int = outputs["int"].astype(np.float64)
        rel_rms = float(np.sqrt(np.mean((outputs["acim"] - logits_int) ** 2)
                                / np.mean(logits_int ** 2)))
        summary["acim_over_int"] = results["acim"]["median_s"] / results["int"]["median_s"]
        summary["top1_agreement_acim_vs_int"] = agree
        summary["logits_relative_rms_acim_vs_int"] = rel_rms
        print(f"# acim is {summary['acim_over_int']:.1f}x slower than int in this run "
              f"({results['acim']['images_per_s']:.2f} vs {results['int']['images_per_s']:.2f}"
              " images/s)")
        print(f"# acim: {results['acim']['conversions_per_s'] / 1e6:.1f} M conversions/s; "
              f"logits acim vs int: relative RMS difference {rel_rms:.3f}, same top-1 on "
              f"{agree:.0%} of these random images (a sanity check, not an accuracy figure)")
    print(f"# load average after {info['load_average_after'][0]:.2f}")
    if args.json:
        report = {"benchmark": "model", "machine": info, "model": f"{model_name} (random)",
                  "chip": f"asim-bitserial-255 + {NOISES[args.noise][0]}", "batch": args.batch,
                  "memory_budget_bytes": memory_budget, "export_s": export_s,
                  "compile_s": compile_s, "layers_on_chip": len(on_chip),
                  "conversions_per_image": conversions, "modes": results, **summary}
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"# wrote {args.json}")


if __name__ == "__main__":
    main()
