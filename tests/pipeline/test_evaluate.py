"""`asimc golden` and `asimc compare` on a real exported model and data with labels."""
from __future__ import annotations

import csv
import io
import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest

from asimc.cli import main

from frontend.torch_models import example, export, reference

IDEAL = 'chip "ideal" { array { rows 255 } adc { bits 8 } }\n'
NOISY = 'chip "noisy" { array { rows 32 } adc { bits 5 } noise { random 2 lsb } }\n'


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("evaluate")
    (folder / "model.onnx").write_bytes(export("mlp", dynamo=False))
    x = np.abs(example("mlp", 96, seed=3))
    labels = reference("mlp", x).argmax(axis=1)            # the FP32 model is always right
    np.savez(folder / "data.npz", x=x, y=labels)
    (folder / "ideal.acim").write_text(IDEAL)
    (folder / "noisy.acim").write_text(NOISY)
    return folder


def run(*args):
    done = subprocess.run([sys.executable, "-m", "asimc", *map(str, args)],
                          capture_output=True, text=True, timeout=600)
    assert "Traceback" not in done.stderr
    return done


def test_golden_ladder_on_a_lossless_chip(files):
    done = run("golden", files / "model.onnx", "--chip", files / "ideal.acim",
               "--data", files / "data.npz", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    names = [r["name"] for r in result["rungs"]]
    assert names == ["fp32 onnxruntime vs float", "float vs int", "int vs ideal acim",
                     "ideal vs noisy acim"]
    assert all(r["passed"] for r in result["rungs"])
    assert result["rungs"][0]["max_abs_diff"] < 1e-4
    assert result["rungs"][0]["reference_accuracy"] == 1.0
    assert result["rungs"][2]["bit_identical"] and result["rungs"][2]["must_hold"]
    assert len(result["layers"]) == 3
    assert all(l["ideal_sqnr_db"] is None and l["ideal_sqnr_exact"] for l in result["layers"])


def test_golden_ladder_measures_a_lossy_noisy_chip(files):
    done = run("golden", files / "model.onnx", "--chip", files / "noisy.acim",
               "--data", files / "data.npz", "--json", "--limit", "40")
    result = json.loads(done.stdout)
    assert result["samples"] == 40
    lossy = result["rungs"][2]
    assert not lossy["must_hold"] and not lossy["bit_identical"]
    assert all(math.isfinite(l["sqnr_db"]) for l in result["layers"])
    assert result["rungs"][3]["sqnr_db"] < 40
    # The human report says which layer loses most.
    text = run("golden", files / "model.onnx", "--chip", files / "noisy.acim",
               "--data", files / "data.npz", "--limit", "40").stdout
    assert "PASS" in text and "<- worst" in text


def test_a_failing_must_hold_rung_exits_1(files, monkeypatch, capsys):
    # Break a digital op: asimc's float execution no longer matches onnxruntime.
    from asimc.ops import registry
    relu = registry._REGISTRY["Relu"]
    monkeypatch.setitem(registry._REGISTRY, "Relu", lambda node, x: relu(node, x) + 0.5)
    code = main(["golden", str(files / "model.onnx"), "--chip", str(files / "ideal.acim"),
                 "--data", str(files / "data.npz"), "--limit", "16"])
    assert code == 1
    assert "FAIL" in capsys.readouterr().out


def test_compare_chips(files):
    done = run("compare", files / "model.onnx", "--chips", files / "ideal.acim",
               files / "noisy.acim", "--data", files / "data.npz", "--seeds", "3", "--json")
    assert done.returncode == 0, done.stderr
    rows = {r["chip"]: r for r in json.loads(done.stdout)}
    assert set(rows) == {"fp32", "int", "ideal", "noisy"}
    for row in rows.values():
        assert {"chip", "accuracy_mean", "accuracy_std", "agreement", "sqnr_db"} <= set(row)
    assert rows["fp32"]["accuracy_mean"] == 1.0 and rows["fp32"]["agreement"] == 1.0
    ideal, noisy = rows["ideal"], rows["noisy"]
    assert ideal["accuracy_std"] == 0.0                    # no noise: every seed agrees
    assert ideal["agreement"] == rows["int"]["agreement"]  # lossless: ideal ACiM == int
    assert noisy["sqnr_db"] < ideal["sqnr_db"]
    assert noisy["adc_conversions"] > ideal["adc_conversions"]      # 32 rows: more tiles


def test_compare_csv_has_one_line_per_row(files):
    done = run("compare", files / "model.onnx", "--chips", files / "ideal.acim",
               "--data", files / "data.npz", "--seeds", "1", "--csv", "--limit", "20")
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [r["chip"] for r in rows] == ["fp32", "int", "ideal"]


def test_data_that_does_not_fit_the_model_is_a_clear_error(files):
    np.save(files / "wrong.npy", np.zeros((4, 7), np.float32))
    done = run("golden", files / "model.onnx", "--chip", files / "ideal.acim",
               "--data", files / "wrong.npy")
    assert done.returncode == 2
    assert "7 values per sample" in done.stderr or "expects" in done.stderr


def test_html_reports_are_self_contained(files, tmp_path):
    report = tmp_path / "compare.html"
    done = run("compare", files / "model.onnx", "--chips", files / "ideal.acim",
               files / "noisy.acim", "--data", files / "data.npz", "--seeds", "2",
               "--limit", "24", "--report", report)
    assert done.returncode == 0, done.stderr
    text = report.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<svg" in text
    assert "ideal" in text and "noisy" in text
    assert "<script" not in text and "src=" not in text   # no external files
    assert all(ref.startswith("#") for ref in re.findall(r'href="([^"]*)"', text))
    ladder = tmp_path / "golden.html"
    done = run("golden", files / "model.onnx", "--chip", files / "noisy.acim",
               "--data", files / "data.npz", "--limit", "24", "--report", ladder)
    assert "int vs ideal acim" in ladder.read_text()
