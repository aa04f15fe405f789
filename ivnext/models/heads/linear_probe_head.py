"""Linear probe: pooled features -> optional normalisation -> linear classifier."""
import math
from typing import Dict, Optional, Tuple, Union

import torch
from mmaction.models.heads.base import BaseHead
from mmaction.registry import MODELS
from mmengine.model.weight_init import trunc_normal_
from torch import nn

NORMS = ('bn', 'ln', None)


@MODELS.register_module()
class LinearProbeHead(BaseHead):
    """Linear classifier on one vector per clip.

    Accepts the encoder's pooled output (B, C) (``out_type='pooled'`` or ``'avg'``), tokens (B, L, C)
    (mean over tokens after dropping the first ``num_cls_tokens``, e.g. the encoder's 4 CLS tokens) or a feature map
    (B, C, T, H, W) (mean over T, H, W). Loss, label smoothing and test-view averaging are mmaction2's
    :class:`BaseHead` behaviour.

    A mean over every token is blind to where and when things are: it reads "left in frame 1, right in frame 4" and
    the reverse as the same vector. ``time_slots=T`` averages each token frame on its own, ``spatial_cells=S``
    further splits each frame's square token grid into S x S cells, and ``with_prefix`` appends the mean of the
    prefix (CLS) tokens; the vectors are concatenated (prefix first, then frames in time order, cells in raster
    order), so the classifier sees ``C * (with_prefix + T * S * S)`` features. The linear counterpart of the
    attentive probe's ``time_slots``, at a fraction of its cost.

    Args:
        num_classes: Number of classes.
        in_channels: Feature width C.
        norm: 'bn' (BatchNorm1d without affine, the MAE linear-probe choice), 'ln' (LayerNorm) or None.
        num_cls_tokens: Leading tokens (the encoder's CLS / prefix tokens) excluded from the mean of a (B, L, C)
            input; the attentive probe's argument of the same name.
        time_slots: Token frames T of a (B, L, C) input, averaged separately (tokens in (t, h, w) order).
        spatial_cells: Cells per side S of each frame's token grid (its side must be a multiple of S).
        with_prefix: Also feed the mean of the ``num_cls_tokens`` prefix tokens (needs ``num_cls_tokens`` > 0).
        dropout_ratio: Dropout before the classifier.
        init_std: Std of the classifier's truncated-normal init.
        loss_cls: Loss config.
        label_smooth_eps: Label smoothing.
        average_clips: How test views are combined: 'prob', 'score' or None.
        init_cfg: MMEngine init config.
        **kwargs: Other :class:`BaseHead` arguments.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 norm: Optional[str] = 'bn',
                 num_cls_tokens: int = 0,
                 time_slots: int = 1,
                 spatial_cells: int = 1,
                 with_prefix: bool = False,
                 dropout_ratio: float = 0.0,
                 init_std: float = 0.01,
                 loss_cls: Dict = dict(type='CrossEntropyLoss'),
                 label_smooth_eps: float = 0.0,
                 average_clips: Optional[str] = 'prob',
                 init_cfg: Optional[Dict] = None,
                 **kwargs) -> None:
        super().__init__(num_classes, in_channels, loss_cls=loss_cls, label_smooth_eps=label_smooth_eps,
                         average_clips=average_clips, init_cfg=init_cfg, **kwargs)
        if norm not in NORMS:
            raise ValueError(f'norm must be one of {NORMS}, got {norm!r}')
        if time_slots < 1 or spatial_cells < 1:
            raise ValueError(f'time_slots and spatial_cells must be >= 1, got {time_slots} and {spatial_cells}')
        if with_prefix and num_cls_tokens < 1:
            raise ValueError('with_prefix=True averages the prefix tokens; set num_cls_tokens to their count (> 0)')
        self.num_cls_tokens = int(num_cls_tokens)
        self.time_slots = int(time_slots)
        self.spatial_cells = int(spatial_cells)
        self.with_prefix = bool(with_prefix)
        self.init_std = init_std
        feat_dims = in_channels * (int(with_prefix) + self.time_slots * self.spatial_cells ** 2)
        if norm == 'bn':
            self.norm = nn.BatchNorm1d(feat_dims, affine=False, eps=1e-6)
        elif norm == 'ln':
            self.norm = nn.LayerNorm(feat_dims, eps=1e-6)
        else:
            self.norm = nn.Identity()
        self.dropout = nn.Dropout(dropout_ratio) if dropout_ratio > 0 else nn.Identity()
        self.fc_cls = nn.Linear(feat_dims, num_classes)
        self._init_parameters()

    def _init_parameters(self) -> None:
        trunc_normal_(self.fc_cls.weight, std=self.init_std)
        nn.init.zeros_(self.fc_cls.bias)

    def init_weights(self) -> None:
        """Truncated-normal init of the classifier (or ``init_cfg`` when given)."""
        if self.init_cfg:
            super().init_weights()
        else:
            self._init_parameters()

    @property
    def pooled_layout(self) -> bool:
        """Whether the head pools by frame / cell / prefix rather than one mean."""
        return self.time_slots > 1 or self.spatial_cells > 1 or self.with_prefix

    def pool(self, x: Union[torch.Tensor, Tuple[torch.Tensor]]) -> torch.Tensor:
        """One vector (B, D) per clip from (B, C), (B, L, C) or (B, C, T, H, W) input (tuples: the last);
        D = C, or ``C * (with_prefix + time_slots * spatial_cells ** 2)`` with a pooled layout, whose (B, D) output
        is accepted back as input (already pooled)."""
        if isinstance(x, (tuple, list)):
            x = x[-1]
        if x.dim() == 5 and self.pooled_layout:
            x = x.flatten(2).transpose(1, 2)  # (B, THW, C) in (t, h, w) order, no prefix tokens
            if self.num_cls_tokens:
                raise ValueError('a (B, C, T, H, W) feature map has no prefix tokens; set num_cls_tokens=0')
        if x.dim() == 2:
            if self.pooled_layout and x.shape[-1] != self.fc_cls.in_features:
                raise ValueError(f'a pooled (B, {x.shape[-1]}) input has no frames or cells; give tokens '
                                 f'(out_type=\'tokens\'), features this head pooled (B, {self.fc_cls.in_features}), '
                                 f'or set time_slots=1, spatial_cells=1, with_prefix=False')
            feat = x  # pooled by the encoder, or by this head's layout (e.g. once for every epoch of cached tokens)
        elif x.dim() == 3:
            feat = self._pool_tokens(x) if self.pooled_layout else x[:, self.num_cls_tokens:].mean(1)
        elif x.dim() == 5:
            feat = x.mean(dim=(2, 3, 4))
        else:
            raise ValueError(f'expected features (B, C), (B, L, C) or (B, C, T, H, W), got {tuple(x.shape)}')
        if feat.shape[-1] != self.fc_cls.in_features:
            raise ValueError(f'feature width {x.shape[-1]} != head in_channels {self.in_channels}')
        return feat

    def _pool_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, P + T*H*W, C) -> (B, C * (with_prefix + T * S * S)): prefix mean, then per-frame cell means."""
        b, _, c = x.shape
        patches = x[:, self.num_cls_tokens:]
        t, cells = self.time_slots, self.spatial_cells
        per_frame, rem = divmod(patches.shape[1], t)
        side = math.isqrt(per_frame)
        if rem or side * side != per_frame or side % cells:
            raise ValueError(f'{patches.shape[1]} patch tokens are not {t} token frames of a square grid whose side is '
                             f'a multiple of spatial_cells={cells}; set time_slots to the encoder\'s token frames '
                             f'(num_frames / tubelet_size) and spatial_cells to a divisor of the grid side')
        k = side // cells
        grid = patches.reshape(b, t, cells, k, cells, k, c).mean(dim=(3, 5))  # (B, T, S, S, C)
        parts = [x[:, :self.num_cls_tokens].mean(1)] if self.with_prefix else []
        return torch.cat(parts + [grid.flatten(1)], dim=1)

    def forward(self, x: Union[torch.Tensor, Tuple[torch.Tensor]], **kwargs) -> torch.Tensor:
        """Class scores (B, num_classes)."""
        return self.fc_cls(self.dropout(self.norm(self.pool(x))))
