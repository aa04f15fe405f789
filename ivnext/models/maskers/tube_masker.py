"""Tube masking: one random spatial mask repeated over every frame (VideoMAE 'tube')."""
from typing import Optional, Sequence

import torch
from mmaction.registry import MODELS

from .base_masker import BaseMasker


@MODELS.register_module()
class TubeMasker(BaseMasker):
    """Mask ``int(H*W * mask_ratio)`` spatial positions per sample, the same ones in all T frames.

    Args:
        mask_ratio: Fraction of tokens to mask.
    """

    def num_masked(self, grid: Sequence[int]) -> int:
        t, h, w = self.check_grid(grid)
        return t * int(h * w * self.mask_ratio)

    def forward(self,
                batch_size: int,
                grid: Sequence[int],
                importance: Optional[torch.Tensor] = None,
                device: Optional[torch.device] = None,
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
        t, h, w = self.check_grid(grid)
        hw = h * w
        noise = torch.rand(batch_size, hw, device=device, generator=generator)
        visible = noise.argsort(dim=1)[:, :hw - int(hw * self.mask_ratio)]
        frame_mask = self.mask_from_visible(visible, hw)
        return frame_mask.unsqueeze(1).expand(batch_size, t, hw).reshape(batch_size, t * hw)
