"""Token maskers: (B, N) bool masks, True = masked, equal counts per sample."""
from .base_masker import BaseMasker
from .multi_block_masker_3d import MultiBlockMasker3D
from .random_masker import RandomMasker
from .semantic_aware_masker import SemanticAwareMasker
from .tube_masker import TubeMasker

__all__ = ['BaseMasker', 'RandomMasker', 'TubeMasker', 'SemanticAwareMasker', 'MultiBlockMasker3D']
