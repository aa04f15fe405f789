"""Attention pooling: one query (the mean token) cross-attends to all tokens."""
import torch
from torch import nn

from .attention import CrossAttention


class AttentionPoolingBlock(nn.Module):
    """The encoder's clip projector: LayerNorm'd mean query over LayerNorm'd keys/values.

    Args:
        dim: Token width C.
        num_heads: Cross-attention heads (16 in the release).
        out_dim: Output width (768 in the release).
        eps: LayerNorm epsilon.
    """

    def __init__(self, dim: int, num_heads: int = 16, out_dim: int = 768, eps: float = 1e-5):
        super().__init__()
        self.norm1_q = nn.LayerNorm(dim, eps=eps)
        self.norm1_k = nn.LayerNorm(dim, eps=eps)
        self.norm1_v = nn.LayerNorm(dim, eps=eps)
        self.cross_attn = CrossAttention(dim, num_heads, qkv_bias=True, out_dim=out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x (B, L, C). Returns (B, out_dim)."""
        query = self.norm1_q(x.mean(1, keepdim=True))
        return self.cross_attn(query, self.norm1_k(x), self.norm1_v(x)).squeeze(1)
