"""Writers for small, real mp4 clips used as test data.

Each clip shows one coloured square moving across a grey background; the colour and the direction of motion
depend on the class label, so a model can tell the classes apart from appearance and from motion.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np

# One (RGB colour, (dy, dx) direction) per class.
CLASS_STYLES: Tuple[Tuple[Tuple[int, int, int], Tuple[int, int]], ...] = (
    ((230, 40, 40), (0, 1)),    # red, moving right
    ((40, 200, 60), (1, 0)),    # green, moving down
    ((50, 80, 230), (0, -1)),   # blue, moving left
    ((240, 220, 40), (-1, 0)),  # yellow, moving up
)


def render_clip(label: int, num_frames: int = 20, size: int = 64, seed: int = 0) -> np.ndarray:
    """Render the frames of one synthetic clip.

    Args:
        label: Class index in ``[0, len(CLASS_STYLES))``; picks the square's colour and direction.
        num_frames: Number of frames T.
        size: Frame height and width.
        seed: Varies the start position and the background noise between clips of one class.

    Returns:
        np.ndarray: uint8 frames (T, size, size, 3), RGB.
    """
    if not 0 <= label < len(CLASS_STYLES):
        raise ValueError(f'label must be in [0, {len(CLASS_STYLES)}), got {label}.')
    rng = np.random.default_rng(seed)
    colour, (dy, dx) = CLASS_STYLES[label]
    side = max(size // 4, 4)
    frames = np.full((num_frames, size, size, 3), 110, dtype=np.uint8)
    frames += rng.integers(0, 20, size=(1, size, size, 1), dtype=np.uint8)
    start = rng.integers(side, size - 2 * side, size=2)
    step = (size - 2 * side) / max(num_frames - 1, 1) * 0.8
    for t in range(num_frames):
        y = int(np.clip(start[0] + dy * step * t - dy * (size / 4), 0, size - side))
        x = int(np.clip(start[1] + dx * step * t - dx * (size / 4), 0, size - side))
        frames[t, y:y + side, x:x + side] = colour
    return frames


def write_mp4(path: Path, frames: np.ndarray, fps: int = 10) -> Path:
    """Encode RGB frames (T, H, W, 3) uint8 to an H.264 mp4 (yuv420p, readable by decord, PyAV, OpenCV)."""
    import av
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode='w') as container:
        stream = container.add_stream('libx264', rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = 'yuv420p'
        stream.options = {'crf': '18', 'preset': 'ultrafast'}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format='rgb24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_mp4_with_pts(path: Path, frames: np.ndarray, pts_ms: Sequence[int]) -> Path:
    """Encode RGB frames (T, H, W, 3) uint8 to an H.264 mp4 whose frame ``i`` is shown at ``pts_ms[i]``
    milliseconds: a variable-frame-rate file when the gaps differ."""
    import fractions

    import av
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    millisecond = fractions.Fraction(1, 1000)
    with av.open(str(path), mode='w') as container:
        stream = container.add_stream('libx264', rate=30)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = 'yuv420p'
        stream.options = {'crf': '18', 'preset': 'ultrafast'}
        stream.codec_context.time_base = millisecond
        stream.time_base = millisecond
        for frame, pts in zip(frames, pts_ms):
            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format='rgb24')
            image.pts, image.time_base = int(pts), millisecond
            for packet in stream.encode(image):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@dataclass
class VideoClipSet:
    """A folder of synthetic mp4s with mmaction2 annotation lists.

    Attributes:
        root: Folder holding everything.
        video_dir: Folder of the mp4s; use as ``data_prefix=dict(video=video_dir)``.
        ann_file: ``name.mp4 label`` lines for every clip (mmaction2 VideoDataset format).
        train_ann_file: Lines of the clips with even seed.
        val_ann_file: Lines of the clips with odd seed.
        files: Absolute paths of the clips, in annotation order.
        labels: Label of each clip.
        num_frames: Frames per clip.
        size: Frame height and width.
        num_classes: Number of classes.
    """

    root: Path
    video_dir: Path
    ann_file: Path
    train_ann_file: Path
    val_ann_file: Path
    files: List[Path] = field(default_factory=list)
    labels: List[int] = field(default_factory=list)
    num_frames: int = 20
    size: int = 64
    num_classes: int = len(CLASS_STYLES)


def write_clip_set(root: Path, clips_per_class: int = 2, num_frames: int = 20, size: int = 64,
                   classes: Sequence[int] = tuple(range(len(CLASS_STYLES)))) -> VideoClipSet:
    """Write ``clips_per_class`` clips for each class plus annotation lists under ``root``."""
    root = Path(root)
    video_dir = root / 'videos'
    clip_set = VideoClipSet(root=root, video_dir=video_dir, ann_file=root / 'all.txt',
                            train_ann_file=root / 'train.txt', val_ann_file=root / 'val.txt',
                            num_frames=num_frames, size=size, num_classes=len(CLASS_STYLES))
    lines = {'all': [], 'train': [], 'val': []}
    for label in classes:
        for index in range(clips_per_class):
            name = f'class{label}_{index:02d}.mp4'
            seed = label * 100 + index
            write_mp4(video_dir / name, render_clip(label, num_frames, size, seed=seed))
            clip_set.files.append(video_dir / name)
            clip_set.labels.append(label)
            line = f'{name} {label}'
            lines['all'].append(line)
            lines['train' if index % 2 == 0 else 'val'].append(line)
    for key, path in (('all', clip_set.ann_file), ('train', clip_set.train_ann_file), ('val', clip_set.val_ann_file)):
        path.write_text('\n'.join(lines[key]) + '\n')
    return clip_set
