"""asimc.finetune on a torch.nn.Module: the chip accuracy rises on a noisy chip and the user's
module holds the trained weights; a run that only hurts keeps the weights it started from and
says so, in the API and the CLI."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

import asimc
from asimc.cli import main
from asimc.data import load_dataset
from asimc.errors import InputDataError, UsageError

ROOT = Path(__file__).resolve().parents[2]
NOISY = ROOT / "examples" / "chips" / "noisy-0.4lsb.acim"
MLP = ROOT / "examples" / "models" / "digits_mlp.onnx"


def _example():
    """examples/from_pytorch.py: its CNN, float training and loaders."""
    spec = importlib.util.spec_from_file_location("from_pytorch",
                                                  ROOT / "examples" / "from_pytorch.py")
    if spec.name not in sys.modules:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[spec.name] = module
    return sys.modules[spec.name]


def _trained_cnn(epochs: int = 5):
    return _example().trained_model(epochs)


def _state(model) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


@pytest.mark.slow
def test_finetune_raises_the_chip_accuracy_and_writes_the_weights_into_the_module():
    model = _trained_cnn()
    start = _state(model)
    train, test = load_dataset("digits:train"), load_dataset("digits")
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(
        torch.from_numpy(train.x[:640]), torch.from_numpy(train.y[:640])), batch_size=64)
    x_val, y_val = torch.from_numpy(test.x[:200]), torch.from_numpy(test.y[:200])
    result = asimc.finetune(model, NOISY, loader, val=(x_val, y_val), example_inputs=x_val[:1],
                            epochs=2, lr=1e-2, noise="analytic", eval_seeds=2, seed=0)
    assert result.after.chip_mean > result.before.chip_mean + 0.05
    assert result.best_epoch >= 1
    # the module holds the trained values under its own names (BatchNorm's too)
    trained = {i.name: numpy_helper.to_array(i) for i in result.model.graph.initializer}
    now = _state(model)
    for name in ("conv1.weight", "bn1.weight", "bn1.bias", "conv2.bias", "fc.weight"):
        assert np.array_equal(now[name], trained[name]), name
        assert not np.array_equal(now[name], start[name]), name
    assert np.array_equal(now["bn1.running_var"], start["bn1.running_var"])
    # compiled again from the updated module, the chip scores what fine-tuning measured
    module = asimc.on_chip(model, NOISY, x_val[:1], seed=0)
    with torch.no_grad():
        accuracy = int((module(x_val).argmax(1) == y_val).sum()) / len(y_val)
    assert accuracy == pytest.approx(result.after.chip[0], abs=1e-9)


@pytest.mark.slow
def test_a_run_that_only_hurts_keeps_the_weights_and_says_so():
    model = _trained_cnn(4)
    start = _state(model)
    test = load_dataset("digits")
    x, y = test.x[:128], test.y[:128]
    result = asimc.finetune(model, NOISY, (x, y), val=(test.x[128:256], test.y[128:256]),
                            example_inputs=torch.from_numpy(x[:1]), epochs=1, lr=50.0,
                            optimizer="sgd", noise="analytic", eval_seeds=1)
    assert result.best_epoch == 0
    assert result.epochs[0].chip_accuracy < result.before.chip[0]
    assert result.after.chip == result.before.chip
    assert any("did not raise the chip accuracy" in w for w in result.warnings)
    assert all(np.array_equal(v, start[k]) for k, v in _state(model).items())


def test_a_cli_run_that_only_hurts_writes_the_original_weights(tmp_path, capsys):
    data = load_dataset("digits")
    train, val = tmp_path / "train.npz", tmp_path / "val.npz"
    np.savez(train, x=data.x[:128], y=data.y[:128])
    np.savez(val, x=data.x[128:256], y=data.y[128:256])
    out = tmp_path / "out.onnx"
    code = main(["finetune", str(MLP), "--chip", str(NOISY), "--data", str(train), "--val",
                 str(val), "-o", str(out), "--epochs", "1", "--lr", "50", "--optimizer", "sgd",
                 "--noise", "analytic", "--seeds", "1"])
    captured = capsys.readouterr()
    assert code == 0
    assert "did not raise the chip accuracy" in captured.err
    assert "recovered -" not in captured.out
    original = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(MLP)).graph.initializer}
    written = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(out)).graph.initializer}
    assert all(np.array_equal(written[k], v) for k, v in original.items())


def test_bad_data_and_settings_are_refused_before_training():
    model = _example().SmallCNN().eval()
    x = torch.zeros(4, 1, 8, 8)
    with pytest.raises(InputDataError, match="expected integer class labels"):
        asimc.finetune(model, NOISY, (x, torch.tensor([0.5, 1, 2, 3])), example_inputs=x,
                       exporter="torchscript")
    with pytest.raises(InputDataError, match="3 labels but x has 4 samples"):
        asimc.finetune(model, NOISY, (x, torch.tensor([0, 1, 2])), example_inputs=x,
                       exporter="torchscript")
    with pytest.raises(UsageError, match="unknown fine-tuning setting"):
        asimc.finetune(model, NOISY, (x, torch.tensor([0, 1, 2, 3])), example_inputs=x,
                       epoch=3)
    with pytest.raises(UsageError, match="example_inputs"):
        asimc.finetune(model, NOISY, (x, torch.tensor([0, 1, 2, 3])))
