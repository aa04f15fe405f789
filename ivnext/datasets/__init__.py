"""Datasets: the miniature appearance/motion clip set built from footage shipped inside installed packages."""
from .demo_clips import (APPEARANCE_CLASSES, MOTION_CLASSES, DemoClipsConfig, build_demo_clips,
                         is_up_to_date, load_clip_records, read_manifest)
from .kmash import KMashVideoDataset, TemporalWindow
from .skip_bad_clips import SkipBadClips, SkipBadClipsMetric
from .video_list import CheckedVideoDataset, read_video_list

__all__ = ['APPEARANCE_CLASSES', 'MOTION_CLASSES', 'DemoClipsConfig', 'build_demo_clips', 'is_up_to_date',
           'load_clip_records', 'read_manifest', 'KMashVideoDataset', 'TemporalWindow', 'SkipBadClips',
           'SkipBadClipsMetric', 'CheckedVideoDataset', 'read_video_list']
