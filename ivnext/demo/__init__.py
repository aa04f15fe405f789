"""The demo's clip sets: the miniature appearance/motion clips and the generated object/motion clips.

The demo pipeline (:mod:`ivnext.demo.run`, run by ``tools/demo/run_demo.py``), its cached-token probes and
calibration readers. Not imported by ``import ivnext``.
"""
