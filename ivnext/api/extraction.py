"""Windowed feature extraction for many videos: one file per video plus an index, resumable, sharded by rank.

Output folder layout (``out_dir``)::

    features/<video id>.npy     (W, D) float32 window features ((W, L, C) for tokens), written chunk by chunk
    features/<video id>.json    per-window start / end seconds, source fps, frames, backend, sampling
    settings.json               the settings that shape the features (written before the first video)
    index.json                  settings and one entry per video (id, path, features file, windows, duration)
    index.csv                   the same entries as CSV
    bad_videos.txt              videos that could not be read (path <TAB> error), also in index.json

The video id is the path relative to the input folder without extension (``a/b.mp4`` -> ``a/b``), which is
also the ``video`` field of temporal-localisation annotation files. Every rank of a ``torch.distributed`` run
takes every ``world_size``-th video.

Resume: a rerun into the same folder skips the videos whose ``.json`` exists when the settings are those of
``settings.json``: the encoder's weights (:meth:`VideoEncoder.weights_fingerprint`), its preprocessing (frames,
fps / frame interval, resize, crop, normalisation), output, window, stride and their units, include_tail, the
effective precision, the saved dtype and the sampling method. A changed setting stops the run with
:class:`SettingsChangedError`, which names each change; extract into another folder, or pass ``resume=False``
(``--no-resume``) to recompute every video with the new settings. Batch size and decoding backend are not
settings: they do not change what is computed.
"""
import csv
import json
from dataclasses import asdict
import os
import os.path as osp
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from ivnext.utils.lists import read_list_lines
from ivnext.video import VideoDecodeError, open_video

from .encoder import VideoEncoder

SETTINGS_FILE = 'settings.json'
# Names the sampling method in the settings, so folders written by an earlier one are not resumed silently.
SAMPLING = 'presentation-time'
# Settings recorded for reference but not compared (the weights' fingerprint is the model's identity).
UNCOMPARED = ('model.source', 'model.encoder')
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mkv', '.webm', '.mov', '.m4v', '.flv', '.mpg', '.mpeg', '.wmv', '.3gp')


class SettingsChangedError(ValueError):
    """An output folder holds features extracted with other settings; the message names each change and the fix."""


@dataclass
class ExtractionSummary:
    """What one call of :func:`extract_videos` did (this rank's share).

    Attributes:
        done: Ids of videos extracted now.
        skipped: Ids already extracted (resume).
        bad: (path, error) of videos that could not be read.
        windows: Windows encoded now.
        seconds: Wall time.
    """

    done: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    bad: List[tuple] = field(default_factory=list)
    windows: int = 0
    seconds: float = 0.0

    @property
    def clips_per_second(self) -> float:
        return self.windows / self.seconds if self.seconds > 0 else 0.0


def list_videos(source: Union[str, Sequence[str]], root: Optional[str] = None) -> List[str]:
    """Video paths of a folder (recursive, sorted), a list file (one whole path per line: spaces are kept; UTF-8,
    a byte-order mark is dropped), one video file
    (a name ending with one of :data:`VIDEO_EXTENSIONS`), or a list.

    Relative paths in a list file are taken relative to ``root`` (default: the list file's folder).
    """
    if isinstance(source, (list, tuple)):
        return [str(p) for p in source]
    if osp.isdir(source):
        found = []
        for folder, _, files in os.walk(source):
            found += [osp.join(folder, f) for f in files if f.lower().endswith(VIDEO_EXTENSIONS)]
        return sorted(found)
    if osp.isfile(source) and source.lower().endswith(VIDEO_EXTENSIONS):
        return [source]
    if osp.isfile(source):
        base = root if root is not None else osp.dirname(osp.abspath(source))
        try:
            lines = [line.strip() for _, line in read_list_lines(source) if line.strip()]
        except ValueError as err:
            raise ValueError(f'{err} ({source} should be a text list of video paths, one per line, or a video file '
                             f'with one of the endings {VIDEO_EXTENSIONS})') from None
        return [p if osp.isabs(p) else osp.join(base, p) for p in lines]
    raise FileNotFoundError(f'{source} is neither a folder of videos nor a list file')


def video_id(path: str, root: Optional[str]) -> str:
    """Path relative to ``root`` without extension (the file name stem when ``root`` is None or not above it)."""
    rel = osp.relpath(path, root) if root is not None else osp.basename(path)
    if rel.startswith('..'):
        rel = osp.basename(path)
    return osp.splitext(rel)[0].replace(os.sep, '/')


def _dist_info() -> tuple:
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _write_json(path: str, obj) -> None:
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def effective_precision(encoder: VideoEncoder, precision: str) -> str:
    """The precision ``precision`` gives on the encoder's device: 'fp32' off CUDA, 'bf16' for 'auto' on CUDA."""
    if precision not in ('auto', 'bf16', 'fp16', 'fp32'):
        raise ValueError(f"precision must be 'auto', 'bf16', 'fp16' or 'fp32', got {precision!r}")
    if encoder.device.type != 'cuda' or precision == 'fp32':
        return 'fp32'
    return 'fp16' if precision == 'fp16' else 'bf16'


def extraction_settings(encoder: VideoEncoder, output: str = 'pooled', stride: float = 1.0,
                        stride_unit: str = 'seconds', window: Optional[float] = None, window_unit: str = 'frames',
                        include_tail: bool = False, precision: str = 'auto', dtype: str = 'float32',
                        source: Optional[str] = None) -> Dict:
    """Everything that shapes the features :func:`extract_videos` writes (what ``settings.json`` holds).

    Args:
        encoder: The encoder; its weights enter through their fingerprint.
        source: Where the encoder came from (recorded, not compared: the fingerprint identifies the weights).
        Others: As in :func:`extract_videos`.

    Returns:
        dict: JSON-ready settings.
    """
    preprocessing = asdict(encoder.preprocessing)
    if preprocessing['fps'] is not None:
        preprocessing['frame_interval'] = None  # replaced by fps
    settings = dict(
        sampling=SAMPLING,
        model=dict(fingerprint=encoder.weights_fingerprint(), source=source, encoder=encoder.encoder_config),
        preprocessing=preprocessing, output=output, stride=float(stride), stride_unit=stride_unit,
        window=float(encoder.preprocessing.num_frames if window is None else window), window_unit=window_unit,
        include_tail=bool(include_tail), precision=effective_precision(encoder, precision), dtype=dtype)
    return json.loads(json.dumps(settings))


def _flatten(settings: Dict, prefix: str = '') -> Dict:
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f'{prefix}{key}.'))
        else:
            flat[prefix + key] = value
    return flat


def settings_changes(old: Dict, new: Dict) -> List[str]:
    """``'name: old -> new'`` for every compared setting that differs between two :func:`extraction_settings`."""
    old_flat, new_flat = _flatten(old), _flatten(new)
    changes = []
    for key in sorted(set(old_flat) | set(new_flat)):
        if key.startswith(UNCOMPARED) or old_flat.get(key) == new_flat.get(key):
            continue
        changes.append(f"{key}: {old_flat.get(key, 'not recorded')!r} -> {new_flat.get(key, 'not recorded')!r}")
    return changes


def _has_features(feature_dir: str) -> bool:
    """Whether ``feature_dir`` holds any video's ``.json`` (stops at the first one)."""
    for folder, _, files in os.walk(feature_dir):
        if any(f.endswith('.json') for f in files):
            return True
    return False


def check_settings(out_dir: str, settings: Dict) -> None:
    """Refuse to resume into ``out_dir`` when its features were extracted with other settings.

    Raises:
        SettingsChangedError: ``settings.json`` differs from ``settings`` (the message names each change), or
            ``out_dir`` holds features but no ``settings.json`` (written before settings were recorded).
    """
    fix = ('extract into another out_dir (--out-dir), or pass resume=False (--no-resume) to recompute every video '
           'with the new settings')
    path = osp.join(out_dir, SETTINGS_FILE)
    if osp.isfile(path):
        with open(path) as f:
            recorded = json.load(f)
        changes = settings_changes(recorded, settings)
        if changes:
            raise SettingsChangedError(f'{out_dir} holds features extracted with other settings ('
                                       f'{"; ".join(changes)}); {fix}')
    elif _has_features(osp.join(out_dir, 'features')):
        raise SettingsChangedError(f'{out_dir} holds features whose settings were not recorded ({SETTINGS_FILE} '
                                   f'is missing), so they cannot be resumed safely; {fix}')


def extract_one(encoder: VideoEncoder, path: str, feature_file: str, output: str = 'pooled',
                stride: float = 1.0, stride_unit: str = 'seconds', window: Optional[float] = None,
                window_unit: str = 'frames', batch_size: int = 8, backend: str = 'auto',
                include_tail: bool = False, precision: str = 'auto', dtype: str = 'float32') -> Dict:
    """Encode the windows of one video into ``feature_file`` (.npy, filled chunk by chunk through a memory map).

    Returns:
        dict: The video's metadata (what ``<id>.json`` holds).
    """
    reader = open_video(path, backend)
    tmp = feature_file + '.tmp.npy'
    try:
        plan = encoder.plan(reader, stride, stride_unit, window, window_unit, include_tail)
        shape = (len(plan),)
        out = None
        for first, feats in encoder.iter_features(reader, plan, output, batch_size, precision):
            if out is None:
                shape = (len(plan), *feats.shape[1:])
                out = np.lib.format.open_memmap(tmp, mode='w+', dtype=dtype, shape=shape)
            out[first:first + len(feats)] = feats.numpy()
        out.flush()
        del out
        os.replace(tmp, feature_file)
    finally:
        reader.close()
        if osp.exists(tmp):  # a video that failed part-way leaves no partial file
            os.remove(tmp)
    return dict(video=path, features=osp.basename(feature_file), shape=list(shape), output=output,
                backend=reader.backend, num_frames=reader.num_frames, source_fps=reader.fps,
                duration=reader.duration, sample_fps=plan.sample_fps,
                window_frames=int(plan.frame_indices.shape[1]), starts=plan.starts.round(6).tolist(),
                ends=plan.ends.round(6).tolist())


def extract_videos(encoder: VideoEncoder, videos: Union[str, Sequence[str]], out_dir: str, *,
                   root: Optional[str] = None, output: str = 'pooled', stride: float = 1.0,
                   stride_unit: str = 'seconds', window: Optional[float] = None, window_unit: str = 'frames',
                   batch_size: int = 8, backend: str = 'auto', include_tail: bool = False,
                   precision: str = 'auto', dtype: str = 'float32', resume: bool = True,
                   progress: bool = True, source: Optional[str] = None) -> ExtractionSummary:
    """Windowed features of many videos (see the module docstring for the files written).

    Args:
        encoder: The encoder (:func:`ivnext.load_encoder`).
        videos: A folder (searched recursively), a list file, or a list of paths.
        out_dir: Output folder.
        root: Folder the video ids are relative to (default: ``videos`` when it is a folder).
        output: 'pooled', 'avg' or 'tokens'.
        stride: Window stride, in ``stride_unit``.
        stride_unit: 'seconds' or 'frames' (sampled frames).
        window: Window length (default the encoder's ``num_frames``), in ``window_unit``.
        window_unit: 'frames' or 'seconds'.
        batch_size: Windows per forward pass; memory depends on it, not on the video length.
        backend: Decoding backend ('auto' falls back per file).
        include_tail: Add a last window ending at each video's end.
        precision: Autocast on CUDA ('auto' = bf16).
        dtype: Saved feature dtype ('float32' or 'float16').
        resume: Skip videos already extracted with the same settings (see the module docstring); False
            recomputes every video.
        progress: Show a progress bar with clips/s (rank 0).
        source: Where the encoder came from, recorded in ``settings.json``.

    Returns:
        ExtractionSummary: this rank's share.

    Raises:
        SettingsChangedError: ``resume`` and ``out_dir`` holds features extracted with other settings.
    """
    rank, world_size = _dist_info()
    if root is None and isinstance(videos, str) and osp.isdir(videos):
        root = videos
    paths = list_videos(videos)
    settings = extraction_settings(encoder, output, stride, stride_unit, window, window_unit, include_tail,
                                   precision, dtype, source)
    if resume:
        check_settings(out_dir, settings)
    import torch.distributed as dist
    if world_size > 1:
        dist.barrier()  # every rank has checked the folder before rank 0 records the new settings
    feature_dir = osp.join(out_dir, 'features')
    os.makedirs(feature_dir, exist_ok=True)
    if rank == 0:
        _write_json(osp.join(out_dir, SETTINGS_FILE), settings)
    summary = ExtractionSummary()
    mine = paths[rank::world_size]
    bar = None
    if progress and rank == 0:
        from tqdm import tqdm
        bar = tqdm(total=len(mine), unit='video', desc=f'extracting ({world_size} process(es))')
    start = time.perf_counter()
    for path in mine:
        vid = video_id(path, root)
        meta_file = osp.join(feature_dir, vid + '.json')
        feature_file = osp.join(feature_dir, vid + '.npy')
        if resume and osp.isfile(meta_file) and osp.isfile(feature_file):
            summary.skipped.append(vid)
        else:
            os.makedirs(osp.dirname(meta_file), exist_ok=True)
            try:
                meta = extract_one(encoder, path, feature_file, output, stride, stride_unit, window, window_unit,
                                   batch_size, backend, include_tail, precision, dtype)
            except (VideoDecodeError, FileNotFoundError, OSError, ValueError, IndexError) as err:
                summary.bad.append((path, f'{type(err).__name__}: {err}'))
            else:
                meta['id'] = vid
                _write_json(meta_file, meta)
                summary.done.append(vid)
                summary.windows += len(meta['starts'])
        summary.seconds = time.perf_counter() - start
        if bar is not None:
            bar.set_postfix_str(f'{summary.clips_per_second:.2f} clips/s, {len(summary.bad)} bad')
            bar.update(1)
    if bar is not None:
        bar.close()
    _write_json(osp.join(out_dir, f'bad_videos.rank{rank}.json'), summary.bad)
    if world_size > 1:
        dist.barrier()
    if rank == 0:
        write_index(out_dir, [video_id(p, root) for p in paths], world_size, settings=settings)
    return summary


def write_index(out_dir: str, ids: Sequence[str], world_size: int, settings: Dict) -> Dict:
    """Gather every video's ``.json`` and the ranks' bad lists into ``index.json``, ``index.csv`` and
    ``bad_videos.txt``."""
    feature_dir = osp.join(out_dir, 'features')
    entries = []
    for vid in ids:
        meta_file = osp.join(feature_dir, vid + '.json')
        if not osp.isfile(meta_file):
            continue
        with open(meta_file) as f:
            meta = json.load(f)
        entries.append(dict(id=vid, video=meta['video'], features=f'features/{vid}.npy', meta=f'features/{vid}.json',
                            num_windows=len(meta['starts']), duration=meta['duration'],
                            source_fps=meta['source_fps'], backend=meta['backend']))
    bad = []
    for rank in range(world_size):
        rank_file = osp.join(out_dir, f'bad_videos.rank{rank}.json')
        if osp.isfile(rank_file):
            with open(rank_file) as f:
                bad += [tuple(b) for b in json.load(f)]
            os.remove(rank_file)
    index = dict(settings=settings, videos=entries, bad_videos=[dict(video=p, error=e) for p, e in bad])
    _write_json(osp.join(out_dir, 'index.json'), index)
    with open(osp.join(out_dir, 'index.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=['id', 'video', 'features', 'meta', 'num_windows', 'duration',
                                               'source_fps', 'backend'])
        writer.writeheader()
        writer.writerows(entries)
    with open(osp.join(out_dir, 'bad_videos.txt'), 'w') as f:
        f.writelines(f'{p}\t{e}\n' for p, e in bad)
    return index
