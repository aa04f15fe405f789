"""Common interface of the token maskers."""
from abc import ABCMeta, abstractmethod
from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from .token_mask import TokenMask


class BaseMasker(nn.Module, metaclass=ABCMeta):
    """Base of every masker: ``sample(batch_size, grid, importance, device, generator) -> TokenMask``.

    Masks are True where a token is masked (dropped from the encoder, predicted), with N = T*H*W tokens in
    (t, h, w) raster order and the same masked count in every sample. Sampling only uses ``generator`` (when given),
    so a seeded ``torch.Generator`` reproduces a mask exactly; it must live on the device it samples on. Calling the
    module is the same as :meth:`sample`.
    """

    @staticmethod
    def check_grid(grid: Sequence[int]) -> Tuple[int, int, int]:
        """Validate a token grid (T, H, W)."""
        grid = tuple(int(g) for g in grid)
        if len(grid) != 3 or min(grid) < 1:
            raise ValueError(f'grid must be (T, H, W) positive token counts, got {grid}.')
        return grid

    @abstractmethod
    def sample(self,
               batch_size: int,
               grid: Sequence[int],
               importance: Optional[torch.Tensor] = None,
               device: Optional[torch.device] = None,
               generator: Optional[torch.Generator] = None) -> TokenMask:
        """Sample a batch of masks.

        Args:
            batch_size: B.
            grid: Token grid (T, H, W).
            importance: (B, T, H*W) token importance (only used by importance-driven maskers).
            device: Device of the mask (default: ``importance``'s, else CPU).
            generator: Optional ``torch.Generator``.

        Returns:
            TokenMask: (B, T*H*W) mask with its visible and masked indices, the same count in every row.
        """

    def forward(self,
                batch_size: int,
                grid: Sequence[int],
                importance: Optional[torch.Tensor] = None,
                device: Optional[torch.device] = None,
                generator: Optional[torch.Generator] = None) -> TokenMask:
        """Same as :meth:`sample`."""
        return self.sample(batch_size, grid, importance=importance, device=device, generator=generator)
