"""Decoding backends: same frames from decord and PyAV, per-file fallback, variable-frame-rate timestamps."""
import fractions
from pathlib import Path

import numpy as np
import pytest
from helpers_video import render_clip, write_mp4
from mmaction.registry import TRANSFORMS
from mmengine.dataset import Compose

from ivnext.video import VideoDecodeError, open_video, plan_windows, sample_grid


def write_frames(path: Path, frames: np.ndarray, codec: str = 'libx264', fps: int = 10, pts_ms=None,
                 options=None) -> Path:
    """Encode RGB frames with PyAV; ``pts_ms`` gives every frame's presentation time (variable frame rate)."""
    import av
    with av.open(str(path), mode='w') as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = 'yuv420p'
        stream.options = dict(options or {})
        if pts_ms is not None:
            stream.codec_context.time_base = fractions.Fraction(1, 1000)
            stream.time_base = fractions.Fraction(1, 1000)
        for i, frame in enumerate(frames):
            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format='rgb24')
            if pts_ms is not None:
                image.pts = int(pts_ms[i])
                image.time_base = fractions.Fraction(1, 1000)
            for packet in stream.encode(image):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope='module')
def frames() -> np.ndarray:
    return np.concatenate([render_clip(i % 4, 20, 64, seed=i) for i in range(3)])  # 60 frames


@pytest.fixture(scope='module')
def cfr_file(tmp_path_factory, frames) -> Path:
    # A keyframe every 8 frames, so PyAV's reader has to seek between keyframes.
    return write_frames(tmp_path_factory.mktemp('cfr') / 'cfr.mp4', frames,
                        options={'g': '8', 'keyint_min': '8', 'crf': '18', 'preset': 'ultrafast'})


def test_decord_and_pyav_give_the_same_frames_and_times(cfr_file):
    decord_reader = open_video(cfr_file, 'decord', fallback=False)
    pyav_reader = open_video(cfr_file, 'pyav', fallback=False)
    assert (decord_reader.backend, pyav_reader.backend) == ('decord', 'pyav')
    assert decord_reader.num_frames == pyav_reader.num_frames == 60
    np.testing.assert_allclose(decord_reader.timestamps, np.arange(60) / 10, atol=1e-6)
    np.testing.assert_allclose(pyav_reader.timestamps, np.arange(60) / 10, atol=1e-6)
    assert pyav_reader.fps == pytest.approx(10.0)
    # Unsorted, repeated, across several keyframe intervals, backwards.
    indices = [0, 7, 8, 9, 31, 59, 2, 2, 40, 17]
    a, b = decord_reader.get_frames(indices), pyav_reader.get_frames(indices)
    assert a.shape == (10, 64, 64, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    # And they are the right frames, in order (the rendered squares differ between frames).
    all_frames = pyav_reader.get_frames(np.arange(60))
    np.testing.assert_array_equal(all_frames[indices], b)
    assert np.abs(all_frames[0].astype(int) - all_frames[1].astype(int)).max() > 20


def test_av1_file_falls_back_to_pyav(tmp_path, frames):
    import av
    if 'libsvtav1' not in av.codecs_available or 'libdav1d' not in av.codecs_available:
        pytest.skip('this av wheel has no AV1 encoder / decoder')
    path = write_frames(tmp_path / 'av1.mp4', frames[:12], codec='libsvtav1')
    with pytest.raises(VideoDecodeError, match=str(path)):
        open_video(path, 'decord', fallback=False)  # decord 0.6's FFmpeg has no AV1 decoder
    reader = open_video(path, 'decord')  # fallback on
    assert reader.backend == 'pyav' and reader.num_frames == 12
    decoded = reader.get_frames([0, 11])
    # Lossy, but the right pictures: close to the source frames and far from the wrong one.
    err = np.abs(decoded.astype(float) - frames[[0, 11]].astype(float)).mean()
    assert err < 8
    assert np.abs(decoded[0].astype(float) - frames[11].astype(float)).mean() > 2 * err


def test_variable_frame_rate_timestamps_and_sampling(tmp_path, frames):
    # 20 frames 40 ms apart, then 20 frames 20 ms apart: average 33.05 fps over 1.18 s.
    pts = np.concatenate([np.arange(20) * 40, 800 + np.arange(20) * 20])
    path = write_frames(tmp_path / 'vfr.mp4', frames[:40], fps=30, pts_ms=pts,
                        options={'crf': '18', 'preset': 'ultrafast'})
    for backend in ('decord', 'pyav'):
        reader = open_video(path, backend, fallback=False)
        np.testing.assert_allclose(reader.timestamps, pts / 1000, atol=1e-6)
        assert reader.fps == pytest.approx(39 / 1.18)
    # Sampling at 25 fps: every frame in the 25 fps part, every other frame in the 50 fps part.
    grid = sample_grid(pts / 1000, fps=25)
    np.testing.assert_array_equal(grid, np.concatenate([np.arange(20), np.arange(20, 40, 2)]))
    plan = plan_windows(pts / 1000, window=10, stride=0.4, stride_unit='seconds', fps=25)
    np.testing.assert_allclose(plan.starts, [0.0, 0.4, 0.8])
    np.testing.assert_array_equal(plan.frame_indices[2], np.arange(20, 40, 2))


def test_pipeline_transforms_and_errors_name_the_file(cfr_file, tmp_path):
    pipeline = Compose([TRANSFORMS.build(t) for t in (
        dict(type='VideoInit', backend='pyav'),
        dict(type='SampleFrames', clip_len=4, frame_interval=2, num_clips=1, test_mode=True),
        dict(type='VideoDecode'))])
    results = pipeline(dict(filename=str(cfr_file), start_index=0, modality='RGB'))
    assert results['video_backend'] == 'pyav' and results['total_frames'] == 60
    assert results['avg_fps'] == pytest.approx(10.0)
    expected = open_video(cfr_file, 'decord', fallback=False).get_frames(results['frame_inds'])
    np.testing.assert_array_equal(np.stack(results['imgs']), expected)
    np.testing.assert_allclose(results['frame_times'], results['frame_inds'] / 10, atol=1e-6)

    broken = tmp_path / 'broken.mp4'
    broken.write_bytes(b'\x00' * 1000)
    with pytest.raises(VideoDecodeError, match='broken.mp4') as info:
        pipeline(dict(filename=str(broken), start_index=0, modality='RGB'))
    assert 'decord' in str(info.value) and 'pyav' in str(info.value)
    with pytest.raises(ValueError, match='video backend'):
        TRANSFORMS.build(dict(type='VideoInit', backend='opencv'))


def test_torchcodec_reports_why_it_is_unusable(cfr_file):
    try:
        reader = open_video(cfr_file, 'torchcodec', fallback=False)
    except VideoDecodeError as err:
        # The CPU torch here cannot load the CUDA-linked torchcodec wheel (or it is not installed).
        assert 'torchcodec' in str(err) and "backend='pyav'" in str(err)
    else:
        np.testing.assert_array_equal(reader.get_frames([3, 9]),
                                      open_video(cfr_file, 'pyav', fallback=False).get_frames([3, 9]))


def test_file_decord_opens_but_cannot_convert_falls_back(tmp_path, frames):
    # decord 0.6 opens 48 px wide H.264 but fails copying its padded RGB rows; the open-time probe catches it.
    path = write_mp4(tmp_path / 'w48.mp4', render_clip(1, 6, 48), fps=10)
    with pytest.raises(VideoDecodeError, match='w48.mp4'):
        open_video(path, 'decord', fallback=False)
    reader = open_video(path)
    assert reader.backend == 'pyav'
    np.testing.assert_allclose(reader.get_frames([2]).astype(float), render_clip(1, 6, 48)[[2]], atol=40)
