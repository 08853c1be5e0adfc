"""Train a small vision transformer on scikit-learn's 8x8 digits; export models/digits_vit.onnx.

Input [batch, 1, 8, 8] (pixels in [0, 1]); output [batch, 10] logits.

    patch_embed  2x2 patches by a stride-2 conv 1->48: 16 patch tokens
    cls_token    a learned class token in front (17 tokens), plus a learned position embedding
    blocks.0/1   pre-norm encoder blocks: LayerNorm, 4-head attention, LayerNorm,
                 GELU MLP 48->96->48
    norm, head   LayerNorm, then linear 48->10 on the class token

The attention is written out by hand (Linear q/k/v, q @ k^T * scale, softmax, attn @ v) so that
Q.K^T and A.V export as MatMul nodes between two activations, which asimc runs on the chip.

Run from the repository root: python examples/train_digits_vit.py
"""
from __future__ import annotations

import torch
from torch import nn

from common import digits_tensors, finish, make_deterministic, train

IMAGE, PATCH = 8, 2
PATCHES = (IMAGE // PATCH) ** 2          # 16
TOKENS = PATCHES + 1                     # + the class token


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, tokens: int = TOKENS) -> None:
        super().__init__()
        self.heads, self.head_dim, self.tokens = heads, dim // heads, tokens
        self.scale = self.head_dim ** -0.5
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        # Constant sizes (-1 for the batch) keep the exported graph free of Shape arithmetic.
        return x.reshape(-1, self.tokens, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.split_heads(self.q(x))
        k = self.split_heads(self.k(x))
        v = self.split_heads(self.v(x))
        attn = (q @ k.transpose(-2, -1)) * self.scale      # MatMul of two activations: Q.K^T
        attn = attn.softmax(dim=-1)
        out = attn @ v                                     # and A.V
        out = out.transpose(1, 2).reshape(-1, self.tokens, self.heads * self.head_dim)
        return self.proj(out)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()               # exact (erf) GELU: exports as Div, Erf, Add, Mul
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class EncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_dim: int, tokens: int = TOKENS) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, tokens)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, mlp_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class DigitsViT(nn.Module):
    def __init__(self, dim: int = 48, heads: int = 4, mlp_dim: int = 96, depth: int = 2,
                 image: int = IMAGE, patch: int = PATCH) -> None:
        super().__init__()
        self.dim, self.patches = dim, (image // patch) ** 2
        tokens = self.patches + 1
        self.patch_embed = nn.Conv2d(1, dim, kernel_size=patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.blocks = nn.Sequential(*[EncoderBlock(dim, heads, mlp_dim, tokens)
                                      for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embed(x).reshape(-1, self.dim, self.patches).transpose(1, 2)
        # The class token goes in front of the patches. Written as cls_token.expand(batch, ...),
        # it would export eight nodes of batch-size arithmetic (Shape, Gather, Where, Expand...);
        # broadcasting it onto a zeroed slice of the patches exports as Slice, Mul, Add instead.
        cls = patches[:, :1] * 0 + self.cls_token
        x = torch.cat([cls, patches], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


def main() -> None:
    generator = make_deterministic(seed=0)
    model = DigitsViT()
    x, y = digits_tensors("train", flatten=False)
    train(model, x, y, generator, epochs=150, lr=2e-3, weight_decay=5e-2, label_smoothing=0.1,
          augment=True)
    finish(model, "digits_vit", flatten=False)


if __name__ == "__main__":
    main()
