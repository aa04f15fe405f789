"""Pretraining and alignment algorithms."""
from .base_pretrainer import BasePretrainer
from .stage1 import InternVideoNextStage1
from .stage2 import InternVideoNextStage2
from .video_text_aligner import VideoTextAligner

__all__ = ['BasePretrainer', 'InternVideoNextStage1', 'InternVideoNextStage2', 'VideoTextAligner']
