"""The fast kernel: the reference's arithmetic, fused (native C, Triton) or batched (torch).

Which implementation runs a layer (``backend``):

- ``native_path``: on CPU with a C compiler, one fused pass per row (bit-packed planes,
  popcount MACs, Philox words, codes from the layer's conversion tables, shift-add), threaded
  over rows; the weight bit planes are packed once per layer (``packing``). With cell or
  driver mismatch (non-integer MACs) it takes the torch path's exact float64 MAC products and
  converts them in C.
- ``triton_kernel``: on CUDA with asimc[gpu], one fused launch per weight group.
- ``torch_path``: everywhere else (and for cell or driver mismatch on CUDA), batched tensor
  operations.

When every conversion is provably exact (lossless ADC, no noise or only on digital levels, no
current-domain effects) the whole product collapses into one integer matrix product. Every path
draws the reference's random stream (``conversion_model``, ``problem``) and sums exact integers
in float64, so all of them are bit-identical to it, noise included.
"""
from __future__ import annotations

import torch

from ..choice import Choice
from . import exact, native, native_path, torch_path
from .problem import AcimProblem

DEFAULT_MEMORY_BUDGET = 1 << 30        # bytes of temporaries per kernel call


def run(problem: AcimProblem, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> torch.Tensor:
    """The accumulated product (G, R, N) in integer-product units, float64."""
    if problem.plan.weight_parallel:
        return torch_path.run_weight_parallel(problem, memory_budget)
    if _all_exact(problem):
        return exact.matmul(problem.x, problem.w)
    if backend(problem.x.device) == Backend.NATIVE and native_path.fits(problem):
        return native_path.run(problem, memory_budget)
    if problem.x.device.type == "cuda":
        from . import triton_kernel                 # optional (asimc[gpu]); imports slowly
        if triton_kernel.usable(problem):
            return triton_kernel.run(problem)
    return torch_path.run(problem, memory_budget)


def merges_exactly(problem: AcimProblem) -> bool:
    """Whether ``run`` computes ``problem`` as one exact integer product (every conversion
    lossless and noiseless): a caller may compute that product any other exact way."""
    return not problem.plan.weight_parallel and _all_exact(problem)


def _all_exact(problem: AcimProblem) -> bool:
    plan = problem.plan
    if problem.perturbed or problem.column_mismatch or plan.alpha:
        return False
    # Losslessness depends on (tile length, cycle) only, digital levels on (bit, cycle) only:
    # one tile per length (the Python checks cost 15 us each, tens per layer and run).
    one_per_length = {k1 - k0: t for t, (k0, k1) in enumerate(problem.tiles)}.values()
    return all(problem.is_lossless(t, c) for t in one_per_length for c in plan.cycles) \
        and (problem.noise is None or all(plan.is_digital(i, c) for i in range(plan.weight_bits)
                                          for c in plan.cycles))


class Backend(Choice):
    """Which implementation runs the bit-level layers."""
    NATIVE = "native"    # C, CPU (asimc/kernels/native)
    TRITON = "triton"    # CUDA with asimc[gpu]
    TORCH = "torch"      # any device


def backend(device: torch.device | str = "cpu") -> Backend:
    """The backend ``run`` uses on ``device``."""
    device = torch.device(device)
    if device.type == "cpu":
        return Backend.NATIVE if native.available() else Backend.TORCH
    if device.type == "cuda":
        from . import triton_kernel
        return Backend.TRITON if triton_kernel.available() else Backend.TORCH
    return Backend.TORCH
