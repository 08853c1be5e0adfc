"""``extends``: merging, relative paths, missing files, cycles, errors inside a parent."""
from __future__ import annotations

from pathlib import Path

import pytest

from asimc.chip import load_chip, parse_chip
from asimc.chip.spec import DomainSpec, InputSpec, LayerOverride, Quantity, Setting
from asimc.errors import ChipError

BASE = '''chip "base" {
    description "the base"
    source "paper A"
    array  { rows 128 cols 64 macros 2 }
    input  { bits 8 signed parallel 2 }
    noise  { random 0.5% }
    domain current { alpha 0.002 cell_variation 1% }
    attention digital
    layer "Conv" { adc { bits 6 } }
}
'''


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load_errors(path) -> list:
    with pytest.raises(ChipError) as info:
        load_chip(path)
    return list(info.value.diagnostics)


def test_child_overrides_field_by_field(tmp_path):
    write(tmp_path, "base.acim", BASE)
    child = write(tmp_path, "child.acim", '''chip "child" extends "base.acim" {
        input { bits 6 }
        noise { random 1 lsb }
        layer "Gemm" { digital }
    }''')
    spec = load_chip(child)
    assert spec.name == "child"
    assert spec.description == "" and spec.source == ""     # name, description, source: child's
    assert spec.array.rows == 128 and spec.array.macros == 2  # inherited block
    assert spec.input == InputSpec(bits=6, signed=True, bits_per_cycle=2)   # merged field by field
    assert spec.noise.random == Quantity(1.0, "lsb")
    assert spec.noise.nonlinear == Quantity(0.0, "%")
    assert spec.domain == DomainSpec("current", 0.002, Quantity(1.0, "%"))
    assert spec.attention == "digital"
    assert spec.layers == (LayerOverride("Conv", (Setting("adc", "bits", 6),)),
                           LayerOverride("Gemm", (), digital=True))     # parent's first


def test_switching_to_charge_drops_inherited_current_fields(tmp_path):
    write(tmp_path, "base.acim", BASE)
    child = write(tmp_path, "child.acim",
                  'chip "c" extends "base.acim" { domain charge noise { nonlinear 0.2% } }')
    spec = load_chip(child)
    assert spec.domain == DomainSpec("charge") and spec.noise.nonlinear == Quantity(0.2, "%")


def test_path_is_relative_to_the_extending_file(tmp_path):
    write(tmp_path, "lib/base.acim", BASE)
    write(tmp_path, "lib/mid/mid.acim", 'chip "mid" extends "../base.acim" { adc { bits 7 } }')
    leaf = write(tmp_path, "deep/leaf.acim",
                 'chip "leaf" extends "../lib/mid/mid.acim" { array { cols 32 } }')
    spec = load_chip(leaf)
    assert (spec.adc.bits, spec.array.cols, spec.array.rows) == (7, 32, 128)


def test_parse_chip_resolves_against_base_dir(tmp_path):
    write(tmp_path, "base.acim", BASE)
    spec = parse_chip('chip "s" extends "base.acim" {}', base_dir=tmp_path)
    assert spec.array.rows == 128


def test_missing_parent_is_located_at_the_string(tmp_path):
    child = write(tmp_path, "child.acim", 'chip "c" extends "nope.acim" {\n}\n')
    (error,) = load_errors(child)
    assert (error.file, error.line, error.column, error.width) == (str(child), 1, 18, 11)
    assert error.message == f'cannot extend "nope.acim": no such file ({tmp_path}/nope.acim)'


def test_directory_as_parent(tmp_path):
    (tmp_path / "sub").mkdir()
    child = write(tmp_path, "child.acim", 'chip "c" extends "sub" {}')
    (error,) = load_errors(child)
    assert error.column == 18 and "it is a directory" in error.message


def test_cycle_is_located_and_lists_the_chain(tmp_path):
    a = write(tmp_path, "a.acim", 'chip "a" extends "b.acim" {}')
    write(tmp_path, "b.acim", 'chip "b"\n  extends "a.acim" {}')
    (error,) = load_errors(a)
    b = str(tmp_path / "b.acim")
    assert (error.file, error.line, error.column) == (b, 2, 11)
    assert error.message == (f"`extends` makes a cycle: {a} extends {b} extends {a}")


def test_self_extension_is_a_cycle(tmp_path):
    path = write(tmp_path, "self.acim", 'chip "s" extends "self.acim" {}')
    (error,) = load_errors(path)
    assert "cycle" in error.message and error.file == str(path)


def test_errors_inside_the_parent_carry_the_parents_name(tmp_path):
    parent = write(tmp_path, "base.acim", 'chip "b" {\n  adc { bits 40 }\n  array { rowz 3 }\n}')
    child = write(tmp_path, "child.acim", 'chip "c" extends "base.acim" { array { rows 0 } }')
    found = load_errors(child)
    assert [(d.file, d.line) for d in found] == [(str(child), 1), (str(parent), 3)]
    assert "rowz" in found[1].message


def test_value_errors_of_parent_and_child_are_all_reported(tmp_path):
    parent = write(tmp_path, "base.acim", 'chip "b" {\n  adc { bits 40 }\n}')
    child = write(tmp_path, "child.acim", 'chip "c" extends "base.acim" { array { rows 0 } }')
    found = load_errors(child)
    assert [(d.file, d.line, d.column) for d in found] == [(str(child), 1, 45),
                                                           (str(parent), 2, 14)]


def test_cross_field_error_points_at_the_child_when_it_wrote_a_field(tmp_path):
    write(tmp_path, "base.acim", 'chip "b" { input { bits 8 parallel 4 } }')
    child = write(tmp_path, "child.acim", 'chip "c" extends "base.acim" { input { bits 2 } }')
    (error,) = load_errors(child)
    assert (error.file, error.column) == (str(child), 40)
    assert "parallel 4" in error.message


def test_cross_field_error_from_the_parent_alone_points_into_the_parent(tmp_path):
    base = write(tmp_path, "base.acim", 'chip "b" {\n  weight { parallel }\n}')
    child = write(tmp_path, "child.acim", 'chip "c" extends "base.acim" { hybrid { digital_levels 1 } }')
    (error,) = load_errors(child)
    assert error.file == str(child) and "hybrid" in error.message
    base_only = write(tmp_path, "b2.acim", 'chip "b2" {\n  voting { samples 2 }\n}')
    child2 = write(tmp_path, "c2.acim", 'chip "c2" extends "b2.acim" {}')
    (error,) = load_errors(child2)
    assert (error.file, error.line) == (str(base_only), 2)
    assert base.exists()


def test_non_utf8_parent(tmp_path):
    (tmp_path / "bad.acim").write_bytes(b'chip "b" { description "\xff" }')
    child = write(tmp_path, "child.acim", 'chip "c" extends "bad.acim" {}')
    (error,) = load_errors(child)
    assert error.file == str(tmp_path / "bad.acim") and "not valid UTF-8" in error.message


def test_bundled_chips_extend_their_reference():
    from asimc.resources import chips_folder
    spec = load_chip(chips_folder() / "asim-bp4.acim")
    assert spec.name == "asim-bp4" and spec.input.bits_per_cycle == 4
    assert spec.array.rows == 255 and spec.adc.bits == 8
