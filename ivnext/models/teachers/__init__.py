"""Frozen image teachers (per-frame semantic targets)."""
from .cached_teacher import CachedTeacher
from .clip_teacher import CLIPTeacher
from .dinov2_teacher import DINOv2Teacher
from .hf_image_teacher import HFImageTeacher, default_return_layers
from .siglip_teacher import SigLIP2Teacher

__all__ = ['CachedTeacher', 'HFImageTeacher', 'SigLIP2Teacher', 'CLIPTeacher', 'DINOv2Teacher', 'default_return_layers']
