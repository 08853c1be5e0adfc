"""Train a ResNet-20-layout CNN on Fashion-MNIST; export models/fashion_resnet.onnx.

Input [batch, 1, 28, 28] (``asimc --data fashion-mnist``: the 28x28 gray images, pixels in
[0, 1]); output [batch, 10] logits.

The layout of train_digits_resnet.py (He et al.'s ResNet-20, 1.75x as wide: 28/56/112 channels,
so every 3x3 conv after the stem fills a 255-row array: 28 channels x 9 taps = 252-row tiles),
with a stride-2 stem so that stage 1 runs at 14x14 rather than 28x28 (a quarter of the compute,
which is what lets it train on two shared CPU cores):

    stem      conv3x3 1->28 stride 2, BatchNorm, ReLU               14x14
    stage1    3 blocks at 28 channels                                14x14
    stage2    3 blocks at 56 channels, the first with stride 2        7x7
    stage3    3 blocks at 112 channels, the first with stride 2       4x4
    pool      global average pool                                     1x1
    head      linear 112->10

Trained on the 60,000 training images (``fashion-mnist:train``) with AdamW and a one-cycle
schedule, batch 128, random crops (2-pixel padding) and horizontal flips; reported on the 10,000
test images, which the training never sees. Seeded and deterministic on one thread. The run
checkpoints after each epoch (models/fashion_resnet.pt, not committed) and resumes from it.

Run from the repository root: python examples/train_fashion_resnet.py
"""
from __future__ import annotations

from common import train_fashion
from train_digits_resnet import DigitsResNet

EPOCHS = 6


def main() -> None:
    train_fashion(lambda: DigitsResNet(in_channels=1, stem_stride=2), "fashion_resnet",
                  dict(epochs=EPOCHS, lr=4e-3, weight_decay=1e-4, label_smoothing=0.05))


if __name__ == "__main__":
    main()
