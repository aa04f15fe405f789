"""Converters from other formats (the library side of ``tools/convert`` and ``tools/data/convert_kmash_list.py``):
ONNX DINOv2 to transformers, released encoder weights and any checkpoint's encoder to mmaction2 checkpoints, the
K-Mash release list to mmaction2 lists. Not imported by ``import ivnext``."""
