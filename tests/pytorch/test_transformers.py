"""A transformers BertModel (a small BertConfig, random weights, nothing downloaded) compiles
from the module: its float run is the module's output, its layers carry the module's names and
their costs. transformers is the optional extra `hf`; the core never imports it.

The model runs in a child process: under pytest, tests/kernels shadows the `kernels` package
that transformers imports when it is installed."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHIP = ROOT / "chips" / "yoshioka-jssc2025-transformer.acim"

BERT = f"""
import json, torch, asimc
from transformers import BertConfig, BertModel
torch.manual_seed(0)
config = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=64, max_position_embeddings=16)
model = BertModel(config).eval()
inputs = {{"input_ids": torch.randint(0, 64, (3, 8)),
          "attention_mask": torch.tensor([[1] * 8, [1] * 6 + [0] * 2, [1] * 3 + [0] * 5])}}
program = asimc.compile(model, {str(CHIP)!r},
                        example_inputs={{k: v[:1] for k, v in inputs.items()}})
with torch.no_grad():
    expected = model(**inputs)
    ours = program.module(mode="float")(**inputs)
print(json.dumps({{
    "same_type": type(ours) is type(expected), "keys": list(ours.keys()),
    "rel": {{k: float((ours[k] - expected[k]).abs().max() / expected[k].abs().max())
             for k in expected.keys()}},
    "layers": list(program.layers),
    "costs": all(l.cost is not None and l.cost.macs for l in program.layers.values())}}))
"""


@pytest.mark.slow
def test_bert_compiles_from_the_module_and_its_float_run_is_the_module():
    run = subprocess.run([sys.executable, "-c", BERT], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["same_type"] and result["keys"] == ["last_hidden_state", "pooler_output"]
    assert all(rel <= 1e-5 for rel in result["rel"].values()), result["rel"]
    names = set(result["layers"])
    for layer in range(2):
        prefix = f"encoder.layer.{layer}."
        assert {prefix + "attention.self.query", prefix + "attention.self.key",
                prefix + "attention.self.value", prefix + "attention.output.dense",
                prefix + "intermediate.dense", prefix + "output.dense",
                prefix + "attention.self/MatMul", prefix + "attention.self/MatMul_1"} <= names
    assert "pooler.dense" in names
    assert result["costs"]


def test_the_core_does_not_import_transformers():
    code = ("import sys, torch, asimc, asimc.compiler, asimc.finetune, "
            "asimc.frontend.torch_export; asimc.on_chip; "
            "assert 'transformers' not in sys.modules, 'imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
