"""Symmetric video-text InfoNCE over the features of every rank."""
from typing import Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F
from mmaction.registry import MODELS
from torch import nn


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` of every rank along dim 0, keeping the graph (identity when not distributed).

    Uses ``torch.distributed.nn.functional.all_gather``, whose backward sums every rank's gradient of the gathered
    tensor into the rank that owns each slice. With every rank computing the same loss on the gathered batch and
    DDP averaging parameter gradients over ranks, each parameter gets exactly the gradient of that one loss
    (mmaction2's ``GatherLayer`` keeps only the local rank's gradient instead).

    Args:
        x: (B, ...) this rank's tensor; every rank must pass the same shape.

    Returns:
        Tensor: (world_size * B, ...) in rank order.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    from torch.distributed.nn.functional import all_gather
    return torch.cat(all_gather(x), dim=0)


def gather_plain(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` (B, ...) of every rank along dim 0 without a graph (ids, labels)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


@MODELS.register_module()
class VideoTextContrastiveLoss(nn.Module):
    """Symmetric InfoNCE between L2-normalised video and text embeddings (InternVideo2's VTC loss).

    Logits are ``video @ text.T / temperature`` over the batch gathered from every rank; the loss is the mean of
    the video-to-text and text-to-video cross entropies. When ``ids`` are given, pairs with the same id (captions
    of one video in one batch) are all positives, with equal weight.

    Args:
        gather: Gather features (and ids) from every rank before the loss (the recipe's ``all_gather=True``).
        loss_weight: Scale of the loss.
    """

    def __init__(self, gather: bool = True, loss_weight: float = 1.0):
        super().__init__()
        self.gather = gather
        self.loss_weight = loss_weight

    def forward(self, video: torch.Tensor, text: torch.Tensor, temperature: torch.Tensor,
                ids: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Loss of one batch.

        Args:
            video: (B, D) video embeddings (normalised here).
            text: (B, D) text embeddings of the paired captions (normalised here).
            temperature: () softmax temperature (the learnable ``temp``).
            ids: (B,) optional video ids marking pairs that share a video.

        Returns:
            Tensor: () the loss, computed in float32.
        """
        if video.shape != text.shape:
            raise ValueError(f'video and text embeddings must have the same shape, got {tuple(video.shape)} and '
                             f'{tuple(text.shape)}')
        video = F.normalize(video.float(), dim=-1)
        text = F.normalize(text.float(), dim=-1)
        if self.gather:
            video, text = gather_with_grad(video), gather_with_grad(text)
            if ids is not None:
                ids = gather_plain(ids)
        logits = video @ text.t() / temperature.float()
        if ids is None:
            target = torch.arange(len(video), device=video.device)
            loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
        else:
            pos = (ids.view(-1, 1) == ids.view(1, -1)).float()
            target = pos / pos.sum(1, keepdim=True)  # symmetric: the same for both directions
            loss = (torch.sum(-target * F.log_softmax(logits, 1), 1).mean()
                    + torch.sum(-target * F.log_softmax(logits.t(), 1), 1).mean()) / 2
        return self.loss_weight * loss
