"""`adc { transfer "measured.csv" }` in the chip language, through `asimc chip ...` and the API:
paths relative to the chip file, located errors, the table's content as the chip's identity,
`chip show`, and the mismatch fields of measured converters."""
from __future__ import annotations

import json

import numpy as np
import pytest

import asimc
from asimc.chip import format_chip, load_chip, parse_chip
from asimc.chip.serialize import chip_from_dict, chip_to_dict
from asimc.cli import main
from asimc.data import load_dataset
from asimc.errors import ChipError

BASE = 'chip "bench" {\n    array { rows 31 cols 8 }\n    adc { bits 5 }\n}\n'


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.fixture()
def bench(tmp_path):
    """A base chip, a measured table in a sub-folder and a chip that uses it."""
    (tmp_path / "data").mkdir()
    rows = "\n".join(f"{m},{m},3\n{m},{min(m + 1, 31)},1" for m in range(32))
    (tmp_path / "data" / "measured.csv").write_text(f"mac,code,count\n{rows}\n")
    (tmp_path / "base.acim").write_text(BASE)
    chip = tmp_path / "measured.acim"
    chip.write_text('chip "m" extends "base.acim" {\n    adc { transfer "data/measured.csv" }\n}\n')
    return tmp_path


def test_the_path_is_relative_to_the_chip_file_and_the_digest_is_filled_in(bench):
    spec = load_chip(bench / "measured.acim")
    assert spec.adc.transfer == str((bench / "data" / "measured.csv").resolve())
    assert len(spec.adc.transfer_sha256) == 64
    assert parse_chip(format_chip(spec)) == spec              # the formatter's round trip
    assert chip_from_dict(json.loads(json.dumps(chip_to_dict(spec)))) == spec
    assert f'transfer "{spec.adc.transfer}" sha256 "{spec.adc.transfer_sha256}"' in \
        format_chip(spec)


def test_the_tables_content_is_the_chips_identity(bench):
    before = format_chip(load_chip(bench / "measured.acim"))
    table = bench / "data" / "measured.csv"
    table.write_text(table.read_text().replace("0,0,3", "0,0,4"))
    after = format_chip(load_chip(bench / "measured.acim"))
    assert before != after           # sweep keys hash this text; artifacts store the digest
    # A chip that pins the old digest refuses the changed table, at the `sha256` token.
    pinned = bench / "pinned.acim"
    pinned.write_text(before)
    with pytest.raises(ChipError) as error:
        load_chip(pinned)
    text = str(error.value)
    assert "has changed: its SHA-256 is" in text and "the chip pins" in text
    assert error.value.diagnostics[0].line == 7 and "sha256" in \
        error.value.diagnostics[0].source_line
    with pytest.raises(ChipError, match="`sha256` pins the content of a transfer table, but "
                                        "this chip has no `transfer`"):
        parse_chip('chip "x" { adc { sha256 "00" } }')


def test_transfer_with_noise_says_which_to_keep(bench, capsys):
    chip = bench / "noisy.acim"
    chip.write_text('chip "n" extends "base.acim" {\n    noise { random 1 lsb }\n'
                    '    adc { transfer "data/measured.csv" }\n}\n')
    code, out, err = run(capsys, "chip", "check", chip)
    assert code == 2 and out == ""
    assert f"{chip}:3:11: error: `transfer` and `noise {{ random }}` both give the " \
           "conversion's noise" in err
    assert "keep `transfer` to simulate the chip as measured" in err
    assert "^^^" in err


@pytest.mark.parametrize("body, message", [
    ('adc { bits 4  transfer "data/measured.csv" }', "code 31 needs a 5-bit ADC, but the "
                                                      "chip's ADC has 4 bits"),
    ('array { rows 20 }  adc { transfer "data/measured.csv" }', "MAC value 21 is beyond the "
                                                                "full scale"),
    ('input { parallel 2 }  adc { transfer "data/measured.csv" }', "no data for 2-bit "
                                                                   "conversions"),
    ('adc { transfer "data/none.csv" }', "transfer table: "),
    ('adc { transfer "" }', "`adc transfer` needs a file name"),
    ('adc { transfer "data/measured.csv"  full_scale 50% }', "`full_scale` would change it"),
    ('weight { bits 4 parallel }  adc { transfer "data/measured.csv" }', "weight `parallel`"),
    ('mismatch { adc_offset 1 lsb }  adc { transfer "data/measured.csv" }',
     "`transfer` and `mismatch { adc_offset }`"),
])
def test_a_table_that_cannot_serve_the_chip_is_a_located_error(bench, capsys, body, message):
    chip = bench / "bad.acim"
    chip.write_text(f'chip "b" extends "base.acim" {{\n    {body}\n}}\n')
    code, out, err = run(capsys, "chip", "check", chip)
    assert code == 2
    assert err.startswith(f"{chip}:2:") and message in err, err


def test_chip_show_says_how_unmeasured_mac_values_are_simulated(bench, capsys):
    code, out, _ = run(capsys, "chip", "show", bench / "measured.acim")
    assert code == 0
    assert "unmeasured MACs" in out and "nearest measured MAC value" in out
    assert "128 conversions" in out
    code, out, _ = run(capsys, "chip", "show", "--json", bench / "measured.acim")
    facts = json.loads(out)["facts"]["transfer"]
    assert facts["observations"] == 128 and facts["kinds"] == [
        {"bits": 1, "column": None, "measured_macs": 32}]
    assert facts["sha256"] == load_chip(bench / "measured.acim").adc.transfer_sha256


def test_dnl_and_dac_mismatch_compile_and_change_the_numbers():
    model = "examples/models/digits_mlp.onnx"
    x = load_dataset("digits", limit=4).x.reshape(4, -1)
    plain = asimc.compile(model, parse_chip('chip "x" { }')).run(x, seed=1).outputs
    both = asimc.compile(model, parse_chip(
        'chip "x" { mismatch { adc_dnl 0.3 lsb dac 1% } }')).run(x, seed=1).outputs
    zero = asimc.compile(model, parse_chip(
        'chip "x" { mismatch { adc_dnl 0 lsb dac 0% } }')).run(x, seed=1).outputs
    for name in plain:
        assert not np.array_equal(both[name], plain[name])
        assert np.array_equal(zero[name], plain[name])


def test_dnl_and_dac_mismatch_are_chip_fields_with_checks():
    spec = parse_chip('chip "x" { input { parallel 4 } mismatch { adc_dnl 0.3 lsb  dac 1% } }')
    assert (spec.mismatch.adc_dnl.value, spec.mismatch.dac.si()) == (0.3, 0.01)
    assert parse_chip(format_chip(spec)) == spec
    with pytest.raises(ChipError, match="`mismatch adc_dnl` models the per-code thresholds"):
        parse_chip('chip "x" { weight { bits 4 parallel } mismatch { adc_dnl 0.3 lsb } }')
    with pytest.raises(ChipError, match="`mismatch adc_dnl` takes `lsb`, not `%`"):
        parse_chip('chip "x" { mismatch { adc_dnl 3% } }')
