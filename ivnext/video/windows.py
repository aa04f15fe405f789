"""Frame sampling by time: one clip over a whole video, or sliding windows with a stride in frames or seconds.

Sampling works on the frames' presentation timestamps, so variable-frame-rate files are sampled at the requested
rate in real time. A *sampling grid* is the sequence of source frames the model sees: every ``frame_interval``-th
frame, or, with ``fps``, the frame nearest to each tick of a clock running at ``fps`` from the first frame.
Windows are ``window`` consecutive grid points, ``stride`` grid points apart.
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np

UNITS = ('frames', 'seconds')


@dataclass
class WindowPlan:
    """Source frames and times of every window of one video.

    Attributes:
        frame_indices: (W, T) int64 source frame index of each window's frames.
        starts: (W,) float64 time of each window's first frame (seconds).
        ends: (W,) float64 time at which each window ends: its last frame plus one sampling period (seconds).
        sample_fps: Rate of the sampling grid (frames the model sees per second).
    """

    frame_indices: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    sample_fps: float

    def __len__(self) -> int:
        return len(self.frame_indices)

    @property
    def centers(self) -> np.ndarray:
        """(W,) window mid times in seconds."""
        return (self.starts + self.ends) / 2


def sample_grid(timestamps: np.ndarray, fps: Optional[float] = None, frame_interval: int = 1) -> np.ndarray:
    """Source frame indices of the sampling grid.

    Args:
        timestamps: (N,) increasing frame times in seconds.
        fps: Target sampling rate; the frame nearest to each tick ``t0 + k / fps`` (k = 0, 1, ... while the
            tick is not after the last frame). None: every ``frame_interval``-th frame.
        frame_interval: Step in source frames when ``fps`` is None.

    Returns:
        np.ndarray: (G,) int64 indices (repeats possible when ``fps`` exceeds the source rate).
    """
    timestamps = np.asarray(timestamps, dtype=np.float64)
    if len(timestamps) == 0:
        raise ValueError('a video without frames has no sampling grid')
    if fps is None:
        if frame_interval < 1:
            raise ValueError(f'frame_interval must be >= 1, got {frame_interval}')
        return np.arange(0, len(timestamps), frame_interval, dtype=np.int64)
    if fps <= 0:
        raise ValueError(f'fps must be positive, got {fps}')
    span = timestamps[-1] - timestamps[0]
    # A small tolerance keeps the tick that lands on the last frame despite rounding of pts.
    ticks = timestamps[0] + np.arange(int(np.floor(span * fps + 1e-6)) + 1) / fps
    right = np.clip(np.searchsorted(timestamps, ticks), 1, len(timestamps) - 1) if len(timestamps) > 1 else \
        np.zeros(len(ticks), dtype=np.int64)
    if len(timestamps) == 1:
        return right.astype(np.int64)
    left = right - 1
    nearer_left = (ticks - timestamps[left]) <= (timestamps[right] - ticks)
    return np.where(nearer_left, left, right).astype(np.int64)


def grid_rate(timestamps: np.ndarray, fps: Optional[float], frame_interval: int) -> float:
    """Ticks per second of the sampling grid (``fps``, or the average source rate / ``frame_interval``)."""
    if fps is not None:
        return float(fps)
    from .readers import average_fps
    source = average_fps(np.asarray(timestamps, dtype=np.float64))
    return source / frame_interval if source > 0 else 0.0


def to_grid_steps(value: float, unit: str, rate: float, name: str) -> int:
    """A length in frames (grid points) or seconds, as a whole number of grid steps (>= 1)."""
    if unit not in UNITS:
        raise ValueError(f"{name}_unit must be one of {UNITS}, got {unit!r}")
    if unit == 'frames':
        steps = int(value)
        if steps != value:
            raise ValueError(f'{name}={value} frames must be a whole number')
    else:
        if rate <= 0:
            raise ValueError(f'{name} in seconds needs a known frame rate; pass fps')
        steps = int(round(value * rate))
    if steps < 1:
        raise ValueError(f'{name}={value} {unit} is less than one sampled frame at {rate:g} frames/s')
    return steps


def plan_windows(timestamps: np.ndarray, window: float = 16, stride: float = 16, window_unit: str = 'frames',
                 stride_unit: str = 'frames', fps: Optional[float] = None, frame_interval: int = 1,
                 include_tail: bool = False) -> WindowPlan:
    """Sliding windows over a video.

    Args:
        timestamps: (N,) frame times in seconds (``VideoReader.timestamps``).
        window: Window length, in sampled frames or seconds (``window_unit``).
        stride: Distance between window starts, in sampled frames or seconds (``stride_unit``).
        window_unit: 'frames' or 'seconds'.
        stride_unit: 'frames' or 'seconds'.
        fps: Sampling rate (frames per second the model sees); None: every ``frame_interval``-th source frame.
        frame_interval: Source frames between sampled frames when ``fps`` is None.
        include_tail: Add a last window ending at the last grid point when the regular windows leave frames
            uncovered (its start is then off the stride).

    Returns:
        WindowPlan: W windows; a video shorter than one window gives one window, its last frame repeated.
    """
    grid = sample_grid(timestamps, fps, frame_interval)
    timestamps = np.asarray(timestamps, dtype=np.float64)
    rate = grid_rate(timestamps, fps, frame_interval)
    length = to_grid_steps(window, window_unit, rate, 'window')
    step = to_grid_steps(stride, stride_unit, rate, 'stride')
    if len(grid) < length:
        starts = np.array([0])
        grid = np.concatenate([grid, np.full(length - len(grid), grid[-1])])
    else:
        starts = np.arange(0, len(grid) - length + 1, step)
        if include_tail and starts[-1] + length < len(grid):
            starts = np.append(starts, len(grid) - length)
    positions = starts[:, None] + np.arange(length)[None]
    indices = grid[positions]
    period = 1.0 / rate if rate > 0 else 0.0
    if fps is not None:
        # Times of the clock ticks (not of the nearest frames), so windows are evenly spaced in real time.
        tick = timestamps[0] + positions / fps
        begin, end = tick[:, 0], tick[:, -1] + period
    else:
        begin, end = timestamps[indices[:, 0]], timestamps[indices[:, -1]] + period
    return WindowPlan(frame_indices=indices.astype(np.int64), starts=begin, ends=end, sample_fps=rate)


def uniform_clip(num_frames: int, clip_len: int) -> np.ndarray:
    """``clip_len`` frame indices spread evenly over a ``num_frames`` video (centres of equal segments).

    Returns:
        np.ndarray: (clip_len,) int64, non-decreasing, in ``[0, num_frames)``.
    """
    if num_frames < 1 or clip_len < 1:
        raise ValueError(f'num_frames and clip_len must be >= 1, got {num_frames}, {clip_len}')
    edges = np.linspace(0, num_frames, clip_len + 1)
    return np.minimum(((edges[:-1] + edges[1:]) / 2).astype(np.int64), num_frames - 1)
