"""PyTorch in, PyTorch out: asimc.compile on a torch.nn.Module (either exporter), the module's
own names in the report and the globs, costs for every layer, Program.module() equal to
Program.run bit for bit, gradients through every on-chip op type, and bad input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import asimc
from asimc.errors import AsimcError, ModelError, UsageError

ROOT = Path(__file__).resolve().parents[2]
CHIP = ROOT / "chips" / "asim-bitserial-255.acim"
NOISY = ROOT / "examples" / "chips" / "noisy-0.4lsb.acim"
EXPORTERS = ("dynamo", "torchscript")


class Block(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(y)))


class ResidualCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.layer1 = nn.Sequential(Block(8), Block(8))
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.layer1(self.stem(x))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class Encoder(nn.Module):
    """Batch-first nn.MultiheadAttention (a packed in-projection), LayerNorm, an MLP."""

    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 4, batch_first=True)
        self.norm = nn.LayerNorm(16)
        self.mlp = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16))
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        x = self.norm(x + self.attn(x, x, x, need_weights=False)[0])
        x = x + self.mlp(x)
        return self.head(x.mean(dim=1)), x          # two outputs, as a tuple


def _cnn():
    torch.manual_seed(0)
    model = ResidualCNN()
    for module in model.modules():                  # BatchNorm statistics worth folding
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval(), torch.randn(6, 1, 8, 8)


def _encoder():
    torch.manual_seed(0)
    return Encoder().eval(), torch.randn(6, 7, 16)


MODELS = {"cnn": _cnn, "encoder": _encoder}
CNN_LAYERS = {"stem.0", "layer1.0.conv1", "layer1.0.conv2", "layer1.1.conv1", "layer1.1.conv2",
              "fc"}
_PROGRAMS: dict = {}


def _compiled(name: str, exporter: str):
    """(model, example batch, program), compiled once per test session (exports take
    seconds)."""
    key = (name, exporter)
    if key not in _PROGRAMS:
        model, x = MODELS[name]()
        _PROGRAMS[key] = model, x, asimc.compile(model, CHIP, example_inputs=x[:1],
                                                 exporter=exporter)
    return _PROGRAMS[key]


def _flat(outputs):
    return [outputs] if isinstance(outputs, torch.Tensor) else list(outputs)


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", ["cnn", "encoder"])
def test_float_mode_is_the_module_and_names_are_module_paths(name, exporter):
    model, x, program = _compiled(name, exporter)
    with torch.no_grad():
        expected = _flat(model(x))
        ours = _flat(program.module(mode="float")(x))
    assert len(ours) == len(expected)
    for got, want in zip(ours, expected):
        assert got.shape == want.shape
        rel = float((got - want).abs().max() / want.abs().max())
        assert rel <= 1e-5
    names = set(program.layers)
    if name == "cnn":
        assert names == CNN_LAYERS
        assert {l.op_type for l in program.layers.values()} == {"Conv", "Gemm"}
    else:
        # the in-projection, Q.K^T and A.V are the attention module's; the MLP's are its own
        assert {"mlp.0", "mlp.2", "head"} <= names
        assert sum(n.startswith("attn/") for n in names) == 4
    # the batch stays dynamic, every layer has its cost (the packed in-projection too)
    assert not isinstance(program.graph.inputs[0].shape[0], int)
    assert all(l.cost is not None and l.cost.macs for l in program.layers.values())
    assert {row["node"] for row in program.report["layers"]} >= names


def test_module_names_drive_digital_globs_and_chip_layer_overrides(tmp_path):
    model, x, _ = _compiled("cnn", "dynamo")
    chip = tmp_path / "override.acim"
    chip.write_text(f'chip "override" extends "{CHIP}" {{\n'
                    '    layer "layer1.1.*" { adc { bits 6 } }\n}\n')
    program = asimc.compile(model, chip, example_inputs=x[:1], digital=["fc"])
    assert program.layers["fc"].placement == "digital"
    assert {n for n, l in program.layers.items() if l.chip.adc.bits == 6} == \
        {"layer1.1.conv1", "layer1.1.conv2"}


def _per_sample_chip(tmp_path) -> Path:
    chip = tmp_path / "per-sample.acim"
    chip.write_text(f'chip "per-sample" extends "{NOISY}" {{ quant {{ input per_sample }} }}\n')
    return chip


@pytest.mark.parametrize("name", ["cnn", "encoder"])
def test_acim_module_is_program_run_bit_for_bit_and_batch_independent(name, tmp_path):
    model, x, _ = _compiled(name, "dynamo")
    program = asimc.compile(model, _per_sample_chip(tmp_path), example_inputs=x[:1])
    module = program.module(mode="acim", seed=5)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    expected = program.run(x.numpy(), mode="acim", seed=5).outputs
    for device in devices:
        outputs = _flat(module(x.to(device)))
        assert [o.device.type for o in outputs] == [device] * len(outputs)
        for got, want in zip(outputs, expected.values()):
            assert np.array_equal(got.cpu().numpy(), want)
        one_by_one = [_flat(module(x[i:i + 1].to(device))) for i in range(len(x))]
        for k, got in enumerate(outputs):
            assert torch.equal(torch.cat([o[k] for o in one_by_one]), got)
    # the chip's noise is really there, and the seed picks it
    assert not np.array_equal(expected[next(iter(expected))],
                              program.run(x.numpy(), mode="float").output)


def test_on_chip_one_liner_and_loader_loop():
    model, x, program = _compiled("cnn", "dynamo")
    module = asimc.on_chip(model, CHIP, x[:1], mode="int")
    assert isinstance(module, nn.Module)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.arange(6)),
                                         batch_size=4)
    with torch.no_grad():
        outputs = torch.cat([module(batch) for batch, _ in loader])
    assert outputs.shape == (6, 10)
    assert np.array_equal(outputs[:4].numpy(), program.run(x[:4].numpy(), mode="int").output)


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_gradients_reach_every_parameter_through_every_on_chip_op_type(exporter):
    op_kinds = set()
    for name in ("cnn", "encoder"):
        model, x, program = _compiled(name, exporter)
        op_kinds |= {(l.op_type, l.kind) for l in program.layers.values() if l.on_chip}
        module = program.module(mode="acim").train()
        # every parameter of the user's module is a parameter here, under its own name
        assert set(module.names) == {n for n, _ in model.named_parameters()}
        outputs = _flat(module(x))
        sum(o.square().mean() for o in outputs).backward()
        for param_name, param in zip(module.names, module.weights):
            assert param.grad is not None and torch.isfinite(param.grad).all(), param_name
            assert param.grad.abs().sum() > 0, param_name
    assert {("Conv", "static"), ("Gemm", "static"), ("MatMul", "static"),
            ("MatMul", "dynamic")} <= op_kinds


def test_weights_changed_in_place_recompile_the_chip():
    model, x, program = _compiled("cnn", "dynamo")
    module = program.module(mode="int")
    with torch.no_grad():
        before = module(x)
        module.weights[module.names.index("fc.weight")].mul_(-1)
        after = module(x)
    assert not torch.equal(before, after)
    assert module.program() is not program


def test_no_example_inputs_is_a_usage_error():
    model, _ = _cnn()
    with pytest.raises(UsageError, match="example_inputs"):
        asimc.compile(model, CHIP)
    with pytest.raises(UsageError, match="not a str"):
        asimc.compile(model, CHIP, example_inputs="x")


class DataDependent(nn.Module):
    def forward(self, x):
        if x.sum() > 0:                     # python control flow on a value: torch.export refuses
            return x * 2
        return x


def test_an_exporter_failure_names_the_module_and_torchs_reason():
    with pytest.raises(ModelError) as error:
        asimc.compile(DataDependent(), CHIP, example_inputs=torch.ones(2, 4))
    message = str(error.value)
    assert message.startswith("torch could not export DataDependent to ONNX (dynamo exporter)")
    assert "Traceback" not in message and len(message) < 600
    assert error.value.exit_code == 2 and isinstance(error.value, AsimcError)


def test_an_onnx_files_attention_costs_come_from_a_float_run_on_the_input_shape(tmp_path):
    """Static shape inference cannot follow nn.MultiheadAttention's packed in-projection
    through the legacy exporter's Shape/Gather chains when the sequence is symbolic too: the
    given --input-shape's float run measures it."""
    import io
    import warnings
    model, x = _encoder()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), buffer, dynamo=False, input_names=["x"],
                          dynamic_axes={"x": {0: "batch", 1: "tokens"}})
    unknown = asimc.compile(buffer.getvalue(), CHIP)
    assert any(l.cost.macs is None for l in unknown.layers.values())     # never a guess
    program = asimc.compile(buffer.getvalue(), CHIP, input_shape=(7, 16))
    costs = {n: l.cost.macs for n, l in program.layers.items()}
    assert all(costs.values()), costs
    in_projection = next(n for n, l in program.layers.items() if l.k == 16 and l.n == 48)
    assert costs[in_projection] == 7 * 16 * 48
    # the same as the module compiled with a 7-token example
    _, _, from_module = _compiled("encoder", "torchscript")
    assert sum(costs.values()) == sum(l.cost.macs for l in from_module.layers.values())
