"""The figures: `--plot FILE.{png,svg,pdf}` on compare and golden, the same figures inline in the
self-contained HTML reports, and labels that never pile up or leave the figure."""
from __future__ import annotations

import math
import random
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from matplotlib.text import Text

from asimc.cli import main
from asimc.report.figures import compare_figure, golden_figure

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "examples" / "models" / "digits_mlp.onnx"
WITH_ENERGY = ROOT / "chips" / "chen-jssc2021-capram-65nm.acim"    # has energy figures
WITHOUT_ENERGY = ROOT / "chips" / "asim-hcim-2.acim"                # has none
MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF-"}


def _cli(*args) -> int:
    return main([str(a) for a in args])


def _svg_text(svg: str) -> str:
    """The words an SVG shows: matplotlib draws text as paths and keeps each string in a
    comment before it."""
    return " ".join(re.findall(r"<!-- (.*?) -->", svg))


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    folder = tmp_path_factory.mktemp("figures")
    code = _cli("compare", MODEL, "--chips", WITH_ENERGY, WITHOUT_ENERGY, "--data", "digits",
                "--limit", "24", "--seeds", "2", "--plot", folder / "compare.svg",
                "--report", folder / "compare.html")
    assert code == 0
    return folder


def test_compare_plot_is_an_svg_naming_every_chip(compared):
    svg = (compared / "compare.svg").read_text()
    root = ElementTree.fromstring(svg)                       # well-formed XML
    assert root.tag.endswith("svg")
    words = _svg_text(svg)
    for chip in ("chen-jssc2021-capram-65nm", "asim-hcim-2"):
        assert chip in words
    assert "Accuracy (%)" in words and re.search(r"Energy per inference \([fpnum]?J\)", words)
    # The chip without energy figures is named, not dropped.
    assert re.search(r"no energy figures.*asim-hcim-2", words)


def test_compare_report_embeds_the_figure_and_nothing_external(compared):
    page = (compared / "compare.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 1 and "<?xml" not in page and "<!DOCTYPE svg" not in page
    assert "<script" not in page and "src=" not in page and "url(http" not in page
    # Links only inside the page (the SVG's own definitions).
    assert all(ref.startswith("#") for ref in re.findall(r'href="([^"]*)"', page))
    assert "asim-hcim-2" in _svg_text(page)
    # Table cells in the terminal's units.
    assert re.search(r"<td>\d+(\.\d+)?k</td>", page)                      # conversions
    assert re.search(r"<td>\d+(\.\d+)? [pnu]J</td>", page)               # energy
    assert "baseline of chen-jssc2021-capram-65nm" in page                # int rows say whose


def test_golden_plot_png_and_report(tmp_path):
    png, page = tmp_path / "ladder.png", tmp_path / "ladder.html"
    code = _cli("golden", MODEL, "--chip", WITHOUT_ENERGY, "--data", "digits", "--limit", "24",
                "--plot", png, "--report", page)
    assert code == 0
    assert png.read_bytes().startswith(MAGIC["png"])
    text = page.read_text()
    assert text.count("<svg") == 1 and "int vs ideal acim" in text
    assert "/fc1/Gemm" in _svg_text(text) or "Gemm" in _svg_text(text)
    # The criterion is prose: it aligns left (numbers align right), header and cells alike.
    assert "<th class='text'>criterion</th>" in text
    assert re.search(r"<td class='text'>bit-identical</td>", text)


def test_compare_plot_pdf(tmp_path):
    pdf = tmp_path / "compare.pdf"
    code = _cli("compare", MODEL, "--chips", WITH_ENERGY, "--data", "digits", "--limit", "16",
                "--seeds", "1", "--plot", pdf, "--json")
    assert code == 0
    data = pdf.read_bytes()
    assert data.startswith(MAGIC["pdf"]) and b"%%EOF" in data[-64:]
    assert b"/Type3" not in data                         # TrueType fonts, as journals ask


@pytest.mark.parametrize("target, expected", [
    ("out.jpg", "ending in .png, .svg, .pdf"),
    ("out", "ending in .png, .svg, .pdf"),
    ("no/such/folder/out.png", "does not exist"),
])
def test_a_bad_plot_file_is_a_clear_error(tmp_path, capsys, monkeypatch, target, expected):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        _cli("compare", MODEL, "--chips", WITH_ENERGY, "--data", "digits", "--plot", target)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--plot" in err and expected in err and "Traceback" not in err


def _crowded_rows(count: int, seed: int) -> list[dict]:
    """A comparison of ``count`` chips bunched into few distinct costs and accuracies, with
    long names: the worst case for labels."""
    draw = random.Random(seed)
    rows = [{"chip": "fp32", "precision": "float32", "accuracy_mean": 0.99, "accuracy_std": 0.0,
             "agreement": 1.0, "sqnr_db": math.inf, "seeds": 0, "source": "onnxruntime"}]
    for k in range(count):
        energy = None if k % 4 == 0 else draw.choice([2e-9, 5e-9, 3e-8, 2.5e-7, 5e-7]) \
            * draw.uniform(0.9, 1.1)
        rows.append({"chip": f"vendor-journal20{k:02d}-process-{draw.randint(5, 65)}nm",
                     "precision": "W8 A8u serial ADC8",
                     "accuracy_mean": draw.choice([0.1, 0.12, 0.15, 0.99, 0.98]),
                     "accuracy_std": draw.uniform(0, 0.03), "agreement": draw.uniform(0, 1),
                     "sqnr_db": draw.uniform(-10, 40),
                     "adc_conversions": draw.choice([14900, 90300, 361000]),
                     "cycles": 2700, "energy_j": energy, "tops_per_w": None, "seeds": 3,
                     "source": ""})
    return rows


def _texts(figure):
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    for ax in figure.axes:
        boxes = [(t.get_text(), Text.get_window_extent(t, renderer)) for t in ax.texts
                 if t.get_text().strip()]
        yield ax, boxes


def test_point_labels_never_overlap_or_leave_the_figure():
    rows = _crowded_rows(19, seed=1)
    figure = compare_figure(rows, title="crowded")
    page = figure.bbox
    shown = []
    for ax, boxes in _texts(figure):
        for k, (text, box) in enumerate(boxes):
            assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0, text
            for other, other_box in boxes[:k]:
                assert not box.overlaps(other_box), (text, other)
            shown.append(text)
    words = " ".join(shown)
    # Every chip is named in each scatter: by a label, a numbered key or the no-energy note.
    for row in rows[1:]:
        assert words.count(row["chip"]) >= 2, row["chip"]


def test_golden_figure_marks_exact_layers():
    result = {"model": "m.onnx", "chip": "c", "samples": 4, "seed": 0, "layers": [
        {"name": "/a/Conv", "op_type": "Conv", "sqnr_db": 12.5, "ideal_sqnr_db": math.inf,
         "clipped_inputs": 0.0},
        {"name": "/b/Gemm", "op_type": "Gemm", "sqnr_db": 3.0, "ideal_sqnr_db": 20.0,
         "clipped_inputs": 0.4}]}
    figure = golden_figure(result)
    texts = [t for _, boxes in _texts(figure) for t, _ in boxes]
    assert any("exact" in t for t in texts)
    assert sum(t.strip() == "none" for t in texts) == 1      # /a/Conv clips nothing
    labels = [t.get_text() for ax in figure.axes for t in ax.get_yticklabels()]
    assert "/a/Conv" in labels and "/b/Gemm" in labels


# -- what a reader sees: three chips with energy figures, as the PNG is written -------------

def _png_size(path) -> tuple[int, int]:
    head = Path(path).read_bytes()[:24]
    assert head[:8] == MAGIC["png"]
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


@pytest.fixture(scope="module")
def three_chips(tmp_path_factory):
    from asimc.commands.evaluate import compare_rows
    from asimc.compare import compare_chips
    chips = [ROOT / "chips" / f"{name}.acim" for name in
             ("chen-jssc2021-capram-65nm", "lee-vlsi2021-1152x256", "jia-jssc2021-16nm-4x4")]
    rows = compare_rows(compare_chips(MODEL, chips, "digits", seeds=1, limit=24))
    path = tmp_path_factory.mktemp("three") / "compare.png"
    assert _cli("compare", MODEL, "--chips", *chips, "--data", "digits", "--limit", "24",
                "--seeds", "1", "--plot", path) == 0
    return rows, path


def test_compare_png_is_drawn_at_the_resolution_its_labels_were_placed_at(three_chips):
    rows, path = three_chips
    figure = compare_figure(rows, title="three chips")
    width, height = _png_size(path)
    assert width == round(figure.get_figwidth() * figure.dpi) == 2000
    assert height == round(figure.get_figheight() * figure.dpi)
    renderer = figure.canvas.get_renderer()
    figure.canvas.draw()
    scatters = [ax for ax in figure.axes if ax.collections and ax.get_xscale() in ("log", "linear")
                and ax.get_ylabel() == "Accuracy (%)" and ax.get_title()]
    assert len(scatters) == 2
    for ax in scatters:
        box = ax.get_window_extent(renderer)
        markers = [tuple(ax.transData.transform(p)) for c in ax.collections
                   for p in c.get_offsets()]
        assert len(markers) == 3                         # every chip has its marker, in view
        for x, y in markers:
            assert box.x0 <= x <= box.x1 and box.y0 <= y <= box.y1
        labels = [(t.get_text(), t.get_window_extent(renderer)) for t in ax.texts
                  if t.get_text().strip()]
        named = "\n".join(text for text, _ in labels)
        for row in rows[1:]:
            if row["chip"] not in ("fp32", "int"):
                assert row["chip"] in named, (ax.get_title(), row["chip"])
        for k, (text, label) in enumerate(labels):
            for x, y in markers:                      # no label over a point
                assert not (label.x0 < x < label.x1 and label.y0 < y < label.y1), text
            for other, other_box in labels[:k]:
                assert not label.overlaps(other_box), (text, other)
        ticks = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        assert all(float(t.replace("−", "-")) <= 100 for t in ticks), ticks   # no 101 %
        assert "uJ" not in ax.get_xlabel()


def test_units_are_written_with_the_micro_sign():
    from asimc.report.units import engineering
    assert engineering(2.5e-6, "J") == "2.5 µJ" and engineering(3e-9, "J") == "3 nJ"


def test_a_chip_at_zero_accuracy_is_drawn_whole_with_its_label():
    rows = [{"chip": "fp32", "precision": "float32", "accuracy_mean": 1.0, "accuracy_std": 0.0,
             "agreement": 1.0, "sqnr_db": math.inf, "seeds": 0, "source": "onnxruntime"}]
    for name, energy, accuracy in (("at-zero", 3.5e-8, 0.0), ("low", 6.5e-8, 0.133),
                                   ("far", 6.3e-7, 0.033)):
        rows.append({"chip": name, "precision": "W4 A4u serial ADC7", "accuracy_mean": accuracy,
                     "accuracy_std": 0.0, "agreement": accuracy, "sqnr_db": 1.0,
                     "adc_conversions": energy * 1e13, "cycles": 100, "energy_j": energy,
                     "tops_per_w": None, "seeds": 1, "source": "", "energy_figures": True})
    figure = compare_figure(rows)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    radius = 3.0 * figure.dpi / 72                          # a marker of s=22 is ~4.7 pt across
    for ax in [ax for ax in figure.axes if ax.collections and ax.get_title()]:
        box = ax.get_window_extent(renderer)
        for x, y in (ax.transData.transform(p) for c in ax.collections for p in c.get_offsets()):
            assert box.y0 + radius <= y <= box.y1 - radius      # not cut by the axis
        assert "at-zero" in [t.get_text() for t in ax.texts]
        ticks = [float(t.get_text().replace("−", "-")) for t in ax.get_yticklabels()
                 if t.get_text()]
        assert min(ticks) >= 0 and max(ticks) <= 100


def test_a_chip_named_like_a_baseline_stays_a_chip_in_the_compare_page():
    """Rows are told apart by their kind, not their name: a chip file named ``fp32`` is a chip."""
    from asimc.report.pages import compare_page
    from asimc.report.figures import _chips
    base = {"precision": "int8", "metric": "top1", "score_mean": 0.9, "score_std": 0.01,
            "accuracy_mean": 0.9, "accuracy_std": 0.01, "agreement": 0.95, "sqnr_db": 20.0,
            "seeds": 3, "source": ""}
    rows = [{**base, "chip": "fp32", "kind": "fp32", "precision": "float32", "score_std": 0.0,
             "seeds": 0},
            {**base, "chip": "int", "kind": "int", "chips": ["fp32"], "score_std": 0.0,
             "seeds": 0},
            {**base, "chip": "fp32", "kind": "chip", "energy_figures": False, "warnings": []}]
    assert _chips(rows) == [rows[2]]
    assert compare_page(rows, model="m.onnx", data="d", seeds=3).count('class="reference"') == 2
