"""Train an MLP on the 64 pixels of scikit-learn's 8x8 digits; export models/digits_mlp.onnx.

Input [batch, 64] (the flattened image, pixels in [0, 1]); output [batch, 10] logits.
Run from the repository root: python examples/train_digits_mlp.py
"""
from __future__ import annotations

import torch
from torch import nn

from common import digits_tensors, finish, make_deterministic, train


class DigitsMLP(nn.Module):
    """64 -> 128 -> 64 -> 10 with ReLU; named layers give ONNX nodes like /fc1/Gemm."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, 128)
        self.fc2 = nn.Linear(128, 64)
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.head(x)


def main() -> None:
    generator = make_deterministic(seed=0)
    model = DigitsMLP()
    x, y = digits_tensors("train", flatten=True)
    train(model, x, y, generator, epochs=60, lr=3e-3, weight_decay=1e-3, label_smoothing=0.05)
    finish(model, "digits_mlp", flatten=True)


if __name__ == "__main__":
    main()
