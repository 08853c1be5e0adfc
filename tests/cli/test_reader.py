"""Issue 9, section 4: what a reader sees is true and says what it means."""
from __future__ import annotations

import os
import re
import pty
import subprocess
import sys
import threading
import warnings

from .conftest import ROOT, cli, cli_streams


def test_pyproject_configures_without_deprecation_warnings():
    """`pip install` printed setuptools' `project.license` table deprecation."""
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        apply_configuration(Distribution(), ROOT / "pyproject.toml")
    assert [str(w.message) for w in caught] == []


def test_compare_table_says_what_each_row_and_cell_means(files, tmp_path):
    nameless = tmp_path / "no-energy.acim"
    nameless.write_text('chip "no-energy" { array { rows 64 cols 128 } adc { bits 6 } '
                        'input { bits 4 } weight { bits 4 } }\n')
    code, text = cli("compare", files / "cnn.onnx", "--chips", files / "chip.acim", nameless,
                     "--data", files / "data.npz", "--seeds", "1")
    assert code == 0, text
    lines = text.splitlines()
    assert "SQNR vs fp32" in lines[1]
    int_rows = [re.split(r"\s{2,}", l)[1] for l in lines if l.startswith("int ")]
    # The int model has no ADC (and no input encoding): its label has neither.
    assert sorted(int_rows) == ["W4 A4u", "W8 A8u"]
    assert "  int W8 A8u: the baseline of cli-small" in lines
    assert "  int W4 A4u: the baseline of no-energy" in lines
    assert "against the fp32 model's outputs" in text
    row = next(l for l in lines if l.startswith("no-energy "))
    assert row.split()[-2:] == ["-", "-"]
    assert "'-' on a chip row: its chip file gives no energy figures" in text


def test_compile_report_tile_columns_both_count_tiles(files, tmp_path):
    code, text = cli("compile", files / "cnn.onnx", "--chip", files / "chip.acim",
                     "-o", tmp_path / "c.asimc")
    lines = text.splitlines()
    header = lines[1]
    columns = {name: header.index(name) for name in ("row tiles", "rows per tile", "col tiles")}
    row = next(l for l in lines if l.startswith("/blocks/blocks.0/conv1/conv/Conv "))
    # 144 rows of a 3x3x16 conv on 64-row arrays: 3 row tiles (channel groups of 7, 7, 2)
    cells = row[columns["row tiles"]:].split()
    assert cells[0] == "3" and cells[1] == "63+63+18" and cells[2] == "1"


def test_progress_in_a_log_is_one_line_per_finished_step(files):
    code, out, err = cli_streams("compare", files / "cnn.onnx", "--chips", files / "chip.acim",
                                 "--data", files / "data.npz", "--seeds", "2")
    steps = [l for l in err.splitlines() if l.startswith("comparing chips [")]
    assert [l.split("]")[0] for l in steps] == [f"comparing chips [{i}/4" for i in range(1, 5)]
    assert "cli-small: seed 1 done in" in steps[-1] and "comparing" not in out
    code, out, err = cli_streams("golden", files / "cnn.onnx", "--chip", files / "chip.acim",
                                 "--data", files / "data.npz")
    assert len([l for l in err.splitlines() if l.startswith("golden ladder [")]) == 5


def test_progress_on_a_terminal_shows_the_chip_and_an_eta(files):
    """stderr on a real pseudo-terminal: the bar names the chip being run and the time left."""
    main, secondary = pty.openpty()
    chunks = []
    reader = threading.Thread(target=_drain, args=(main, chunks), daemon=True)
    reader.start()
    done = subprocess.run(
        [sys.executable, "-m", "asimc", "compare", files / "mlp.onnx", "--chips",
         files / "chip.acim", "--data", files / "data.npz", "--seeds", "3"],
        stdout=subprocess.PIPE, stderr=secondary, timeout=300,
        env={**os.environ, "COLUMNS": "160", "TERM": "xterm"})
    os.close(secondary)
    reader.join(timeout=10)
    screen = b"".join(chunks).decode(errors="replace")
    assert done.returncode == 0
    assert "cli-small: seed" in screen and "ETA" in screen
    assert "done in" not in screen        # the log lines are for logs only


def _drain(fd, chunks):
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            return
        if not data:
            return
        chunks.append(data)
