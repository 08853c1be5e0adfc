"""Chip-aware fine-tuning: ONNX model + chip -> an ONNX model trained to survive the chip.

``finetune(model, chip, train, val=..., options=FinetuneOptions(...))`` (asimc.finetune.train)
returns a ``FinetuneResult`` with the trained ``onnx.ModelProto`` (the original file with its
trained initializers written back by name) and the accuracy before and after.
"""
from .noise import MODES
from .train import OPTIMIZERS, FinetuneOptions, FinetuneResult, finetune, save_model

__all__ = ["MODES", "OPTIMIZERS", "FinetuneOptions", "FinetuneResult", "finetune",
           "save_model"]
