"""``2 - 2 cos`` regression loss between feature vectors."""
from typing import Optional

import torch
import torch.nn.functional as F
from mmaction.registry import MODELS
from torch import nn


def cosine_distance(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Element-wise ``2 - 2 cos(pred, target)`` over the last axis.

    Both inputs are L2-normalised here, so the value equals the squared Euclidean distance of the unit vectors
    and lies in [0, 4]. Normalising an already unit-norm target changes nothing.

    Args:
        pred: (..., C).
        target: (..., C), same shape as ``pred``.
        eps: Norm floor.

    Returns:
        Tensor: (...) distances.
    """
    if pred.shape != target.shape:
        raise ValueError(f'pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape; '
                         'project the prediction to the target width first.')
    pred = F.normalize(pred.float(), dim=-1, eps=eps)
    target = F.normalize(target.float(), dim=-1, eps=eps)
    return 2 - 2 * (pred * target).sum(-1)


@MODELS.register_module()
class CosineSimilarityLoss(nn.Module):
    """``loss_weight * mean(2 - 2 cos(pred, target))``.

    Args:
        loss_weight: Scale of the loss.
        eps: Norm floor used when normalising.
    """

    def __init__(self, loss_weight: float = 1.0, eps: float = 1e-6):
        super().__init__()
        self.loss_weight = loss_weight
        self.eps = eps

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Compute the loss.

        Args:
            pred: (..., C) predictions.
            target: (..., C) targets (need not be unit norm).
            weight: Optional (...) non-negative weights; the loss is then ``sum(w * d) / sum(w)``.

        Returns:
            Tensor: Scalar loss.
        """
        dist = cosine_distance(pred, target, self.eps)
        if weight is None:
            return self.loss_weight * dist.mean()
        weight = weight.to(dist.dtype)
        return self.loss_weight * (dist * weight).sum() / weight.sum().clamp(min=self.eps)
