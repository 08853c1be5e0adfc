"""Derived facts (``asimc chip show``), checked against numbers computed by hand."""
from __future__ import annotations

import json

import pytest

from asimc.chip import chip_facts, load_chip, parse_chip
from asimc.resources import chips_folder

FACT_KEYS = {"mode", "precision", "num_input_cycles", "input_cycles", "conversion_types",
             "num_levels", "levels", "conversions_per_tile_column", "digital_per_tile_column",
             "noise", "mismatch", "transfer", "performance", "layers"}
PERFORMANCE_KEYS = {"clock_hz", "cycles_per_mac", "macs_per_clock", "macs_per_s", "tops",
                    "tops_1b", "energy_per_mac_fj", "tops_per_w", "tops_per_w_1b"}


def bundled(name: str) -> dict:
    return chip_facts(load_chip(chips_folder() / name))


def test_bit_parallel_4_with_8_bit_unsigned_input():
    facts = bundled("asim-bp4.acim")
    # 8 input bits in groups of 4: 2 cycles; 8 weight bits x 2 cycles = 16 conversions.
    assert facts["num_input_cycles"] == 2
    assert facts["input_cycles"] == [{"index": 0, "low_bit": 0, "bits": 4, "sign": False},
                                     {"index": 1, "low_bit": 4, "bits": 4, "sign": False}]
    assert facts["conversions_per_tile_column"] == 16
    assert facts["digital_per_tile_column"] == 0
    (kind,) = facts["conversion_types"]
    # F = (2^4 - 1) x 255 = 3825 over 255 ADC codes: one LSB is 15 MAC units, lossy.
    assert (kind["full_scale"], kind["adc_levels"], kind["lsb_mac"]) == (3825, 255, 15.0)
    assert kind["lsb_percent"] == pytest.approx(100 / 255)
    assert kind["lossless"] is False
    assert facts["num_levels"] == 9                     # 8 + 2 - 1


def test_bit_serial_reference_is_lossless():
    facts = bundled("asim-bitserial-255.acim")
    assert facts["num_input_cycles"] == 8 and facts["conversions_per_tile_column"] == 64
    (kind,) = facts["conversion_types"]
    assert (kind["full_scale"], kind["lsb_mac"], kind["lossless"]) == (255, 1.0, True)
    assert facts["num_levels"] == 15
    assert facts["performance"]["tops"] is None and facts["performance"]["tops_per_w"] is None


def test_hybrid_levels_are_digital_and_not_converted():
    facts = bundled("asim-hcim-2.acim")
    # Top 2 of 15 levels: level 14 (1 product) and level 13 (2 products) are digital.
    assert facts["digital_per_tile_column"] == 3
    assert facts["conversions_per_tile_column"] == 61
    digital = [level["level"] for level in facts["levels"] if level["digital"]]
    assert digital == [13, 14]
    assert facts["noise"]["random_lsb"] == 1.0
    assert facts["noise"]["random_percent"] == pytest.approx(100 / 255)


def test_voted_levels_count_every_sample():
    facts = bundled("asim-voting.acim")
    # 3 products in the top 2 levels, 5 samples each: 61 + 15 = 76.
    assert facts["conversions_per_tile_column"] == 76
    assert [lv["level"] for lv in facts["levels"] if lv["voted"]] == [13, 14]
    assert facts["levels"][14] == {"level": 14, "products": 1, "conversions": 5,
                                   "digital": False, "voted": True}


def test_signed_inputs_have_a_sign_cycle():
    facts = chip_facts(parse_chip('chip "s" { input { bits 8 signed parallel 4 } adc { bits 6 } }'))
    # 7 magnitude bits in groups of 4 (4 + 3), then the sign bit: 3 cycles.
    assert [(c["low_bit"], c["bits"], c["sign"]) for c in facts["input_cycles"]] == [
        (0, 4, False), (4, 3, False), (7, 1, True)]
    types = {t["name"]: t for t in facts["conversion_types"]}
    assert set(types) == {"4-bit group", "3-bit group", "sign bit"}
    assert types["3-bit group"]["full_scale"] == 7 * 255
    assert types["sign bit"]["lsb_mac"] == pytest.approx(255 / 63)


def test_weight_parallel_throughput_and_efficiency_by_hand():
    facts = bundled("sinangil-jssc2021-7nm.acim")
    perf = facts["performance"]
    assert facts["mode"] == "weight-parallel"
    assert facts["conversions_per_tile_column"] == 1 and facts["levels"] == []
    # 64 rows x 16 columns, one clock per MAC at 181.8 MHz.
    assert perf["macs_per_clock"] == 1024 and perf["cycles_per_mac"] == 1
    assert perf["tops"] == pytest.approx(2 * 1024 * 181.8e6 / 1e12)
    # E = bw x E_mac + E_adc / rows = 4 x 0.712 + 182 / 64 fJ.
    energy = 4 * 0.712 + 182 / 64
    assert perf["energy_per_mac_fj"] == pytest.approx(energy)
    assert perf["tops_per_w"] == pytest.approx(2 / (energy * 1e-15) / 1e12)
    assert perf["tops_per_w"] == pytest.approx(351, rel=0.01)       # the published figure
    assert perf["tops_per_w_1b"] == pytest.approx(perf["tops_per_w"] * 16)
    (kind,) = facts["conversion_types"]
    # F = (2^4 - 1) x (2^3 - 1) x 64 over a signed 4-bit ADC (7 codes per polarity).
    assert (kind["full_scale"], kind["adc_levels"]) == (15 * 7 * 64, 7)


def test_bit_serial_throughput_and_efficiency_by_hand():
    perf = bundled("jia-jssc2021-16nm-4x4.acim")["performance"]
    # 16 macros x 1152 rows x (256 / 8) output channels / 8 cycles.
    assert perf["macs_per_clock"] == 16 * 1152 * 32 / 8
    assert perf["tops"] == pytest.approx(2 * 73728 * 20.3e6 / 1e12)
    assert perf["tops"] == pytest.approx(3.0, rel=0.01)             # the published 3 TOPS
    # E = bw x C x E_mac + conversions / rows x E_adc = 64 x 0.521 + 64 / 1152 x 600 fJ.
    assert perf["energy_per_mac_fj"] == pytest.approx(64 * 0.521 + 64 / 1152 * 600)
    assert perf["tops_per_w"] == pytest.approx(30, rel=0.01)         # the published 30 TOPS/W
    assert perf["tops_1b"] == pytest.approx(perf["tops"] * 64)


@pytest.mark.parametrize("name, published_1b", [
    ("lee-vlsi2021-1152x256.acim", 5796), ("yoshioka-jssc2025-cnn.acim", 4094),
    ("yoshioka-jssc2025-transformer.acim", 818), ("jia-jssc2020-bpbs-65nm.acim", 400),
])
def test_library_energies_reproduce_the_published_1b_efficiency(name, published_1b):
    assert bundled(name)["performance"]["tops_per_w_1b"] == pytest.approx(published_1b, rel=0.01)


def test_clock_given_as_a_period():
    perf = chip_facts(parse_chip('chip "p" { energy { clock 5 ns } }'))["performance"]
    assert perf["clock_hz"] == pytest.approx(200e6)
    assert perf["macs_per_s"] == pytest.approx(255 * 32 / 8 * 200e6)
    assert perf["tops_per_w"] is None


def test_layer_overrides_list_their_differences():
    spec = parse_chip('chip "l" { layer "Conv" { input { parallel 4 } adc { bits 6 } }\n'
                      'layer "/head/*" { digital } }')
    conv, head = chip_facts(spec)["layers"]
    assert conv["changes"] == [{"field": "input.bits_per_cycle", "chip": 1, "layer": 4},
                               {"field": "adc.bits", "chip": 8, "layer": 6}]
    assert conv["num_input_cycles"] == 2 and conv["conversions_per_tile_column"] == 16
    assert head == {"pattern": "/head/*", "digital": True, "changes": []}


def test_facts_are_json():
    facts = bundled("yoshioka-arxiv2023-voting.acim")
    assert set(facts) == FACT_KEYS
    assert set(facts["performance"]) == PERFORMANCE_KEYS
    assert json.loads(json.dumps(facts)) == facts


def test_mismatch_facts_name_what_each_seed_fixes(tmp_path, capsys):
    from asimc.cli import main
    chip = tmp_path / "m.acim"
    chip.write_text('chip "m" { noise { random 0.5 lsb } '
                    'mismatch { adc_offset 0.3 lsb  adc_dnl 0.2 lsb  dac 1% } }')
    facts = chip_facts(load_chip(chip))
    assert [(m["field"], m["sigma"], m["unit"]) for m in facts["mismatch"]] == [
        ("adc_offset", 0.3, "lsb"), ("adc_dnl", 0.2, "lsb"), ("dac", 1.0, "%")]
    assert main(["chip", "show", str(chip)]) == 0
    out = " ".join(capsys.readouterr().out.split())          # the table wraps long cells
    assert ("mismatch ADC offset per column (σ 0.3 lsb); ADC code thresholds per "
            "physical column (σ 0.2 lsb); input driver levels per row (σ 1 %), drawn per "
            "seed") in out
    # The current domain's older spelling of cell mismatch is the same draw.
    assert [m["field"] for m in bundled("asim-current.acim")["mismatch"]] == ["cell"]
    assert bundled("asim-bitserial-255.acim")["mismatch"] == []
