"""The transformer remedies: per-token input scales (``quant { input per_token }``) and
compile-time smoothing (``smooth=DATA``, SmoothQuant), held to docs/numeric-model.md."""
from __future__ import annotations

import io
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

import asimc
from asimc.chip.spec import ChipSpec, InputSpec, NoiseSpec, QuantSpec, Quantity
from asimc.errors import ModelError, UsageError

from frontend.torch_models import example, export

SIGNED = replace(ChipSpec("ideal-255"), input=InputSpec(8, signed=True))
NOISY = replace(SIGNED, noise=NoiseSpec(Quantity(1, "lsb"), Quantity(0.5, "%")))
PER_TOKEN = QuantSpec(input="per_token")


def _onnx(module: nn.Module, x: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    torch.onnx.export(module.eval(), (x,), buffer, dynamo=False, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "b"}, "y": {0: "b"}})
    return buffer.getvalue()


def _linear(k: int = 6, n: int = 3) -> tuple[bytes, np.ndarray, np.ndarray]:
    torch.manual_seed(1)
    layer = nn.Linear(k, n, bias=False)
    return _onnx(layer, torch.randn(2, 4, k)), layer.weight.detach().numpy().T.copy(), None


def test_per_token_int_mode_is_the_numeric_model_by_hand():
    """One scale per row of X: s_x = max|X_row| + eps, Xq = round(clamp(|X|/s_x, 0, 1) Lx)
    sign(X), Y = (Xq Wq) s_w s_x / (Lw Lx), the division digital, per row."""
    onnx_bytes, w, _ = _linear()
    program = asimc.compile(onnx_bytes, replace(SIGNED, quant=PER_TOKEN))
    x = np.random.default_rng(0).normal(size=(2, 4, 6)).astype(np.float32)
    x[0, 1] *= 40.0                                      # one loud token
    eps, levels = np.float32(1e-7), 127
    s_w = np.float32(np.abs(w).max()) + eps
    wq = np.round(np.clip(np.abs(w) / s_w, 0, 1) * levels) * np.sign(w)
    s_x = np.abs(x).max(axis=-1, keepdims=True).astype(np.float32) + eps
    xq = np.round(np.clip(np.abs(x) / s_x, 0, 1) * levels) * np.sign(x)
    expected = ((xq.astype(np.float64) @ wq) * (np.float64(s_w) * s_x.astype(np.float64))
                / (levels * levels)).astype(np.float32)
    got = program.run(x, mode="int").output
    np.testing.assert_array_equal(got, expected)
    # and the acim mode of this lossless chip is the int mode, bit for bit
    np.testing.assert_array_equal(program.run(x, mode="acim").output, got)
    # per tensor, the loud token costs every other token its precision
    per_tensor = asimc.compile(onnx_bytes, SIGNED).run(x, mode="int").output
    exact = x @ w
    quiet = np.ones((2, 4), bool)
    quiet[0, 1] = False
    assert np.abs(got - exact)[quiet].max() < np.abs(per_tensor - exact)[quiet].max() / 5


@pytest.mark.parametrize("name", ["transformer", "attention"])
def test_per_token_scales_give_a_sample_the_same_numbers_alone_or_in_any_batch(name):
    program = asimc.compile(export(name, dynamo=False), replace(NOISY, quant=PER_TOKEN))
    x = example(name, 6, seed=3)
    batch = program.run(x, seed=7).output
    assert np.array_equal(program.run(x[4:5], seed=7).output[0], batch[4])
    assert np.array_equal(program.run(x[1:5], seed=7, memory_budget=1 << 14).output,
                          batch[1:5])


def test_per_token_where_rows_mix_samples_is_a_clear_error():
    class Mixes(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(x - x.mean(dim=0, keepdim=True))

    program = asimc.compile(_onnx(Mixes(), torch.randn(3, 4)), replace(SIGNED, quant=PER_TOKEN))
    with pytest.raises(ModelError, match="per-token scales.*cannot be followed"):
        program.run(np.random.rand(3, 4).astype(np.float32))


class _Outliers(nn.Module):
    """LayerNorm -> two projections (one LayerNorm output, two readers), then GELU -> a third:
    the shapes where smoothing folds 1/s into the LayerNorm or inserts a digital Mul."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.norm = nn.LayerNorm(16)
        with torch.no_grad():                 # two outlier channels, as trained BERTs have
            self.norm.weight[3] = 30.0
            self.norm.weight[11] = -25.0
        self.q, self.k = nn.Linear(16, 16), nn.Linear(16, 16)
        self.out = nn.Linear(16, 8)

    def forward(self, x):
        h = self.norm(x)
        return self.out(torch.nn.functional.gelu(self.q(h) * self.k(h)))


def test_smoothing_keeps_the_float_model_and_recovers_the_outliers_precision():
    onnx_bytes = _onnx(_Outliers(), torch.randn(2, 5, 16))
    data = np.random.default_rng(1).normal(size=(32, 5, 16)).astype(np.float32)
    x = np.random.default_rng(2).normal(size=(8, 5, 16)).astype(np.float32)
    chip = replace(SIGNED, quant=QuantSpec(weight="per_channel"))
    plain = asimc.compile(onnx_bytes, chip)
    smoothed = asimc.compile(onnx_bytes, chip, smooth=data, smooth_alpha=0.5)
    reference = plain.run(x, mode="float").output
    np.testing.assert_allclose(smoothed.run(x, mode="float").output, reference, rtol=1e-4,
                               atol=1e-5)
    notes = {l["node"]: l["note"] for l in smoothed.report["layers"]}
    assert any("folded into" in n for n in notes.values())          # q, k: into the LayerNorm
    assert any("applied digitally" in n for n in notes.values())    # out: a Mul after GELU

    def sqnr(program):           # of each on-chip layer's output against float, in dB
        floats, ints = (program.run(x, mode=m, taps=True) for m in ("float", "int"))
        return {name: 10 * np.log10((f ** 2).sum() / ((f - ints.taps[name]) ** 2).sum())
                for name, f in floats.taps.items()}, np.abs(ints.output - reference).mean()
    (before, error_before), (after, error_after) = sqnr(plain), sqnr(smoothed)
    projections = [name for name in before if "/q/" in name or "/k/" in name]
    assert len(projections) == 2
    # the two outlier channels no longer set the projections' input scale: 4x less error
    assert all(after[name] > before[name] + 5 for name in projections)
    assert error_after < error_before


def test_smoothing_options_are_checked():
    onnx_bytes = _onnx(_Outliers(), torch.randn(2, 5, 16))
    data = np.zeros((4, 5, 16), np.float32)
    with pytest.raises(UsageError, match="alpha.*0 to 1"):
        asimc.compile(onnx_bytes, SIGNED, smooth=data, smooth_alpha=1.5)


def test_smoothing_through_the_cli(tmp_path, capsys):
    from asimc.cli import main
    model = tmp_path / "outliers.onnx"
    model.write_bytes(_onnx(_Outliers(), torch.randn(2, 5, 16)))
    data = tmp_path / "calibration.npz"
    np.savez(data, x=np.random.default_rng(1).normal(size=(16, 5, 16)).astype(np.float32))
    chip = tmp_path / "chip.acim"
    chip.write_text('chip "c" { input { signed } quant { weight per_channel input per_token } }\n')
    code = main(["compile", str(model), "--chip", str(chip), "--smooth", str(data),
                 "--smooth-alpha", "0.6", "-o", str(tmp_path / "out.asimc"), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    notes = [layer["note"] for layer in json.loads(out)["layers"]]
    assert sum("smoothed (alpha 0.6" in note for note in notes) == 3
    # --smooth-alpha alone would silently do nothing: refused, nothing written
    code = main(["compile", str(model), "--chip", str(chip), "--smooth-alpha", "0.6",
                 "-o", str(tmp_path / "other.asimc")])
    _, err = capsys.readouterr()
    assert code == 2 and "--smooth DATA" in err and "Traceback" not in err
    assert not (tmp_path / "other.asimc").exists()


def test_finetuning_quantises_per_token_as_the_chip_does():
    """asimc finetune's forward (asimc.finetune.noise.ChipForward) takes the same per-token
    scales as the executor: on a noiseless lossless chip it is the int mode."""
    from asimc.finetune.noise import ChipForward
    from asimc.runtime.interpreter import run_graph
    program = asimc.compile(export("attention", dynamo=False), replace(SIGNED, quant=PER_TOKEN))
    x = example("attention", 4, seed=5)
    ints = program.run(x, mode="int").output
    floats = program.run(x, mode="float").output
    with torch.no_grad():
        trained = run_graph(program.graph, {"x": torch.from_numpy(x)}, batch_size=4,
                            hook=ChipForward(program.layers, "analytic")).outputs
    forward = next(iter(trained.values())).numpy()
    assert np.abs(forward - ints).max() < np.abs(floats - ints).max() / 100
