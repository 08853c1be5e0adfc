"""Pareto fronts and --best on hand-made sweep databases' rows (the Python API of
asimc.sweep.answers): ties, a single point, none qualifying, NaN metrics."""
from __future__ import annotations

import math

import pytest

from asimc.errors import UsageError
from asimc.sweep.answers import (default_objectives, find_best, mark_pareto, parse_best,
                                 parse_objectives)


def _row(point, accuracy, energy=None, conversions=100, cycles=10, status="done"):
    return {"point": point, "params": {"x": str(point)}, "status": status, "seeds_done": 1,
            "accuracy_mean": accuracy, "accuracy_std": 0.0, "agreement": accuracy,
            "sqnr_db": 10.0, "adc_conversions": conversions, "cycles": cycles,
            "energy_j": energy, "tops_per_w": None, "precision": "W8", "int_key": "k",
            "pareto": False, "best": False, "message": ""}


def _baselines(fp32=0.98, int_=0.97):
    fp = _row("fp32", fp32, conversions=None, cycles=None)
    it = _row("int", int_, conversions=None, cycles=None)
    return [fp, it]


def _front(rows):
    return [r["point"] for r in rows if r["pareto"]]


def test_front_with_energy_and_ties():
    rows = _baselines() + [_row(1, 0.90, energy=1e-9), _row(2, 0.95, energy=2e-9),
                           _row(3, 0.95, energy=2e-9), _row(4, 0.93, energy=3e-9),
                           _row(5, 0.99, energy=5e-9)]
    objectives = default_objectives(rows)
    assert [o.name for o in objectives] == ["accuracy", "energy"]
    mark_pareto(rows, objectives)
    assert _front(rows) == [1, 2, 3, 5]      # equal points are both on the front; 4 dominated
    best = find_best(rows, parse_best("accuracy >= fp32 - 5"))
    assert best["point"] == 2                # tie on cost and accuracy: the earlier point
    assert [r["point"] for r in rows if r["best"]] == [2]


def test_tie_on_energy_goes_to_fewer_cycles_then_higher_accuracy():
    rows = _baselines() + [_row(1, 0.96, energy=1e-9, cycles=20), _row(2, 0.96, energy=1e-9,
                                                                       cycles=10),
                           _row(3, 0.975, energy=1e-9, cycles=10)]
    assert find_best(rows, parse_best("accuracy >= fp32 - 3"))["point"] == 3


def test_conversions_without_energy_figures():
    rows = _baselines() + [_row(1, 0.97, conversions=50), _row(2, 0.98, conversions=80)]
    objectives = default_objectives(rows)
    assert objectives[1].name == "conversions"
    mark_pareto(rows, objectives)
    assert _front(rows) == [1, 2]
    assert find_best(rows, parse_best("accuracy >= fp32 - 1"))["point"] == 1
    assert find_best(rows, parse_best("accuracy >= fp32"))["point"] == 2
    assert find_best(rows, parse_best("accuracy > fp32")) is None
    assert find_best(rows, parse_best("accuracy >= int + 0.5"))["point"] == 2
    assert find_best(rows, parse_best("accuracy >= 97"))["point"] == 1


def test_single_point_and_none_qualifying():
    rows = _baselines() + [_row(1, 0.50)]
    mark_pareto(rows, default_objectives(rows))
    assert _front(rows) == [1]
    assert find_best(rows, parse_best("accuracy >= fp32 - 1")) is None
    assert not any(r["best"] for r in rows)


def test_nan_and_missing_metrics_never_enter_the_front_or_qualify():
    rows = _baselines() + [_row(1, math.nan, conversions=10), _row(2, None, conversions=10),
                           _row(3, 0.97, conversions=90), _row(4, 0.99, conversions=95,
                                                               status="failed"),
                           _row(5, 0.99, conversions=math.nan)]
    mark_pareto(rows, default_objectives(rows))
    assert _front(rows) == [3]
    assert find_best(rows, parse_best("accuracy >= fp32 - 2"))["point"] == 3
    nan_fp32 = [_row("fp32", math.nan), _row(3, 0.97)]
    assert find_best(nan_fp32, parse_best("accuracy >= fp32 - 2")) is None


def test_objectives_and_rules_parse_or_say_what_is_expected():
    objectives = parse_objectives("accuracy:max,conversions:min,cycles:min")
    assert [(o.column, o.maximize) for o in objectives] == [
        ("accuracy_mean", True), ("adc_conversions", False), ("cycles", False)]
    rule = parse_best(" accuracy>=fp32-1 ")
    assert (rule.metric, rule.op, rule.reference, rule.offset) == ("top1", ">=", "fp32", -1)
    for bad in ("accuracy", "speed >= 1", "accuracy >= fp33 - 1", "accuracy >= fp32 * 2"):
        with pytest.raises(UsageError, match="METRIC OP REFERENCE"):
            parse_best(bad)
    with pytest.raises(UsageError, match="at least two objectives"):
        parse_objectives("accuracy:max")
