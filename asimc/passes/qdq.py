"""Fitting a quantised (QDQ) model's integers and scales onto a chip, instead of asimc's own
quantisers (docs/numeric-model.md, "Quantisers").

The patterns come from the import (asimc.frontend.qdq); per matrix product this pass checks
that the chip's bits hold the model's integers and says how they are driven:

* **Weights**: the model's integers ``W - z_w`` go into the array as they are (two's complement,
  so the chip's ``weight bits`` must hold them: an int8 weight needs 8 bits), with the model's
  scale(s) (per tensor, or per output channel).
* **Inputs**: the product receives ``x = (u - z_x) * s_x`` with ``u`` the model's integer; the
  executor recovers ``u`` exactly (``round(x / s_x) + z_x``) and drives the rows with it. An
  asymmetric input is exact on the array: ``sum (u - z) w = sum u w - z sum w``, so the rows take
  the unsigned ``u`` and the digital periphery subtracts ``z x`` (column sum of the integer
  weights), an exact integer, from every converted sum (a Conv pads with ``z``, the model's zero).
  A model integer type is moved onto the chip's input range by a constant ``shift`` (int8 on an
  unsigned chip: ``u + 128``, zero point ``z + 128``), which the same correction absorbs.
* **Attention** (a MatMul whose second operand is a run-time DequantizeLinear output too): that
  operand's integers are written into the array as weights, moved into the chip's two's
  complement weight range by a shift (uint8: ``u - 128``); its zero point comes off digitally
  like the input's (``- z_b sum_k x`` per row, ``+ K z_x z_b``), so the int mode computes
  onnxruntime's ``(u_x - z_x)(u_b - z_b) s_x s_b`` exactly.
* **Bit widths**: the chip must hold the model's integers: uint8/int8 inputs need 8 input bits
  (unsigned or signed), int8 weights 8 weight bits. Fewer bits are refused with the reason:
  requantising would replace the model's calibrated grid by another one, i.e. simulate a model
  the designer did not bring; the float model with asimc's own quantisers is that experiment.

Only what the pattern proves is taken: a product with only its weights (or only its input) in
QDQ form takes those scales and asimc's quantiser for the other operand.
"""
from __future__ import annotations

import numpy as np

from ..chip.spec import ChipSpec
from ..errors import ModelError
from ..frontend.qdq import INTEGER_RANGES, QdqActivation, QdqPattern
from ..ir import Node
from ..program import QdqLayer, QdqOperand


def layer_for_chip(pattern: QdqPattern, chip: ChipSpec, node: Node
                   ) -> tuple[QdqLayer, np.ndarray | None]:
    """The QdqLayer of ``pattern`` on ``chip`` and the integer weights to store (or None),
    refusing (ModelError) model integers the chip's bits cannot hold."""
    where = f'layer "{node.name}"'
    qinput = None
    if pattern.input is not None:
        bits, signed = chip.input.bits, chip.input.signed
        low = -(1 << (bits - 1)) if signed else 0
        drives = f"{'signed' if signed else 'unsigned'} inputs"
        qinput = _fit(pattern.input, node, "input", low, bits, drives,
                      f"`{where} {{{{ input {{{{ bits {{}} }}}} }}}}`")
    operand = None
    if pattern.operand is not None or pattern.weights is not None:
        if chip.weight.parallel:
            raise ModelError(f"{node.describe()}: a QDQ model's weights cannot be mapped onto "
                             "a fully bit-parallel array (`weight { parallel }`), whose "
                             "full scale assumes asimc's symmetric weights; compile the float "
                             "model")
    if pattern.operand is not None:
        bits = chip.weight.bits
        operand = _fit(pattern.operand, node, "second operand", -(1 << (bits - 1)), bits,
                       "two's complement weights",
                       f"`{where} {{{{ weight {{{{ bits {{}} }}}} }}}}`")
    weights = None
    if pattern.weights is not None:
        bits = chip.weight.bits
        values = pattern.weights.values
        low, high = int(values.min(initial=0)), int(values.max(initial=0))
        if low < -(1 << (bits - 1)) or high > (1 << (bits - 1)) - 1:
            raise ModelError(
                f"{node.describe()}: the model's integer weights ({pattern.weights.dtype}, "
                f"zero point removed) range from {low} to {high}, which {bits}-bit two's "
                f"complement weights cannot hold; asimc does not requantise a QDQ model. "
                f"Give this layer more weight bits (`{where} {{ weight {{ bits 8 }} }}`), or "
                "compile the float model")
        dtype = np.int8 if bits <= 8 else np.int16 if bits <= 16 else np.int32
        weights = values.astype(dtype)
    layer = QdqLayer(input=qinput,
                     weight_dtype=None if pattern.weights is None else pattern.weights.dtype,
                     weight_per_channel=pattern.weights is not None
                     and len(pattern.weights.scales) > 1,
                     operand=operand)
    return layer, weights


def _fit(model: QdqActivation, node: Node, what: str, chip_low: int, bits: int, drives: str,
         override: str) -> QdqOperand:
    """The model's integers of one run-time operand moved onto the chip's range [chip_low,
    chip_low + 2^bits - 1] by a shift, or a ModelError when they need more levels."""
    low, high = INTEGER_RANGES[model.dtype]
    if high - low > (1 << bits) - 1:
        needed = max(1, int(high - low).bit_length())
        raise ModelError(
            f"{node.describe()}: the model quantises its {what} to {model.dtype} "
            f"({high - low + 1} levels) but the chip gives it {bits}-bit {drives} "
            f"({1 << bits} levels). asimc takes a QDQ model's scales as they are and does not "
            f"requantise them; give this layer {needed} bits ({override.format(needed)}), or "
            "compile the float model")
    chip_high = chip_low + (1 << bits) - 1
    shift = 0 if chip_low <= low and high <= chip_high else low - chip_low
    return QdqOperand(scale=model.scale, zero_point=model.zero_point - shift, shift=shift,
                      dtype=model.dtype)
