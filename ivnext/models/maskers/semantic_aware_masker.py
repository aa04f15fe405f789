"""Semantic-aware masking: keep the tokens the image teacher attends to visible."""
from typing import Optional, Sequence

import torch
from mmaction.registry import MODELS

from ..utils import assert_on_device
from .ratio_masker import RatioMasker
from .token_mask import TokenMask


@MODELS.register_module()
class SemanticAwareMasker(RatioMasker):
    """Pick each frame's visible tokens from the teacher's importance map.

    Every frame keeps ``H*W - int(H*W * mask_ratio)`` visible tokens (the released per-frame count), so each
    sample masks ``T * int(H*W * mask_ratio)`` tokens.

    - ``mode='sample'`` (released code, default): visible tokens are drawn per frame without replacement with
      probability proportional to ``importance``, like ``torch.multinomial(importance, k)``. It is done for all
      frames at once with the Gumbel-top-k trick (top-k of ``log(p) + Gumbel noise``), which has exactly the law of
      sequential sampling without replacement. Zero-importance tokens are drawn only after every positive one.
    - ``mode='topk'`` (the paper's wording): the ``k`` most important tokens of each frame stay visible.

    Args:
        mask_ratio: Fraction of tokens to mask (paper 0.8; the released scripts use 0.75).
        mode: 'sample' or 'topk'.
    """

    def __init__(self, mask_ratio: float = 0.8, mode: str = 'sample') -> None:
        super().__init__(mask_ratio)
        if mode not in ('sample', 'topk'):
            raise ValueError(f"mode must be 'sample' or 'topk', got {mode!r}.")
        self.mode = mode

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
        if importance is None:
            raise ValueError('SemanticAwareMasker needs importance (B, T, H*W), e.g. the image teacher\'s '
                             '"importance" output.')
        if importance.dim() == 4:
            importance = importance.flatten(2)
        if tuple(importance.shape) != (batch_size, t, hw):
            raise ValueError(f'importance must have shape (B, T, H*W) = {(batch_size, t, hw)}, got '
                             f'{tuple(importance.shape)}; with tubelets, average the teacher map over each tubelet.')
        if device is not None:
            importance = importance.to(device)
        scores = importance.detach().float()
        assert_on_device(((scores >= 0) & torch.isfinite(scores)).all(), 'importance must be finite and non-negative.')
        num_visible = hw - int(hw * self.mask_ratio)
        if self.mode == 'sample':
            u = torch.rand(scores.shape, device=scores.device, generator=generator)
            gumbel = -torch.log(-torch.log(u.clamp(1e-20, 1. - 1e-7)))
            # log(p) >= log(float32 tiny) > -88 for p > 0; zeros get keys below -9000 (random order among them).
            logp = scores.clamp_min(torch.finfo(torch.float32).tiny).log()
            scores = torch.where(scores > 0, logp, torch.full_like(logp, -1e4)) + gumbel
        visible = scores.topk(num_visible, dim=-1).indices  # (B, T, k), indices within a frame
        visible = visible + torch.arange(t, device=scores.device).view(1, t, 1) * hw
        return TokenMask.from_visible(visible.reshape(batch_size, t * num_visible), t * hw)

    def extra_repr(self) -> str:
        return f'mask_ratio={self.mask_ratio}, mode={self.mode!r}'
