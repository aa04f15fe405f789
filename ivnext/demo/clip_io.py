"""Clip I/O of the demo's generated clip sets: mp4 writing, atomic text writes, the per-clip records and the clips
of a config's split as normalised tensors.

Layout of a clip set folder (written by :func:`ivnext.demo.object_motion_clips.build_object_motion_clips`)::

    videos/{train,val,test,pretrain}/*.mp4
    {split}_{kind}.txt    mmaction2 lists (relative path, label) for kinds ``appearance`` and ``motion``
    pretrain.txt          unlabelled paths that pretraining reads
    classes.json          {"appearance": [...], "motion": [...]}
    clips.json            per-clip labels and the random draws that made each clip
    manifest.json         parameters, their hash, counts; written last
"""
import json
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

SPLITS: Tuple[str, ...] = ('train', 'val', 'test')
LABEL_KINDS: Tuple[str, ...] = ('appearance', 'motion')


def video_codec() -> str:
    """PyAV encoder of the clips: libx264 when available, MPEG-4 Part 2 otherwise."""
    import av
    return 'libx264' if 'libx264' in av.codecs_available else 'mpeg4'


def write_mp4(path: str, clip: np.ndarray, fps: int = 25, codec: Optional[str] = None) -> None:
    """Write an RGB clip to an mp4 file with PyAV (H.264 by default, MPEG-4 Part 2 without libx264).

    Args:
        path: Output file.
        clip: uint8 (T, H, W, 3) with even H and W.
        fps: Frame rate stored in the container.
        codec: PyAV encoder name; None picks :func:`video_codec`.
    """
    import av
    codec = codec or video_codec()
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


def load_clip_records(out_dir: str, split: Optional[str] = None) -> List[dict]:
    """Per-clip metadata of a built clip set (labels and random draws), optionally of one split."""
    with open(osp.join(out_dir, 'clips.json')) as f:
        records = json.load(f)
    return [r for r in records if split is None or r['split'] == split]


def load_clips(cfg, split: str, indices: Optional[Sequence[int]] = None) -> torch.Tensor:
    """Clips of the config's ``{split}_dataloader`` through its pipeline, normalised as the model's input.

    Args:
        cfg: A config whose ``model.data_preprocessor`` holds mean / std.
        split: 'train', 'val' or 'test'.
        indices: Dataset indices to load (default: all).

    Returns:
        Tensor: (N, 3, T, H, W) float32, in list order.
    """
    from mmaction.registry import DATASETS
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    dataset = DATASETS.build(cfg[f'{split}_dataloader'].dataset.copy())
    pre = cfg.model.data_preprocessor
    mean = torch.tensor(pre.mean, dtype=torch.float32).view(3, 1, 1, 1)
    std = torch.tensor(pre.std, dtype=torch.float32).view(3, 1, 1, 1)
    picks = range(len(dataset)) if indices is None else indices
    return torch.stack([(dataset[i]['inputs'].float()[0] - mean) / std for i in picks])


__all__ = ('LABEL_KINDS', 'SPLITS', 'load_clip_records', 'load_clips', 'video_codec', 'write_mp4')
