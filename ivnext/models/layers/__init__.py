"""Shared building blocks."""
from .attention import Attention, CrossAttention, flash_attn_available, reference_attention, scaled_dot_product
from .attention_pooling import AttentionPoolingBlock
from .checkpointing import run_blocks
from .pos_embed import interpolate_pos_embed, resize_pos_table, sincos_1d, sincos_3d
from .rms_norm import RMSNorm
from .transformer_block import LayerScale, Mlp, TransformerBlock

__all__ = [
    'Attention', 'CrossAttention', 'flash_attn_available', 'reference_attention', 'scaled_dot_product',
    'AttentionPoolingBlock', 'run_blocks', 'RMSNorm', 'interpolate_pos_embed', 'resize_pos_table',
    'sincos_1d', 'sincos_3d', 'LayerScale', 'Mlp', 'TransformerBlock'
]
