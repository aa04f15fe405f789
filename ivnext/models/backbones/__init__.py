"""Backbones."""
from .internvideo_next_vit import ARCH_SETTINGS, InternVideoNextViT, PatchEmbed3D
from .transformers_backbone import TransformersBackbone

__all__ = ['ARCH_SETTINGS', 'InternVideoNextViT', 'PatchEmbed3D', 'TransformersBackbone']
