"""The analytic mode's conversion model against the chip itself: the mean error and the variance
it predicts for an on-chip layer's outputs are what the bit-level kernel produces over many noise
seeds (the first on-chip layer, whose inputs the noise does not touch)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats  # noqa: F401  (imported only if available; see _normal_tail)

import asimc
from asimc.chip import load_chip
from asimc.chip.conversions import ConversionPlan
from asimc.data import load_dataset
from asimc.finetune.moments import conversion_table
from asimc.finetune.module import TrainableGraph
from asimc.finetune.noise import ChipForward
from asimc.finetune.params import plan_parameters
from asimc.frontend import import_proto

ROOT = Path(__file__).resolve().parents[2]
MLP = ROOT / "examples" / "models" / "digits_mlp.onnx"
NOISY = ROOT / "examples" / "chips" / "noisy-0.5lsb.acim"
