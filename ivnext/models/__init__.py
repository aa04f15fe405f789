"""Registered models: import order registers every module into mmaction2's registries."""
from . import algorithms, backbones, heads, losses, maskers, necks, recognizers, teachers, text_towers  # noqa: F401
