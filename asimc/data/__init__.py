"""Data for the golden ladder and chip comparisons.

``load_dataset(spec)`` reads a built-in data set (``digits``, ``digits32``, ``fashion-mnist``),
a folder of MNIST-format IDX files (``idx:DIR``), a ``.npz``/``.npy`` file or a folder of
images into a ``Dataset`` (float32 samples batch first, optional int64 labels);
``fit_to_input`` adapts a batch to the shape and dtype of a model input. Every problem with the
user's data is raised as ``asimc.errors.InputDataError`` with a message that says what to fix.
"""
from .dataset import Dataset
from .digits import split_indices as digits_split_indices
from .fit import fit_to_input
from .loader import load_dataset

__all__ = ["Dataset", "load_dataset", "fit_to_input", "digits_split_indices"]
