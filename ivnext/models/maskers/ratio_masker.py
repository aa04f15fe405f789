"""Base of the maskers that mask a fixed fraction of the token grid."""
from abc import abstractmethod
from typing import Sequence

from .base_masker import BaseMasker


class RatioMasker(BaseMasker):
    """Base of the maskers that mask a fixed fraction of the grid, so their count is known before sampling.

    Args:
        mask_ratio: Fraction of tokens to mask, in [0, 1).
    """

    def __init__(self, mask_ratio: float = 0.8) -> None:
        super().__init__()
        if not 0. <= float(mask_ratio) < 1.:
            raise ValueError(f'mask_ratio must be in [0, 1), got {mask_ratio}.')
        self.mask_ratio = float(mask_ratio)

    @abstractmethod
    def num_masked(self, grid: Sequence[int]) -> int:
        """Masked tokens per sample for ``grid``."""

    def extra_repr(self) -> str:
        return f'mask_ratio={self.mask_ratio}'
