"""necks."""
from .base_predictor import BasePredictor
from .mlp_decoder import MLPDecoder
from .modernbert_predictor import ModernBertPredictor
from .transformer_predictor import TransformerPredictor

__all__ = ['BasePredictor', 'MLPDecoder', 'ModernBertPredictor', 'TransformerPredictor']
