"""mmaction2 pipeline transforms that decode with decord, PyAV or torchcodec, falling back per file.

Drop-in replacements for ``DecordInit`` / ``DecordDecode`` (and ``PyAVInit`` / ``PyAVDecode``)::

    dict(type='VideoInit', backend='auto'),      # PyAV, then decord, then torchcodec, per file
    dict(type='SampleFrames', clip_len=16, frame_interval=4, num_clips=1),
    dict(type='VideoDecode'),

``VideoInit`` sets ``total_frames``, ``avg_fps`` (from the frames' timestamps, right for variable-frame-rate
files), ``video_backend`` and ``frame_timestamps``; ``VideoDecode`` sets ``imgs`` and ``frame_times`` (seconds of
each decoded frame). When the opened backend fails while decoding, the file is reopened with the next backend.
"""
from typing import Dict, Sequence, Union

import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

from .readers import VideoDecodeError, backend_order, open_video


@TRANSFORMS.register_module()
class VideoInit(BaseTransform):
    """Open ``results['filename']`` with the first backend that reads it.

    Args:
        backend: 'auto', 'decord', 'pyav', 'torchcodec', or an ordered list of them.
        fallback: Try the other backends when the chosen one cannot open (or later decode) a file.
        num_threads: Decoder threads.
    """

    def __init__(self, backend: Union[str, Sequence[str]] = 'auto', fallback: bool = True, num_threads: int = 1):
        self.order = backend_order(backend, fallback)
        self.backend = backend
        self.fallback = fallback
        self.num_threads = num_threads

    def transform(self, results: Dict) -> Dict:
        reader = open_video(results['filename'], self.order, fallback=False, num_threads=self.num_threads)
        results['video_reader'] = reader
        results['video_backend'] = reader.backend
        results['video_backends_left'] = self.order[self.order.index(reader.backend) + 1:]
        results['video_num_threads'] = self.num_threads
        results['total_frames'] = reader.num_frames
        results['avg_fps'] = reader.fps
        results['frame_timestamps'] = reader.timestamps
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(backend={self.backend!r}, fallback={self.fallback})'


@TRANSFORMS.register_module()
class VideoDecode(BaseTransform):
    """Decode ``results['frame_inds']`` from the reader ``VideoInit`` opened (any backend)."""

    def transform(self, results: Dict) -> Dict:
        reader = results['video_reader']
        frame_inds = np.asarray(results['frame_inds']).reshape(-1)
        frame_inds = frame_inds % reader.num_frames  # SampleFrames may loop short videos
        try:
            frames = reader.get_frames(frame_inds)
        except VideoDecodeError as first_error:
            left = results.get('video_backends_left') or []
            if not left:
                raise
            reader.close()
            try:
                reader = open_video(results['filename'], left, fallback=False,
                                    num_threads=results.get('video_num_threads', 1))
                frames = reader.get_frames(frame_inds)
            except VideoDecodeError as second_error:
                raise VideoDecodeError(f'{first_error}; then {second_error}') from second_error
            results['video_backend'] = reader.backend
        reader.close()
        results['video_reader'] = None
        results['frame_times'] = reader.timestamps[frame_inds]
        results['imgs'] = list(frames)
        results['original_shape'] = frames.shape[1:3]
        results['img_shape'] = frames.shape[1:3]
        return results
