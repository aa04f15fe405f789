"""Video readers on three decoding backends (decord, PyAV, torchcodec) behind one interface.

:func:`open_video` opens a file with the first backend of a preference list that can read it, so a file one
backend cannot decode (AV1 for decord 0.6) falls back to the next. Every reader reports per-frame presentation
timestamps read from the container, so variable-frame-rate files are sampled by time, not by an average rate.

Backends are imported lazily: ``import ivnext`` loads none of them.
"""
import os
import os.path as osp
import stat
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

BACKENDS: Tuple[str, ...] = ('decord', 'pyav', 'torchcodec')
# Order tried by backend='auto': PyAV decodes every codec of its bundled FFmpeg (AV1 included), has wheels for
# every platform and sampled clips about twice as fast as decord 0.6 here (docs/performance.md); decord
# gives the same frames; torchcodec needs a torchcodec build matching the installed torch.
AUTO_ORDER: Tuple[str, ...] = ('pyav', 'decord', 'torchcodec')


class VideoDecodeError(RuntimeError):
    """A video that no requested backend could open or decode; the message names the file and each failure."""


class VideoReader:
    """A decoded-on-demand video.

    Attributes:
        path: The file.
        backend: Name of the backend that reads it.
        timestamps: (N,) float64 presentation time of every frame in seconds, increasing, first frame at its
            own pts (usually 0).
    """

    backend = ''

    def __init__(self, path: str):
        self.path = path
        self.timestamps = np.zeros(0)

    def __len__(self) -> int:
        return len(self.timestamps)

    @property
    def num_frames(self) -> int:
        """Number of frames N."""
        return len(self.timestamps)

    @property
    def fps(self) -> float:
        """Average frame rate from the timestamps ((N - 1) / (t_last - t_first)); exact for constant-rate files."""
        return average_fps(self.timestamps)

    @property
    def duration(self) -> float:
        """Seconds from the first frame to the end of the last (last frame shown for one average period)."""
        if self.num_frames == 0:
            return 0.0
        fps = self.fps
        return float(self.timestamps[-1] - self.timestamps[0] + (1.0 / fps if fps > 0 else 0.0))

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """Decode frames by index.

        Args:
            indices: Frame indices in ``[0, N)``, any order, repeats allowed.

        Returns:
            np.ndarray: (len(indices), H, W, 3) uint8 RGB, in the order of ``indices``.
        """
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size == 0:
            raise ValueError(f'{self.path}: no frame indices to decode')
        if indices.min() < 0 or indices.max() >= self.num_frames:
            raise IndexError(f'{self.path}: frame indices must be in [0, {self.num_frames}), got '
                             f'[{indices.min()}, {indices.max()}]')
        unique, inverse = np.unique(indices, return_inverse=True)
        try:
            frames = self._decode_sorted(unique)
        except Exception as err:  # noqa: BLE001 - re-raised with the file name
            raise VideoDecodeError(f'{self.path}: {self.backend} failed to decode frames '
                                   f'{unique[:4].tolist()}...: {err}') from err
        return frames[inverse]

    def _decode_sorted(self, indices: np.ndarray) -> np.ndarray:
        """(K,) sorted unique indices -> (K, H, W, 3) uint8."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the file."""

    def __enter__(self) -> 'VideoReader':
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def average_fps(timestamps: np.ndarray) -> float:
    """(N - 1) / (t_last - t_first) for N >= 2 frames, else 0."""
    if len(timestamps) < 2 or timestamps[-1] <= timestamps[0]:
        return 0.0
    return float((len(timestamps) - 1) / (timestamps[-1] - timestamps[0]))


def packet_timestamps(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """Per-frame pts (seconds, sorted) and keyframe flags of the first video stream, by demuxing with PyAV."""
    import av
    with av.open(path) as container:
        if not container.streams.video:
            raise VideoDecodeError(f'{path}: no video stream')
        stream = container.streams.video[0]
        pts, keys = _demux_pts(container, stream)
        return pts.astype(np.float64) * float(stream.time_base), keys


def _demux_pts(container, stream) -> Tuple[np.ndarray, np.ndarray]:
    """(N,) int64 sorted pts and (N,) bool keyframe flags of every packet of ``stream``."""
    pts, keys = [], []
    for packet in container.demux(stream):
        if packet.pts is None or packet.size == 0:
            continue
        pts.append(packet.pts)
        keys.append(packet.is_keyframe)
    order = np.argsort(pts, kind='stable')
    return np.asarray(pts, dtype=np.int64)[order], np.asarray(keys, dtype=bool)[order]


class NotRegularFileError(ValueError):
    """A path names a folder, FIFO, socket or device where a regular file is needed."""


def file_kind(mode: int) -> str:
    """'a folder', 'a FIFO (named pipe)', ... for a ``st_mode`` that is not a regular file's."""
    kinds = ((stat.S_ISDIR, 'a folder'), (stat.S_ISFIFO, 'a FIFO (named pipe)'), (stat.S_ISSOCK, 'a socket'),
             (stat.S_ISCHR, 'a character device'), (stat.S_ISBLK, 'a block device'))
    return next((name for test, name in kinds if test(mode)), 'not a regular file')


def regular_file_problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be read as a file, without opening it ('does not exist', 'is a FIFO ...'), or None.

    ``os.stat`` follows links and never blocks, where opening a FIFO waits for a writer.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return 'does not exist'
    except OSError as err:
        return f'cannot be read ({err.strerror or err})'
    if stat.S_ISREG(mode):
        return None
    return f'is {file_kind(mode)}, not a regular file'


def check_regular_file(path: str, what: str = 'file') -> None:
    """Raise unless ``path`` is a regular file (checked before any decoder opens it).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        NotRegularFileError: ``path`` is a folder, FIFO, socket or device, or cannot be read.
    """
    problem = regular_file_problem(path)
    if problem == 'does not exist':
        raise FileNotFoundError(f'{what} {path} does not exist')
    if problem is not None:
        raise NotRegularFileError(f'{what} {path} {problem}; only regular files are read')


class DecordReader(VideoReader):
    """decord ``VideoReader`` (FFmpeg bundled in the decord wheel)."""

    backend = 'decord'

    def __init__(self, path: str, num_threads: int = 1):
        super().__init__(path)
        import decord
        self._reader = decord.VideoReader(path, num_threads=num_threads)
        n = len(self._reader)
        if n == 0:
            raise VideoDecodeError(f'{path}: decord found no frames')
        # (N, 2) start / end seconds per frame, from the packets' pts.
        self.timestamps = np.asarray(self._reader.get_frame_timestamp(np.arange(n)), dtype=np.float64)[:, 0]
        # Probe one frame: decord 0.6 opens some files it cannot convert (e.g. widths whose RGB rows need
        # padding), which should fail here and fall back, not in the middle of a run.
        self._decode_sorted(np.array([0]))

    def _decode_sorted(self, indices: np.ndarray) -> np.ndarray:
        return self._reader.get_batch(indices.tolist()).asnumpy()

    def close(self) -> None:
        self._reader = None


class PyAVReader(VideoReader):
    """PyAV (FFmpeg bundled in the av wheel): timestamps from the demuxed packets, frames by keyframe seeks.

    Opening demuxes the video stream once (no decoding) to list every frame's pts and the keyframes; decoding
    seeks to the keyframe before the first wanted frame and decodes forward, seeking again when the next wanted
    frame lies beyond another keyframe.
    """

    backend = 'pyav'

    def __init__(self, path: str, num_threads: int = 1):
        super().__init__(path)
        import av
        self._av = av
        self._container = av.open(path)
        if not self._container.streams.video:
            raise VideoDecodeError(f'{path}: no video stream')
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = 'AUTO' if num_threads != 1 else 'SLICE'
        if num_threads > 0:
            self._stream.codec_context.thread_count = num_threads
        self._pts, self._keyframe = _demux_pts(self._container, self._stream)
        if len(self._pts) == 0:
            raise VideoDecodeError(f'{path}: no video packets')
        if not self._keyframe[0]:
            self._keyframe[0] = True  # decoding always starts from the stream start
        self._key_positions = np.flatnonzero(self._keyframe)
        self._index_of_pts: Dict[int, int] = {int(p): i for i, p in enumerate(self._pts)}
        base = float(self._stream.time_base)
        self.timestamps = self._pts.astype(np.float64) * base
        # Frames decodable: probe the first one so unsupported codecs fail at open time, not mid-run.
        self._decode_sorted(np.array([0]))

    def _seek(self, index: int) -> None:
        self._container.seek(int(self._pts[index]), stream=self._stream, backward=True, any_frame=False)

    def _keyframe_before(self, index: int) -> int:
        """Index of the last keyframe at or before frame ``index``."""
        return int(self._key_positions[np.searchsorted(self._key_positions, index, side='right') - 1])

    def _decode_sorted(self, indices: np.ndarray) -> np.ndarray:
        out: List[Optional[np.ndarray]] = [None] * len(indices)
        pos = 0
        while pos < len(indices):
            self._container.seek(int(self._pts[self._keyframe_before(indices[pos])]), stream=self._stream,
                                 backward=True, any_frame=False)
            for frame in self._container.decode(self._stream):
                index = None if frame.pts is None else self._index_of_pts.get(int(frame.pts))
                if index is None or index < indices[pos]:
                    continue
                if index > indices[pos]:
                    raise VideoDecodeError(f'frame {indices[pos]} (pts {self._pts[indices[pos]]}) never came out '
                                           'of the decoder (corrupt stream?)')
                image = frame.to_ndarray(format='rgb24')
                while pos < len(indices) and indices[pos] == index:
                    out[pos] = image
                    pos += 1
                # Seek again when a keyframe lies between here and the next wanted frame.
                if pos == len(indices) or self._keyframe_before(indices[pos]) > index:
                    break
            else:
                if pos < len(indices):
                    raise VideoDecodeError(f'frames from {indices[pos]} on were not decoded (stream ends early)')
        return np.stack(out)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


class TorchCodecReader(VideoReader):
    """torchcodec ``VideoDecoder`` (needs a torchcodec wheel built for the installed torch)."""

    backend = 'torchcodec'

    def __init__(self, path: str, num_threads: int = 1):
        super().__init__(path)
        try:
            from torchcodec.decoders import VideoDecoder
        except Exception as err:  # ImportError, or OSError / RuntimeError from its shared libraries
            raise ImportError(
                f'torchcodec is not usable here ({type(err).__name__}: {err}). torchcodec wheels link one torch '
                "build (CUDA wheels need libtorch_cuda); install the torchcodec build matching your torch, or use "
                "backend='pyav' / 'decord'.") from err
        self._decoder = VideoDecoder(path, seek_mode='exact', num_ffmpeg_threads=num_threads)
        meta = self._decoder.metadata
        try:  # exact per-frame pts from the demuxed packets (cheap, no decoding)
            self.timestamps, _ = packet_timestamps(path)
        except ImportError:
            fps = meta.average_fps or 0.0
            start = meta.begin_stream_seconds or 0.0
            self.timestamps = start + np.arange(meta.num_frames) / fps if fps else np.zeros(0)
        if len(self.timestamps) != meta.num_frames:
            raise VideoDecodeError(f'{path}: torchcodec counts {meta.num_frames} frames, the container '
                                   f'{len(self.timestamps)} packets')

    def _decode_sorted(self, indices: np.ndarray) -> np.ndarray:
        batch = self._decoder.get_frames_at(indices.tolist())
        return batch.data.permute(0, 2, 3, 1).contiguous().numpy()


READERS: Dict[str, Callable[..., VideoReader]] = {
    'decord': DecordReader,
    'pyav': PyAVReader,
    'torchcodec': TorchCodecReader,
}


def backend_order(backend: Union[str, Sequence[str]] = 'auto', fallback: bool = True) -> List[str]:
    """Backends to try, in order.

    Args:
        backend: 'auto', one of :data:`BACKENDS`, or a sequence of them.
        fallback: With a single named backend, try the other backends of :data:`AUTO_ORDER` after it.
    """
    if isinstance(backend, str):
        if backend == 'auto':
            return list(AUTO_ORDER)
        names = [backend]
    else:
        names = list(backend)
    for name in names:
        if name not in BACKENDS:
            raise ValueError(f"video backend must be 'auto' or one of {BACKENDS}, got {name!r}")
    if fallback:
        names += [name for name in AUTO_ORDER if name not in names]
    return names


def open_video(path: str, backend: Union[str, Sequence[str]] = 'auto', fallback: bool = True,
               num_threads: int = 1) -> VideoReader:
    """Open ``path`` with the first backend that can read it.

    Args:
        path: Video file.
        backend: 'auto' (PyAV, then decord, then torchcodec), one backend name, or an ordered list.
        fallback: After a named backend fails, try the others (``backend='decord', fallback=False`` is strict).
        num_threads: Decoder threads per file.

    Returns:
        VideoReader: ``reader.backend`` says which backend opened the file.

    Raises:
        FileNotFoundError: No such file.
        NotRegularFileError: A folder, FIFO, socket or device (a decoder would wait on a FIFO forever).
        VideoDecodeError: No backend could open it; the message lists each backend's error.
    """
    path = str(path)
    check_regular_file(path, 'video')
    errors = []
    for name in backend_order(backend, fallback):
        try:
            return READERS[name](path, num_threads=num_threads)
        except Exception as err:  # noqa: BLE001 - every backend error leads to the next backend
            errors.append(f'{name}: {type(err).__name__}: {str(err).strip()[:300]}')
    raise VideoDecodeError(f'cannot decode video {path}; ' + '; '.join(errors))
