"""`asimc compile`, `asimc inspect` and `asimc run` as a user types them."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from frontend.torch_models import example, export

CHIP_TEXT = """chip "cli-test" {
    array  { rows 64 cols 128 macros 4 }
    adc    { bits 6 }
    noise  { random 1 lsb }
    energy { mac 2 fJ adc 0.4 pJ clock 100 MHz }
}
"""


def asimc(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "asimc", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    (folder / "model.onnx").write_bytes(export("cnn", dynamo=False))
    (folder / "chip.acim").write_text(CHIP_TEXT)
    np.save(folder / "x.npy", np.abs(example("cnn", 4)))
    return folder


def test_compile_inspect_run(files):
    artifact = files / "model.asimc"
    done = asimc("compile", files / "model.onnx", "--chip", files / "chip.acim", "-o", artifact)
    assert done.returncode == 0, done.stderr
    assert "row tiles" in done.stdout and "ADC conversions" in done.stdout and artifact.exists()

    done = asimc("inspect", artifact, "--json")
    report = json.loads(done.stdout)
    assert report["chip"] == "cli-test" and report["total"]["energy_j"] > 0

    out = files / "y.npy"
    done = asimc("run", artifact, "--input", files / "x.npy", "--seed", 3, "-o", out)
    assert done.returncode == 0, done.stderr
    first = np.load(out)
    assert first.shape == (4, 10)
    again = files / "y2.npy"
    asimc("run", artifact, "--input", files / "x.npy", "--seed", 3, "-o", again,
          "--memory-budget", "64K")
    assert np.array_equal(first, np.load(again))
    ideal = files / "y_int.npy"
    asimc("run", artifact, "--input", files / "x.npy", "--mode", "int", "-o", ideal)
    assert not np.array_equal(first, np.load(ideal))


@pytest.mark.parametrize("args, message", [
    (["run", "{a}", "--input", "{f}/missing.npy"], "missing.npy: no such file"),
    (["run", "{a}", "--input", "{f}/chip.acim"], "not a NumPy .npy or .npz file"),
    (["run", "{f}/chip.acim", "--input", "{f}/x.npy"], "not an asimc artifact"),
    (["run", "{a}", "--input", "{f}/x.npy", "--device", "cuda"], "CUDA"),
    (["run", "{a}", "--input", "{f}/x.npy", "--memory-budget", "lots"], "cannot read the size"),
    (["compile", "{f}/x.npy", "--chip", "{f}/chip.acim", "-o", "{f}/bad.asimc"], "x.npy"),
])
def test_bad_input_gets_a_clear_error_and_exit_2(files, args, message):
    artifact = files / "model.asimc"
    if not artifact.exists():
        asimc("compile", files / "model.onnx", "--chip", files / "chip.acim", "-o", artifact)
    # No GPU visible, also on a machine that has one: the CUDA case must fail cleanly.
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = asimc(*[a.format(a=artifact, f=files) for a in args], env=env)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_wrong_input_shape_names_expected_and_got(files):
    artifact = files / "model.asimc"
    if not artifact.exists():
        asimc("compile", files / "model.onnx", "--chip", files / "chip.acim", "-o", artifact)
    np.save(files / "wrong.npy", np.zeros((2, 3, 8, 8), np.float32))
    done = asimc("run", artifact, "--input", files / "wrong.npy")
    assert done.returncode == 2
    assert "expected shape [batch, 1, 8, 8], got (2, 3, 8, 8)" in done.stderr
