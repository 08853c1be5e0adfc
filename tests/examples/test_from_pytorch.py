"""examples/from_pytorch.py runs end to end (a short run): float training, three chips over a
DataLoader, fine-tuning that writes into the module, and no ONNX file written anywhere."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_from_pytorch_example_runs_without_writing_an_onnx_file(tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "examples" / "from_pytorch.py"),
                          "--epochs", "4", "--finetune-epochs", "1", "--samples", "128"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert lines[0].startswith("FP32 (torch)")
    fp32 = float(re.search(r"([\d.]+) %", lines[0]).group(1))
    assert fp32 > 80
    chips = [line.split()[0] for line in lines[1:4]]
    assert chips == ["asim-bitserial-255", "asim-hcim-2", "noisy-0.4lsb"]
    assert all("(conv1, conv2, fc)" in line for line in lines[1:4])   # the module's names
    assert re.match(r"fine-tuned for noisy-0.4lsb: chip [\d.]+ % -> [\d.]+ % \(epoch \d kept\)",
                    lines[4])
    assert not list(tmp_path.rglob("*.onnx")) and not list(ROOT.glob("*.onnx"))
