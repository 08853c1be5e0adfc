"""Reproduce the ASiM paper's three findings on the example models, over several noise seeds.

    python examples/paper_findings.py                  # the full study (about 10 minutes, 1 thread)
    python examples/paper_findings.py --limit 50 --seeds 1 --no-write   # a quick look

The paper (Zhang et al., "ASiM: Modeling and Analyzing Inference Accuracy of SRAM-Based Analog CiM
Circuits", IEEE TVLSI 2025, arXiv:2411.11022) reports that
  (a) bit-parallel input encoding (2-4 input bits per cycle) saves ADC conversions with only a
      modest accuracy loss against bit-serial inputs at the same ADC,
  (b) random analog noise of about 1 ADC LSB in every conversion ruins accuracy, while a fraction
      of an LSB is tolerable,
  (c) hybrid CiM (the most significant conversion levels computed digitally) and majority voting
      on the most significant levels recover most of that loss.

Every chip here is a variant of the ASiM reference macro (chips/asim-bitserial-255.acim: charge
domain, 255 rows, W8A8 bit-serial, 8-bit ADC, no noise), built with ``dataclasses.replace`` and
run through ``asimc.compare.compare_chips`` on the digits test split. Noise is given in ADC LSBs.
The script prints markdown tables and writes them into examples/FINDINGS.md between
``<!-- findings:NAME -->`` / ``<!-- /findings:NAME -->`` markers, so that the prose around them
survives a rerun; a table whose markers are missing is appended at the end.
"""
from __future__ import annotations

import argparse
import math
import re
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

import asimc
from asimc.chip.spec import (AdcSpec, ChipSpec, HybridSpec, InputSpec, NoiseSpec, Quantity,
                             VotingSpec)
from asimc.commands.evaluate import compare_rows   # the rows as `compare --json` prints them
from asimc.compare import compare_chips
from asimc.golden import golden_ladder

ROOT = Path(__file__).resolve().parent.parent
BASE_CHIP = ROOT / "chips" / "asim-bitserial-255.acim"
DEFAULT_OUT = ROOT / "examples" / "FINDINGS.md"
DATA = "digits"


@dataclass(frozen=True)
class ModelStudy:
    """What is run on one example model."""

    key: str
    title: str
    path: Path
    limit: int | None           # test images (None: all 450)
    signed: bool                # signed inputs on every layer (the ViT's LayerNorm outputs)
    small_noise: float          # the "small noise" of experiment (a), in LSB
    noise_ladder: tuple[float, ...]
    recovery_noise: tuple[float, ...]
    data: str = DATA             # the data set (--data) the model reads


MODELS = {
    "mlp": ModelStudy("mlp", "MLP", ROOT / "examples/models/digits_mlp.onnx", None, False,
                      0.25, (0.0, 0.15, 0.25, 0.5, 0.75, 1.0), (1.0, 0.5)),
    # The CNN costs about 350k conversions per image: 150 of the 450 test images.
    "cnn": ModelStudy("cnn", "CNN", ROOT / "examples/models/digits_cnn.onnx", 150, False,
                      0.25, (0.0, 0.15, 0.25, 0.5, 0.75, 1.0), (1.0, 0.5)),
    # The ViT (about 1M conversions per image) breaks at a quarter of the MLP's noise: its small
    # noise is 0.1 LSB and its recovery is measured at 0.25 and 0.5 LSB.
    "vit": ModelStudy("vit", "ViT (signed inputs)", ROOT / "examples/models/digits_vit.onnx", 150,
                      True, 0.1, (0.0, 0.1, 0.15, 0.25, 0.5, 1.0), (0.25, 0.5)),
    # The ResNet-20 layout on digits32, whose 3x3 convs fill 252 of 255 rows (34M conversions
    # per image, 100x the CNN): not in the default set; run it alone with a --limit.
    "resnet": ModelStudy("resnet", "ResNet-20 layout (row-filling)",
                         ROOT / "examples/models/digits_resnet.onnx", 450, False, 0.25,
                         (0.0, 0.15, 0.25, 0.5, 0.75, 1.0), (1.0, 0.5), data="digits32"),
}
DEFAULT_MODELS = "mlp,cnn,vit"

ENCODINGS = (1, 2, 3, 4)                 # input bits per cycle; 1 is bit-serial
# (ADC bits, noisy?) of experiment (a): the reference ADC and one bit less, each noiseless and
# with the model's small noise; then, noiseless only, 6 bits (where even bit-serial breaks) and
# 10 bits (what bit-parallel inputs need to match bit-serial at 8 bits).
ENCODING_CONDITIONS = ((8, False), (8, True), (7, False), (7, True), (6, False), (10, False))
HYBRID_LEVELS = (1, 2, 3)
VOTING = tuple((levels, samples) for levels in (1, 2, 3) for samples in (3, 5, 7))


@dataclass(frozen=True)
class Variant:
    """One chip: the reference macro with these settings changed."""

    bits_per_cycle: int = 1
    adc: int = 8
    noise: float = 0.0                   # random noise, ADC LSBs
    digital_levels: int = 0
    vote_levels: int = 0
    samples: int = 1

    @property
    def name(self) -> str:
        parts = ["bs" if self.bits_per_cycle == 1 else f"bp{self.bits_per_cycle}",
                 f"adc{self.adc}", f"n{self.noise:g}"]
        if self.digital_levels:
            parts.append(f"hybrid{self.digital_levels}")
        if self.vote_levels:
            parts.append(f"vote{self.vote_levels}x{self.samples}")
        return "-".join(parts)

    def chip(self, base: ChipSpec, signed: bool) -> ChipSpec:
        return replace(
            base, name=self.name,
            description=f"ASiM reference variant {self.name}",
            input=InputSpec(bits=base.input.bits, signed=signed,
                            bits_per_cycle=self.bits_per_cycle),
            adc=AdcSpec(bits=self.adc),
            noise=NoiseSpec(random=Quantity(self.noise, "lsb")),
            hybrid=HybridSpec(digital_levels=self.digital_levels),
            voting=(VotingSpec(levels=self.vote_levels, samples=self.samples)
                    if self.vote_levels else VotingSpec()))


def encoding_label(bits_per_cycle: int) -> str:
    return "bit-serial" if bits_per_cycle == 1 else f"bit-parallel {bits_per_cycle}"


def recovery_variants(noise: float) -> list[tuple[str, Variant]]:
    rows = [("none (plain noisy chip)", Variant(noise=noise))]
    rows += [(f"hybrid, {n} digital level{'s' if n > 1 else ''}",
              Variant(noise=noise, digital_levels=n)) for n in HYBRID_LEVELS]
    rows += [(f"voting, {lv} level{'s' if lv > 1 else ''} x {s} samples",
              Variant(noise=noise, vote_levels=lv, samples=s)) for lv, s in VOTING]
    return rows


def study_variants(study: ModelStudy) -> list[Variant]:
    wanted = [Variant(bits_per_cycle=e, adc=a, noise=study.small_noise if noisy else 0.0)
              for a, noisy in ENCODING_CONDITIONS for e in ENCODINGS]
    wanted += [Variant(noise=n) for n in study.noise_ladder]
    for noise in study.recovery_noise:
        wanted += [v for _, v in recovery_variants(noise)]
    return list(dict.fromkeys(wanted))                    # unique, in order


# -- running -----------------------------------------------------------------------------------

class Progress:
    def __init__(self, label: str, total: int):
        self.label, self.total, self.done, self.start = label, total, 0, time.time()

    def __call__(self, finished: str = "", upcoming: str | None = None):
        self.done += 1
        print(f"\r  {self.label}: {self.done}/{self.total} runs, {time.time() - self.start:.0f} s",
              end="", file=sys.stderr, flush=True)

    def close(self):
        print(file=sys.stderr, flush=True)


def measure(study: ModelStudy, base: ChipSpec, seeds: int, limit: int | None) -> dict:
    """Rows of compare_chips by Variant, plus the fp32 and int rows and each chip's totals."""
    variants = study_variants(study)
    chips = {v: v.chip(base, study.signed) for v in variants}
    results: dict = {}
    # A noiseless chip is deterministic: one seed says everything.
    for noisy, n_seeds in ((False, 1), (True, seeds)):
        group = [v for v in variants if (v.noise > 0) == noisy]
        if not group:
            continue
        progress = Progress(f"{study.key} {'noisy' if noisy else 'noiseless'} chips",
                            1 + len(group) * (1 + n_seeds))
        rows = compare_rows(compare_chips(study.path, [chips[v] for v in group], study.data,
                                          seeds=n_seeds, limit=limit, on_step=progress))
        progress.close()
        by_name = {r["chip"]: r for r in rows}
        results["fp32"] = by_name["fp32"]
        results["int"] = by_name["int"]
        for v in group:
            results[v] = dict(by_name[v.name])
            results[v]["total"] = asimc.compile(study.path, chips[v]).report["total"]
    return results


def layer_diagnosis(study: ModelStudy, base: ChipSpec, limit: int | None) -> list[dict]:
    """Per-layer SQNR against int of the noiseless bit-parallel chips (golden ladder)."""
    rows: dict[str, dict] = {}
    for e in (2, 4):
        chip = Variant(bits_per_cycle=e).chip(base, study.signed)
        program = asimc.compile(study.path, chip)
        ladder = golden_ladder(study.path, program, study.data, limit=limit)
        tiles = {l["node"]: l["row_tiles"] for l in program.report["layers"]}
        for layer in ladder.layers:
            row = rows.setdefault(layer.name, {"name": layer.name,
                                               "rows": max(tiles[layer.name])})
            row[f"bp{e}"] = layer.ideal_sqnr_db
    return list(rows.values())


# -- tables ------------------------------------------------------------------------------------

def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def acc_cell(row: dict) -> str:
    if row.get("seeds", 0) > 1:
        return f"{100 * row['accuracy_mean']:.1f} ± {100 * row['accuracy_std']:.1f}"
    return f"{100 * row['accuracy_mean']:.1f}"


def db(x: float | None) -> str:
    if x is None:
        return "-"
    return "exact" if math.isinf(x) else f"{x:.1f}"


def count(x) -> str:
    return "-" if x is None else f"{x:,}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def caption(study: ModelStudy, results: dict, seeds: int, limit: int | None) -> str:
    n = limit or 450
    return (f"**{study.title}**, {n} {study.data} test images, noisy chips over {seeds} seed"
            f"{'s' if seeds > 1 else ''} (accuracy mean ± std in %); FP32 "
            f"{pct(results['fp32']['accuracy_mean'])} %, int (W8A8"
            f"{', signed inputs' if study.signed else ''}) "
            f"{pct(results['int']['accuracy_mean'])} %.")


def encoding_table(study: ModelStudy, results: dict, seeds: int, limit: int | None) -> str:
    body = []
    for adc, noisy in ENCODING_CONDITIONS:
        noise = study.small_noise if noisy else 0.0
        serial = results[Variant(adc=adc, noise=noise)]
        for e in ENCODINGS:
            r = results[Variant(bits_per_cycle=e, adc=adc, noise=noise)]
            delta = 100 * (r["accuracy_mean"] - serial["accuracy_mean"])
            body.append([encoding_label(e), str(adc), f"{noise:g}", acc_cell(r),
                         "" if e == 1 else f"{delta:+.1f}", pct(r["agreement"]),
                         db(r["sqnr_db"]), count(r["adc_conversions"]), count(r["cycles"])])
    return caption(study, results, seeds, limit) + "\n\n" + table(
        ["input encoding", "ADC bits", "noise (LSB)", "accuracy %", "vs bit-serial (pts)",
         "agreement %", "SQNR dB", "conversions / inference", "cycles / inference"], body)


def noise_table(study: ModelStudy, results: dict, seeds: int, limit: int | None) -> str:
    clean = results[Variant()]
    body = []
    for noise in study.noise_ladder:
        r = results[Variant(noise=noise)]
        body.append([f"{noise:g}", acc_cell(r),
                     f"{100 * (r['accuracy_mean'] - clean['accuracy_mean']):+.1f}",
                     pct(r["agreement"]), db(r["sqnr_db"])])
    return caption(study, results, seeds, limit) + " Bit-serial, ADC 8.\n\n" + table(
        ["random noise (LSB)", "accuracy %", "vs noiseless (pts)", "agreement %", "SQNR dB"], body)


def recovered(acc: float, noisy: float, ideal: float) -> float | None:
    """(acc - acc_noisy) / (acc_ideal - acc_noisy); None where noise costs under 1 point."""
    if ideal - noisy < 0.01:
        return None
    return (acc - noisy) / (ideal - noisy)


def recovery_table(study: ModelStudy, results: dict, noise: float, seeds: int,
                   limit: int | None) -> str:
    ideal = results[Variant()]["accuracy_mean"]
    plain = results[Variant(noise=noise)]
    body = []
    for label, v in recovery_variants(noise):
        r = results[v]
        frac = recovered(r["accuracy_mean"], plain["accuracy_mean"], ideal)
        extra = r["adc_conversions"] / plain["adc_conversions"]
        body.append([label, acc_cell(r), "" if v == Variant(noise=noise) else
                     ("-" if frac is None else f"{100 * frac:.0f} %"),
                     pct(r["agreement"]), db(r["sqnr_db"]),
                     f"{count(r['adc_conversions'])} ({extra:.2f}x)", count(r["cycles"]),
                     count(r["total"]["digital_bit_products"])])
    head = (caption(study, results, seeds, limit) +
            f" Bit-serial, ADC 8, **{noise:g} LSB** random noise; noiseless accuracy "
            f"{pct(ideal)} %.")
    return head + "\n\n" + table(
        ["recovery", "accuracy %", "recovered", "agreement %", "SQNR dB",
         "conversions / inference (vs plain)", "cycles / inference",
         "digital bit products / inference"], body)


def diagnosis_table(study: ModelStudy, rows: list[dict], limit: int | None) -> str:
    body = [[r["name"], str(r["rows"]), db(r["bp2"]), db(r["bp4"])] for r in rows]
    return (f"**{study.title}**, {limit or 450} {study.data} test images, noiseless, ADC 8: SQNR of each "
            "layer's output against `int` (golden ladder, ideal ACiM rung; a layer's output "
            "carries the errors of the layers before it).\n\n" +
            table(["layer", "rows used (largest row tile, of 255)", "bit-parallel 2 SQNR dB",
                   "bit-parallel 4 SQNR dB"], body))


# -- FINDINGS.md -------------------------------------------------------------------------------

def update_markdown(path: Path, sections: dict[str, str]) -> None:
    """Replace each ``<!-- findings:NAME -->`` ... ``<!-- /findings:NAME -->`` block."""
    text = path.read_text() if path.exists() else "# The ASiM paper's findings, reproduced\n"
    for name, content in sections.items():
        block = f"<!-- findings:{name} -->\n{content}\n<!-- /findings:{name} -->"
        pattern = re.compile(rf"<!-- findings:{re.escape(name)} -->.*?"
                             rf"<!-- /findings:{re.escape(name)} -->", re.S)
        if pattern.search(text):
            text = pattern.sub(lambda _: block, text)
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=DEFAULT_MODELS,
                        help=f"comma-separated subset of {', '.join(MODELS)} "
                             f"(default: {DEFAULT_MODELS})")
    parser.add_argument("--seeds", type=int, default=3, help="noise seeds per noisy chip")
    parser.add_argument("--limit", type=int, default=None,
                        help="at most this many test images per model (quick runs)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="markdown file whose tables are updated "
                             "(default examples/FINDINGS.md)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    unknown = [k for k in keys if k not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")

    base = asimc.load_chip(BASE_CHIP)
    sections: dict[str, str] = {}
    started = time.time()
    timings = []
    for key in keys:
        study = MODELS[key]
        limit = study.limit if args.limit is None else min(args.limit, study.limit or args.limit)
        t0 = time.time()
        results = measure(study, base, args.seeds, limit)
        sections[f"a-{key}"] = encoding_table(study, results, args.seeds, limit)
        sections[f"b-{key}"] = noise_table(study, results, args.seeds, limit)
        for noise in study.recovery_noise:
            sections[f"c-{key}-{noise:g}"] = recovery_table(study, results, noise, args.seeds,
                                                            limit)
        sections[f"a-layers-{key}"] = diagnosis_table(study, layer_diagnosis(study, base, limit),
                                                      limit)
        timings.append(f"{study.title} {time.time() - t0:.0f} s")
        for name in (f"a-{key}", f"b-{key}", *[f"c-{key}-{n:g}" for n in study.recovery_noise],
                     f"a-layers-{key}"):
            print(f"\n### {name}\n\n{sections[name]}")
    argv_text = " ".join(sys.argv[1:]) if argv is None else " ".join(argv)
    # A run of other models than the default set keeps its own record line.
    run_key = "run" if keys == DEFAULT_MODELS.split(",") else f"run-{'-'.join(keys)}"
    sections[run_key] = (f"Generated by `python examples/paper_findings.py"
                       f"{' ' + argv_text if argv_text else ''}` at asimc commit {commit()}, "
                       f"torch threads {args.threads}, wall time {time.time() - started:.0f} s "
                       f"({'; '.join(timings)}).")
    print(f"\n{sections[run_key]}")
    if not args.no_write:
        update_markdown(args.out, sections)
        print(f"tables written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
