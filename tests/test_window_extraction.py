"""Windowed extraction of long videos: window count and timestamps, per-video files and index, resume, bad
videos skipped and listed, and the tools/extract_features.py --videos mode on the same implementation."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_video import write_mp4, write_mp4_with_pts

from ivnext.api import Preprocessing, SettingsChangedError, VideoEncoder, extract_videos
from ivnext.video import open_video, plan_windows

TINY = dict(arch=dict(embed_dims=32, num_layers=1, num_heads=2, mlp_ratio=2.0), img_size=28, patch_size=14,
            num_frames=4, with_clip_projector=True, clip_embed_dims=16, clip_num_heads=2, use_flash_attn=False)


def long_video(path: Path, seconds: int, fps: int = 10, size: int = 32) -> Path:
    """A ``seconds`` long video whose brightness encodes the frame number (so windows differ)."""
    t = np.arange(seconds * fps)
    frames = np.zeros((len(t), size, size, 3), dtype=np.uint8)
    frames[..., 0] = (t % 200)[:, None, None]
    frames[..., 1] = ((t // 10) * 7 % 255)[:, None, None]
    frames[:, :, : size // 2, 2] = 200
    return write_mp4(path, frames, fps=fps)


@pytest.fixture(scope='module')
def encoder() -> VideoEncoder:
    torch.manual_seed(0)
    return VideoEncoder(TINY, Preprocessing(num_frames=4, fps=4.0, resize=28, crop=28))


@pytest.fixture(scope='module')
def videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('videos')
    long_video(root / 'minute.mp4', 60)
    long_video(root / 'sub' / 'short.mp4', 3)
    (root / 'broken.mp4').write_bytes(b'not a video at all')
    return root


def test_sixty_second_video_window_count_and_timestamps(encoder, videos):
    out = encoder.encode(str(videos / 'minute.mp4'), stride=1.0, stride_unit='seconds', batch_size=16)
    # 600 frames at 10 fps sampled at 4 fps: 240 ticks (0 .. 59.75 s); windows of 4 ticks (1 s), stride 4 ticks.
    assert out.features.shape == (60, 16)
    np.testing.assert_allclose(out.starts, np.arange(60.0), atol=1e-6)
    np.testing.assert_allclose(out.ends, np.arange(60.0) + 1.0, atol=1e-6)
    # Nearest frames to 0, 0.25, 0.5, 0.75 s after each start (ties go to the earlier frame).
    np.testing.assert_array_equal(out.frame_indices[7], [70, 72, 75, 77])
    # A 2.5 s stride with include_tail: starts every 2.5 s, then a last window ending at the last tick.
    tail = encoder.encode(str(videos / 'minute.mp4'), stride=2.5, stride_unit='seconds', include_tail=True,
                          output='avg', batch_size=16)
    np.testing.assert_allclose(tail.starts[:-1], np.arange(24) * 2.5, atol=1e-6)
    assert tail.starts[-1] == pytest.approx(59.0) and tail.ends[-1] == pytest.approx(60.0)
    torch.testing.assert_close(tail.features[0], encoder.encode(str(videos / 'minute.mp4'), stride=10,
                                                                output='avg').features[0])


def test_folder_extraction_files_index_resume_and_bad_videos(encoder, videos, tmp_path):
    out_dir = tmp_path / 'feats'
    summary = extract_videos(encoder, str(videos), str(out_dir), stride=1.0, stride_unit='seconds', batch_size=7,
                             progress=False)
    assert sorted(summary.done) == ['minute', 'sub/short'] and summary.windows == 60 + 3
    assert [Path(p).name for p, _ in summary.bad] == ['broken.mp4']
    index = json.loads((out_dir / 'index.json').read_text())
    assert [v['id'] for v in index['videos']] == ['minute', 'sub/short']
    assert index['bad_videos'][0]['video'].endswith('broken.mp4') and 'broken.mp4' in index['bad_videos'][0]['error']
    assert 'broken.mp4' in (out_dir / 'bad_videos.txt').read_text()
    rows = list(csv.DictReader(open(out_dir / 'index.csv')))
    assert [int(r['num_windows']) for r in rows] == [60, 3]

    feats = np.load(out_dir / 'features' / 'minute.npy')
    meta = json.loads((out_dir / 'features' / 'minute.json').read_text())
    assert feats.shape == (60, 16) and feats.dtype == np.float32
    np.testing.assert_allclose(meta['starts'], np.arange(60.0), atol=1e-5)
    assert meta['source_fps'] == pytest.approx(10.0) and meta['sample_fps'] == 4.0 and meta['window_frames'] == 4
    # Chunked extraction (7 windows per pass) equals one encode() of the whole video.
    direct = encoder.encode(str(videos / 'minute.mp4'), stride=1.0, stride_unit='seconds', batch_size=60)
    np.testing.assert_allclose(feats, direct.features.numpy(), rtol=1e-5, atol=1e-6)
    assert np.abs(feats[0] - feats[30]).max() > 1e-4

    # Resume: done videos are skipped (files untouched), the bad one is tried again and listed again.
    stamp = (out_dir / 'features' / 'minute.npy').stat().st_mtime_ns
    again = extract_videos(encoder, str(videos), str(out_dir), stride=1.0, stride_unit='seconds', progress=False)
    assert again.done == [] and sorted(again.skipped) == ['minute', 'sub/short'] and len(again.bad) == 1
    assert (out_dir / 'features' / 'minute.npy').stat().st_mtime_ns == stamp
    assert len(json.loads((out_dir / 'index.json').read_text())['videos']) == 2


def test_tool_videos_mode_uses_the_same_extraction(encoder, videos, tmp_path):
    import ivnext.cli.extract_features as tool  # what tools/extract_features.py runs
    encoder.save_pretrained(tmp_path / 'enc')
    listing = tmp_path / 'list.txt'
    listing.write_text(f"{videos / 'sub' / 'short.mp4'}\n{videos / 'broken.mp4'}\n")
    summary = tool.run([str(tmp_path / 'enc'), '--videos', str(listing), '--out-dir', str(tmp_path / 'out'),
                        '--stride', '2', '--stride-unit', 'frames', '--output', 'tokens', '--no-progress',
                        '--root', str(videos)])
    assert summary.done == ['sub/short'] and len(summary.bad) == 1
    tokens = np.load(tmp_path / 'out' / 'features' / 'sub' / 'short.npy')
    # 3 s at 4 fps: 12 ticks; windows of 4 every 2 ticks -> 5 windows of 4 CLS + 4 x 2 x 2 tokens.
    assert tokens.shape == (5, 4 + 16, 32)
    direct = encoder.encode(str(videos / 'sub' / 'short.mp4'), stride=2, output='tokens')
    np.testing.assert_allclose(tokens, direct.features.numpy(), rtol=1e-5, atol=1e-6)


def test_resume_stops_when_a_setting_changed(encoder, videos, tmp_path, capsys):
    out_dir = tmp_path / 'feats'
    short = [str(videos / 'sub' / 'short.mp4')]
    first = extract_videos(encoder, short, str(out_dir), stride=1.0, stride_unit='seconds', progress=False)
    assert first.done == ['short']
    settings = json.loads((out_dir / 'settings.json').read_text())
    assert settings['stride'] == 1.0 and settings['model']['fingerprint'] == encoder.weights_fingerprint()
    assert json.loads((out_dir / 'index.json').read_text())['settings'] == settings
    stamp = (out_dir / 'features' / 'short.npy').stat().st_mtime_ns
    # Same settings: skipped as before (batch size is not a setting).
    again = extract_videos(encoder, short, str(out_dir), stride=1.0, stride_unit='seconds', batch_size=3,
                           progress=False)
    assert again.skipped == ['short'] and again.done == []

    # Each changed setting stops the run, names the change and the fix; nothing is rewritten.
    other = VideoEncoder(TINY, Preprocessing(num_frames=4, fps=4.0, resize=28, crop=28))
    changes = [(dict(stride=0.5), 'stride: 1.0 -> 0.5'), (dict(output='avg'), "output: 'pooled' -> 'avg'"),
               (dict(stride=4, stride_unit='frames'), "stride_unit: 'seconds' -> 'frames'"),
               (dict(include_tail=True), 'include_tail: False -> True'),
               (dict(dtype='float16'), "dtype: 'float32' -> 'float16'"),
               (dict(encoder=other), 'model.fingerprint')]
    for change, named in changes:
        kwargs = dict(dict(encoder=encoder, stride=1.0, stride_unit='seconds'), **change)
        with pytest.raises(SettingsChangedError, match='other settings') as info:
            extract_videos(kwargs.pop('encoder'), short, str(out_dir), progress=False, **kwargs)
        assert named in str(info.value) and '--no-resume' in str(info.value) and '--out-dir' in str(info.value)
    fps8 = VideoEncoder(TINY, Preprocessing(num_frames=4, fps=8.0, resize=28, crop=28))
    fps8.load_state_dict(encoder.state_dict())
    with pytest.raises(SettingsChangedError, match=r'preprocessing.fps: 4.0 -> 8.0'):
        extract_videos(fps8, short, str(out_dir), stride=1.0, stride_unit='seconds', progress=False)
    assert (out_dir / 'features' / 'short.npy').stat().st_mtime_ns == stamp

    # The command line: exit code 1 and the message on stderr.
    import ivnext.cli.extract_features as tool
    encoder.save_pretrained(tmp_path / 'enc')
    assert tool.main([str(tmp_path / 'enc'), '--videos', short[0], '--out-dir', str(out_dir), '--stride', '2',
                      '--no-progress']) == 1
    assert 'stride: 1.0 -> 2.0' in capsys.readouterr().err

    # resume=False recomputes with the new settings, which later reruns then resume.
    redone = extract_videos(encoder, short, str(out_dir), stride=0.5, stride_unit='seconds', resume=False,
                            progress=False)
    assert redone.done == ['short'] and redone.windows == 5
    assert np.load(out_dir / 'features' / 'short.npy').shape == (5, 16)
    assert extract_videos(encoder, short, str(out_dir), stride=0.5, stride_unit='seconds',
                          progress=False).skipped == ['short']

    # A folder of features without recorded settings is not resumed either.
    (out_dir / 'settings.json').unlink()
    with pytest.raises(SettingsChangedError, match='not recorded'):
        extract_videos(encoder, short, str(out_dir), stride=0.5, stride_unit='seconds', progress=False)


def test_stride_in_seconds_is_exact(encoder, videos):
    # 600 s at 25 fps, every 4th frame (6.25 sampled frames/s), 16-frame windows, 1 s stride: a window starts at
    # every whole second (not every 6 sampled frames = 0.96 s, which gave 623 windows), on the frame of that
    # second, and samples every 4th frame from there.
    plan = plan_windows(np.arange(15000) / 25, window=16, stride=1.0, stride_unit='seconds', frame_interval=4)
    # The last window starts where its 16th frame is still on the clock: (3749 - 15) / 6.25 = 597.44 s.
    assert len(plan) == 598
    np.testing.assert_allclose(plan.starts, np.arange(598.0), atol=1e-9)
    np.testing.assert_array_equal(plan.frame_indices, 25 * np.arange(598)[:, None] + 4 * np.arange(16)[None])
    np.testing.assert_allclose(plan.ends - plan.starts, 16 / 6.25)
    # A stride that is no whole number of sampled frames (0.3 s at 4 frames/s) on a real file, through encode.
    out = encoder.encode(str(videos / 'sub' / 'short.mp4'), stride=0.3, stride_unit='seconds', batch_size=16)
    # 3 s at 10 fps: ticks 0 .. 2.75 s; a 4-tick window fits while its start is <= 2.0 s -> starts 0, 0.3 .. 1.8.
    np.testing.assert_allclose(out.starts, np.arange(7) * 0.3, atol=1e-9)
    np.testing.assert_array_equal(out.frame_indices[:, 0], [0, 3, 6, 9, 12, 15, 18])


def test_variable_frame_rate_windows_are_even_in_real_time(encoder, tmp_path):
    # 5 s at 10 fps, then 5 s at 30 fps: 200 frames, 19.97 frames/s on average.
    pts = np.concatenate([np.arange(50) * 100, 5000 + np.round(np.arange(150) * 100 / 3)]).astype(int)
    t = np.arange(len(pts))
    frames = np.zeros((len(pts), 32, 32, 3), dtype=np.uint8)
    frames[..., 0] = (t % 200)[:, None, None]
    path = write_mp4_with_pts(tmp_path / 'vfr.mp4', frames, pts)
    reader = open_video(str(path), 'pyav', fallback=False)
    times = reader.timestamps
    np.testing.assert_allclose(times, pts / 1000, atol=1e-6)
    reader.close()
    rate = reader.fps / 2  # every 2nd frame at the average rate: 9.98 sampled frames/s
    vfr = VideoEncoder(TINY, Preprocessing(num_frames=4, frame_interval=2, resize=28, crop=28))
    vfr.load_state_dict(encoder.state_dict())
    for stride, unit, spacing in ((8, 'frames', 8 / rate), (1.5, 'seconds', 1.5)):
        out = vfr.encode(str(path), stride=stride, stride_unit=unit, batch_size=16)
        assert len(out.starts) == int((times[-1] - 3 / rate) / spacing + 1e-6) + 1
        # Window starts are evenly spaced in seconds, in the 10 fps half as in the 30 fps half...
        np.testing.assert_allclose(np.diff(out.starts), spacing, atol=1e-9)
        # ...and every frame is the one nearest to its tick (start + j / rate), within half a source period.
        ticks = out.starts[:, None] + np.arange(4)[None] / rate
        gaps = np.abs(times[out.frame_indices] - ticks)
        local_period = np.where(ticks < 5.0, 0.1, 0.1 / 3)
        assert (gaps <= local_period / 2 + 1e-3).all(), gaps.max()
        assert out.sample_fps == pytest.approx(rate)
    # One clip over the whole video: frames at the centres of four equal time segments (1.25, 3.75, 6.25, 8.75 s
    # of the 9.97 + 0.05 s video, give or take a frame).
    clip = vfr.encode(str(path))
    centres = (np.arange(4) + 0.5) * (times[-1] + 1 / reader.fps) / 4
    assert (np.abs(times[clip.frame_indices[0]] - centres) <= 0.1).all(), times[clip.frame_indices[0]]
