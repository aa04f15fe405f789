"""Tube masking: one random spatial mask repeated over every frame (VideoMAE 'tube')."""
from typing import Optional, Sequence

import torch
from mmaction.registry import MODELS

from .ratio_masker import RatioMasker
from .token_mask import TokenMask


@MODELS.register_module()
class TubeMasker(RatioMasker):
    """Mask ``int(H*W * mask_ratio)`` spatial positions per sample, the same ones in all T frames.

    Args:
        mask_ratio: Fraction of tokens to mask.
    """

    def num_masked(self, grid: Sequence[int]) -> int:
        t, h, w = self.check_grid(grid)
        return t * int(h * w * self.mask_ratio)

    def sample(self,
               batch_size: int,
               grid: Sequence[int],
               importance: Optional[torch.Tensor] = None,
               device: Optional[torch.device] = None,
               generator: Optional[torch.Generator] = None) -> TokenMask:
        t, h, w = self.check_grid(grid)
        hw = h * w
        noise = torch.rand(batch_size, hw, device=device, generator=generator)
        frame_visible = noise.argsort(dim=1)[:, :hw - int(hw * self.mask_ratio)]  # (B, k) positions in a frame
        offsets = torch.arange(t, device=frame_visible.device).view(1, t, 1) * hw
        visible = (frame_visible.unsqueeze(1) + offsets).reshape(batch_size, -1)  # the same positions in every frame
        return TokenMask.from_visible(visible, t * hw)
