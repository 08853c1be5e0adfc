"""Bad --vary / --pareto / --best input: exit 2, a message that says what was expected, no
traceback, and nothing written."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .conftest import MODEL, NOISY, run_cli, sweep_args


@pytest.mark.parametrize("vary, expected", [
    ("adc.bitz=6,7", "unknown field `adc.bitz`; did you mean `adc.bits`?"),
    ("noise.randm=0:1:0.5 lsb", "did you mean `noise.random`?"),
    ('layer["Conv"].adc.bitz=6', "did you mean `adc.bits`?"),
    ("noise.random=0:1:0.5 fJ", "noise.random takes %, lsb, not `fJ`"),
    ("adc.bits=6 lsb,7", "adc.bits is a plain number and takes no unit, found `lsb`"),
    ("noise.random=0,1", "noise.random needs a unit"),
    ("adc.bits=8:6:1", "the range is empty"),
    ("adc.bits=6:8:0", "the range is empty"),
    ("noise.random=0:1:0.3 lsb", "the step 0.3 does not divide the range from 0 to 1"),
    ("noise.random=0%:1lsb:0.5%", "the range mixes units"),
    ("adc.bits=6.5", "adc.bits must be a whole number, not 6.5"),
    ("input.encoding=serial,paralel 2", "is not an input encoding"),
    ("quant.input=per_tensr", "did you mean `per_tensor`?"),
    ("adc.bits", "expected FIELD=VALUES"),
    ("adc.bits=", "no values after `=`"),
    ('layer["Conv"].energy.mac=1 fJ', "cannot be set per layer"),
])
def test_bad_vary_is_refused_with_exit_2(tmp_path, capsys, vary, expected):
    db = tmp_path / "s.db"
    code, out, err = run_cli(capsys, *sweep_args(db, vary))
    assert code == 2
    assert expected in err
    assert "Traceback" not in err and "internal error" not in err
    assert not db.exists()


def test_zip_needs_equal_lengths(tmp_path, capsys):
    code, _, err = run_cli(capsys, *sweep_args(tmp_path / "s.db", "adc.bits=6,7",
                                                "hybrid.digital_levels=0,1,2", extra=["--zip"]))
    assert code == 2 and "the same number of values" in err


@pytest.mark.parametrize("option, value, expected", [
    ("--pareto", "accuracy:best,energy:min", "NAME:max or NAME:min"),
    ("--pareto", "acuracy:max,energy:min", "unknown objective `acuracy`"),
    ("--best", "accuracy => fp32 - 1", "RULE is  METRIC OP REFERENCE"),
    ("--plot", "out.jpg", "give a file ending in .png, .svg, .pdf"),
])
def test_bad_answer_options(tmp_path, capsys, option, value, expected):
    code, _, err = run_cli(capsys, *sweep_args(tmp_path / "s.db", "adc.bits=6"), option, value)
    assert code == 2 and expected in err
    assert not (tmp_path / "s.db").exists()


def test_real_command_line_prints_no_traceback(tmp_path):
    """Through the installed entry point, as a user runs it."""
    result = subprocess.run([sys.executable, "-m", "asimc", "sweep", MODEL, "--chip", NOISY,
                             "--data", "digits", "--db", str(tmp_path / "s.db"),
                             "--vary", "adc.bitz=6"], capture_output=True, text=True,
                            env={**os.environ, "ASIMC_DEBUG": ""})
    assert result.returncode == 2
    assert "did you mean `adc.bits`?" in result.stderr
    assert "Traceback" not in result.stderr


def test_show_of_a_missing_or_foreign_database(tmp_path, capsys):
    code, _, err = run_cli(capsys, "sweep", "show", tmp_path / "none.db")
    assert code == 2 and "no such sweep database" in err
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    code, _, err = run_cli(capsys, "sweep", "show", junk)
    assert code == 2 and "not a sweep database" in err
