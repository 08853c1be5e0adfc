"""The `Dataset` hand-off: a batch of samples (and labels, when known) ready to feed a model."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True, eq=False)   # eq=False: comparing numpy arrays with == is ambiguous
class Dataset:
    """Samples batch first, as float32, with optional int64 labels.

    ``classes`` names the labels when the source knows them (image folders: the sorted class
    sub-folder names, so label ``i`` is ``classes[i]``). ``sources`` names where each sample came
    from (image folders: the file's path relative to the folder), so one failing sample can be
    found and re-run.
    """

    name: str
    x: np.ndarray
    y: np.ndarray | None
    description: str
    classes: tuple[str, ...] | None = None
    sources: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        # The loaders validate user data and raise InputDataError; this only guards the contract
        # for code that builds a Dataset directly.
        if not isinstance(self.x, np.ndarray) or self.x.dtype != np.float32 or self.x.ndim < 1:
            raise ValueError("Dataset.x must be a float32 numpy array with a batch dimension")
        if self.y is not None:
            if self.y.dtype != np.int64 or self.y.shape != (len(self.x),):
                raise ValueError("Dataset.y must be an int64 vector with one label per sample")
        if self.sources is not None and len(self.sources) != len(self.x):
            raise ValueError("Dataset.sources must name every sample")

    def __len__(self) -> int:
        return len(self.x)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """The shape of one sample (``x.shape`` without the batch dimension)."""
        return tuple(self.x.shape[1:])

    def head(self, limit: int) -> Dataset:
        """The first ``limit`` samples (all of them when there are fewer)."""
        if limit >= len(self):
            return self
        return replace(
            self,
            x=self.x[:limit],
            y=None if self.y is None else self.y[:limit],
            sources=None if self.sources is None else self.sources[:limit],
            description=f"{self.description}; first {limit} of {len(self)} samples",
        )
