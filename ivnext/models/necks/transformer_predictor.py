"""Stage-1 predictor made of plain pre-norm ViT blocks (the non-text ablation)."""
from typing import Optional, Sequence

import torch
from mmaction.registry import MODELS
from torch import nn

from ..layers import RMSNorm, TransformerBlock, run_blocks
from .base_predictor import BasePredictor


@MODELS.register_module()
class TransformerPredictor(BasePredictor):
    """Predictor with the input assembly of :class:`BasePredictor` and ``depth`` pre-norm transformer blocks.

    Blocks are :class:`ivnext.models.layers.TransformerBlock` (RMSNorm, QK-norm, GELU MLP, SDPA or flash-attn,
    full bidirectional attention); positions come only from the added 3D sin-cos table.

    Args:
        in_dims: Encoder width C_enc.
        embed_dims: Predictor width C_pred (output width).
        depth: Number of blocks.
        num_heads: Attention heads.
        mlp_ratio: MLP hidden width / embed_dims.
        num_cls_tokens: CLS tokens at the front of the encoder output.
        grid_size: Token grid (T', H', W') of the clips.
        layer_scale_init_value: LayerScale init; 0 disables it.
        drop_path_rate: Stochastic depth, linearly increasing over blocks.
        final_norm: RMSNorm after the last block.
        use_flash_attn: Prefer flash-attn kernels when installed.
        with_cp: Recompute each block in the backward pass (activation checkpointing).
        pos_embed_frames: Rows in time of the stored position table (token-grid frames); None: ``grid_size[0]``
            (see :class:`BasePredictor`).
        init_cfg: MMEngine init config.
    """

    def __init__(self, in_dims: int = 768, embed_dims: int = 1024, depth: int = 5, num_heads: int = 16,
                 mlp_ratio: float = 4.0, num_cls_tokens: int = 4, grid_size: Sequence[int] = (16, 16, 16),
                 layer_scale_init_value: float = 0.0, drop_path_rate: float = 0.0, final_norm: bool = True,
                 use_flash_attn: bool = True, with_cp: bool = False, pos_embed_frames: Optional[int] = None,
                 init_cfg=None):
        super().__init__(in_dims, embed_dims, num_cls_tokens, grid_size, pos_embed_frames, init_cfg=init_cfg)
        if depth < 1:
            raise ValueError(f'depth must be >= 1, got {depth}')
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList([
            TransformerBlock(embed_dims, num_heads, mlp_ratio=mlp_ratio, layer_scale_init_value=layer_scale_init_value,
                             drop_path=rate, use_flash_attn=use_flash_attn) for rate in rates
        ])
        self.norm = RMSNorm(embed_dims, eps=1e-6) if final_norm else nn.Identity()
        self.with_cp = with_cp
        for module in self.blocks.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward_layers(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x (B, L, C_pred). Returns (B, L, C_pred)."""
        x = run_blocks(self.blocks, x, with_cp=self.with_cp and self.training)
        return self.norm(x)
