"""Quantised models for the QDQ tests: the real ``onnxruntime.quantization.quantize_static``
(QDQ format) calibrated on the digits train split, applied to the example models and to a small
torch-exported model whose products see signed inputs (nonzero zero points)."""
from pathlib import Path

import numpy as np
import torch
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                      quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process

from asimc.data import load_dataset

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "examples" / "models"
BASE_CHIP = ROOT / "chips" / "asim-bitserial-255.acim"


class DigitsReader(CalibrationDataReader):
    """Feeds the digits train split to the calibrator, 64 images at a time."""

    def __init__(self, flatten: bool):
        x = load_dataset("digits:train").x
        x = x.reshape(len(x), -1) if flatten else x
        self._batches = iter([{"input": x[i:i + 64]} for i in range(0, len(x), 64)])

    def get_next(self):
        return next(self._batches, None)


def quantise(source: Path, folder: Path, name: str, *, per_channel: bool, flatten: bool,
             activations=QuantType.QUInt8, prepare: bool = True) -> Path:
    """quantize_static in QDQ format; ``prepare``: onnxruntime's recommended pre-processing
    first (shape inference and BatchNorm fusion)."""
    prepared = folder / f"{name}_prepared.onnx"
    if prepare:
        quant_pre_process(str(source), str(prepared))
    else:
        prepared = source
    out = folder / f"{name}.onnx"
    quantize_static(str(prepared), str(out), DigitsReader(flatten), quant_format=QuantFormat.QDQ,
                    per_channel=per_channel, activation_type=activations,
                    weight_type=QuantType.QInt8)
    return out


class SignedMiddle(torch.nn.Module):
    """conv3x3 -> conv3x3 (padded) -> linear, no ReLU: the second conv and the linear layer see
    signed inputs, so uint8 quantisation gives them zero points near 128."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.head = torch.nn.Linear(8 * 8 * 8, 10)

    def forward(self, x):
        return self.head(torch.flatten(self.conv2(self.conv1(x)), 1))


def chip_file(folder: Path, body: str) -> Path:
    path = folder / "chip.acim"
    path.write_text(f'chip "variant" extends "{BASE_CHIP}" {{ {body} }}\n')
    return path


def onnxruntime_run(path: Path, x: np.ndarray, optimize: bool) -> np.ndarray:
    import onnxruntime as ort
    options = ort.SessionOptions()
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]
