"""Recognizer3D whose whole backbone is frozen: the setting of frozen-feature probes."""
from typing import Dict, Optional, Tuple

import torch
from mmaction.models.recognizers import Recognizer3D
from mmaction.registry import MODELS
from mmaction.utils import OptSampleList


@MODELS.register_module()
class FrozenBackboneRecognizer3D(Recognizer3D):
    """mmaction2's :class:`Recognizer3D` with a frozen backbone.

    Every backbone parameter (blocks, patch embedding, CLS tokens, clip projector) gets
    ``requires_grad=False``, the backbone stays in ``eval()`` mode whatever ``train()`` is called with
    (no dropout / drop-path, frozen norm statistics), and features are computed under ``torch.no_grad()``.
    Only the neck and head train; pair it with ``constructor='TrainableOptimWrapperConstructor'`` in the
    ``optim_wrapper`` so the frozen weights are not handed to the optimizer at all.

    Arguments are those of :class:`Recognizer3D`.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.backbone.requires_grad_(False)
        self.backbone.eval()

    def train(self, mode: bool = True) -> 'FrozenBackboneRecognizer3D':
        super().train(mode)
        self.backbone.eval()
        return self

    def backbone_features(self, inputs: torch.Tensor, max_views: Optional[int] = None):
        """Backbone output for clips (N, C, T, H, W) without building a graph, ``max_views`` clips at a time."""
        with torch.no_grad():
            if not max_views or inputs.shape[0] <= max_views:
                return self.backbone(inputs)
            chunks = [self.backbone(part) for part in inputs.split(max_views)]
        if isinstance(chunks[0], (tuple, list)):
            return tuple(torch.cat(parts) for parts in zip(*chunks))
        return torch.cat(chunks)

    def extract_feat(self,
                     inputs: torch.Tensor,
                     stage: str = 'neck',
                     data_samples: OptSampleList = None,
                     test_mode: bool = False) -> Tuple[torch.Tensor, Dict]:
        """Features of one stage, as :meth:`Recognizer3D.extract_feat`, with the backbone run frozen.

        Args:
            inputs: Clips (N, num_views, C, T, H, W).
            stage: 'backbone', 'neck' or 'head'.
            data_samples: Data samples (passed to the neck in training).
            test_mode: Test-time behaviour (``test_cfg``: ``max_testing_views``, ``fcn_test``).

        Returns:
            tuple: features and the kwargs for the head's ``loss`` / ``predict``.
        """
        kwargs: Dict = dict()
        inputs = inputs.view((-1, ) + inputs.shape[2:])
        max_views = None
        if test_mode and self.test_cfg is not None:
            kwargs['fcn_test'] = self.test_cfg.get('fcn_test', False)
            max_views = self.test_cfg.get('max_testing_views', None)
        x = self.backbone_features(inputs, max_views)
        if stage == 'backbone':
            return x, kwargs
        if test_mode:
            if self.with_neck:
                x, _ = self.neck(x)
            return x, kwargs
        loss_aux: Dict = dict()
        if self.with_neck:
            x, loss_aux = self.neck(x, data_samples=data_samples)
        kwargs['loss_aux'] = loss_aux
        if stage == 'head' and self.with_cls_head:
            x = self.cls_head(x, **kwargs)
        return x, kwargs
