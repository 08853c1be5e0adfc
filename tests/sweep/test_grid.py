"""The grid of a sweep (asimc.sweep.grid): exact decimal ranges, units, --zip, --random."""
from __future__ import annotations

from asimc.sweep.grid import grid, parse_vary


def test_ranges_are_exact_and_keep_their_unit():
    assert parse_vary("noise.random=0:1:0.1 lsb").values == tuple(
        f"{v} lsb" for v in ("0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8",
                             "0.9", "1"))
    assert parse_vary("noise.random=0%:2%:0.5%").values == ("0%", "0.5%", "1%", "1.5%", "2%")
    assert parse_vary("noise.random=0.25,1 lsb").values == ("0.25 lsb", "1 lsb")
    assert parse_vary("adc.bits=10:4:-3").values == ("10", "7", "4")
    assert parse_vary("input.encoding=serial, parallel  2").values == ("serial", "parallel 2")
    axis = parse_vary('layer["/fc1/*"].adc.bits=6,6,7')
    assert (axis.layer, axis.field.path, axis.values) == ("/fc1/*", "adc.bits", ("6", "7"))


def test_full_grid_zip_and_random():
    a, b = parse_vary("adc.bits=6,7,8"), parse_vary("hybrid.digital_levels=0,1,2")
    full = grid([a, b])
    assert len(full) == 9 and full[:2] == [("6", "0"), ("6", "1")]
    assert grid([a, b], zip_axes=True) == [("6", "0"), ("7", "1"), ("8", "2")]
    drawn = grid([a, b], random_count=4)
    assert len(drawn) == 4 and set(drawn) <= set(full)
    assert grid([a, b], random_count=4) == drawn          # a fixed seed: the same points
    assert grid([a, b], random_count=50) == full
    assert grid([]) == [()]                                # no --vary: the base chip alone
