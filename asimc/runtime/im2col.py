"""A Conv node as the rows of a matrix product (im2col): a 1-D convolution is run as a 2-D one
with a unit height axis; padding comes from the conv op (``asimc.ops.conv``)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..ir import Node
from ..ops.conv import explicit_pads, torch_pad_list


@dataclass(frozen=True)
class Conv2d:
    """A Conv node's geometry as a 2-D convolution."""

    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    begin: tuple[int, ...]
    end: tuple[int, ...]
    one_d: bool

    @staticmethod
    def of(node: Node, x: torch.Tensor, weight_shape) -> "Conv2d":
        """The geometry for input ``x`` (N, C, [H,] W) and the weight's shape."""
        kernel = list(weight_shape[2:])
        one_d = x.dim() == 3
        spatial = list(x.shape[2:])
        n = len(kernel)
        strides = list(node.attr("strides", [1] * n))
        dilations = list(node.attr("dilations", [1] * n))
        begin, end = explicit_pads(node, spatial, kernel, strides, dilations)
        if one_d:
            kernel, strides, dilations = [1] + kernel, [1] + strides, [1] + dilations
            begin, end = [0] + begin, [0] + end
        return Conv2d(tuple(kernel), tuple(strides), tuple(dilations), tuple(begin), tuple(end),
                      one_d)

    def as_2d(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(2) if self.one_d else x

    def back(self, out: torch.Tensor) -> torch.Tensor:
        return out.squeeze(2) if self.one_d else out

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, torch_pad_list(list(self.begin), list(self.end)))

    def output_size(self, padded: torch.Tensor) -> list[int]:
        return [(padded.shape[2 + i] - (self.kernel[i] - 1) * self.dilations[i] - 1)
                // self.strides[i] + 1 for i in range(2)]

    def rows(self, padded: torch.Tensor, groups: int, k: int, positions: int) -> torch.Tensor:
        """(b, C, H, W) -> (G, b*L, K): group g's rows are (sample row, output position)."""
        b = padded.shape[0]
        cols = F.unfold(padded, list(self.kernel), dilation=list(self.dilations),
                        stride=list(self.strides))
        return cols.view(b, groups, k, positions).permute(1, 0, 3, 2) \
            .reshape(groups, b * positions, k)


def output_first_columns(b0: int, b1: int, positions: int, groups: int, n: int, device
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """For rows (sample row b in [b0, b1), position p) of every group: the sample row of each
    row, and the flat index in the (B, G*N, positions) output of the row's first column."""
    row = torch.arange((b1 - b0) * positions, device=device)
    b_index, p_index = row // positions + b0, row % positions
    first = (b_index.unsqueeze(0) * (groups * n)
             + torch.arange(groups, device=device).unsqueeze(1) * n) * positions \
        + p_index.unsqueeze(0)
    return b_index, first
