"""Analysis helpers for ``tools/analysis``: FLOP counting, timing and memory, profiling.

Not imported by ``import ivnext``.
"""
