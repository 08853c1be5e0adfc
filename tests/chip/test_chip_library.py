"""The bundled chip library: every chip checks, cites its source, and marks its assumptions."""
from __future__ import annotations

import re

import pytest

from asimc.chip import load_chip
from asimc.chip.spec import Quantity
from asimc.resources import bundled_chips, chips_folder

REFERENCE = ["asim-bitserial-255", "asim-bp2", "asim-bp4", "asim-hcim-1", "asim-hcim-2",
             "asim-hcim-3", "asim-voting", "asim-current"]
PUBLISHED = [p for p in bundled_chips() if not p.stem.startswith("asim-")]


@pytest.mark.parametrize("path", bundled_chips(), ids=lambda p: p.name)
def test_every_bundled_chip_checks_and_is_named_after_its_file(path):
    spec = load_chip(path)
    assert spec.name == path.stem
    assert spec.description and re.search(r"https?://", spec.source)
    assert re.search(r"\b(19|20)\d\d\b", spec.source), "the source names the year"


def test_at_least_eight_published_macros():
    assert len(PUBLISHED) >= 8


@pytest.mark.parametrize("path", PUBLISHED, ids=lambda p: p.name)
def test_published_chips_mark_assumed_values(path):
    text = path.read_text(encoding="utf-8")
    assert "# assumed:" in text
    # Every line that sets a field the sources rarely state carries a comment saying why.
    for line in text.splitlines():
        code = line.split("#")[0]
        for field in ("macros", "mapping"):
            if re.search(rf"\b{field}\b", code):
                assert "#" in line, f"{path.name}: `{line.strip()}` needs a comment"


def test_reference_configurations():
    specs = {name: load_chip(chips_folder() / f"{name}.acim") for name in REFERENCE}
    ref = specs["asim-bitserial-255"]
    assert (ref.array.rows, ref.array.cols, ref.weight.bits, ref.input.bits, ref.adc.bits) == (
        255, 256, 8, 8, 8)
    assert not ref.input.signed and ref.input.bits_per_cycle == 1
    assert ref.noise.random == Quantity(0.0, "%") and ref.noise.nonlinear == Quantity(0.0, "%")
    assert specs["asim-bp2"].input.bits_per_cycle == 2
    assert specs["asim-bp4"].input.bits_per_cycle == 4
    for n in (1, 2, 3):
        hcim = specs[f"asim-hcim-{n}"]
        assert hcim.hybrid.digital_levels == n and hcim.noise.random.value > 0
    voting = specs["asim-voting"]
    assert voting.voting.levels > 0 and voting.voting.samples % 2 == 1
    assert voting.noise.random.value > 0
    assert specs["asim-current"].domain.kind == "current"
    for name in REFERENCE[1:]:
        text = (chips_folder() / f"{name}.acim").read_text()
        assert 'extends "asim-bitserial-255.acim"' in text
