"""Common interface of the token maskers."""
from abc import ABCMeta, abstractmethod
from typing import Optional, Sequence, Tuple

import torch
from torch import nn


class BaseMasker(nn.Module, metaclass=ABCMeta):
    """Base of every masker: ``masker(batch_size, grid, importance, device, generator) -> (B, N) bool``.

    ``sample`` returns the same mask together with its masked count per row, known on the host.

    Masks are True where a token is masked (dropped from the encoder, predicted), with N = T*H*W tokens in
    (t, h, w) raster order and the same masked count in every sample. Sampling only uses ``generator`` (when given),
    so a seeded ``torch.Generator`` reproduces a mask exactly; it must live on ``device``.

    Args:
        mask_ratio: Fraction of tokens to mask, in [0, 1).
    """

    def __init__(self, mask_ratio: float = 0.8) -> None:
        super().__init__()
        if not 0. <= float(mask_ratio) < 1.:
            raise ValueError(f'mask_ratio must be in [0, 1), got {mask_ratio}.')
        self.mask_ratio = float(mask_ratio)

    @staticmethod
    def check_grid(grid: Sequence[int]) -> Tuple[int, int, int]:
        """Validate a token grid (T, H, W)."""
        grid = tuple(int(g) for g in grid)
        if len(grid) != 3 or min(grid) < 1:
            raise ValueError(f'grid must be (T, H, W) positive token counts, got {grid}.')
        return grid

    @staticmethod
    def mask_from_visible(visible: torch.Tensor, num_tokens: int) -> torch.Tensor:
        """(B, K) indices of visible tokens -> (B, N) bool mask, True = masked."""
        mask = torch.ones(visible.shape[0], num_tokens, dtype=torch.bool, device=visible.device)
        return mask.scatter_(1, visible, False)

    @abstractmethod
    def num_masked(self, grid: Sequence[int]) -> int:
        """Masked tokens per sample for ``grid``."""

    @abstractmethod
    def forward(self,
                batch_size: int,
                grid: Sequence[int],
                importance: Optional[torch.Tensor] = None,
                device: Optional[torch.device] = None,
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Sample masks.

        Args:
            batch_size: B.
            grid: Token grid (T, H, W).
            importance: (B, T, H*W) token importance (only used by importance-driven maskers).
            device: Device of the mask (default: ``importance``'s, else CPU).
            generator: Optional ``torch.Generator`` on ``device``.

        Returns:
            Tensor: (B, T*H*W) bool, True = masked, same count in every row.
        """

    def sample(self,
               batch_size: int,
               grid: Sequence[int],
               importance: Optional[torch.Tensor] = None,
               device: Optional[torch.device] = None,
               generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, int]:
        """Sample masks and say how many tokens each row masks, without reading the mask back.

        Callers pass the count on (``mask_to_index(..., count=)``, the encoder's ``num_masked``), so a training
        step needs no host-device sync to size its gathers. Arguments are those of :meth:`forward`.

        Returns:
            tuple: mask (B, T*H*W) bool (True = masked) and the masked count per row.
        """
        mask = self(batch_size, grid, importance=importance, device=device, generator=generator)
        return mask, self.num_masked(grid)

    def extra_repr(self) -> str:
        return f'mask_ratio={self.mask_ratio}'
