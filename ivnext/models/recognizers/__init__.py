"""Recognizers."""
from .frozen_backbone_recognizer import FrozenBackboneRecognizer3D

__all__ = ['FrozenBackboneRecognizer3D']
