"""``asimc chip check|show|fmt`` as a user runs them: exit codes, output, never a traceback."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from asimc.cli import main
from asimc.resources import bundled_chips, chips_folder

from .test_chip_facts import FACT_KEYS, PERFORMANCE_KEYS


def asimc(*args: str, cwd=None) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "asimc", "chip", *map(str, args)],
                            capture_output=True, text=True, cwd=cwd, timeout=120)
    assert "Traceback" not in result.stdout + result.stderr
    assert "internal error" not in result.stderr
    return result


def in_process(capsys, *args: str) -> tuple[int, str, str]:
    """The same command through ``asimc.cli.main`` (fast, for the many-file loops)."""
    code = main(["chip", *map(str, args)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "internal error" not in err
    return code, out, err


@pytest.fixture()
def broken(tmp_path) -> Path:
    path = tmp_path / "broken.acim"
    path.write_text('chip "b" {\n    array { rowz 255 }\n    adc { bits 99 }\n}\n')
    return path


def test_check_all_bundled_chips_in_one_call():
    paths = bundled_chips()
    result = asimc("check", *paths)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f'{p}: ok (chip "{p.stem}")' for p in paths]


def test_check_reports_errors_with_location_and_exit_2(broken):
    result = asimc("check", broken)
    assert result.returncode == 2
    assert f"{broken}:2:13: error: `rowz` is not a field of `array`" in result.stderr
    assert "help: did you mean `rows`?" in result.stderr
    assert "   2 |     array { rowz 255 }\n" in result.stderr


def test_check_mixed_files_reports_each(broken, tmp_path):
    good = chips_folder() / "asim-bp2.acim"
    missing = tmp_path / "missing.acim"
    result = asimc("check", good, broken, missing, tmp_path)
    assert result.returncode == 2
    assert result.stdout == f'{good}: ok (chip "asim-bp2")\n'
    assert f"{missing}:1:1: error: no such chip file" in result.stderr
    assert f"{tmp_path}:1:1: error: this is a directory" in result.stderr
    assert "3 of 4 files have errors" in result.stderr


@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02\xff garbage", b"chip \"x\" {{{",
                                     b"\xc3\x28 invalid utf-8", b"chip \"x\" { rows 1e400 }"])
def test_bad_inputs_exit_2_with_a_located_error(tmp_path, capsys, content):
    path = tmp_path / "bad.acim"
    path.write_bytes(content)
    result = asimc("check", path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"{path}:") and ": error: " in result.stderr
    for command in (["show"], ["show", "--json"], ["fmt"]):
        code, out, err = in_process(capsys, *command, path)
        assert code == 2 and out == ""
        assert err.startswith(f"{path}:") and ": error: " in err


def test_show_prints_the_resolved_spec_and_facts():
    result = asimc("show", chips_folder() / "asim-bp4.acim")
    assert result.returncode == 0
    out = result.stdout
    assert out.startswith('chip "asim-bp4" {\n')
    assert "    input { bits 8 unsigned parallel 4 }\n" in out
    assert "extends" not in out
    assert "input cycles    2 (c0: bits 0-3, c1: bits 4-7)" in out
    assert "16 ADC conversions and 0 digital bit products" in out
    assert "\x1b[" not in out                        # no colour codes when piped
    assert all(line == line.rstrip() for line in out.splitlines())


def test_show_performance_lines():
    out = asimc("show", chips_folder() / "jia-jssc2021-16nm-4x4.acim").stdout
    assert "Peak performance" in out and "TOPS/W at W8xA8" in out
    assert "normalised to 1b x 1b" in out


def test_show_json_in_a_subprocess():
    result = asimc("show", chips_folder() / "asim-current.acim", "--json")
    assert result.returncode == 0
    data = json.loads(result.stdout)
    assert data["chip"]["domain"] == {"kind": "current", "alpha": 0.002,
                                      "cell_variation": {"value": 1.0, "unit": "%"}}


@pytest.mark.parametrize("path", bundled_chips(), ids=lambda p: p.name)
def test_show_text_for_every_bundled_chip(path, capsys):
    code, out, err = in_process(capsys, "show", path)
    assert code == 0 and out.startswith(f'chip "{path.stem}" {{') and "Derived facts" in out


@pytest.mark.parametrize("path", bundled_chips(), ids=lambda p: p.name)
def test_show_json_for_every_bundled_chip(path, capsys):
    code, out, err = in_process(capsys, "show", path, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert set(data) == {"chip", "facts"}
    assert data["chip"]["name"] == path.stem
    assert set(data["chip"]) >= {"name", "description", "source", "array", "weight", "input",
                                 "adc", "domain", "noise", "hybrid", "voting", "energy",
                                 "quant", "attention", "layers"}
    assert set(data["chip"]["noise"]["random"]) == {"value", "unit"}
    assert set(data["facts"]) == FACT_KEYS
    assert set(data["facts"]["performance"]) == PERFORMANCE_KEYS


@pytest.mark.slow
def test_fmt_prints_canonical_text_that_checks(tmp_path):
    result = asimc("fmt", chips_folder() / "asim-hcim-1.acim")
    assert result.returncode == 0
    assert "hybrid { digital_levels 1 }" in result.stdout
    copy = tmp_path / "copy.acim"
    copy.write_text(result.stdout)
    assert asimc("fmt", copy).stdout == result.stdout


def test_fmt_of_an_invalid_file(broken):
    result = asimc("fmt", broken)
    assert result.returncode == 2 and result.stdout == ""
    assert f"{broken}:3:16: error: `adc bits` must be from 1 to 16, not 99" not in result.stderr
    assert f"{broken}:2:13: error:" in result.stderr       # syntax errors come first


def test_usage_errors_are_argparse_errors():
    result = asimc("check")
    assert result.returncode == 2 and "usage:" in result.stderr
