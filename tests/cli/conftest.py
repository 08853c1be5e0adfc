"""Files a user would have: the bundled digits models, a small chip, data, an artifact; and
``cli(...)``, which runs ``asimc`` in this process (fast) and returns (exit code, output)."""
from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "examples" / "models"

CHIP_TEXT = """chip "cli-small" {
    array  { rows 64 cols 128 macros 4 }
    adc    { bits 6 }
    noise  { random 0.5 lsb }
    energy { mac 2 fJ adc 0.4 pJ clock 100 MHz }
}
"""


def cli_streams(*args) -> tuple[int, str, str]:
    """Run `asimc ARGS...` in-process: (exit code, stdout, stderr)."""
    from asimc.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as stop:          # argparse's own usage errors
            code = stop.code if isinstance(stop.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def cli(*args) -> tuple[int, str]:
    """Run `asimc ARGS...` in-process: (exit code, stdout and stderr together)."""
    code, out, err = cli_streams(*args)
    return code, out + err


def cli_json(*args):
    """Run `asimc ARGS... --json`-style commands: (exit code, stdout parsed strictly)."""
    code, out, err = cli_streams(*args)
    assert code == 0, out + err
    return code, strict_loads(out)


def strict_loads(text: str):
    """json.loads that refuses Infinity and NaN, as strict parsers (JavaScript, jq) do."""
    def refuse(name):
        raise ValueError(f"not JSON: {name}")
    return json.loads(text, parse_constant=refuse)


def no_internal_error(code: int, text: str) -> None:
    assert code != 3, text
    assert "internal error" not in text and "Traceback" not in text, text


def symbolic_spatial(source: Path, target: Path) -> Path:
    """The model with its input's H and W made symbolic (N x C x H x W)."""
    model = onnx.load(source)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for axis, name in ((2, "H"), (3, "W")):
        dims[axis].Clear()
        dims[axis].dim_param = name
    del model.graph.value_info[:]
    onnx.save(model, target)
    return target


@pytest.fixture(scope="session")
def files(tmp_path_factory):
    from asimc.data import load_dataset
    folder = tmp_path_factory.mktemp("cli-files")
    shutil.copy(MODELS / "digits_cnn.onnx", folder / "cnn.onnx")
    shutil.copy(MODELS / "digits_mlp.onnx", folder / "mlp.onnx")
    shutil.copy(MODELS / "digits_vit.onnx", folder / "vit.onnx")
    symbolic_spatial(MODELS / "digits_cnn.onnx", folder / "cnn_hw.onnx")
    (folder / "chip.acim").write_text(CHIP_TEXT)
    digits = load_dataset("digits", limit=12)
    np.save(folder / "x.npy", digits.x)
    np.savez(folder / "data.npz", x=digits.x, y=digits.y)
    code, text = cli("compile", folder / "cnn.onnx", "--chip", folder / "chip.acim",
                     "-o", folder / "cnn.asimc")
    assert code == 0, text
    code, text = cli("compile", folder / "mlp.onnx", "--chip", folder / "chip.acim",
                     "-o", folder / "mlp.asimc")
    assert code == 0, text
    return folder
