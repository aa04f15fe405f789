"""Backbones."""
from .internvideo_next_vit import ARCH_SETTINGS, InternVideoNextViT, PatchEmbed3D

__all__ = ['ARCH_SETTINGS', 'InternVideoNextViT', 'PatchEmbed3D']
