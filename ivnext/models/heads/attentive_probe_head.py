"""Attentive probe: learnable queries cross-attend to frozen encoder tokens, then a linear classifier."""
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
from mmaction.models.heads.base import BaseHead
from mmaction.registry import MODELS
from mmengine.model.weight_init import trunc_normal_
from torch import nn

from ..layers import CrossAttention, Mlp, TransformerBlock


def as_token_sequence(x: Union[torch.Tensor, Sequence[torch.Tensor]]) -> torch.Tensor:
    """Turn backbone output into tokens (B, L, C).

    Args:
        x: Tokens (B, L, C), a feature map (B, C, T, H, W) (flattened in (t, h, w) order), or a tuple of
            either (one per backbone out index; the last one is used).

    Returns:
        Tensor: (B, L, C).
    """
    if isinstance(x, (tuple, list)):
        x = x[-1]
    if x.dim() == 3:
        return x
    if x.dim() == 5:
        return x.flatten(2).transpose(1, 2)
    raise ValueError(f'expected backbone tokens (B, L, C) or a feature map (B, C, T, H, W), got shape '
                     f"{tuple(x.shape)}; set the backbone's out_type='tokens' (or 'featmap')")


class CrossAttentionPoolingBlock(nn.Module):
    """Queries attend to LayerNorm'd tokens; the result passes a pre-norm MLP, both with residuals.

    Args:
        dim: Token width C.
        num_heads: Cross-attention heads.
        mlp_ratio: MLP hidden width / C.
        eps: LayerNorm epsilon.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, eps: float = 1e-6):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.cross_attn = CrossAttention(dim, num_heads, qkv_bias=True)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, query: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Args: query (B, Q, C), tokens (B, L, C). Returns (B, Q, C)."""
        kv = self.norm1(tokens)
        query = query + self.cross_attn(query, kv, kv)
        return query + self.mlp(self.norm2(query))


@MODELS.register_module()
class AttentiveProbeHead(BaseHead):
    """Frozen-feature classifier of the paper's evaluation: one cross-attention pooling block and a linear layer.

    Learnable query token(s) cross-attend to all backbone tokens (V-JEPA's attentive pooler with one block);
    the pooled queries are averaged, normalised and classified. Loss, label smoothing, multi-clip / multi-crop
    score averaging and predictions are mmaction2's :class:`BaseHead` behaviour.

    Protocol options: ``num_cls_tokens`` drops the encoder's CLS tokens (patch tokens only, as the paper's
    probe); ``num_heads=None`` uses width / 64 heads; ``fc_norm=False`` and ``out_proj=False`` remove the LayerNorm
    before the classifier and the cross-attention's output projection; ``depth=4`` is V-JEPA 2's classifier (three
    self-attention blocks over the tokens before the cross-attention block).

    ``time_slots=T`` pools each token frame on its own (the same queries attend within frame t only) and
    concatenates the T pooled features in time order before the classifier, the attentive counterpart of a linear
    probe on per-frame mean tokens. One pooled vector for the whole clip (``time_slots=1``, the paper's probe) is
    a weighted average over space *and* time: it cannot tell "left in frame 1, right in frame 4" from the reverse
    unless the encoder has already turned the change into features, so on weakly trained encoders it reads motion
    worse than a linear probe on per-frame means (see docs/demo.md).

    Args:
        num_classes: Number of classes.
        in_channels: Token width C of the backbone.
        num_heads: Cross-attention heads (C must divide evenly); None: C // 64.
        mlp_ratio: MLP hidden width / C in the pooling block.
        num_queries: Learnable query tokens (their outputs are averaged).
        dropout_ratio: Dropout before the classifier.
        init_std: Std of the truncated-normal init of queries and linear weights.
        num_cls_tokens: Leading tokens (the encoder's CLS tokens) dropped before pooling.
        fc_norm: LayerNorm on the pooled feature before the classifier.
        out_proj: Output projection of the cross-attention.
        depth: Pooler blocks: ``depth - 1`` self-attention blocks over the tokens, then the cross-attention block.
        time_slots: Pool this many consecutive token groups (the encoder's token frames, tokens in (t, h, w) order)
            separately and concatenate them in time order; 1 pools the whole clip at once.
        loss_cls: Loss config.
        label_smooth_eps: Label smoothing (0.1 in the paper's probes).
        average_clips: How test views are combined: 'prob', 'score' or None.
        init_cfg: MMEngine init config.
        **kwargs: Other :class:`BaseHead` arguments (``multi_class``, ``topk``).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 num_heads: Optional[int] = 16,
                 mlp_ratio: float = 4.0,
                 num_queries: int = 1,
                 dropout_ratio: float = 0.0,
                 init_std: float = 0.02,
                 num_cls_tokens: int = 0,
                 fc_norm: bool = True,
                 out_proj: bool = True,
                 depth: int = 1,
                 time_slots: int = 1,
                 loss_cls: Dict = dict(type='CrossEntropyLoss'),
                 label_smooth_eps: float = 0.1,
                 average_clips: Optional[str] = 'prob',
                 init_cfg: Optional[Dict] = None,
                 **kwargs) -> None:
        super().__init__(num_classes, in_channels, loss_cls=loss_cls, label_smooth_eps=label_smooth_eps,
                         average_clips=average_clips, init_cfg=init_cfg, **kwargs)
        if num_heads is None:
            num_heads = max(1, in_channels // 64)
        if depth < 1:
            raise ValueError(f'depth must be >= 1, got {depth}')
        if in_channels % num_heads:
            raise ValueError(f'in_channels {in_channels} must be divisible by num_heads {num_heads}')
        if time_slots < 1:
            raise ValueError(f'time_slots must be >= 1 (token frames pooled separately), got {time_slots}')
        if num_queries < 1:
            raise ValueError(f'num_queries must be >= 1, got {num_queries}')
        self.init_std = init_std
        self.time_slots = int(time_slots)
        self.query_tokens = nn.Parameter(torch.zeros(1, num_queries, in_channels))
        self.num_cls_tokens = int(num_cls_tokens)
        self.blocks = nn.ModuleList([
            TransformerBlock(in_channels, num_heads, mlp_ratio, qkv_bias=True, qk_norm=False,
                             layer_scale_init_value=0.0, use_flash_attn=False) for _ in range(depth - 1)])
        self.pooler = CrossAttentionPoolingBlock(in_channels, num_heads, mlp_ratio)
        if not out_proj:
            self.pooler.cross_attn.proj = nn.Identity()
        pooled_dims = in_channels * self.time_slots
        self.fc_norm = nn.LayerNorm(pooled_dims, eps=1e-6) if fc_norm else nn.Identity()
        self.dropout = nn.Dropout(dropout_ratio) if dropout_ratio > 0 else nn.Identity()
        self.fc_cls = nn.Linear(pooled_dims, num_classes)
        self._init_parameters()

    def _init_parameters(self) -> None:
        trunc_normal_(self.query_tokens, std=self.init_std)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=self.init_std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def init_weights(self) -> None:
        """Truncated-normal init (or ``init_cfg`` when given)."""
        if self.init_cfg:
            super().init_weights()
        else:
            self._init_parameters()

    def pool(self, x: Union[torch.Tensor, Tuple[torch.Tensor]]) -> torch.Tensor:
        """Attention-pooled feature (B, time_slots * C) of tokens (B, L, C) or a feature map (B, C, T, H, W)."""
        tokens = as_token_sequence(x)
        if tokens.shape[-1] != self.in_channels:
            raise ValueError(f'token width {tokens.shape[-1]} != head in_channels {self.in_channels}; set '
                             "the head's in_channels to the backbone's embed_dims")
        tokens = tokens[:, self.num_cls_tokens:]
        for block in self.blocks:
            tokens = block(tokens)
        b, length, c = tokens.shape
        if length % self.time_slots:
            raise ValueError(f'{length} patch tokens do not split into time_slots={self.time_slots} token frames; set '
                             "time_slots to the encoder's token frames (num_frames / tubelet_size) or 1")
        # (B, L, C) -> (B * S, L / S, C): each slot (token frame) is pooled on its own, then concatenated in order.
        tokens = tokens.reshape(b * self.time_slots, length // self.time_slots, c)
        query = self.query_tokens.expand(tokens.shape[0], -1, -1).to(tokens.dtype)
        return self.pooler(query, tokens).mean(1).reshape(b, self.time_slots * c)

    def forward(self, x: Union[torch.Tensor, Tuple[torch.Tensor]], **kwargs) -> torch.Tensor:
        """Class scores (B, num_classes) from backbone tokens.

        Args:
            x: Tokens (B, L, C), a feature map (B, C, T, H, W), or a tuple of those (the last is used).

        Returns:
            Tensor: (B, num_classes).
        """
        return self.fc_cls(self.dropout(self.fc_norm(self.pool(x))))
