"""Lowering, tiling, costs and the artifact."""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

import asimc
from asimc.artifact import load_program
from asimc.chip.spec import (ArraySpec, ChipSpec, EnergySpec, InputSpec,
                             LayerOverride, Quantity, Setting, WeightSpec)
from asimc.errors import ArtifactError, UsageError
from asimc.passes.tile import row_tiles

from frontend.torch_models import example, export
from kernels.literal_model import literal_acc

CHIP = ChipSpec("c", array=ArraySpec(rows=255, cols=256, macros=16))


def onnx_of(module: nn.Module, *shape: int) -> bytes:
    buffer = io.BytesIO()
    torch.onnx.export(module.eval(), (torch.randn(*shape),), buffer, dynamo=False,
                      input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    return buffer.getvalue()


def test_conv_rows_are_cut_by_whole_channels():
    tiles, note = row_tiles(64 * 9, 255, kernel_area=9)
    assert [(k1 - k0) // 9 for k0, k1 in tiles] == [28, 28, 8] and not note
    flat, _ = row_tiles(64 * 9, 255, kernel_area=9, mapping="flat")
    assert [k1 - k0 for k0, k1 in flat] == [255, 255, 66]
    # A kernel larger than the array cannot be kept whole: flat, with a note.
    tiles, note = row_tiles(2 * 49, 32, kernel_area=49)
    assert [k1 - k0 for k0, k1 in tiles] == [32, 32, 32, 2] and "does not fit" in note


def test_report_of_a_conv_layer():
    torch.manual_seed(0)
    onnx_bytes = onnx_of(nn.Conv2d(64, 128, 3, padding=1), 1, 64, 16, 16)
    chip = replace(CHIP, energy=EnergySpec(Quantity(2, "fJ"), Quantity(0.5, "pJ"),
                                           Quantity(200, "MHz")))
    program = asimc.compile(onnx_bytes, chip)
    (layer,) = program.report["layers"]
    assert layer["placement"] == "acim" and layer["kind"] == "static"
    assert layer["row_tiles"] == [252, 252, 72]
    assert layer["column_tiles"] == 4                      # 128 channels x 8 bits / 256 cols
    assert layer["array_tiles"] == 12
    positions = 16 * 16
    assert layer["macs"] == positions * 576 * 128
    assert layer["adc_conversions"] == positions * 3 * 128 * 64     # tiles x cols x (8 x 8)
    assert layer["accumulations"] == positions * 128 * 2
    assert layer["cycles"] == positions * 8                 # 12 tiles on 16 macros: one wave
    expected_energy = layer["cell_ops"] * 2e-15 + layer["adc_conversions"] * 0.5e-12
    assert layer["energy_j"] == pytest.approx(expected_energy)
    assert layer["utilization"] == pytest.approx(576 * 128 * 8 / (12 * 255 * 256))
    assert program.report["total"]["fits_on_chip"]


def test_overrides_globs_and_attention_placement():
    onnx_bytes = export("transformer", dynamo=False)
    chip = replace(CHIP, layers=(LayerOverride("MatMul", (Setting("adc", "bits", 6),)),
                                 LayerOverride("/head/*", digital=True)))
    program = asimc.compile(onnx_bytes, chip, digital=["*self_attn/Gemm"])
    layers = program.report["layers"]
    dynamic = [l for l in layers if l["kind"] == "dynamic"]
    assert len(dynamic) == 2 and all(l["placement"] == "acim" for l in dynamic)
    head = [l for l in layers if l["node"].startswith("/head/")]
    assert head and all(l["placement"] == "digital" and "override" in l["reason"] for l in head)
    assert any("--digital" in l["reason"] for l in layers)
    assert all("ADC6" in l["precision"] for l in layers
               if l["op_type"] == "MatMul" and l["placement"] == "acim")
    kept = asimc.compile(onnx_bytes, replace(CHIP, attention="digital"))
    assert all(l["placement"] == "digital" for l in kept.report["layers"]
               if l["kind"] == "dynamic")


def test_conv_on_the_array_equals_the_literal_model():
    """A whole Conv layer (quantise, pad, im2col, channel tiles, bit-level, dequantise)
    against the literal transcription of the model."""
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 2, 3, padding=1, bias=False)
    onnx_bytes = onnx_of(conv, 1, 3, 4, 4)
    chip = ChipSpec("tiny", array=ArraySpec(rows=20), weight=WeightSpec(4),
                    input=InputSpec(5, False, 2))
    program = asimc.compile(onnx_bytes, chip)
    x = torch.rand(1, 3, 4, 4)
    got = program.run(x.numpy(), mode="acim").output
    # The model by hand: ASiM's quantisers in float32, then the literal bit-level product.
    w = conv.weight.detach()
    s_w = w.abs().max() + 1e-7
    wq = (torch.round(torch.clamp(w.abs() / s_w, 0, 1) * 7) * torch.sign(w)).long()
    s_x = x.max() + 1e-7
    xq = torch.round(torch.clamp(x / s_x, 0, 1) * 31).long()
    cols = torch.nn.functional.unfold(torch.nn.functional.pad(xq.float(), [1, 1, 1, 1]), 3)
    rows = cols[0].T.long().tolist()                        # (16 positions, 27)
    weights = wq.reshape(2, 27).T.tolist()                  # (27, 2)
    tiles = [(0, 18), (18, 27)]                             # floor(20/9) = 2 channels a tile
    acc = literal_acc(rows, weights, wbits=4, xbits=5, signed=False, per_cycle=2, rows=20,
                      adc_bits=8, tiles=tiles)
    want = np.array([[float(v) for v in r] for r in acc]) * float(s_w) * float(s_x) / (7 * 31)
    np.testing.assert_allclose(got[0].reshape(2, 16).T, want, rtol=1e-6, atol=1e-7)


def test_weight_parallel_chip_and_cost():
    onnx_bytes = export("mlp", dynamo=False)
    chip = replace(CHIP, weight=WeightSpec(4, parallel=True), input=InputSpec(4))
    program = asimc.compile(onnx_bytes, chip)
    first = program.report["layers"][0]
    assert first["adc_conversions"] == first["n"] * len(first["row_tiles"])
    out = program.run(example("mlp", 2) ** 2, mode="acim").output
    assert np.isfinite(out).all()


def test_static_scales_need_calibration_data():
    chip = replace(CHIP, quant=replace(CHIP.quant, input="static"))
    with pytest.raises(UsageError, match="--input-scales"):
        asimc.compile(export("mlp", dynamo=False), chip)


def _rewrite(path, member, change):
    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    files[member] = change(files[member])
    with zipfile.ZipFile(path, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)


def test_artifact_integrity_checks(tmp_path):
    program = asimc.compile(export("mlp", dynamo=False), CHIP)
    good = tmp_path / "good.asimc"
    program.save(good)
    assert load_program(good).report == program.report

    tampered = tmp_path / "tampered.asimc"
    program.save(tampered)
    _rewrite(tampered, "program.json", lambda b: b.replace(b'"ideal', b'"IDEAL'))
    _rewrite(tampered, "tensors.npz", lambda b: b[:-1] + bytes([b[-1] ^ 1]))
    with pytest.raises(ArtifactError, match="hash mismatch"):
        load_program(tampered)

    newer = tmp_path / "newer.asimc"
    program.save(newer)

    def bump(data):
        doc = json.loads(data)
        doc["format_version"] = 99
        return json.dumps(doc, indent=1, sort_keys=True).encode()

    _rewrite(newer, "program.json", bump)
    with zipfile.ZipFile(newer) as z:                        # reseal: only the version differs
        from asimc.artifact import _digest
        sealed = _digest(z.read("program.json"), z.read("tensors.npz"))
    _rewrite(newer, "sha256", lambda _: sealed.encode())
    with pytest.raises(ArtifactError, match="newer|format 99"):
        load_program(newer)

    truncated = tmp_path / "truncated.asimc"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ArtifactError, match="truncated|not an asimc"):
        load_program(truncated)
    with pytest.raises(ArtifactError, match="no such file"):
        load_program(tmp_path / "missing.asimc")


def test_schedule_places_every_tile_and_accumulates_the_row_tiles(tmp_path):
    torch.manual_seed(0)
    onnx_bytes = onnx_of(nn.Conv2d(64, 128, 3, padding=1), 1, 64, 16, 16)
    program = asimc.compile(onnx_bytes, replace(CHIP, array=ArraySpec(rows=255, cols=256,
                                                                        macros=5)))
    (layer,) = program.layers.values()
    assert len(layer.schedule) == 12                       # 3 row tiles x 4 column tiles
    assert [t.macro for t in layer.schedule[:6]] == [0, 1, 2, 3, 4, 0]
    assert layer.schedule[-1].wave == 2                     # 12 tiles on 5 macros: 3 waves
    covered = {(t.row_tile, c) for t in layer.schedule for c in range(*t.channels)}
    assert len(covered) == 3 * 128                          # every (row tile, channel) once
    assert (layer.accumulate.row_tiles, layer.accumulate.outputs) == (3, 128)
    assert program.report["layers"][0]["waves"] == 3
    path = tmp_path / "conv.asimc"
    program.save(path)
    assert load_program(path).layers[layer.node] == layer
