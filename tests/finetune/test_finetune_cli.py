"""``asimc finetune`` through the command line: it improves the chip accuracy, writes a valid
ONNX file with the original graph, is reproducible from --seed, and refuses bad input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import asimc
from asimc.data import load_dataset
from asimc.cli import main

ROOT = Path(__file__).resolve().parents[2]
MLP = ROOT / "examples" / "models" / "digits_mlp.onnx"
CHIP = ROOT / "examples" / "chips" / "noisy-0.5lsb.acim"


def _run(capsys, *args):
    code = main(["finetune", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _subsets(directory: Path) -> tuple[Path, Path]:
    """The first 512 training and 200 test images of digits (the splits do not overlap): a
    short run that still shows the effect."""
    train, val = directory / "train.npz", directory / "val.npz"
    if not train.exists():
        for path, spec, count in ((train, "digits:train", 512), (val, "digits", 200)):
            data = load_dataset(spec)
            np.savez(path, x=data.x[:count], y=data.y[:count])
    return train, val


def _finetune_json(capsys, out, *extra):
    train, val = _subsets(out.parent)
    code, stdout, err = _run(capsys, MLP, "--chip", CHIP, "--data", train,
                             "--val", val, "-o", out, "--json", *extra)
    assert code == 0, err
    return json.loads(stdout)


def test_finetune_improves_the_chip_accuracy_and_writes_the_same_graph(tmp_path, capsys):
    out, report = tmp_path / "mlp_chip.onnx", tmp_path / "report.html"
    result = _finetune_json(capsys, out, "--epochs", "3", "--seeds", "2", "--report", report)
    before, after = result["before"], result["after"]
    # 0.5 LSB of noise costs the MLP ~35 points; three short exact-mode epochs win back more than 10
    assert before["fp32_accuracy"] - before["chip_accuracy_mean"] > 0.25
    assert after["chip_accuracy_mean"] > before["chip_accuracy_mean"] + 0.10
    assert after["fp32_accuracy"] > before["fp32_accuracy"] - 0.03
    assert len(after["chip_accuracy"]) == 2 and result["recovered"] > 0.25

    trained, original = onnx.load(str(out)), onnx.load(str(MLP))
    onnx.checker.check_model(trained, full_check=True)
    assert [(n.name, n.op_type, list(n.input)) for n in trained.graph.node] == \
        [(n.name, n.op_type, list(n.input)) for n in original.graph.node]
    new = {i.name: numpy_helper.to_array(i) for i in trained.graph.initializer}
    old = {i.name: numpy_helper.to_array(i) for i in original.graph.initializer}
    assert new.keys() == old.keys() and all(new[k].shape == old[k].shape for k in old)
    assert any(not np.array_equal(new[k], old[k]) for k in old)
    # onnxruntime runs the written file like asimc's own float execution of it
    x = load_dataset("digits").x[:32].reshape(32, -1)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    ours = asimc.compile(str(out), CHIP).run(x, mode="float").output
    np.testing.assert_allclose(session.run(None, {session.get_inputs()[0].name: x})[0], ours,
                               rtol=1e-4, atol=1e-5)
    page = report.read_text()
    assert "data:image/png;base64," in page and "Recovered" in page


def test_same_seed_same_model_other_seed_other_model(tmp_path, capsys):
    runs = []
    for seed in (5, 5, 6):
        out = tmp_path / f"seed{seed}_{len(runs)}.onnx"
        _finetune_json(capsys, out, "--epochs", "1", "--seeds", "1", "--noise", "analytic",
                       "--seed", seed, "--optimizer", "sgd", "--lr", "0.01")
        runs.append({i.name: numpy_helper.to_array(i).tobytes()
                     for i in onnx.load(str(out)).graph.initializer})
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_asim_mode_runs(tmp_path, capsys):
    result = _finetune_json(capsys, tmp_path / "a.onnx", "--epochs", "1", "--seeds", "1",
                            "--noise", "asim")
    assert result["options"]["noise"] == "asim" and result["epochs"][0]["loss"] > 0


def _bad(capsys, tmp_path, *args, model=MLP, data="digits:train"):
    code, out, err = _run(capsys, model, "--chip", CHIP, "--data", data,
                          "-o", tmp_path / "o.onnx", *args)
    assert code == 2, (out, err)
    assert "Traceback" not in err and "internal error" not in err
    assert not (tmp_path / "o.onnx").exists()
    return err


def test_epochs_zero_is_refused(tmp_path, capsys):
    assert "--epochs must be at least 1" in _bad(capsys, tmp_path, "--epochs", "0")


def test_data_without_labels_is_refused(tmp_path, capsys):
    path = tmp_path / "unlabelled.npz"
    np.savez(path, x=load_dataset("digits:train").x[:50])
    assert "has no labels" in _bad(capsys, tmp_path, data=path)


def test_validation_data_equal_to_training_data_is_refused(tmp_path, capsys):
    assert "held-out" in _bad(capsys, tmp_path, "--val", "digits:train")


def test_overlapping_validation_data_is_reported(tmp_path, capsys):
    train, _ = _subsets(tmp_path)
    result = _finetune_json(capsys, tmp_path / "o.onnx", "--epochs", "1", "--seeds", "1",
                            "--noise", "analytic", "--val", "digits:train")
    assert any("512 of the 1347 validation samples also appear" in w
               for w in result["warnings"]), result["warnings"]


def test_model_without_trainable_weights_is_refused(tmp_path, capsys):
    """A quantised MatMul: int8 weights through DequantizeLinear, nothing a float gradient
    could update."""
    w = numpy_helper.from_array(np.ones((64, 10), np.int8), "w_q")
    scale = numpy_helper.from_array(np.array(0.01, np.float32), "w_scale")
    graph = helper.make_graph(
        [helper.make_node("DequantizeLinear", ["w_q", "w_scale"], ["w"], name="dq"),
         helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "int_only",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])], [w, scale])
    model = tmp_path / "int_only.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), model)
    err = _bad(capsys, tmp_path, model=model)
    assert "nothing to train" in err and "quantised" in err


@pytest.mark.parametrize("flag, value, message", [("--lr", "-1", "--lr must be a positive"),
                                                  ("--batch-size", "0", "--batch-size must")])
def test_bad_numbers_are_refused(tmp_path, capsys, flag, value, message):
    assert message in _bad(capsys, tmp_path, flag, value)


def test_labels_beyond_the_model_classes_are_refused(tmp_path, capsys):
    path = tmp_path / "labels.npz"
    data = load_dataset("digits:train")
    np.savez(path, x=data.x[:64], y=data.y[:64] + 10)
    assert "labels 0..9" in _bad(capsys, tmp_path, "--epochs", "1", data=path)
