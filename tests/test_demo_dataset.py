"""Behaviour of the demo appearance/motion clip set: files, mmaction2 reading, factorial labels, motion, caching."""
import json
import os
import os.path as osp
from collections import Counter

import cv2
import decord
import numpy as np
import pytest

import ivnext  # noqa: F401  (compat patches before mmaction2)
from ivnext.demo.demo_clips import (APPEARANCE_CLASSES, MOTION_CLASSES, PHOTO_SOURCES, VIDEO_SOURCES,
                                        DemoClipsConfig, build_demo_clips, find_shots, is_up_to_date,
                                        load_clip_records, load_source, render_windows)

FRAMES, SIZE = 8, 64
CONFIG = DemoClipsConfig(num_clips_per_class=1, num_val_clips_per_class=1, frames=FRAMES, size=SIZE, seed=0)
PAN_DIRECTION = dict(move_left=(-1, 0), move_right=(1, 0), move_up=(0, -1), move_down=(0, 1))


@pytest.fixture(scope='module')
def built(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('demo_clips'))
    manifest = build_demo_clips(root, CONFIG)
    assert manifest['skipped'] is False
    return root


def read_clip(root: str, rel: str) -> np.ndarray:
    reader = decord.VideoReader(osp.join(root, rel), num_threads=1)
    return reader.get_batch(list(range(len(reader)))).asnumpy()


def read_list(path: str) -> list:
    with open(path) as f:
        return [line.split() for line in f.read().splitlines()]


def mean_shift(clip: np.ndarray) -> np.ndarray:
    """Median frame-to-frame translation (dx, dy) of a clip, in pixels, by phase correlation."""
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32) for f in clip]
    window = cv2.createHanningWindow(gray[0].shape[::-1], cv2.CV_32F)
    return np.median([cv2.phaseCorrelate(a, b, window)[0] for a, b in zip(gray[:-1], gray[1:])], axis=0)


def divergence(clip: np.ndarray) -> float:
    """Mean radial component of the optical flow between consecutive frames: > 0 expands (zoom in)."""
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in clip]
    h, w = gray[0].shape
    yy, xx = np.mgrid[:h, :w]
    out = []
    for a, b in zip(gray[:-1], gray[1:]):
        flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        out.append(np.mean(flow[..., 0] * (xx - (w - 1) / 2) + flow[..., 1] * (yy - (h - 1) / 2)))
    return float(np.mean(out))


def motion_matches(clip: np.ndarray, motion: str) -> bool:
    if motion in PAN_DIRECTION:
        along = np.array(PAN_DIRECTION[motion], float)
        shift = mean_shift(clip)
        return shift @ along > 1.0 and shift @ along > 2 * abs(shift @ along[::-1])
    return divergence(clip) > 0 if motion == 'zoom_in' else divergence(clip) < 0


def test_files_lists_and_classes(built):
    manifest = json.load(open(osp.join(built, 'manifest.json')))
    cells = len(APPEARANCE_CLASSES) * len(MOTION_CLASSES)
    assert manifest['counts'] == dict(train=cells, val=cells)
    assert manifest['digest'] == CONFIG.digest()
    expected = dict(appearance=list(APPEARANCE_CLASSES), motion=list(MOTION_CLASSES))
    assert json.load(open(osp.join(built, 'classes.json'))) == expected
    for split in ('train', 'val'):
        for kind in ('appearance', 'motion'):
            rows = read_list(osp.join(built, f'{split}_{kind}.txt'))
            assert len(rows) == cells and all(len(r) == 2 for r in rows)
            assert all(osp.isfile(osp.join(built, path)) and path.startswith(f'videos/{split}/') for path, _ in rows)
    pretrain = read_list(osp.join(built, 'pretrain.txt'))
    assert [r[0] for r in pretrain] == [r[0] for r in read_list(osp.join(built, 'train_motion.txt'))]
    assert all(len(r) == 1 for r in pretrain)
    assert not set(r[0] for r in pretrain) & set(r[0] for r in read_list(osp.join(built, 'val_motion.txt')))


def test_every_clip_decodes_with_decord(built):
    for record in load_clip_records(built):
        clip = read_clip(built, record['path'])
        assert clip.shape == (FRAMES, SIZE, SIZE, 3)
        assert clip.std() > 10  # real content, not a flat frame


def test_mmaction_video_dataset_reads_the_lists(built):
    from mmaction.datasets import VideoDataset
    pipeline = [dict(type='DecordInit'), dict(type='SampleFrames', clip_len=FRAMES, frame_interval=1, num_clips=1,
                                              test_mode=True),
                dict(type='DecordDecode'), dict(type='FormatShape', input_format='NCTHW'),
                dict(type='PackActionInputs', meta_keys=('filename',))]
    records = {r['path']: r for r in load_clip_records(built)}
    for kind in ('appearance', 'motion'):
        dataset = VideoDataset(osp.join(built, f'val_{kind}.txt'), pipeline, data_prefix=dict(video=built))
        assert len(dataset) == len(APPEARANCE_CLASSES) * len(MOTION_CLASSES)
        for idx in (0, len(dataset) - 1):
            item = dataset[idx]
            assert tuple(item['inputs'].shape) == (1, 3, FRAMES, SIZE, SIZE)
            rel = osp.relpath(item['data_samples'].metainfo['filename'], built)
            assert int(item['data_samples'].gt_label) == records[rel][kind]
            assert np.array_equal(item['inputs'][0].permute(1, 2, 3, 0).numpy(), read_clip(built, rel))
    unlabeled = VideoDataset(osp.join(built, 'pretrain.txt'), pipeline, data_prefix=dict(video=built))
    assert len(unlabeled) == len(APPEARANCE_CLASSES) * len(MOTION_CLASSES)
    assert tuple(unlabeled[3]['inputs'].shape) == (1, 3, FRAMES, SIZE, SIZE)


def test_labels_balanced_factorial_and_consistent(built):
    for split in ('train', 'val'):
        app = dict(read_list(osp.join(built, f'{split}_appearance.txt')))
        mot = dict(read_list(osp.join(built, f'{split}_motion.txt')))
        assert app.keys() == mot.keys()
        table = np.zeros((len(APPEARANCE_CLASSES), len(MOTION_CLASSES)), int)
        for path in app:
            a, m = int(app[path]), int(mot[path])
            table[a, m] += 1
            assert osp.basename(path).startswith(f'{APPEARANCE_CLASSES[a]}_{MOTION_CLASSES[m]}_')
        # Every pair equally often: the joint is the product of uniform marginals, so neither label predicts the other.
        assert (table == table[0, 0]).all() and table[0, 0] >= 1


def test_pan_and_zoom_direction_match_the_motion_label(built):
    records = load_clip_records(built)
    photo = [r for r in records if r['appearance_name'] in PHOTO_SOURCES]
    video = [r for r in records if r['appearance_name'] in VIDEO_SOURCES]
    assert {r['flip'] for r in photo} == {False, True}  # mirrored sources keep their motion label
    # Photos move only by the camera: every clip must show its label's motion.
    for r in photo:
        assert motion_matches(read_clip(built, r['path']), r['motion_name']), r
    # Videos add their own (randomly reversed) motion; the camera motion must still dominate.
    agree = [motion_matches(read_clip(built, r['path']), r['motion_name']) for r in video]
    assert np.mean(agree) >= 0.8
    # The estimators are not blind: a clip played backwards shows the opposite motion.
    clip = read_clip(built, next(r['path'] for r in photo if r['motion_name'] == 'move_left'))
    assert motion_matches(clip[::-1], 'move_right') and not motion_matches(clip[::-1], 'move_left')
    clip = read_clip(built, next(r['path'] for r in photo if r['motion_name'] == 'zoom_in'))
    assert motion_matches(clip[::-1], 'zoom_out')


def test_video_clips_vary_speed_direction_and_stay_in_one_shot(built):
    records = [r for r in load_clip_records(built) if r['appearance_name'] in VIDEO_SOURCES]
    assert {r['reversed'] for r in records} == {False, True}
    assert {r['stride'] for r in records} == {1, 2}
    bikes = load_source('bikes', 2 * SIZE)
    shots = find_shots(bikes)
    assert len(shots) == 6 and shots[0][0] == 0 and shots[-1][1] == len(bikes)  # bikes.mp4 has five hard cuts
    for r in records:
        if r['appearance_name'] == 'bikes':
            last = r['start'] + (FRAMES - 1) * r['stride']
            assert any(begin <= r['start'] and last < end for begin, end in shots), r


def test_reversed_playback_is_the_time_mirror():
    source = load_source('carphone', 2 * SIZE)
    windows = np.tile([[SIZE, SIZE, 1.5 * SIZE]], (FRAMES, 1))
    index = np.arange(10, 10 + FRAMES)
    forward = render_windows(source, index, windows, SIZE)
    backward = render_windows(source, index[::-1], windows, SIZE)
    assert np.array_equal(backward, forward[::-1])
    assert np.abs(forward.astype(int) - backward.astype(int)).mean() > 1.0


def test_rebuild_is_skipped_when_up_to_date_and_redone_otherwise(tmp_path):
    root = str(tmp_path)
    small = DemoClipsConfig(num_clips_per_class=1, num_val_clips_per_class=1, frames=4, size=32,
                            appearance=('carphone', 'chelsea'), motion=('move_left', 'zoom_out'))
    first = build_demo_clips(root, small)
    clip_path = osp.join(root, first['files'][-1])
    stamp = os.stat(clip_path).st_mtime_ns
    again = build_demo_clips(root, small)
    assert again['skipped'] and os.stat(clip_path).st_mtime_ns == stamp and is_up_to_date(root, small)
    # Same parameters, same content: seeded draws are reproducible.
    other = str(tmp_path / 'copy')
    build_demo_clips(other, small)
    assert load_clip_records(other) == load_clip_records(root)
    assert np.array_equal(read_clip(other, first['files'][-1]), read_clip(root, first['files'][-1]))
    # Other parameters, or a missing clip, trigger a rebuild.
    reseeded = DemoClipsConfig(**{**small.__dict__, 'seed': 1})
    assert not is_up_to_date(root, reseeded)
    assert build_demo_clips(root, reseeded)['skipped'] is False
    assert load_clip_records(root) != load_clip_records(other)
    os.remove(clip_path)
    assert not is_up_to_date(root, reseeded)
    assert build_demo_clips(root, reseeded)['skipped'] is False and osp.isfile(clip_path)


@pytest.mark.parametrize('kwargs, field', [(dict(size=63), 'size'), (dict(frames=1), 'frames'),
                                           (dict(appearance=('astronaut', 'moon')), 'appearance'),
                                           (dict(motion=('spin', 'zoom_in')), 'motion'),
                                           (dict(num_clips_per_class=0), 'num_clips_per_class')])
def test_bad_parameters_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        DemoClipsConfig(**kwargs)


def test_frames_longer_than_a_shot_raise_a_clear_error(tmp_path):
    config = DemoClipsConfig(frames=200, size=32, appearance=('carphone', 'chelsea'), motion=('zoom_in', 'zoom_out'))
    with pytest.raises(ValueError, match='frames=200'):
        build_demo_clips(str(tmp_path), config)
    assert Counter(os.listdir(tmp_path))['manifest.json'] == 0


def test_foreign_videos_folder_is_never_deleted(tmp_path):
    (tmp_path / 'videos').mkdir()
    (tmp_path / 'videos' / 'mine.mp4').write_bytes(b'user data')
    config = DemoClipsConfig(frames=4, size=32, appearance=('carphone', 'chelsea'), motion=('zoom_in', 'zoom_out'))
    with pytest.raises(FileExistsError, match='out_dir'):
        build_demo_clips(str(tmp_path), config)
    assert (tmp_path / 'videos' / 'mine.mp4').read_bytes() == b'user data'
