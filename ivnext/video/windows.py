"""Frame sampling by time: one clip over a whole video, or sliding windows with a stride in frames or seconds.

Sampling works on the frames' presentation timestamps, so variable-frame-rate files are sampled at the requested
rate in real time. The model sees frames on a clock: ``fps`` ticks per second, or, without ``fps``, the video's
average frame rate divided by ``frame_interval`` (every ``frame_interval``-th frame of a constant-rate video); each
tick takes the frame nearest to it. Window ``k`` starts at ``k * stride`` seconds after the first frame (a stride
in frames is that many ticks) and holds ``window`` consecutive ticks from its start, so window starts are evenly
spaced in real time, whatever the frame rate of the file and however a stride in seconds relates to the clock.
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
        starts: (W,) float64 start of each window (seconds): its first clock tick, ``k * stride`` after the first
            frame; the window's first frame is the one nearest to it.
        ends: (W,) float64 time at which each window ends: its last tick plus one sampling period (seconds).
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


def nearest_frames(timestamps: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index of the frame nearest to each time (ties go to the earlier frame).

    Args:
        timestamps: (N,) increasing frame times in seconds.
        times: Times in seconds, any shape.

    Returns:
        np.ndarray: int64 indices, the shape of ``times``.
    """
    timestamps = np.asarray(timestamps, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    if len(timestamps) == 1:
        return np.zeros(times.shape, dtype=np.int64)
    right = np.clip(np.searchsorted(timestamps, times), 1, len(timestamps) - 1)
    left = right - 1
    nearer_left = (times - timestamps[left]) <= (timestamps[right] - times)
    return np.where(nearer_left, left, right).astype(np.int64)


def grid_rate(timestamps: np.ndarray, fps: Optional[float], frame_interval: int) -> float:
    """Ticks per second of the sampling clock (``fps``, or the average source rate / ``frame_interval``)."""
    if fps is not None:
        if fps <= 0:
            raise ValueError(f'fps must be positive, got {fps}')
        return float(fps)
    if frame_interval < 1:
        raise ValueError(f'frame_interval must be >= 1, got {frame_interval}')
    from .readers import average_fps
    source = average_fps(np.asarray(timestamps, dtype=np.float64))
    return source / frame_interval if source > 0 else 0.0


def _num_ticks(timestamps: np.ndarray, rate: float) -> int:
    """Clock ticks from the first frame that are not after the last one."""
    span = timestamps[-1] - timestamps[0]
    # A small tolerance keeps the tick that lands on the last frame despite rounding of pts.
    return int(np.floor(span * rate + 1e-6)) + 1


def sample_grid(timestamps: np.ndarray, fps: Optional[float] = None, frame_interval: int = 1) -> np.ndarray:
    """Source frame indices of the sampling grid: the frame nearest to each tick of the clock.

    Args:
        timestamps: (N,) increasing frame times in seconds.
        fps: Ticks per second, at ``t0 + k / fps`` while the tick is not after the last frame. None: the average
            frame rate / ``frame_interval`` (every ``frame_interval``-th frame when the rate is constant).
        frame_interval: Source frames per tick at the average rate, when ``fps`` is None.

    Returns:
        np.ndarray: (G,) int64 indices (repeats possible when the clock is faster than the source).
    """
    timestamps = np.asarray(timestamps, dtype=np.float64)
    if len(timestamps) == 0:
        raise ValueError('a video without frames has no sampling grid')
    rate = grid_rate(timestamps, fps, frame_interval)
    if rate <= 0:  # one frame (or all at one time): nothing to space out
        return np.zeros(1, dtype=np.int64)
    ticks = timestamps[0] + np.arange(_num_ticks(timestamps, rate)) / rate
    return nearest_frames(timestamps, ticks)


def to_grid_steps(value: float, unit: str, rate: float, name: str) -> int:
    """A length in frames (clock ticks) or seconds, as a whole number of ticks (>= 1)."""
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
    """Sliding windows over a video, placed and sampled by the frames' timestamps.

    Args:
        timestamps: (N,) frame times in seconds (``VideoReader.timestamps``).
        window: Window length, in sampled frames or seconds (``window_unit``); seconds are rounded to whole
            sampled frames.
        stride: Distance between window starts, in sampled frames (clock ticks) or seconds (``stride_unit``).
            Seconds are exact: window ``k`` starts at ``k * stride`` seconds after the first frame, on the frame
            nearest to that time.
        window_unit: 'frames' or 'seconds'.
        stride_unit: 'frames' or 'seconds'.
        fps: Sampling rate (frames per second the model sees); None: the average frame rate / ``frame_interval``
            (every ``frame_interval``-th frame of a constant-rate video, the same real-time rate on a variable
            one).
        frame_interval: Source frames per sampled frame at the average rate, when ``fps`` is None.
        include_tail: Add a last window ending at the last clock tick when the regular windows leave frames
            uncovered (its start is then off the stride).

    Returns:
        WindowPlan: W windows with their start times (``k * stride``) and ends (start + window ticks); a video
        shorter than one window gives one window, its last sampled frame repeated.
    """
    timestamps = np.asarray(timestamps, dtype=np.float64)
    if len(timestamps) == 0:
        raise ValueError('a video without frames has no windows')
    rate = grid_rate(timestamps, fps, frame_interval)
    length = to_grid_steps(window, window_unit, rate, 'window')
    if stride_unit not in UNITS:
        raise ValueError(f"stride_unit must be one of {UNITS}, got {stride_unit!r}")
    t0 = timestamps[0]
    if rate <= 0:  # one frame: a single window of it (sizes in seconds were refused above)
        to_grid_steps(stride, stride_unit, rate, 'stride')
        return WindowPlan(frame_indices=np.zeros((1, length), dtype=np.int64), starts=np.array([t0]),
                          ends=np.array([t0]), sample_fps=0.0)
    last_tick = _num_ticks(timestamps, rate) - 1  # ticks after the first one
    ticks_in_window = np.arange(length)
    if stride_unit == 'frames':
        step = to_grid_steps(stride, 'frames', rate, 'stride')
        first_ticks = np.arange(0, max(last_tick - length + 2, 1), step)
        # Tick numbers, so windows sit exactly on the clock.
        offsets = first_ticks / rate
        ticks = (first_ticks[:, None] + ticks_in_window[None]) / rate
    else:
        if not stride > 0:
            raise ValueError(f'stride={stride} seconds must be positive')
        room = (last_tick - length + 1) / rate  # latest start whose window ends on a tick of the video
        count = int(np.floor(room / stride + 1e-6)) + 1 if room >= 0 else 1
        offsets = np.arange(count) * float(stride)
        ticks = offsets[:, None] + ticks_in_window[None] / rate
    if include_tail and last_tick + 1 >= length:
        tail = (last_tick - length + 1) / rate
        if tail > offsets[-1] + 1e-6 / rate:
            offsets = np.append(offsets, tail)
            ticks = np.concatenate([ticks, ((last_tick - length + 1 + ticks_in_window) / rate)[None]])
    # Beyond the last tick (a video shorter than one window) the last sampled frame repeats.
    ticks = np.minimum(ticks, last_tick / rate)
    indices = nearest_frames(timestamps, t0 + ticks)
    starts = t0 + offsets
    return WindowPlan(frame_indices=indices, starts=starts, ends=starts + length / rate, sample_fps=rate)


def uniform_clip_by_time(timestamps: np.ndarray, clip_len: int) -> np.ndarray:
    """``clip_len`` frames spread evenly over a video's time: the frame shown at the centre of each of
    ``clip_len`` equal time segments (every frame lasts until the next; the last one an average period).

    On a constant-rate video these are :func:`uniform_clip`'s frames; on a variable-rate one they are evenly
    spaced in real time.

    Returns:
        np.ndarray: (clip_len,) int64, non-decreasing, in ``[0, N)``.
    """
    timestamps = np.asarray(timestamps, dtype=np.float64)
    if len(timestamps) < 1 or clip_len < 1:
        raise ValueError(f'a clip needs frames and clip_len >= 1, got {len(timestamps)} frames, {clip_len}')
    from .readers import average_fps
    fps = average_fps(timestamps)
    if fps <= 0:
        return uniform_clip(len(timestamps), clip_len)
    duration = timestamps[-1] - timestamps[0] + 1.0 / fps
    centres = timestamps[0] + (np.arange(clip_len) + 0.5) * duration / clip_len
    # Tolerance: a centre that lands on a frame's start (up to rounding) shows that frame.
    shown = np.searchsorted(timestamps, centres + 1e-6 / fps, side='right') - 1
    return np.clip(shown, 0, len(timestamps) - 1).astype(np.int64)


def uniform_clip(num_frames: int, clip_len: int) -> np.ndarray:
    """``clip_len`` frame indices spread evenly over a ``num_frames`` video (centres of equal segments).

    Returns:
        np.ndarray: (clip_len,) int64, non-decreasing, in ``[0, num_frames)``.
    """
    if num_frames < 1 or clip_len < 1:
        raise ValueError(f'num_frames and clip_len must be >= 1, got {num_frames}, {clip_len}')
    edges = np.linspace(0, num_frames, clip_len + 1)
    return np.minimum(((edges[:-1] + edges[1:]) / 2).astype(np.int64), num_frames - 1)
