"""`asimc sweep` end to end on the digits MLP: resume, added values, invalid and failing points,
baselines, `show --chip`, figures and the report, engine and worker-count equivalence."""
from __future__ import annotations

import json
import re
import os
import sqlite3
import subprocess
import sys

import pytest

from asimc.chip import parse_chip
from asimc.sweep.evaluate import EVAL_LOG_ENV, shard_bounds

from .conftest import (NOISY, RAY_HEAD, listening_sockets, points_of, run_cli, show_json,
                       sweep_args)


def _log(path):
    return [tuple(map(int, line.split())) for line in path.read_text().splitlines()] \
        if path.exists() else []


def test_resume_computes_only_what_is_missing(tmp_path, capsys, monkeypatch):
    db, log = str(tmp_path / "s.db"), tmp_path / "evals.log"
    monkeypatch.setenv(EVAL_LOG_ENV, str(log))
    code, out, err = run_cli(capsys, *sweep_args(db, "adc.bits=6,8"), "--workers", "1")
    assert code == 0, err
    assert sorted(_log(log)) == [(1, 0), (1, 1), (2, 0), (2, 1)]
    rows = show_json(capsys, db)
    assert [r["point"] for r in rows[:2]] == ["fp32", "int"]
    assert rows[0]["agreement"] == 1.0 and rows[1]["params"] == {"precision": "W8 A8u"}
    points = points_of(rows)
    assert [r["params"] for r in points] == [{"adc.bits": "6"}, {"adc.bits": "8"}]
    assert all(r["status"] == "done" and r["seeds_done"] == 2 for r in points)
    assert all(r["accuracy_std"] >= 0 and 0 <= r["accuracy_mean"] <= 1 for r in points)
    assert points[0]["adc_conversions"] > 0 and points[0]["cycles"] > 0

    # The same command again: nothing to compute, the same answers.
    code, _, err = run_cli(capsys, *sweep_args(db, "adc.bits=6,8"), "--workers", "1")
    assert code == 0 and "0 evaluated now" in err
    assert len(_log(log)) == 4
    assert show_json(capsys, db) == rows

    # More values and one more seed: only the new rows.
    code, _, err = run_cli(capsys, *sweep_args(db, "adc.bits=6,8,10", seeds=3), "--workers", "1")
    assert code == 0, err
    assert sorted(_log(log)[4:]) == [(1, 2), (2, 2), (3, 0), (3, 1), (3, 2)]
    points = points_of(show_json(capsys, db))
    assert [r["seeds_done"] for r in points] == [3, 3, 3]

    # --fresh starts over.
    code, _, err = run_cli(capsys, *sweep_args(db, "adc.bits=10", seeds=1), "--fresh",
                           "--workers", "1")
    assert code == 0 and len(_log(log)) == 10
    assert [r["params"] for r in points_of(show_json(capsys, db))] == [{"adc.bits": "10"}]
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_single_point_and_other_settings_on_the_same_database(tmp_path, capsys):
    db = str(tmp_path / "s.db")
    code, out, err = run_cli(capsys, *sweep_args(db, seeds=1), "--workers", "1",
                             "--best", "accuracy >= fp32 - 100")
    assert code == 0, err
    assert "best (accuracy >= fp32 - 100): point 1" in out     # no --vary: the base chip
    (point,) = points_of(show_json(capsys, db))
    assert point["params"] == {} and point["pareto"] is True
    code, out, err = run_cli(capsys, "sweep", "show", db, "--best", "accuracy > fp32")
    assert code == 0 and "no point qualifies" in out
    args = sweep_args(db, seeds=1)
    args[args.index("--limit") + 1] = "30"
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and "use --fresh" in err


def test_invalid_and_failing_points_do_not_stop_the_sweep(tmp_path, capsys):
    db = str(tmp_path / "s.db")
    code, out, err = run_cli(capsys, *sweep_args(
        db, "input.bits=2,8", "input.encoding=serial,parallel 4", seeds=1), "--workers", "1")
    assert code == 0, err
    points = {(r["params"]["input.bits"], r["params"]["input.encoding"]): r
              for r in points_of(show_json(capsys, db))}
    bad = points["2", "parallel 4"]
    assert bad["status"] == "invalid"
    assert "more bits per cycle than the 2 input bits" in bad["message"]
    assert bad["accuracy_mean"] is None
    assert all(r["status"] == "done" for k, r in points.items() if k != ("2", "parallel 4"))
    assert "invalid" in out                      # the table says so too

    # A point that raises (static input scales without calibration data) is recorded as
    # failed with its message, and retried on the next run.
    db2 = str(tmp_path / "f.db")
    code, out, err = run_cli(capsys, *sweep_args(db2, "quant.input=per_tensor,static", seeds=1),
                             "--workers", "1")
    assert code == 0
    assert "point 2 failed" in err and "retried" in err
    rows = {r["params"]["quant.input"]: r for r in points_of(show_json(capsys, db2))}
    assert rows["per_tensor"]["status"] == "done"
    assert rows["static"]["status"] == "failed" and "--input-scales" in rows["static"]["message"]
    code, _, err = run_cli(capsys, *sweep_args(db2, "quant.input=per_tensor,static", seeds=1),
                           "--workers", "1")
    assert "1 evaluated now" in err and "1 failed" in err


def test_a_point_prints_as_a_chip_that_reruns(tmp_path, capsys):
    db = str(tmp_path / "s.db")
    args = sweep_args(db, 'layer["Gemm"].adc.bits=7', "noise.random=0.5 lsb,0.75 lsb", seeds=1)
    assert run_cli(capsys, *args, "--workers", "1")[0] == 0
    code, out, _ = run_cli(capsys, "sweep", "show", db, "--chip", "1")
    assert code == 0 and out.startswith("# point 1 of")
    # The child chip it is: its own name and description, extends the base, the varied fields.
    name = 'asim-hcim-1 layer[\\"Gemm\\"].adc.bits=7 noise.random=0.5 lsb'
    assert f'chip "{name}" extends "{NOISY}" {{' in out, out
    assert 'description "sweep point: asim-hcim-1 with ' in out
    assert "digital MSB level" not in out                  # not the base's description
    assert "array" not in out and "voting" not in out       # only what the point changes
    chip = parse_chip(out)
    assert chip.name == 'asim-hcim-1 layer["Gemm"].adc.bits=7 noise.random=0.5 lsb'
    assert chip.noise.random.value == 0.5 and chip.noise.random.unit == "lsb"
    assert chip.hybrid.digital_levels == 1                       # from the base chip
    assert [(s.block, s.field, s.value) for s in chip.layers[-1].settings] == [("adc", "bits", 7)]
    code, resolved, _ = run_cli(capsys, "sweep", "show", db, "--chip", "1", "--resolved")
    assert code == 0 and "extends" not in resolved and "voting {" in resolved
    assert parse_chip(resolved) == chip
    paths = []
    for point in ("1", "2"):
        path = tmp_path / f"point{point}.acim"
        path.write_text(run_cli(capsys, "sweep", "show", db, "--chip", point)[1])
        paths.append(path)
    code, out, err = run_cli(capsys, "compare", args[1], "--chips", *paths, "--data", "digits",
                             "--limit", "40", "--seeds", "1", "--json")
    assert code == 0, err
    compared = [r for r in json.loads(out) if r["chip"] not in ("fp32", "int")]
    assert [r["chip"] for r in compared] == [
        'asim-hcim-1 layer["Gemm"].adc.bits=7 noise.random=0.5 lsb',
        'asim-hcim-1 layer["Gemm"].adc.bits=7 noise.random=0.75 lsb']
    swept = points_of(show_json(capsys, db))
    for row, point in zip(compared, swept):
        assert row["accuracy_mean"] == point["accuracy_mean"]
        assert row["sqnr_db"] == point["sqnr_db"]
    assert run_cli(capsys, "sweep", "show", db, "--chip", "9")[0] == 2
    assert run_cli(capsys, "sweep", "show", db, "--resolved")[0] == 2


def test_figures_and_report(tmp_path, capsys):
    db = str(tmp_path / "s.db")
    assert run_cli(capsys, *sweep_args(db, "adc.bits=6,8", "hybrid.digital_levels=0,2",
                                       seeds=2), "--workers", "1")[0] == 0
    png, svg, pdf, page = (tmp_path / f"f.{e}" for e in ("png", "svg", "pdf", "html"))
    code, out, err = run_cli(capsys, "sweep", "show", db, "--plot", png, "--report", page,
                             "--best", "accuracy >= fp32 - 100")
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = page.read_text()
    # two accuracy plots, the heatmap, the Pareto scatter with the best point
    assert html.count("<svg") >= 4 and "best: accuracy &gt;= fp32 - 100" in html
    assert "best (accuracy >= fp32 - 100): point" in out
    for path in (svg, pdf):
        assert run_cli(capsys, "sweep", "show", db, "--plot", path)[0] == 0
    assert svg.read_text().lstrip().startswith("<?xml") and pdf.read_bytes()[:4] == b"%PDF"


def _numbers(rows):
    keys = ("point", "params", "status", "accuracy_mean", "accuracy_std", "agreement",
            "sqnr_db", "adc_conversions", "cycles", "energy_j")
    return [{k: r[k] for k in keys} for r in rows]


def test_engines_and_worker_counts_give_identical_numbers(tmp_path, capsys, ray_address):
    vary = ("noise.random=0.5 lsb,1 lsb",)
    results = {}
    for name, extra in (("local-1", ["--workers", "1"]), ("local-2", ["--workers", "2"]),
                        ("ray", ["--engine", "ray", "--ray-address", ray_address,
                                 "--workers", "2"])):
        db = str(tmp_path / f"{name}.db")
        code, _, err = run_cli(capsys, *sweep_args(db, *vary), *extra)
        assert code == 0, err
        results[name] = _numbers(show_json(capsys, db))
    assert len(points_of(results["local-1"])) == 2
    assert results["local-1"] == results["local-2"] == results["ray"]
    stds = [r["accuracy_std"] for r in points_of(results["local-1"])]
    assert any(s > 0 for s in stds)              # the seeds really differ


def test_a_point_split_over_workers_gives_the_unsharded_numbers(tmp_path, capsys, monkeypatch,
                                                                ray_address):
    """One point and two workers: each worker takes a run of whole batches of the data (all
    450 images: two batches of 256), with the base chip's batch-wide (per_tensor) input scale,
    and the point's numbers are those of one worker evaluating it whole."""
    results, logs = {}, {}
    for name, extra in (("whole", ["--workers", "1"]), ("local-2", ["--workers", "2"]),
                        ("ray-2", ["--engine", "ray", "--ray-address", ray_address,
                                   "--workers", "2"])):
        db, log = str(tmp_path / f"{name}.db"), tmp_path / f"{name}.log"
        args = sweep_args(db, "adc.bits=7", limit=450) + extra
        if name == "local-2":
            # A fresh driver, so that the pool's workers see the log variable (a fork
            # server started by an earlier test in this process has the old environment).
            subprocess.run([sys.executable, "-m", "asimc", *args], check=True,
                           capture_output=True, env={**os.environ, EVAL_LOG_ENV: str(log)})
        else:
            monkeypatch.setenv(EVAL_LOG_ENV, str(log))
            code, _, err = run_cli(capsys, *args)
            assert code == 0, err
        results[name] = _numbers(show_json(capsys, db))
        logs[name] = sorted(log.read_text().split("\n")[:-1]) if log.exists() else None
    assert logs["whole"] == ["1 0", "1 1"]
    assert logs["local-2"] == ["1 0 0", "1 0 1", "1 1 0", "1 1 1"]   # seed, shard
    # (Ray's workers run in the cluster's environment, without the log variable.)
    assert results["whole"] == results["local-2"] == results["ray-2"]
    assert points_of(results["whole"])[0]["accuracy_std"] > 0


@pytest.mark.parametrize("size, batch", [(450, 256), (1, 256), (1000, 7), (512, 256)])
def test_shards_are_runs_of_whole_batches_covering_the_data_once(size, batch):
    for shards in (1, 2, 3, 5, 64):
        bounds = [shard_bounds(size, batch, k, shards) for k in range(shards)]
        assert bounds[0][0] == 0 and bounds[-1][1] == size
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))     # contiguous, in order
        assert all(lo % batch == 0 and (hi % batch == 0 or hi == size) for lo, hi in bounds)
        filled = [hi - lo for lo, hi in bounds if hi > lo]
        assert len(filled) == min(shards, -(-size // batch))              # no idle shard if
        #                                                                   batches suffice


def test_the_ray_cluster_listens_on_the_loopback_only(tmp_path, capsys, ray_address):
    code, _, err = run_cli(capsys, *sweep_args(str(tmp_path / "s.db"), "adc.bits=6,7"),
                           "--engine", "ray", "--ray-address", ray_address, "--workers", "2")
    assert code == 0, err
    sockets = listening_sockets(RAY_HEAD["pgid"])
    assert any(s.endswith(f"127.0.0.1:{ray_address.split(':')[1]}") for s in sockets)   # GCS
    assert all(s.startswith(("127.0.0.1:", "::ffff:127.0.0.1:")) for s in sockets), sockets


def test_sweep_figures_read_as_compare_figures_do(tmp_path, capsys):
    """`sweep show --plot` at compare's size and style: tick labels apart, a categorical field
    in the command line's order and not joined by lines, a cost axis without an offset and
    with every point labelled; no figure left open."""
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    from asimc.report.figures import compare_figure
    from asimc.sweep import answers
    from asimc.sweep.figures import sweep_figure
    from asimc.sweep.store import read_sweep

    db, png = str(tmp_path / "s.db"), tmp_path / "sweep.png"
    args = sweep_args(db, "noise.random=0.25:0.75:0.25 lsb", "input.encoding=serial,parallel 2",
                      seeds=1)
    assert run_cli(capsys, *args, "--workers", "1")[0] == 0
    code, _, err = run_cli(capsys, "sweep", "show", db, "--plot", png,
                           "--best", "accuracy >= fp32 - 50")
    assert code == 0, err
    assert plt.get_fignums() == []                           # nothing left open in pyplot
    sweep = read_sweep(db)
    rows = answers.build_rows(sweep)
    objectives = answers.default_objectives(rows)
    answers.mark_pareto(rows, objectives)
    best = answers.find_best(rows, answers.parse_best("accuracy >= fp32 - 50"))
    figure = sweep_figure(sweep, rows, objectives, answers.parse_best("accuracy >= fp32 - 50"),
                          best)
    head = png.read_bytes()[:24]
    assert int.from_bytes(head[16:20], "big") == round(figure.get_figwidth() * figure.dpi)
    compared = compare_figure([{"chip": "fp32", "precision": "float32", "accuracy_mean": 1.0,
                                "accuracy_std": 0.0, "agreement": 1.0, "sqnr_db": None}])
    assert (figure.get_figwidth(), figure.dpi) == (compared.get_figwidth(), compared.dpi)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    sizes = set()
    for ax in figure.axes:
        ticks = [t for t in ax.get_xticklabels() if t.get_text()]
        sizes |= {t.get_fontsize() for t in ticks}
        boxes = [Text.get_window_extent(t, renderer) for t in ticks]
        for k, box in enumerate(boxes):
            assert not any(box.overlaps(other) for other in boxes[:k]), \
                [t.get_text() for t in ticks]
    assert len(sizes) == 1                                   # one font scale, heatmap included
    by_label = {ax.get_xlabel(): ax for ax in figure.axes}
    encoding = [ax for ax in figure.axes if ax.get_xlabel() == "input.encoding"]
    assert len(encoding) == 1
    assert [t.get_text() for t in encoding[0].get_xticklabels()] == ["serial", "parallel 2"]
    assert all(line.get_linestyle() == "None" for line in encoding[0].lines
               if line.get_label().startswith("noise.random"))
    cost = next(ax for label, ax in by_label.items() if "per inference" in label)
    assert cost.xaxis.get_offset_text().get_text() == ""     # no "1e6" beside the axis
    assert re.search(r"\((?:[fpnµm]?J)\)$|conversions", cost.get_xlabel())
    labels = " ".join(t.get_text() for t in cost.texts)
    for point in points_of(rows):
        assert str(point["point"]) in labels.split()
