"""Linear probe: pooled features -> optional normalisation -> linear classifier."""
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

    Args:
        num_classes: Number of classes.
        in_channels: Feature width C.
        norm: 'bn' (BatchNorm1d without affine, the MAE linear-probe choice), 'ln' (LayerNorm) or None.
        num_cls_tokens: Leading tokens (the encoder's CLS / prefix tokens) excluded from the mean of a (B, L, C)
            input; the attentive probe's argument of the same name.
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
        self.num_cls_tokens = int(num_cls_tokens)
        self.init_std = init_std
        if norm == 'bn':
            self.norm = nn.BatchNorm1d(in_channels, affine=False, eps=1e-6)
        elif norm == 'ln':
            self.norm = nn.LayerNorm(in_channels, eps=1e-6)
        else:
            self.norm = nn.Identity()
        self.dropout = nn.Dropout(dropout_ratio) if dropout_ratio > 0 else nn.Identity()
        self.fc_cls = nn.Linear(in_channels, num_classes)
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

    def pool(self, x: Union[torch.Tensor, Tuple[torch.Tensor]]) -> torch.Tensor:
        """One vector (B, C) per clip from (B, C), (B, L, C) or (B, C, T, H, W) input (tuples: the last)."""
        if isinstance(x, (tuple, list)):
            x = x[-1]
        if x.dim() == 2:
            feat = x
        elif x.dim() == 3:
            feat = x[:, self.num_cls_tokens:].mean(1)
        elif x.dim() == 5:
            feat = x.mean(dim=(2, 3, 4))
        else:
            raise ValueError(f'expected features (B, C), (B, L, C) or (B, C, T, H, W), got {tuple(x.shape)}')
        if feat.shape[-1] != self.in_channels:
            raise ValueError(f'feature width {feat.shape[-1]} != head in_channels {self.in_channels}')
        return feat

    def forward(self, x: Union[torch.Tensor, Tuple[torch.Tensor]], **kwargs) -> torch.Tensor:
        """Class scores (B, num_classes)."""
        return self.fc_cls(self.dropout(self.norm(self.pool(x))))
