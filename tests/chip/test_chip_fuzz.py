"""Fuzzing: random bytes and mutated valid files only ever give a ChipError (or a valid chip),
never another exception, and every diagnostic is located inside the file."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asimc.chip import load_chip, parse_chip
from asimc.chip.spec import ChipSpec
from asimc.errors import ChipError
from asimc.resources import bundled_chips, chips_folder

SOURCES = [p.read_text(encoding="utf-8") for p in bundled_chips()]

# Fragments a mutation may insert: words of the language, values, punctuation and garbage.
FRAGMENTS = ["chip", "extends", "layer", "digital", "array", "rows", "cols", "bits", "parallel",
             "serial", "signed", "domain", "current", "alpha", "noise", "random", "lsb", "%",
             "fJ", "MHz", "ns", "{", "}", "{}", '"', '"x"', '"\\q"', "\\", "#", "\n", " ", "0",
             "-1", "25.5", "1e400", "99999999999999999999", "nan", "-inf", "@", "=", "\x00",
             "\x07", "\ufeff", "é", "😀", '"asim-bitserial-255.acim"', '"missing.acim"']

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check_outcome(text: str, filename: str = "fuzz.acim") -> None:
    try:
        spec = parse_chip(text, filename=filename, base_dir=chips_folder())
    except ChipError as error:
        assert_well_formed(error, text, filename)
    else:
        assert isinstance(spec, ChipSpec)


def assert_well_formed(error: ChipError, text: str, filename: str) -> None:
    assert error.diagnostics
    line_count = text.count("\n") + 1
    for d in error.diagnostics:
        rendered = d.render()
        assert rendered.startswith(f"{d.file}:{d.line}:{d.column}: error: ")
        assert d.line >= 1 and d.column >= 1
        if d.file == filename:
            assert d.line <= line_count
        assert "Traceback" not in rendered and "__ANON" not in rendered


@st.composite
def mutated_sources(draw) -> str:
    text = draw(st.sampled_from(SOURCES))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["delete", "insert", "replace", "token"]))
        if action == "delete":
            end = min(len(text), position + draw(st.integers(1, 12)))
            text = text[:position] + text[end:]
        elif action == "insert":
            text = text[:position] + draw(st.text(max_size=6)) + text[position:]
        elif action == "replace":
            end = min(len(text), position + draw(st.integers(1, 6)))
            text = text[:position] + draw(st.sampled_from(FRAGMENTS)) + text[end:]
        else:
            text = text[:position] + " " + draw(st.sampled_from(FRAGMENTS)) + " " + text[position:]
    return text


@pytest.mark.slow
@FUZZ
@given(mutated_sources())
def test_mutated_valid_files_give_only_chip_errors(text):
    check_outcome(text)


@pytest.mark.slow
@FUZZ
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join)
       | st.lists(st.sampled_from(FRAGMENTS), max_size=40).map(" ".join))
def test_random_token_soup_gives_only_chip_errors(text):
    check_outcome(text)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_give_only_chip_errors(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "random.acim"
    path.write_bytes(data)
    try:
        load_chip(path)
    except ChipError as error:
        assert error.diagnostics
        for d in error.diagnostics:
            assert d.render().startswith(f"{path}:{d.line}:{d.column}: error: ")
