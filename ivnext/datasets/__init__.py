"""Datasets: K-Mash, checked video lists and the bad-clip skipping wrappers."""
from .kmash import KMashVideoDataset, TemporalWindow
from .skip_bad_clips import SkipBadClips, SkipBadClipsMetric
from .video_list import CheckedVideoDataset, read_video_list

__all__ = ['KMashVideoDataset', 'TemporalWindow', 'SkipBadClips', 'SkipBadClipsMetric', 'CheckedVideoDataset',
           'read_video_list']
