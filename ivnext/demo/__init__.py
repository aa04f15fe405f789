"""The demo's clip sets: the miniature appearance/motion clips and the generated object/motion clips.

Used by ``tools/demo`` and ``tools/data/build_demo_dataset.py``; not imported by ``import ivnext``.
"""
