"""Issue 9, section 1: bad input that used to crash with "internal error" now gets a clear
message and exit code 2 (or ends quietly, for a closed pipe)."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from .conftest import cli, no_internal_error


@pytest.mark.parametrize("mode", ["acim", "float", "int"])
def test_run_on_zero_samples_says_so(files, tmp_path, mode):
    empty = tmp_path / "empty.npy"
    np.save(empty, np.zeros((0, 1, 8, 8), np.float32))
    code, text = cli("run", files / "cnn.asimc", "--input", empty, "--mode", mode)
    no_internal_error(code, text)
    assert code == 2 and "holds no samples" in text


def test_run_output_into_a_missing_folder_is_refused_before_running(files, tmp_path):
    target = tmp_path / "missing" / "out.npy"
    code, text = cli("run", files / "cnn.asimc", "--input", files / "x.npy", "-o", target)
    assert code == 2 and "does not exist" in text and "missing" in text
    code, text = cli("run", files / "cnn.asimc", "--input", files / "x.npy", "-o", tmp_path)
    assert code == 2 and "is a folder" in text
    code, text = cli("compile", files / "cnn.onnx", "--chip", files / "chip.acim",
                     "-o", tmp_path / "missing" / "cnn.asimc")
    assert code == 2 and "does not exist" in text
    code, text = cli("golden", files / "cnn.onnx", "--chip", files / "chip.acim", "--data",
                     files / "data.npz", "--report", tmp_path / "missing" / "r.html")
    assert code == 2 and "does not exist" in text and "PASS" not in text


@pytest.mark.parametrize("value", ["0", "-4"])
def test_batch_size_must_be_positive(files, value):
    code, text = cli("compare", files / "cnn.onnx", "--chips", files / "chip.acim",
                     "--data", files / "data.npz", "--batch-size", value)
    no_internal_error(code, text)
    assert code == 2 and "--batch-size" in text and "positive" in text


def test_batch_size_is_checked_in_the_python_api_too(files):
    from asimc.compare import compare_chips
    from asimc.errors import UsageError
    with pytest.raises(UsageError, match="batch size"):
        compare_chips(files / "cnn.onnx", [files / "chip.acim"], files / "data.npz",
                      batch_size=0)


def _rewrite_program_json(source, target, edit):
    """The artifact with program.json edited and the content hash recomputed, as an attacker
    or a careless script would do, so that it passes the hash check."""
    from asimc.artifact import _digest
    with zipfile.ZipFile(source) as z:
        doc = json.loads(z.read("program.json"))
        tensors = z.read("tensors.npz")
    edit(doc)
    program_json = json.dumps(doc).encode()
    with zipfile.ZipFile(target, "w") as z:
        z.writestr("program.json", program_json)
        z.writestr("tensors.npz", tensors)
        z.writestr("sha256", _digest(program_json, tensors))
    return target


@pytest.mark.parametrize("edit", [
    lambda d: d.update(format_version="1"),
    lambda d: d.pop("graph"),
    lambda d: d.update(layers="none"),
    lambda d: d["report"].pop("total"),
], ids=["format_version-string", "no-graph", "layers-not-a-list", "report-without-total"])
@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_inspect_a_malformed_artifact(files, tmp_path, edit, json_flag):
    broken = _rewrite_program_json(files / "cnn.asimc", tmp_path / "broken.asimc", edit)
    code, text = cli("inspect", broken, *json_flag)
    no_internal_error(code, text)
    assert code == 2 and "malformed" in text and "compile the model again" in text


@pytest.mark.parametrize("command", [["chip", "show", "{chip}"], ["inspect", "--json", "{art}"],
                                     ["ops"]])
def test_a_closed_pipe_ends_quietly(files, command):
    """`asimc chip show X | head -1`: the reader goes away; no traceback, no message."""
    argv = [a.format(chip=files / "chip.acim", art=files / "cnn.asimc") for a in command]
    process = subprocess.Popen([sys.executable, "-m", "asimc", *argv], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    process.stdout.close()          # before asimc writes a byte: every write hits EPIPE
    error = process.stderr.read().decode()
    process.wait(timeout=60)
    assert error == "", error
    assert process.returncode in (0, 141)
