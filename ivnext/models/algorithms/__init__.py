"""Pretraining algorithms."""
from .base_pretrainer import BasePretrainer
from .stage1 import InternVideoNextStage1
from .stage2 import InternVideoNextStage2

__all__ = ['BasePretrainer', 'InternVideoNextStage1', 'InternVideoNextStage2']
