"""From PyTorch to the chip and back, without writing an ONNX file.

A small CNN (convolution, BatchNorm, a residual add) is trained in float on the digits data,
compiled from the module for three chips and evaluated over a DataLoader with the chip in the
loop, then fine-tuned for the noisiest chip: asimc.finetune writes the trained weights back into
the module itself.

    python examples/from_pytorch.py [--epochs N] [--finetune-epochs N] [--samples N]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import asimc
from asimc.data import load_dataset

ROOT = Path(__file__).resolve().parents[1]
CHIPS = [ROOT / "chips" / "asim-bitserial-255.acim", ROOT / "chips" / "asim-hcim-2.acim",
         ROOT / "examples" / "chips" / "noisy-0.4lsb.acim"]


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(x + self.conv2(x))                      # a residual add
        return self.fc(torch.flatten(self.pool(x), 1))


def loader(split: str, batch_size: int = 64, shuffle: bool = False,
           limit: int | None = None) -> DataLoader:
    data = load_dataset(split, limit=limit)                     # (N, 1, 8, 8) float32, labels
    return DataLoader(TensorDataset(torch.from_numpy(data.x), torch.from_numpy(data.y)),
                      batch_size=batch_size, shuffle=shuffle)


def trained_model(epochs: int) -> SmallCNN:
    """The CNN trained in float on digits:train (seeded: the same model every time)."""
    torch.manual_seed(0)
    model = SmallCNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(epochs):
        for x, y in loader("digits:train", shuffle=True):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    return model.eval()


def accuracy(model: nn.Module, data: DataLoader) -> float:
    correct = total = 0
    with torch.no_grad():
        for x, y in data:                                       # the chip in a torch loop
            correct += int((model(x).argmax(1) == y).sum())
            total += len(y)
    return correct / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15, help="float training epochs")
    parser.add_argument("--finetune-epochs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=None,
                        help="use the first N samples of each split after the float training")
    args = parser.parse_args()

    model = trained_model(args.epochs)
    test = loader("digits", limit=args.samples)                 # the held-out split
    x, _ = next(iter(test))
    print(f"FP32 (torch)          {100 * accuracy(model, test):6.2f} %")
    for chip in CHIPS:
        program = asimc.compile(model, chip, example_inputs=x[:1])
        print(f"{program.chip.name:21s} {100 * accuracy(program.module(mode='acim'), test):6.2f} %"
              f"   ({', '.join(program.layers)})")

    noisy = CHIPS[-1]
    result = asimc.finetune(model, noisy, loader("digits:train", limit=args.samples), val=test,
                            example_inputs=x[:1],
                            epochs=args.finetune_epochs, noise="analytic", eval_seeds=1, seed=0)
    on_chip = asimc.on_chip(model, noisy, x[:1], mode="acim", seed=0)   # the updated module
    print(f"fine-tuned for {result.chip_name}: chip {100 * result.before.chip_mean:.2f} % -> "
          f"{100 * result.after.chip_mean:.2f} % (epoch {result.best_epoch} kept); the module "
          f"now scores {100 * accuracy(on_chip, test):.2f} % on the chip, "
          f"{100 * accuracy(model, test):.2f} % in float")


if __name__ == "__main__":
    main()
