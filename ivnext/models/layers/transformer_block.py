"""Pre-norm transformer block: RMSNorm, QK-norm attention, LayerScale, GELU MLP, drop-path."""
import torch
from mmcv.cnn.bricks import DropPath
from torch import nn

from .attention import Attention
from .rms_norm import RMSNorm


class LayerScale(nn.Module):
    """Per-channel residual scale ``gamma`` (init 1e-5 in the encoder)."""

    def __init__(self, dim: int, init_value: float = 1e-5):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim, ), float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    """Linear-GELU-Linear."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int = None, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, out_features or in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class TransformerBlock(nn.Module):
    """``x + ls1(attn(norm1(x)))`` then ``x + ls2(mlp(norm2(x)))``, each with drop-path.

    Args:
        dim: Token width.
        num_heads: Attention heads.
        mlp_ratio: MLP hidden width / dim.
        qkv_bias: Bias on qkv.
        qk_norm: RMSNorm on q and k.
        layer_scale_init_value: LayerScale init; 0 or None disables LayerScale.
        drop_path: Stochastic depth rate.
        use_flash_attn: Prefer flash-attn kernels.
        eps: RMSNorm epsilon.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = False,
                 qk_norm: bool = True, layer_scale_init_value: float = 1e-5, drop_path: float = 0.0,
                 use_flash_attn: bool = True, eps: float = 1e-6):
        super().__init__()
        self.norm1 = RMSNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, qk_norm=qk_norm, use_flash_attn=use_flash_attn,
                              eps=eps)
        self.ls1 = LayerScale(dim, layer_scale_init_value) if layer_scale_init_value else nn.Identity()
        self.norm2 = RMSNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, layer_scale_init_value) if layer_scale_init_value else nn.Identity()
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, reference: bool = False) -> torch.Tensor:
        """Args: x (B, L, C); reference: explicit-softmax attention. Returns (B, L, C)."""
        x = x + self.drop_path(self.ls1(self.attn(self.norm1(x), reference=reference)))
        return x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))
