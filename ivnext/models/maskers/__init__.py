"""Token maskers: each samples a :class:`TokenMask` ((B, N) bool mask, True = masked, with its visible and masked
indices; equal counts per sample)."""
from .base_masker import BaseMasker
from .multi_block_masker_3d import MultiBlockMasker3D
from .random_masker import RandomMasker
from .ratio_masker import RatioMasker
from .semantic_aware_masker import SemanticAwareMasker
from .token_mask import TokenMask
from .tube_masker import TubeMasker

__all__ = ['BaseMasker', 'RatioMasker', 'TokenMask', 'RandomMasker', 'TubeMasker', 'SemanticAwareMasker',
           'MultiBlockMasker3D']
