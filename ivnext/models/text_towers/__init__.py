"""Frozen text towers for video-text alignment (transformers models, open_clip's MobileCLIP)."""
from .base_text_tower import FrozenTextTower
from .open_clip_text_tower import OpenCLIPTextTower
from .transformers_text_tower import TransformersTextTower, resolve_text_source

__all__ = ['FrozenTextTower', 'OpenCLIPTextTower', 'TransformersTextTower', 'resolve_text_source']
