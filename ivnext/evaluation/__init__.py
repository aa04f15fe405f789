"""Evaluation apart from training: probes on cached frozen features, probe-sweep selection, the leaderboard.

``import ivnext`` registers the retrieval metric (:mod:`ivnext.evaluation.video_text_retrieval_metric`) only;
import the other modules where you need them (:mod:`ivnext.evaluation.leaderboard`,
:mod:`ivnext.evaluation.cached_probe`, :mod:`ivnext.evaluation.selection`,
:mod:`ivnext.evaluation.paper_results`).
"""
