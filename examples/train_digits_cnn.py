"""Train a small residual CNN on scikit-learn's 8x8 digits; export models/digits_cnn.onnx.

Input [batch, 1, 8, 8] (pixels in [0, 1]); output [batch, 10] logits.

    stem      conv3x3 1->16, BatchNorm, ReLU                       8x8
    blocks.0  conv3x3-BN-ReLU-conv3x3-BN, + input, ReLU  (16 ch)   8x8
    blocks.1  the same                                             8x8
    down      conv3x3 16->32 stride 2, BatchNorm, ReLU             4x4
    pool      global average pool                                  1x1
    head      linear 32->10

Run from the repository root: python examples/train_digits_cnn.py
"""
from __future__ import annotations

import torch
from torch import nn

from common import digits_tensors, finish, make_deterministic, train


class ConvBN(nn.Module):
    """conv3x3 then BatchNorm; exported as /stem/conv/Conv, /stem/bn/BatchNormalization."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        # No conv bias: the BatchNorm after it has its own shift.
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvBN(channels, channels)
        self.conv2 = ConvBN(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.conv2(torch.relu(self.conv1(x))))


class DigitsCNN(nn.Module):
    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.stem = ConvBN(1, width)
        self.blocks = nn.Sequential(ResidualBlock(width), ResidualBlock(width))
        self.down = ConvBN(width, 2 * width, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(2 * width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        x = self.blocks(x)
        x = torch.relu(self.down(x))
        return self.head(torch.flatten(self.pool(x), 1))


def main() -> None:
    generator = make_deterministic(seed=0)
    model = DigitsCNN()
    x, y = digits_tensors("train", flatten=False)
    train(model, x, y, generator, epochs=40, lr=5e-3, weight_decay=1e-4, label_smoothing=0.05,
          augment=True)
    finish(model, "digits_cnn", flatten=False)


if __name__ == "__main__":
    main()
