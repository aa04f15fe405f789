"""Multi-head self-attention with QK-norm, on flash-attn or PyTorch SDPA."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .rms_norm import RMSNorm

try:  # optional CUDA kernels; SDPA is used when absent
    from flash_attn import flash_attn_func as _flash_attn_func
except ImportError:  # pragma: no cover - depends on the machine
    _flash_attn_func = None


def flash_attn_available() -> bool:
    """True when the flash-attn package imported."""
    return _flash_attn_func is not None


def scaled_dot_product(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, use_flash_attn: bool = True,
                       dropout_p: float = 0.0) -> torch.Tensor:
    """Softmax attention on (B, heads, L, D) tensors.

    flash-attn runs when installed, the tensors are on CUDA in fp16/bf16 and ``use_flash_attn``; otherwise
    ``torch.nn.functional.scaled_dot_product_attention`` (which picks its own flash / memory-efficient kernels).

    Returns:
        Tensor: (B, heads, Lq, D).
    """
    if (use_flash_attn and _flash_attn_func is not None and q.is_cuda
            and q.dtype in (torch.float16, torch.bfloat16)):
        out = _flash_attn_func(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), dropout_p=dropout_p)
        return out.transpose(1, 2)
    return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)


def reference_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Explicit softmax(q k^T / sqrt(d)) v, the definition the fused kernels must match (tests, debugging)."""
    attn = (q * q.shape[-1]**-0.5) @ k.transpose(-2, -1)
    return attn.softmax(dim=-1) @ v


class Attention(nn.Module):
    """Self-attention with optional QK RMSNorm over the full width (as the released encoder).

    Args:
        dim: Token width C.
        num_heads: Heads; C must divide evenly.
        qkv_bias: Bias on the fused qkv projection (the encoder uses none).
        qk_norm: RMSNorm on q and k over all heads jointly.
        use_flash_attn: Prefer flash-attn kernels when available.
        attn_drop: Attention dropout.
        proj_drop: Output dropout.
        eps: RMSNorm epsilon.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = False, qk_norm: bool = True,
                 use_flash_attn: bool = True, attn_drop: float = 0.0, proj_drop: float = 0.0, eps: float = 1e-6):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'dim {dim} must be divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.use_flash_attn = use_flash_attn
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.q_norm = RMSNorm(dim, eps=eps) if qk_norm else nn.Identity()
        self.k_norm = RMSNorm(dim, eps=eps) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def qkv_heads(self, x: torch.Tensor):
        """Project (B, L, C) to q, k, v of shape (B, heads, L, C/heads), q and k normalised."""
        b, n, c = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k = self.q_norm(q), self.k_norm(k)
        split = (b, n, self.num_heads, c // self.num_heads)
        return (q.view(split).transpose(1, 2), k.view(split).transpose(1, 2), v.view(split).transpose(1, 2))

    def forward(self, x: torch.Tensor, reference: bool = False) -> torch.Tensor:
        """Args: x (B, L, C); reference: use :func:`reference_attention`. Returns (B, L, C)."""
        b, n, c = x.shape
        q, k, v = self.qkv_heads(x)
        if reference:
            out = reference_attention(q, k, v)
        else:
            out = scaled_dot_product(q, k, v, self.use_flash_attn, self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(b, n, c)))


class CrossAttention(nn.Module):
    """Cross-attention from queries to a token set, with separate q/k/v projections and biases.

    The parameter names (``q``, ``k``, ``v``, ``q_bias``, ``k_bias``, ``v_bias``, ``proj``) are those of the
    released attention-pooling projector, so released weights load without renaming.

    Args:
        dim: Width of queries and keys.
        num_heads: Heads.
        qkv_bias: Learnable biases on q/k/v.
        out_dim: Output width (defaults to ``dim``).
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, out_dim: Optional[int] = None):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'dim {dim} must be divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.k_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.register_parameter('q_bias', None)
            self.register_parameter('k_bias', None)
            self.register_parameter('v_bias', None)
        self.proj = nn.Linear(dim, out_dim or dim)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """Args: query (B, Lq, C), key/value (B, L, C). Returns (B, Lq, out_dim)."""
        b, lq, c = query.shape
        h = self.num_heads
        q = F.linear(query, self.q.weight, self.q_bias).view(b, lq, h, c // h).transpose(1, 2)
        k = F.linear(key, self.k.weight, self.k_bias).view(b, key.shape[1], h, c // h).transpose(1, 2)
        v = F.linear(value, self.v.weight, self.v_bias).view(b, value.shape[1], h, c // h).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, lq, c))
