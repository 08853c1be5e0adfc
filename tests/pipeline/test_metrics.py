"""Metrics for any model (asimc.metrics), one evaluation path with typed results
(asimc.evaluation), int baselines and warnings said once: through the CLI and the Python API.

The embedding model is a small torch encoder exported here: token vectors in, one mean-pooled
12-dim vector out, no class output; its data carry no labels."""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import asimc
from asimc.cli import main

ROOT = Path(__file__).resolve().parents[2]
MLP = ROOT / "examples" / "models" / "digits_mlp.onnx"
VIT = ROOT / "examples" / "models" / "digits_vit.onnx"
IDEAL = 'chip "ideal" { array { rows 255 } adc { bits 8 } input { bits 8 signed } }\n'
NOISY = ('chip "noisy" { array { rows 32 } adc { bits 5 } input { bits 8 signed } '
         'noise { random 2 lsb } }\n')
ADC6 = 'chip "adc6" extends "ideal.acim" { adc { bits 6 } }\n'
A4 = 'chip "a4" extends "ideal.acim" { input { bits 4 } }\n'


class Encoder(nn.Module):
    """Token vectors (N, 6, 16) -> one embedding (N, 12): no class output."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(16, 32)
        self.out = nn.Linear(32, 12)

    def forward(self, x):
        return self.out(torch.relu(self.proj(x))).mean(dim=1)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("metrics")
    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.onnx.export(Encoder().eval(), (torch.randn(2, 6, 16),), buffer, dynamo=False,
                      input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    (folder / "encoder.onnx").write_bytes(buffer.getvalue())
    np.save(folder / "tokens.npy", np.random.default_rng(1).normal(size=(24, 6, 16))
            .astype(np.float32))
    for name, text in (("ideal", IDEAL), ("noisy", NOISY), ("adc6", ADC6), ("a4", A4)):
        (folder / f"{name}.acim").write_text(text)
    return folder


def cli(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit_:          # argparse errors
            code = exit_.code
    assert "Traceback" not in err.getvalue()
    return code, out.getvalue(), err.getvalue()


# -- the registry, from Python -------------------------------------------------------------------

def test_every_metric_by_name_from_python():
    reference = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    outputs = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    labels = np.array([0, 2])
    score = asimc.metrics.score
    assert score("top1", outputs, labels=labels).value == 0.5
    assert score("agreement", outputs, reference).value == 1.0
    cosine = score("cosine", outputs, reference)
    assert cosine.value == pytest.approx((1 + 1 / math.sqrt(2)) / 2)
    assert cosine.worst == pytest.approx(1 / math.sqrt(2))
    assert score("sqnr", outputs, reference).value == pytest.approx(10 * math.log10(5 / 2))
    assert score("mse", outputs, reference).value == pytest.approx(2 / 6)
    assert score("sqnr", reference, reference).value == math.inf
    # torch tensors too (an on-chip module's outputs)
    assert score("cosine", torch.from_numpy(outputs), torch.from_numpy(reference)) == cosine
    assert list(asimc.metrics.METRICS) == ["top1", "agreement", "cosine", "sqnr", "mse"]


def test_bad_metric_and_top1_without_labels_from_python():
    from asimc.errors import UsageError
    with pytest.raises(UsageError, match="top1, agreement, cosine, sqnr, mse"):
        asimc.metrics.score("accuracy", np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(UsageError, match="needs labels"):
        asimc.metrics.score("top1", np.zeros((2, 3)))


def test_evaluate_chip_returns_frozen_typed_results(files):
    program = asimc.compile(MLP, files / "noisy.acim")
    result = asimc.evaluate_chip(program, "digits", limit=40, seeds=2)
    assert result.metric == "top1" and result.kind.value == "chip"
    assert result.score_mean == result.accuracy_mean and len(result.runs) == 2
    assert result.costs.adc_conversions > 0 and result.costs.known
    assert result.runs[0].seed == 0 and result.runs[1].seed == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.metric = "cosine"
    cosine = asimc.evaluate_chip(program, "digits", limit=40, seeds=2, metric="cosine")
    assert cosine.score_mean == pytest.approx(np.mean([r.cosine for r in cosine.runs]))
    assert cosine.score_worst == min(r.cosine_worst for r in cosine.runs) < cosine.score_mean
    # Data without labels: cosine by default; top1 is refused.
    x = np.load(files / "tokens.npy")
    embedding = asimc.compile(files / "encoder.onnx", files / "ideal.acim")
    assert asimc.evaluate_chip(embedding, x).metric == "cosine"
    from asimc.errors import InputDataError
    with pytest.raises(InputDataError, match="no labels"):
        asimc.evaluate_chip(embedding, x, metric="top1")


# -- compare and golden on an embedding model ----------------------------------------------------

def test_compare_ranks_an_embedding_model_by_cosine(files, tmp_path):
    code, out, err = cli("compare", files / "encoder.onnx", "--chips", files / "ideal.acim",
                         files / "noisy.acim", "--data", files / "tokens.npy", "--seeds", "2",
                         "--json")
    assert code == 0, err
    rows = {r["chip"]: r for r in json.loads(out)}
    assert all(r["metric"] == "cosine" for r in rows.values())
    assert rows["ideal"]["score_mean"] > 0.999 > rows["noisy"]["score_mean"]
    assert rows["noisy"]["score_worst"] <= rows["noisy"]["score_mean"]
    assert rows["fp32"]["score_mean"] == 1.0 and rows["noisy"]["score_std"] > 0
    code, text, err = cli("compare", files / "encoder.onnx", "--chips", files / "ideal.acim",
                          files / "noisy.acim", "--data", files / "tokens.npy", "--seeds", "2",
                          "--report", tmp_path / "page.html")
    assert code == 0, err
    page = (tmp_path / "page.html").read_text()
    assert "Cosine similarity with FP32" in page and "cosine vs fp32" in page
    header = text.splitlines()[1]
    assert "cosine vs fp32" in header and "worst sample" in header and "SQNR" in header
    assert "accuracy" not in header and "agree" not in text    # no meaningless top-1 figure


def test_golden_on_an_embedding_model_names_the_metric(files):
    code, text, err = cli("golden", files / "encoder.onnx", "--chip", files / "ideal.acim",
                          "--data", files / "tokens.npy")
    assert code == 0, err
    assert "cosine 1.0000" in text and "agreement" not in text and "cosine >= 0.9" in text
    code, out, err = cli("golden", files / "encoder.onnx", "--chip", files / "noisy.acim",
                         "--data", files / "tokens.npy", "--metric", "sqnr", "--json")
    result = json.loads(out)
    assert result["metric"] == "sqnr"
    rungs = {r["kind"]: r for r in result["rungs"]}
    assert list(rungs) == ["import", "quantisation", "adc", "noise"]
    assert rungs["noise"]["score"] == rungs["noise"]["sqnr_db"] < 40


@pytest.mark.parametrize("metric", ["top1", "agreement", "cosine", "sqnr", "mse"])
def test_compare_json_rows_name_every_metric(metric, files):
    code, out, err = cli("compare", MLP, "--chips", files / "noisy.acim", "--data", "digits",
                         "--limit", "30", "--seeds", "2", "--metric", metric, "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["chip"] for r in rows] == ["fp32", "int", "noisy"]
    for r in rows:
        assert r["metric"] == metric and {"score_mean", "score_std", "accuracy_mean"} <= set(r)
    noisy = rows[-1]
    expected = {"top1": noisy["accuracy_mean"], "agreement": noisy["agreement"],
                "sqnr": noisy["sqnr_db"]}.get(metric)
    if expected is not None:
        assert noisy["score_mean"] == pytest.approx(expected)
    if metric == "top1":
        assert noisy["score_std"] == noisy["accuracy_std"]


def test_default_metric_is_top1_for_labelled_class_scores(files):
    code, out, err = cli("compare", MLP, "--chips", files / "ideal.acim", "--data", "digits",
                         "--limit", "20", "--seeds", "1", "--json")
    assert all(r["metric"] == "top1" for r in json.loads(out))
    code, text, err = cli("compare", MLP, "--chips", files / "ideal.acim", "--data", "digits",
                          "--limit", "20", "--seeds", "1")
    assert text.splitlines()[1].split()[:5] == ["chip", "precision", "accuracy", "agree", "w/"]


@pytest.mark.parametrize("command", ["compare", "golden"])
def test_bad_metrics_exit_2_and_write_nothing(command, files, tmp_path):
    chips = ["--chips", files / "ideal.acim"] if command == "compare" else \
        ["--chip", files / "ideal.acim"]
    report = tmp_path / "out.html"
    code, out, err = cli(command, files / "encoder.onnx", *chips, "--data",
                         files / "tokens.npy", "--metric", "accuracy", "--report", report)
    assert code == 2 and "top1, agreement, cosine, sqnr, mse" in err and not report.exists()
    code, out, err = cli(command, files / "encoder.onnx", *chips, "--data",
                         files / "tokens.npy", "--metric", "top1", "--report", report)
    assert code == 2 and "no labels" in err and not report.exists() and not out


# -- int baselines and warnings ------------------------------------------------------------------

def test_one_int_baseline_per_quantisation_labelled_without_an_adc(files):
    code, out, err = cli("compare", MLP, "--chips", files / "ideal.acim", files / "adc6.acim",
                         files / "a4.acim", "--data", "digits", "--limit", "20", "--seeds", "1",
                         "--json")
    assert code == 0, err
    ints = [r for r in json.loads(out) if r["chip"] == "int"]
    assert [(r["precision"], r["chips"]) for r in ints] == [
        ("W8 A8s", ["ideal", "adc6"]), ("W8 A4s", ["a4"])]


def test_a_clipping_warning_is_said_once_naming_the_layers(tmp_path):
    chips = []
    for bits in (6, 8):
        (tmp_path / f"u{bits}.acim").write_text(
            f'chip "u{bits}" {{ array {{ rows 64 }} adc {{ bits {bits} }} }}\n')
        chips.append(tmp_path / f"u{bits}.acim")
    code, text, err = cli("compare", VIT, "--chips", *chips, "--data", "digits", "--limit",
                          "4", "--seeds", "1")
    assert code == 0, err
    warnings = [line for line in text.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("warning: u6, u8: inputs are clipped in ")
    assert "negative inputs clip to 0 on this unsigned-input chip" in warnings[0]
    assert "/blocks/blocks.0/attn/q/MatMul (" in warnings[0] and "/head/Gemm (" in warnings[0]


# -- sweeps --------------------------------------------------------------------------------------

def test_sweep_with_a_cosine_metric_and_best(files, tmp_path):
    db = tmp_path / "s.db"
    code, out, err = cli("sweep", MLP, "--chip", files / "noisy.acim", "--data", "digits",
                         "--limit", "20", "--seeds", "1", "--db", db, "--vary", "adc.bits=3,8",
                         "--workers", "1", "--metric", "cosine", "--json")
    assert code == 0, err
    rows = {str(r["point"]): r for r in json.loads(out)}
    assert all(r["metric"] == "cosine" for r in rows.values())
    assert rows["2"]["score_mean"] == rows["2"]["cosine"] > rows["1"]["cosine"]
    code, text, err = cli("sweep", "show", db, "--best", "cosine >= 0.5")
    assert code == 0, err
    assert "best (cosine >= 0.5): point 2 adc.bits=8: cosine 0." in text
    # Columns: a baseline's precision in the precision column, not under adc.bits.
    lines = text.splitlines()
    header = lines[1]
    fp32 = next(line for line in lines if line.startswith("fp32"))
    assert fp32[header.index("precision"):].startswith("float32")
    assert not fp32[header.index("adc.bits"):header.index("precision")].strip()
    # Any stored metric, shown after the run: top1 (the data have labels) and mse.
    code, out, err = cli("sweep", "show", db, "--metric", "top1", "--json")
    for r in json.loads(out):
        assert r["metric"] == "top1" and r["score_mean"] == r["accuracy_mean"]
    code, out, err = cli("sweep", "show", db, "--metric", "mse", "--best", "mse <= 1000",
                         "--json")
    best = [r for r in json.loads(out) if r["best"]]
    assert code == 0 and len(best) == 1 and best[0]["score_mean"] == best[0]["mse"]


def test_sweep_refuses_top1_without_labels_before_writing(files, tmp_path):
    db = tmp_path / "s.db"
    code, out, err = cli("sweep", files / "encoder.onnx", "--chip", files / "ideal.acim",
                         "--data", files / "tokens.npy", "--db", db, "--metric", "top1")
    assert code == 2 and "no labels" in err and not db.exists()
    code, out, err = cli("sweep", files / "encoder.onnx", "--chip", files / "ideal.acim",
                         "--data", files / "tokens.npy", "--db", db, "--metric", "cosinus")
    assert code == 2 and "cosine" in err and not db.exists()
    # Without labels the sweep's metric is cosine, with SQNR beside it and no top-1 figure.
    code, text, err = cli("sweep", files / "encoder.onnx", "--chip", files / "noisy.acim",
                          "--data", files / "tokens.npy", "--db", db, "--seeds", "1",
                          "--vary", "adc.bits=4,8", "--workers", "1")
    assert code == 0, err
    assert ", metric cosine;" in text and "cosine vs fp32" in text and "SQNR" in text
    assert "accuracy" not in text and "agree" not in text


# -- calibrate and finetune ----------------------------------------------------------------------

def test_calibrate_from_python_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    chip = tmp_path / "wide.acim"
    chip.write_text('chip "wide" { array { rows 255 } adc { bits 5 } }\n')
    calibration = asimc.calibrate_adc_ranges(MLP, chip, "digits:train", limit=40)
    assert list(calibration.ranges) == [l.name for l in calibration.layers]
    assert len(calibration.ranges) == 3 and not list(tmp_path.glob("*calibrated*"))
    assert all(0 < v <= 100 for v in calibration.ranges.values())
    assert calibration.output_sqnr_after_db > calibration.output_sqnr_before_db
    assert asimc.parse_chip(calibration.chip_text, filename=str(tmp_path / "x.acim")) \
        == calibration.chip


def test_finetune_names_its_metric_and_refuses_a_bad_one(files, tmp_path):
    out = tmp_path / "tuned.onnx"
    code, text, err = cli("finetune", MLP, "--chip", files / "noisy.acim", "--data",
                          "digits:train", "-o", out, "--metric", "nope")
    assert code == 2 and "top1, agreement" in err and not out.exists()
    data = asimc.data.load_dataset("digits:train", limit=64)
    np.savez(tmp_path / "train.npz", x=data.x, y=data.y)
    code, text, err = cli("finetune", MLP, "--chip", files / "noisy.acim", "--data",
                          tmp_path / "train.npz", "-o", out, "--epochs", "1", "--noise",
                          "analytic", "--seeds", "1", "--metric", "cosine", "--json")
    assert code == 0, err
    summary = json.loads(text)
    for stage in ("before", "after"):
        assert summary[stage]["metric"] == "cosine"
        assert -1 <= summary[stage]["score_mean"] <= 1
        assert "chip_accuracy_mean" in summary[stage]


def test_a_sweep_database_from_before_the_metrics_still_shows(tmp_path):
    """Schema 1 without the `scores` columns: its rows show their accuracy, agreement and SQNR
    (the other metrics unknown), and a sweep that opens it again adds the columns."""
    import sqlite3
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as con:
        con.executescript("""
            CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE points (id INTEGER PRIMARY KEY, chip_key TEXT UNIQUE NOT NULL,
                params TEXT NOT NULL, chip_text TEXT, valid INTEGER NOT NULL,
                message TEXT NOT NULL DEFAULT '', costs TEXT, int_key TEXT);
            CREATE TABLE results (key TEXT PRIMARY KEY, point INTEGER NOT NULL, seed INTEGER
                NOT NULL, status TEXT NOT NULL, accuracy REAL, agreement REAL, sqnr_db REAL,
                message TEXT NOT NULL DEFAULT '', seconds REAL);
            CREATE TABLE baselines (key TEXT PRIMARY KEY, kind TEXT NOT NULL, precision TEXT
                NOT NULL, accuracy REAL, agreement REAL, sqnr_db REAL);
            INSERT INTO meta VALUES ('seeds', '1'), ('axes', '["adc.bits"]');
            INSERT INTO points VALUES (1, 'k', '{"adc.bits": "8"}', 'chip "x" {}', 1, '',
                '{"adc_conversions": 100, "cycles": 10, "precision": "W8 A8u serial ADC8"}',
                'i');
            INSERT INTO results VALUES ('r', 1, 0, 'done', 0.5, 0.6, 3.0, '', 1.0);
            INSERT INTO baselines VALUES ('fp32', 'fp32', 'float32', 0.9, 1.0, 1e999),
                ('i', 'int', 'W8 A8u serial', 0.8, 0.85, 20.0);
        """)
    code, out, err = cli("sweep", "show", db, "--json")
    assert code == 0, err
    point = json.loads(out)[-1]
    assert point["metric"] == "top1" and point["score_mean"] == 0.5 and point["cosine"] is None
    from asimc.sweep.store import connect
    connect(db, create=True).close()
    with sqlite3.connect(db) as con:
        assert "scores" in {row[1] for row in con.execute("PRAGMA table_info(results)")}
