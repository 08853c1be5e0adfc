"""Regenerates asimc/data/digits.npz from scikit-learn's copy of the UCI digits (run once; the
file is committed). tests/data/test_data_digits.py checks the file against scikit-learn."""
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

bunch = load_digits()
train, test = train_test_split(np.arange(len(bunch.target)), test_size=0.25, random_state=0,
                               stratify=bunch.target)
np.savez_compressed(Path(__file__).resolve().parent.parent / "asimc" / "data" / "digits.npz",
                    pixels=bunch.images.astype(np.uint8), labels=bunch.target.astype(np.uint8),
                    train=train.astype(np.int16), test=test.astype(np.int16))
