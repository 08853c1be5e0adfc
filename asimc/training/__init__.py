"""The program as a torch module, and chip-aware fine-tuning.

``asimc.training.module.ChipModule`` is the one torch form of a compiled program (Program.module,
asimc.on_chip). ``asimc.finetune(model, chip, data, ...)`` (``asimc.training.train.finetune``)
trains an ONNX model or a ``torch.nn.Module`` with the chip in the forward pass and returns a
``FinetuneResult``: the trained ``onnx.ModelProto`` (the original with its trained initializers
written back by name), the accuracy before and after, and the epoch kept. A torch module also
receives the trained values itself.
"""
from .noise import NoiseModel
from .train import OPTIMIZERS, FinetuneOptions, FinetuneResult, finetune, save_model

__all__ = ["NoiseModel", "OPTIMIZERS", "FinetuneOptions", "FinetuneResult", "finetune",
           "save_model"]
