"""What the example training scripts share: data, a deterministic training loop, ONNX export and
an onnxruntime check of the exported file on the digits test split.

The data comes from ``asimc.data.load_dataset`` ("digits:train" to train, "digits:test" to
report), so the examples train on exactly the split that asimc's ``--data digits`` never
evaluates on. Nothing is downloaded.
"""
from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from asimc.data import load_dataset

MODELS_FOLDER = Path(__file__).resolve().parent / "models"
INPUT_NAME, OUTPUT_NAME = "input", "logits"


def make_deterministic(seed: int = 0) -> torch.Generator:
    """Seed everything and forbid non-deterministic kernels; returns the shuffling generator."""
    # One thread: these models are so small that a second thread only adds synchronisation (it
    # made training several times slower on 2 cores), and the sums always run in one order.
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    return torch.Generator().manual_seed(seed)


def digits_tensors(split: str, flatten: bool,
                   dataset: str = "digits") -> tuple[torch.Tensor, torch.Tensor]:
    data = load_dataset(f"{dataset}:{split}")
    x = torch.from_numpy(data.x)
    return (x.reshape(len(x), -1) if flatten else x), torch.from_numpy(data.y)


def shift_augment(images: torch.Tensor, generator: torch.Generator,
                  max_shift: int = 1) -> torch.Tensor:
    """Move each (N, C, H, W) image by up to ``max_shift`` pixels, filling with background (0):
    a random crop of the image padded by ``max_shift``."""
    height, width = images.shape[-2:]
    padded = F.pad(images, (max_shift,) * 4)
    offsets = torch.randint(0, 2 * max_shift + 1, (len(images), 2), generator=generator)
    shifted = torch.empty_like(images)
    for dy in range(2 * max_shift + 1):         # one slice per shift, not one per image
        for dx in range(2 * max_shift + 1):
            chosen = (offsets[:, 0] == dy) & (offsets[:, 1] == dx)
            shifted[chosen] = padded[chosen, :, dy:dy + height, dx:dx + width]
    return shifted


def flip_augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror a random half of the (N, C, H, W) images left to right."""
    flipped = torch.rand(len(images), generator=generator) < 0.5
    images = images.clone()
    images[flipped] = images[flipped].flip(-1)
    return images


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator, *,
          epochs: int, lr: float, weight_decay: float = 1e-4, batch_size: int = 64,
          label_smoothing: float = 0.0, augment: bool = False, max_shift: int = 1,
          flip: bool = False, checkpoint: Path | None = None) -> nn.Module:
    """AdamW with a one-cycle learning rate; prints the loss every few epochs.

    ``augment`` shifts each image by up to ``max_shift`` pixels; ``flip`` mirrors half of them.
    With a ``checkpoint`` file, the model, optimizer, schedule and random state are saved after
    every epoch and a rerun resumes from the last one, with the same result as one run."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = (len(x) + batch_size - 1) // batch_size
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, epochs=epochs, steps_per_epoch=steps_per_epoch)
    first_epoch = 0
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch"])
        first_epoch = state["epoch"]
        print(f"resumed from {checkpoint} after epoch {first_epoch}")
    start = time.perf_counter()
    for epoch in range(first_epoch, epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        total, correct = 0.0, 0
        for first in range(0, len(x), batch_size):
            batch = order[first:first + batch_size]
            inputs, labels = x[batch], y[batch]
            if augment:
                inputs = shift_augment(inputs, generator, max_shift)
            if flip:
                inputs = flip_augment(inputs, generator)
            logits = model(inputs)
            loss = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(batch)
            correct += int((logits.argmax(1) == labels).sum())
        if epochs <= 20 or epoch % 10 == 9 or epoch == epochs - 1:
            print(f"epoch {epoch + 1:3d}/{epochs}  loss {total / len(x):.4f}  "
                  f"train accuracy {correct / len(x):.4f}  ({time.perf_counter() - start:.0f} s)",
                  flush=True)
        if checkpoint is not None:
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "schedule": schedule.state_dict(), "generator": generator.get_state(),
                        "torch": torch.get_rng_state(), "epoch": epoch + 1}, checkpoint)
    return model.eval()


def export(model: nn.Module, sample: torch.Tensor, path: Path) -> None:
    """The legacy (TorchScript) exporter: node names follow module paths (/blocks.0/attn/MatMul),
    which is what users target with layer globs in chip files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The default (EVAL) folds each BatchNorm into the Conv before it; PRESERVE keeps
    # BatchNormalization nodes so the model shows asimc a real BatchNorm. The model is in eval
    # mode, so those nodes use the running statistics.
    has_batchnorm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    mode = torch.onnx.TrainingMode.PRESERVE if has_batchnorm else torch.onnx.TrainingMode.EVAL
    with warnings.catch_warnings():
        # PRESERVE warns about constant folding in training mode; this model is in eval mode.
        warnings.filterwarnings("ignore", message="It is recommended that constant folding")
        torch.onnx.export(
            model.eval(), (sample,), str(path), dynamo=False, opset_version=17,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            training=mode,
        )


def onnxruntime_accuracy(path: Path, flatten: bool,
                         dataset: str = "digits") -> tuple[float, np.ndarray]:
    """FP32 accuracy of the exported file on the digits test split, and its logits."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x, y = digits_tensors("test", flatten, dataset)
    logits = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
    return float((logits.argmax(1) == y.numpy()).mean()), logits


def finish(model: nn.Module, name: str, flatten: bool, dataset: str = "digits") -> float:
    """Export ``model`` to models/NAME.onnx, check it with onnxruntime and print the accuracy."""
    x_test, y_test = digits_tensors("test", flatten, dataset)
    with torch.no_grad():
        torch_logits = model.eval()(x_test).numpy()
    path = MODELS_FOLDER / f"{name}.onnx"
    export(model, x_test[:1], path)
    accuracy, ort_logits = onnxruntime_accuracy(path, flatten, dataset)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"{path.name}: {parameters} parameters, {path.stat().st_size / 1024:.0f} KiB")
    print(f"onnxruntime vs torch logits: max abs diff "
          f"{np.abs(ort_logits - torch_logits).max():.2e}")
    print(f"FP32 test accuracy (onnxruntime, {dataset}:test, {len(y_test)} images): "
          f"{accuracy:.4f}")
    return accuracy


def train_fashion(build: Callable[[], nn.Module], name: str, *phases: dict) -> None:
    """Seed, build the model, train it on ``fashion-mnist:train`` in ``phases`` (each the options
    of one ``train`` run, by default batch 128 with random crops of 2-pixel padding and
    horizontal flips), export models/NAME.onnx and report on the 10,000 test images. Each phase
    checkpoints after every epoch (models/NAME.pt, then NAME-2.pt...) and resumes from it.

    A number on the command line trains on that many images only, without checkpoint or export:
    the way to time an epoch before a long run."""
    generator = make_deterministic(seed=0)
    model = build()
    x, y = digits_tensors("train", flatten=False, dataset="fashion-mnist")
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else None
    if limit:
        x, y = x[:limit], y[:limit]
    for index, options in enumerate(phases):
        checkpoint = MODELS_FOLDER / (f"{name}.pt" if index == 0 else f"{name}-{index + 1}.pt")
        settings = {"batch_size": 128, "augment": True, "max_shift": 2, "flip": True, **options}
        train(model, x, y, generator, checkpoint=None if limit else checkpoint, **settings)
    if not limit:
        finish(model, name, flatten=False, dataset="fashion-mnist")
