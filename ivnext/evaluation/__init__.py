"""Evaluation apart from training: probes on cached frozen features, probe-sweep selection, the leaderboard.

Not imported by ``import ivnext``; import the modules you need (:mod:`ivnext.evaluation.leaderboard`,
:mod:`ivnext.evaluation.cached_probe`, :mod:`ivnext.evaluation.selection`,
:mod:`ivnext.evaluation.paper_results`).
"""
