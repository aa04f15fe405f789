"""Many probes on one frozen forward pass: N classifier heads, each with its own learning rate and weight decay.

A probe's accuracy depends on its optimisation as much as on the encoder. V-JEPA 2's frozen evaluations therefore
train a grid of attentive probes at once (``multihead_kwargs``: one head per learning rate x weight decay) on the
same frozen features and report the best. :class:`ProbeSweepHead` is that grid as one mmaction2 head:

* **training**: every head gets the same backbone features (the backbone runs once per batch); the loss is the sum
  of the heads' losses, and as the heads share no parameter, each head's gradient is that of its own loss. With
  per-head optimizer parameter groups (``ProbeSweepOptimWrapperConstructor``, which reads :attr:`settings`), each
  head's AdamW update is exactly that of a single-head run at its learning rate and weight decay.
* **validation**: every head's class scores are kept on the data sample (``sweep_scores``, (N, num_classes));
  ``ProbeSweepHook`` computes each head's top-1 on the validation split, logs them, and selects the best.
* **selection rule**: the head with the highest validation top-1 at the latest validation; ties go to the lowest
  head index (:func:`select_best`). The choice is the :attr:`selected` buffer, saved in checkpoints.
* **prediction**: ``pred_score`` / ``pred_label`` come from the selected head (head 0 before any validation).
"""
import itertools
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmaction.models.heads.base import BaseHead
from mmaction.registry import MODELS
from mmaction.utils import SampleList
from torch import nn

SCORES_FIELD = 'sweep_scores'


def select_best(top1: Sequence[float]) -> int:
    """Index of the best head: highest top-1, ties to the lowest index.

    Args:
        top1: Validation top-1 of each head, in head order.

    Returns:
        int: The selected head's index.
    """
    if not len(top1):
        raise ValueError('select_best needs at least one head accuracy')
    best = max(top1)
    return next(i for i, acc in enumerate(top1) if acc == best)


def expand_grid(grid: Dict[str, Sequence[float]]) -> List[Dict[str, float]]:
    """Settings of every head from a grid: the Cartesian product of the lists, in row-major order (the last key
    varies fastest), e.g. ``dict(lr=[1e-4, 3e-4], weight_decay=[0.01, 0.1])`` -> 4 heads."""
    keys = list(grid)
    unknown = set(keys) - {'lr', 'weight_decay'}
    if unknown:
        raise KeyError(f'sweep grid keys must be lr and/or weight_decay, got {sorted(unknown)}')
    return [dict(zip(keys, map(float, values))) for values in itertools.product(*(grid[k] for k in keys))]


@MODELS.register_module()
class ProbeSweepHead(BaseHead):
    """N probe heads trained side by side on the same frozen features, each with its own lr / weight decay.

    Args:
        num_classes: Number of classes.
        in_channels: Feature width of the backbone (every head's ``in_channels``).
        head: Config of one head (``AttentiveProbeHead`` or ``LinearProbeHead`` and their arguments, without
            ``num_classes`` / ``in_channels``); every head is built from it with its own random initialisation.
        grid: ``dict(lr=[...], weight_decay=[...])``: one head per combination (:func:`expand_grid`).
        settings: Explicit per-head settings, a list of ``dict(lr=..., weight_decay=...)`` (instead of ``grid``).
            A missing key takes the optimizer's value.
        average_clips: How test views are combined: 'prob', 'score' or None (as the heads).
        init_cfg: MMEngine init config.
        **kwargs: Other :class:`BaseHead` arguments (``topk``, ``label_smooth_eps`` are taken from ``head``).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 head: Dict,
                 grid: Optional[Dict[str, Sequence[float]]] = None,
                 settings: Optional[Sequence[Dict[str, float]]] = None,
                 average_clips: Optional[str] = 'prob',
                 init_cfg: Optional[Dict] = None,
                 **kwargs) -> None:
        super().__init__(num_classes, in_channels, average_clips=average_clips, init_cfg=init_cfg, **kwargs)
        if (grid is None) == (settings is None):
            raise ValueError('ProbeSweepHead needs exactly one of grid=dict(lr=[...], weight_decay=[...]) or '
                             'settings=[dict(lr=..., weight_decay=...), ...]')
        self.settings: List[Dict[str, float]] = expand_grid(grid) if grid is not None else [
            {k: float(v) for k, v in s.items()} for s in settings]
        if not self.settings:
            raise ValueError('the probe sweep has no heads: grid / settings is empty')
        for s in self.settings:
            if set(s) - {'lr', 'weight_decay'}:
                raise KeyError(f'per-head settings take lr and weight_decay only, got {sorted(s)}')
        head = dict(head)
        if head.get('type') in (None, 'ProbeSweepHead'):
            raise ValueError("head must name a single probe head type, e.g. dict(type='AttentiveProbeHead', ...)")
        head.update(num_classes=num_classes, in_channels=in_channels, average_clips=average_clips)
        self.heads = nn.ModuleList([MODELS.build(dict(head)) for _ in self.settings])
        self.register_buffer('selected', torch.zeros((), dtype=torch.long))

    @property
    def num_heads(self) -> int:
        return len(self.heads)

    @property
    def selected_head(self) -> BaseHead:
        """The head used for predictions."""
        return self.heads[int(self.selected)]

    def select(self, index: int) -> None:
        """Make head ``index`` the one that predicts."""
        if not 0 <= index < self.num_heads:
            raise IndexError(f'head index {index} out of range for {self.num_heads} heads')
        self.selected.fill_(index)

    def init_weights(self) -> None:
        """Each head's own initialisation (or ``init_cfg`` when given)."""
        if self.init_cfg:
            super().init_weights()
        for h in self.heads:
            h.init_weights()

    def forward(self, x: Union[torch.Tensor, Tuple[torch.Tensor]], **kwargs) -> torch.Tensor:
        """Class scores of every head.

        Args:
            x: Backbone features as the heads take them (tokens (B, L, C), feature map, pooled (B, C), or a tuple).

        Returns:
            Tensor: (N, B, num_classes), N heads.
        """
        return torch.stack([h(x, **kwargs) for h in self.heads])

    def loss(self, feats: Union[torch.Tensor, Tuple[torch.Tensor]], data_samples: SampleList, **kwargs) -> Dict:
        """Sum of the heads' losses (``loss_cls``), the selected head's training accuracies, and each head's loss
        under ``head_XX_ce`` (logged, not summed again)."""
        kwargs.pop('loss_aux', None)
        losses: Dict[str, torch.Tensor] = {}
        total = 0
        for i, (h, scores) in enumerate(zip(self.heads, self(feats, **kwargs))):
            head_losses = h.loss_by_feat(scores, data_samples)
            total = total + head_losses['loss_cls']
            losses[f'head_{i:02d}_ce'] = head_losses['loss_cls'].detach()
            if i == int(self.selected):
                losses.update({k: v for k, v in head_losses.items() if k != 'loss_cls'})
        losses['loss_cls'] = total
        return losses

    def predict(self, feats: Union[torch.Tensor, Tuple[torch.Tensor]], data_samples: SampleList,
                **kwargs) -> SampleList:
        """Predictions of the selected head; every head's view-averaged scores go to ``sweep_scores`` (N, K)."""
        kwargs.pop('fcn_test', None)
        scores = self(feats, **kwargs)  # (N, B * V, K)
        num_segs = scores.shape[1] // len(data_samples)
        averaged = torch.stack([h.average_clip(s, num_segs=num_segs) for h, s in zip(self.heads, scores)], 1)
        data_samples = self.selected_head.predict_by_feat(scores[int(self.selected)], data_samples)
        for sample, per_head in zip(data_samples, averaged):
            sample.set_field(per_head.detach(), SCORES_FIELD)
        return data_samples

    def param_groups(self, prefix: str = '', exempt=None) -> List[Dict]:
        """Optimizer parameter groups: one per head (two when some of its parameters are exempt from weight decay),
        each with the head's ``lr`` / ``weight_decay`` (exempt parameters: weight decay 0).

        Args:
            prefix: Name prefix of this head in the model (e.g. ``'cls_head.'``), for the exemption rule.
            exempt: ``(name, param) -> bool``, parameters without weight decay; None: none.

        Returns:
            list: ``dict(params=[...], head=i, **settings)`` groups; trainable parameters only.
        """
        groups = []
        for i, (h, setting) in enumerate(zip(self.heads, self.settings)):
            named = [(f'{prefix}heads.{i}.{n}', p) for n, p in h.named_parameters() if p.requires_grad]
            decay = [p for n, p in named if exempt is None or not exempt(n, p)]
            no_decay = [p for n, p in named if exempt is not None and exempt(n, p)]
            if decay:
                groups.append(dict(params=decay, head=i, **setting))
            if no_decay:
                groups.append(dict(params=no_decay, head=i, **dict(setting, weight_decay=0.0)))
        return groups
