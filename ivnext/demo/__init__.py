"""The demo: the whole method in miniature on a CPU (docs/demo.md).

:mod:`ivnext.demo.run` runs the steps of :mod:`ivnext.demo.steps` (generated clips from
:mod:`ivnext.demo.object_motion_clips` with the I/O of :mod:`ivnext.demo.clip_io`, configs from
:mod:`ivnext.demo.configs`, probes through :mod:`ivnext.evaluation.leaderboard`) and writes the report of
:mod:`ivnext.demo.report`. Not imported by ``import ivnext``.
"""
