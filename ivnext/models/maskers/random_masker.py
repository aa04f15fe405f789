"""Uniformly random token masking over the whole clip (VideoMAE 'random')."""
from typing import Optional, Sequence

import torch
from mmaction.registry import MODELS

from .ratio_masker import RatioMasker
from .token_mask import TokenMask


@MODELS.register_module()
class RandomMasker(RatioMasker):
    """Mask ``int(N * mask_ratio)`` tokens per sample, uniformly without replacement over all N tokens.

    Args:
        mask_ratio: Fraction of tokens to mask.
    """

    def num_masked(self, grid: Sequence[int]) -> int:
        t, h, w = self.check_grid(grid)
        return int(t * h * w * self.mask_ratio)

    def sample(self,
               batch_size: int,
               grid: Sequence[int],
               importance: Optional[torch.Tensor] = None,
               device: Optional[torch.device] = None,
               generator: Optional[torch.Generator] = None) -> TokenMask:
        t, h, w = self.check_grid(grid)
        n = t * h * w
        noise = torch.rand(batch_size, n, device=device, generator=generator)
        return TokenMask.from_visible(noise.argsort(dim=1)[:, :n - self.num_masked(grid)], n)
