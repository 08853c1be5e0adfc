"""Chip-aware fine-tuning: a model + chip -> the model trained to survive the chip.

``asimc.finetune(model, chip, data, ...)`` (this package is callable: it is
``asimc.finetune.train.finetune``) trains an ONNX model or a ``torch.nn.Module`` with the chip in
the forward pass and returns a ``FinetuneResult``: the trained ``onnx.ModelProto`` (the original
with its trained initializers written back by name), the accuracy before and after, and the
epoch kept. A torch module also receives the trained values itself.
"""
import sys
import types

from .noise import MODES
from .train import OPTIMIZERS, FinetuneOptions, FinetuneResult, finetune, save_model

__all__ = ["MODES", "OPTIMIZERS", "FinetuneOptions", "FinetuneResult", "finetune",
           "save_model"]


class _CallablePackage(types.ModuleType):
    """``asimc.finetune`` is both this package and the function users call."""

    def __call__(self, *args, **kwargs):
        return finetune(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
