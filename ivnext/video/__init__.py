"""Video decoding (decord / PyAV / torchcodec with per-file fallback) and sliding-window sampling."""
from .readers import (AUTO_ORDER, BACKENDS, NotRegularFileError, VideoDecodeError, VideoReader, average_fps,
                      backend_order, check_regular_file, open_video, packet_timestamps, regular_file_problem)
from .windows import WindowPlan, nearest_frames, plan_windows, sample_grid, uniform_clip, uniform_clip_by_time

__all__ = ['AUTO_ORDER', 'BACKENDS', 'NotRegularFileError', 'VideoDecodeError', 'check_regular_file',
           'regular_file_problem', 'VideoReader', 'average_fps', 'backend_order', 'open_video',
           'packet_timestamps', 'WindowPlan', 'nearest_frames', 'plan_windows', 'sample_grid', 'uniform_clip',
           'uniform_clip_by_time']
from . import transforms  # noqa: E402,F401  (VideoInit / VideoDecode in mmaction2's TRANSFORMS)
