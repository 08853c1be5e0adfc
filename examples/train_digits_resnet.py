"""Train a CIFAR-style ResNet-20 on digits upscaled to 3x32x32; export models/digits_resnet.onnx.

Input [batch, 3, 32, 32] (``asimc --data digits32``: the 8x8 digits resized bilinearly, gray on
three channels, pixels in [0, 1]); output [batch, 10] logits.

The ResNet-20 layout of He et al. (CIFAR-10): a 3x3 stem conv, three stages of three basic
blocks (conv3x3-BN-ReLU-conv3x3-BN, plus the block input, ReLU), global average pool, linear.
The stages are 1.75x as wide as ResNet-20's 16/32/64, at 28/56/112 channels, so that every 3x3
conv after the stem fills the array: a channel-mapped row tile of a 255-row macro holds 28 input
channels x 9 taps = 252 rows, and 56 and 112 channels are exactly 2 and 4 full tiles.

    stem      conv3x3 3->28, BatchNorm, ReLU                      32x32
    stage1    3 blocks at 28 channels                              32x32
    stage2    3 blocks at 56 channels, the first with stride 2     16x16
    stage3    3 blocks at 112 channels, the first with stride 2     8x8
    pool      global average pool                                   1x1
    head      linear 112->10

A block that changes the width or the resolution adds its input through a 1x1 stride-2 conv and
BatchNorm (ResNet "option B"), which is an ordinary Conv in ONNX.

Run from the repository root: python examples/train_digits_resnet.py
"""
from __future__ import annotations

import torch
from torch import nn

from common import digits_tensors, finish, make_deterministic, train

WIDTHS = (28, 56, 112)
BLOCKS_PER_STAGE = 3
DATASET = "digits32"


class ConvBN(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3,
                 stride: int = 1) -> None:
        super().__init__()
        # No conv bias: the BatchNorm after it has its own shift.
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride=stride,
                              padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = ConvBN(in_channels, out_channels, stride=stride)
        self.conv2 = ConvBN(out_channels, out_channels)
        self.shortcut = (ConvBN(in_channels, out_channels, kernel=1, stride=stride)
                         if stride != 1 or in_channels != out_channels else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.shortcut(x) + self.conv2(torch.relu(self.conv1(x))))


class DigitsResNet(nn.Module):
    def __init__(self, widths: tuple[int, ...] = WIDTHS, blocks: int = BLOCKS_PER_STAGE,
                 in_channels: int = 3, stem_stride: int = 1) -> None:
        super().__init__()
        self.stem = ConvBN(in_channels, widths[0], stride=stem_stride)
        stages, channels = [], widths[0]
        for index, width in enumerate(widths):
            stride = 1 if index == 0 else 2
            stage = [BasicBlock(channels, width, stride)]
            stage += [BasicBlock(width, width, 1) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*stage))
            channels = width
        self.stage1, self.stage2, self.stage3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(channels, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        x = self.stage3(self.stage2(self.stage1(x)))
        return self.head(torch.flatten(self.pool(x), 1))


def main() -> None:
    generator = make_deterministic(seed=0)
    model = DigitsResNet()
    x, y = digits_tensors("train", flatten=False, dataset=DATASET)
    # Few epochs: the data is easy and one epoch costs about a minute on one core.
    train(model, x, y, generator, epochs=EPOCHS, lr=4e-3, weight_decay=1e-4,
          label_smoothing=0.05, augment=True)
    finish(model, "digits_resnet", flatten=False, dataset=DATASET)


EPOCHS = 8

if __name__ == "__main__":
    main()
