"""Generated clips of textured objects moving over textured backgrounds, labelled by object shape and by motion.

Each clip shows one object (a filled silhouette: ``star``, ``heart``, ``arrow``, ...) moving in one of several
ways (``move_left``, ``grow``, ``rotate_cw``, ...) over a textured background. The two labels are drawn in a
balanced factorial design, so a probe can tell what a representation knows about *what* is in the clip from what it
knows about *how* it moves. Nothing about colour or texture tells the classes apart: every clip draws the object's
fill and the background independently from the same pools (grey-level photo textures from scikit-image and
procedural gratings / noise, tinted with random colours), so the object class is its outline, and the motion class
is the change of its placement over time. Each clip also draws the object's size, start position, start angle,
aspect ratio, speed and the background's own slow drift.

Clips are written as mp4 files in the layout of :mod:`ivnext.demo.clip_io` (annotation lists
``{split}_{kind}.txt`` with kinds ``appearance`` and ``motion`` for the train, val and, when asked for, held-out
test splits, ``pretrain.txt``, ``classes.json``, ``clips.json``, ``manifest.json``). Generated, never downloaded.
"""
import dataclasses
import hashlib
import json
import os
import os.path as osp
import shutil
import time
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from ivnext.utils.files import write_text_atomic as atomic_write

from .clip_io import LABEL_KINDS, SPLITS, video_codec, write_mp4

BUILDER_VERSION = 2
_PRETRAIN_STREAM = 2  # seed stream of the unlabelled clips (the same clips whether or not a test split is built)
_MARKER = '.object_motion_clips'

SHAPES: Tuple[str, ...] = ('star', 'heart', 'arrow', 'cross', 'triangle', 'crescent', 'ring', 'house', 'hourglass',
                           'lightning', 'square', 'key')
MOTIONS: Tuple[str, ...] = ('move_left', 'move_right', 'move_up', 'move_down', 'grow', 'shrink', 'rotate_cw',
                            'rotate_ccw')
_WITH_HOLE = ('ring', 'crescent', 'key')
_TEXTURES = ('brick', 'grass', 'gravel', 'moon', 'camera', 'coins')


def shape_polygons(name: str) -> List[np.ndarray]:
    """Outline(s) of a shape as polygons in unit coordinates (about [-1, 1]), drawn in order: every polygon is filled,
    except that the last one of ``ring``, ``crescent`` and ``key`` is a hole cut out of the ones before.

    Args:
        name: A name from :data:`SHAPES`.

    Returns:
        list: float arrays (K, 2) of (x, y) vertices, y pointing down.
    """
    def circle(r, n=48, start=0.0, end=2 * np.pi):
        a = np.linspace(start, end, n, endpoint=False)
        return np.stack([r * np.cos(a), r * np.sin(a)], 1)

    if name == 'star':
        a = np.arange(10) * np.pi / 5 - np.pi / 2
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.42)
        return [np.stack([r * np.cos(a), r * np.sin(a)], 1)]
    if name == 'heart':
        t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        x = 16 * np.sin(t) ** 3
        y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        return [np.stack([x, y + 2.5], 1) / 17.0]
    if name == 'arrow':
        return [np.array([[-1, -0.3], [0.2, -0.3], [0.2, -0.8], [1, 0], [0.2, 0.8], [0.2, 0.3], [-1, 0.3]])]
    if name == 'cross':
        w = 0.32
        return [np.array([[-w, -1], [w, -1], [w, -w], [1, -w], [1, w], [w, w], [w, 1], [-w, 1], [-w, w], [-1, w],
                          [-1, -w], [-w, -w]])]
    if name == 'triangle':
        return [np.array([[0, -1], [0.95, 0.75], [-0.95, 0.75]])]
    if name == 'crescent':
        return [circle(1.0), circle(0.85) + np.array([0.45, -0.15])]
    if name == 'ring':
        return [circle(1.0), circle(0.55)]
    if name == 'house':
        return [np.array([[0, -1], [0.9, -0.2], [0.65, -0.2], [0.65, 0.9], [-0.65, 0.9], [-0.65, -0.2],
                          [-0.9, -0.2]])]
    if name == 'hourglass':
        return [np.array([[-0.8, -1], [0.8, -1], [0.12, 0], [0.8, 1], [-0.8, 1], [-0.12, 0]])]
    if name == 'lightning':
        return [np.array([[0.1, -1], [0.7, -1], [0.2, -0.15], [0.65, -0.15], [-0.35, 1], [-0.05, 0.1],
                          [-0.5, 0.1]])]
    if name == 'square':
        return [np.array([[-0.8, -0.8], [0.8, -0.8], [0.8, 0.8], [-0.8, 0.8]])]
    if name == 'key':
        shaft = np.array([[-0.2, -0.13], [1.0, -0.13], [1.0, 0.13], [-0.2, 0.13]])
        teeth = np.array([[0.55, 0.1], [0.7, 0.1], [0.7, 0.5], [0.55, 0.5]])
        tip = np.array([[0.82, 0.1], [1.0, 0.1], [1.0, 0.42], [0.82, 0.42]])
        return [circle(0.45) + np.array([-0.55, 0]), shaft, teeth, tip, circle(0.2) + np.array([-0.6, 0])]
    raise ValueError(f'unknown shape {name!r}; choose from {SHAPES}.')


@dataclasses.dataclass
class ObjectMotionConfig:
    """Parameters of a generated object/motion clip set.

    Attributes:
        shapes: Object classes (names from :data:`SHAPES`).
        motions: Motion classes (names from :data:`MOTIONS`).
        num_clips_per_class: Train clips per (shape, motion) pair.
        num_val_clips_per_class: Val clips per pair.
        num_test_clips_per_class: Held-out test clips per pair (0: no test split). Probes choose their setting on
            val and report on test.
        num_pretrain_clips: Extra unlabelled clips for pretraining only (``videos/pretrain/``), each with a shape and
            a motion drawn at random from the same lists and a seed stream of its own; ``pretrain.txt`` lists the
            train clips followed by these. Self-supervised pretraining learns from the amount of data it sees, and
            unlabelled clips are what a pretraining set has plenty of.
        frames: Frames per clip.
        size: Frame side in pixels (even).
        fps: Frame rate stored in the files.
        seed: Seed of every random draw.
    """

    shapes: Sequence[str] = SHAPES[:10]
    motions: Sequence[str] = MOTIONS
    num_clips_per_class: int = 10
    num_val_clips_per_class: int = 5
    num_test_clips_per_class: int = 0
    num_pretrain_clips: int = 0
    frames: int = 16
    size: int = 112
    fps: int = 8
    seed: int = 0

    def __post_init__(self):
        self.shapes, self.motions = tuple(self.shapes), tuple(self.motions)
        for name in self.shapes:
            if name not in SHAPES:
                raise ValueError(f'unknown shape {name!r} in shapes; choose from {SHAPES}.')
        for name in self.motions:
            if name not in MOTIONS:
                raise ValueError(f'unknown motion {name!r} in motions; choose from {MOTIONS}.')
        if self.size % 2 or self.size < 32:
            raise ValueError(f'size must be an even number >= 32, got {self.size}.')
        if self.num_test_clips_per_class < 0:
            raise ValueError(f'num_test_clips_per_class must be >= 0, got {self.num_test_clips_per_class}.')
        if self.num_pretrain_clips < 0:
            raise ValueError(f'num_pretrain_clips must be >= 0, got {self.num_pretrain_clips}.')
        if self.frames < 2:
            raise ValueError(f'frames must be >= 2, got {self.frames}.')

    def params(self) -> dict:
        return dict(dataclasses.asdict(self), builder_version=BUILDER_VERSION, kind='object_motion')

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.params(), sort_keys=True).encode()).hexdigest()[:16]


def _texture_pool(size: int) -> List[np.ndarray]:
    """Grey-level textures (float32 in [0, 1], side >= 2 * size) from scikit-image photos."""
    import cv2
    from skimage import data
    pool = []
    for name in _TEXTURES:
        img = getattr(data, name)().astype(np.float32)
        img = (img - img.min()) / max(1e-6, float(img.max() - img.min()))
        scale = 2 * size / min(img.shape)
        if scale > 1:
            img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        pool.append(img)
    return pool


def _grey_texture(rng: np.random.Generator, side: int, pool: List[np.ndarray]) -> np.ndarray:
    """A random grey-level texture (side, side) in [0, 1]: a photo crop or procedural gratings / smooth noise."""
    import cv2
    kind = rng.integers(3)
    if kind == 0:
        src = pool[rng.integers(len(pool))]
        y, x = rng.integers(0, src.shape[0] - side + 1), rng.integers(0, src.shape[1] - side + 1)
        tex = src[y:y + side, x:x + side]
        if rng.integers(2):
            tex = tex.T
    elif kind == 1:
        yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
        tex = np.zeros((side, side), np.float32)
        for _ in range(int(rng.integers(1, 4))):
            angle, period = rng.uniform(0, np.pi), rng.uniform(4, 16)
            tex += np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period + rng.uniform(0, 6.3))
    else:
        noise = rng.standard_normal((side, side)).astype(np.float32)
        tex = cv2.GaussianBlur(noise, (0, 0), float(rng.uniform(1.0, 4.0)))
    tex = tex - tex.min()
    return tex / max(1e-6, float(tex.max()))


def _tint(grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour a grey texture between two random colours: float32 (H, W, 3) in [0, 255]."""
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    return (c0[None, None] + grey[..., None] * (c1 - c0)[None, None]).astype(np.float32)


def motion_path(motion: str, frames: int, rng: np.random.Generator, size: int) -> Tuple[np.ndarray, dict]:
    """Object placement per frame for one motion class.

    Returns:
        tuple: (T, 4) float array of (centre_x, centre_y, radius, angle) in pixels / radians, and the draws.
    """
    t = np.linspace(0.0, 1.0, frames)
    radius = rng.uniform(0.16, 0.24) * size
    angle0 = rng.uniform(-0.35, 0.35)
    cx, cy = rng.uniform(0.35, 0.65, 2) * size
    r = np.full(frames, radius)
    a = np.full(frames, angle0)
    x, y = np.full(frames, cx), np.full(frames, cy)
    if motion.startswith('move_'):
        travel = rng.uniform(0.3, 0.45) * size
        sign = -1.0 if motion in ('move_left', 'move_up') else 1.0
        along = cx + sign * travel * (t - 0.5)
        if motion in ('move_left', 'move_right'):
            x = along
        else:
            y = cy + sign * travel * (t - 0.5)
        draws = dict(travel=travel)
    elif motion in ('grow', 'shrink'):
        factor = rng.uniform(1.8, 2.4)
        small = rng.uniform(0.11, 0.15) * size
        r = small * factor ** t
        if motion == 'shrink':
            r = r[::-1]
        draws = dict(zoom=factor)
    elif motion in ('rotate_cw', 'rotate_ccw'):
        turn = rng.uniform(0.6, 0.9) * np.pi
        a = angle0 + (turn if motion == 'rotate_cw' else -turn) * t
        draws = dict(turn=turn)
    else:
        raise ValueError(f'unknown motion {motion!r}; choose from {MOTIONS}.')
    return np.stack([x, y, r, a], 1), dict(draws, radius=radius)


def draw_clip(shape: str, motion: str, frames: int, size: int, rng: np.random.Generator,
              pool: List[np.ndarray]) -> Tuple[np.ndarray, dict]:
    """Render one clip: uint8 (T, S, S, 3) and a JSON-ready dict of the draws."""
    import cv2
    margin = size // 2
    big = size + 2 * margin
    background = _tint(_grey_texture(rng, big, pool), rng)
    fill_side = size
    fill = _tint(_grey_texture(rng, fill_side, pool), rng)
    aspect = rng.uniform(0.8, 1.25)
    flip = bool(rng.integers(2)) and shape not in ('arrow',)
    path, draws = motion_path(motion, frames, rng, size)
    drift = rng.uniform(-0.06, 0.06, 2) * size
    polys = shape_polygons(shape)
    out = np.empty((frames, size, size, 3), np.uint8)
    for i, (x, y, r, a) in enumerate(path):
        ox, oy = margin + drift[0] * i / max(1, frames - 1), margin + drift[1] * i / max(1, frames - 1)
        frame = background[int(round(oy)):int(round(oy)) + size, int(round(ox)):int(round(ox)) + size].copy()
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        mask = np.zeros((size * 4, size * 4), np.uint8)  # 4x supersampled for smooth edges
        for k, poly in enumerate(polys):
            p = poly * np.array([aspect * (-1 if flip else 1), 1.0])
            p = (p @ rot.T) * r + np.array([x, y])
            hole = k == len(polys) - 1 and shape in _WITH_HOLE
            cv2.fillPoly(mask, [np.round(p * 4).astype(np.int32)], 0 if hole else 255, lineType=cv2.LINE_AA)
        alpha = cv2.resize(mask, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)[..., None] / 255
        # The fill texture moves and turns with the object.
        m = cv2.getRotationMatrix2D((fill_side / 2, fill_side / 2), -np.degrees(a), r / (0.2 * size))
        m[:, 2] += np.array([x, y]) - fill_side / 2
        tex = cv2.warpAffine(fill, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        frame = frame * (1 - alpha) + tex * alpha
        out[i] = np.clip(frame, 0, 255).astype(np.uint8)
    draws.update(aspect=round(float(aspect), 3), flip=flip, drift=[round(float(d), 2) for d in drift])
    return out, {k: (round(float(v), 3) if isinstance(v, float) else v) for k, v in draws.items()}


def build_object_motion_clips(out_dir: str, config: ObjectMotionConfig, force: bool = False,
                              log: Optional[Callable[[str], None]] = None) -> dict:
    """Generate the clip set into ``out_dir`` (skipped when built with the same parameters).

    Args:
        out_dir: Output folder.
        config: Build parameters.
        force: Rebuild even when up to date.
        log: Called with one-line progress messages.

    Returns:
        dict: The manifest, with ``skipped`` True when nothing had to be built.
    """
    log = log or (lambda msg: None)
    manifest_path = osp.join(out_dir, 'manifest.json')
    if not force and osp.isfile(manifest_path):
        with open(manifest_path) as f:
            manifest = json.load(f)
        if manifest.get('digest') == config.digest() and all(
                osp.isfile(osp.join(out_dir, p)) for p in manifest.get('files', [])):
            log(f'{out_dir} is up to date ({manifest["counts"]}); nothing to build.')
            return dict(manifest, skipped=True)
    tic = time.perf_counter()
    os.makedirs(out_dir, exist_ok=True)
    if osp.exists(manifest_path):
        os.remove(manifest_path)
    video_root = osp.join(out_dir, 'videos')
    if osp.isdir(video_root):
        if not osp.isfile(osp.join(video_root, _MARKER)):
            raise FileExistsError(f'{video_root} exists but was not written by this builder; pass an empty or new '
                                  f'`out_dir`.')
        shutil.rmtree(video_root)
    per_split = dict(train=config.num_clips_per_class, val=config.num_val_clips_per_class,
                     test=config.num_test_clips_per_class)
    splits = tuple(s for s in SPLITS if s != 'test' or per_split[s])
    for split in splits:
        os.makedirs(osp.join(video_root, split))
    open(osp.join(video_root, _MARKER), 'w').close()
    pool = _texture_pool(config.size)
    codec = video_codec()
    records: List[dict] = []
    for split in splits:
        split_id = SPLITS.index(split)
        for s, shape in enumerate(config.shapes):
            for m, motion in enumerate(config.motions):
                for k in range(per_split[split]):
                    rng = np.random.default_rng([config.seed, split_id, SHAPES.index(shape), MOTIONS.index(motion),
                                                 k, 7])
                    clip, draws = draw_clip(shape, motion, config.frames, config.size, rng, pool)
                    rel = f'videos/{split}/{shape}_{motion}_{k:03d}.mp4'
                    write_mp4(osp.join(out_dir, rel), clip, fps=config.fps, codec=codec)
                    records.append(dict(path=rel, split=split, appearance=s, motion=m, appearance_name=shape,
                                        motion_name=motion, **draws))
        log(f'{split}: {sum(r["split"] == split for r in records)} clips')
    if config.num_pretrain_clips:
        os.makedirs(osp.join(video_root, 'pretrain'))
    for k in range(config.num_pretrain_clips):
        rng = np.random.default_rng([config.seed, _PRETRAIN_STREAM, k, 11])
        shape = config.shapes[int(rng.integers(len(config.shapes)))]
        motion = config.motions[int(rng.integers(len(config.motions)))]
        clip, draws = draw_clip(shape, motion, config.frames, config.size, rng, pool)
        rel = f'videos/pretrain/{k:05d}.mp4'
        write_mp4(osp.join(out_dir, rel), clip, fps=config.fps, codec=codec)
        records.append(dict(path=rel, split='pretrain', appearance=None, motion=None, **draws))
    if config.num_pretrain_clips:
        log(f'pretrain: {config.num_pretrain_clips} unlabelled clips')
    for split in splits:
        rows = [r for r in records if r['split'] == split]
        for kind in LABEL_KINDS:
            atomic_write(osp.join(out_dir, f'{split}_{kind}.txt'), ''.join(f'{r["path"]} {r[kind]}\n' for r in rows))
    atomic_write(osp.join(out_dir, 'pretrain.txt'), ''.join(f'{r["path"]}\n' for r in records
                                                             if r['split'] in ('train', 'pretrain')))
    atomic_write(osp.join(out_dir, 'classes.json'),
                  json.dumps(dict(appearance=list(config.shapes), motion=list(config.motions)), indent=2))
    atomic_write(osp.join(out_dir, 'clips.json'), json.dumps(records, indent=1))
    counts = {split: sum(r['split'] == split for r in records) for split in splits + ('pretrain',)}
    files = [f'{split}_{kind}.txt' for split in splits for kind in LABEL_KINDS]
    files += ['pretrain.txt', 'classes.json', 'clips.json'] + [r['path'] for r in records]
    manifest = dict(params=config.params(), digest=config.digest(), codec=codec, counts=counts,
                    num_classes=dict(appearance=len(config.shapes), motion=len(config.motions)), files=files,
                    build_seconds=round(time.perf_counter() - tic, 2))
    atomic_write(manifest_path, json.dumps(manifest, indent=1))
    log(f'built {counts} clips into {out_dir} in {manifest["build_seconds"]} s ({codec}).')
    return dict(manifest, skipped=False)


__all__: Sequence[str] = ('MOTIONS', 'SHAPES', 'ObjectMotionConfig', 'build_object_motion_clips', 'draw_clip',
                          'motion_path', 'shape_polygons')
