"""Inputs a new user may hand over by mistake end in a named error or a skipped, named clip, never in a hang.

FIFOs and folders in video lists, a decoder that stalls, lists with a byte-order mark, tabs or Latin-1 bytes, and
every shipped config reading its data through the checked datasets and the bad-clip wrapper.
"""
import os
import threading
import time
from pathlib import Path

import pytest
from mmaction.registry import DATASETS
from mmengine.config import Config
from mmengine.dataset import BaseDataset
from mmengine.registry import init_default_scope

from config_runner_worker import CONFIGS, shipped_configs

REPO = Path(__file__).resolve().parents[1]
# mmaction2's VideoTextDataset reads a JSON annotation: a malformed file fails in json with its line and column.
CHECKED = ('CheckedVideoDataset', 'KMashVideoDataset', 'VideoTextDataset')
SPLITS = ('train', 'val', 'test')


def run_bounded(func, seconds: float = 30.0):
    """``func()`` in a thread; fails the test (instead of hanging it) when it has not returned in ``seconds``."""
    outcome = {}

    def target():
        try:
            outcome['value'] = func()
        except BaseException as err:  # noqa: BLE001
            outcome['error'] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f'still running after {seconds} s (hangs)'
    if 'error' in outcome:
        raise outcome['error']
    return outcome['value']


def tiny_dataset_cfg(split: str, ann_file: Path, video_dir: str) -> dict:
    cfg = Config.fromfile(str(REPO / 'configs/demo/tiny_recognizer_i3dhead_cpu.py'))
    dataset = cfg[f'{split}_dataloader'].dataset.to_dict()
    dataset.update(ann_file=str(ann_file), data_prefix=dict(video=video_dir))
    return dataset


# ------------------------------------------------------------------------------------------ not regular files
@pytest.mark.skipif(not hasattr(os, 'mkfifo'), reason='FIFOs need a POSIX system')
@pytest.mark.parametrize('split', ['train', 'val'])
def test_fifo_and_folder_in_a_list_are_skipped_and_named(tmp_path, video_clips, split):
    init_default_scope('mmaction')
    good = Path(video_clips.train_ann_file).read_text().splitlines()[0]
    os.mkfifo(tmp_path / 'pipe.mp4')
    (tmp_path / 'folder.mp4').mkdir()
    ann = tmp_path / 'list.txt'
    ann.write_text(f'{tmp_path}/pipe.mp4 0\n{tmp_path}/folder.mp4 1\n{Path(video_clips.video_dir) / good.split()[0]} 0\n')
    dataset = DATASETS.build(dict(tiny_dataset_cfg(split, ann, ''), decode_timeout=20))
    first = run_bounded(lambda: dataset[0])['data_samples'].metainfo['bad_clips'][0]
    assert 'pipe.mp4' in first and 'FIFO' in first and 'not a regular file' in first
    second = run_bounded(lambda: dataset[1])['data_samples'].metainfo['bad_clips'][0]
    assert 'folder.mp4' in second and 'is a folder' in second


@pytest.mark.skipif(not hasattr(os, 'mkfifo'), reason='FIFOs need a POSIX system')
def test_fifo_given_to_the_api_is_named_as_a_fifo(tmp_path):
    from ivnext.video import NotRegularFileError, open_video
    os.mkfifo(tmp_path / 'pipe.mp4')
    with pytest.raises(NotRegularFileError, match=r'pipe\.mp4 is a FIFO \(named pipe\), not a regular file'):
        run_bounded(lambda: open_video(str(tmp_path / 'pipe.mp4')), 10)
    with pytest.raises(NotRegularFileError, match='is a folder'):
        open_video(str(tmp_path))
    with pytest.raises(FileNotFoundError, match='does not exist'):
        open_video(str(tmp_path / 'missing.mp4'))


class _Stalling(BaseDataset):
    """Sample 0 never finishes loading (a stuck decoder); the others load at once."""

    def __init__(self, release: threading.Event):
        self.release = release
        super().__init__(lazy_init=True)
        self.data_list = [dict(filename=f'clip{i}.mp4') for i in range(3)]
        self._fully_initialized = True

    def get_data_info(self, idx):
        return dict(self.data_list[idx])

    def __len__(self):
        return 3

    def __getitem__(self, idx):
        if idx == 0:
            self.release.wait(60)
        return dict(inputs=idx, data_samples=None)


def test_decode_watchdog_skips_a_stalled_clip_and_goes_on():
    from ivnext.datasets import SkipBadClips
    release = threading.Event()
    try:
        dataset = SkipBadClips(_Stalling(release), decode_timeout=0.3)
        dataset.test_mode = True  # the next clip stands in, deterministically
        start = time.monotonic()
        sample = run_bounded(lambda: dataset[0], 20)
        assert sample['inputs'] == 1
        assert time.monotonic() - start < 10
        assert dataset[2]['inputs'] == 2
    finally:
        release.set()


def test_decode_timeout_must_be_positive():
    from ivnext.datasets import SkipBadClips
    with pytest.raises(ValueError, match='decode_timeout must be > 0'):
        SkipBadClips(_Stalling(threading.Event()), decode_timeout=0)


# ------------------------------------------------------------------------------------------ lists
def test_bom_blank_lines_and_tabs_in_a_recognition_list(tmp_path):
    init_default_scope('mmaction')
    ann = tmp_path / 'list.txt'
    ann.write_bytes('\ufeffa.mp4 1\n\n  \nmy clip.mp4\t2\r\nc.mp4\t3\n'.encode('utf-8'))
    dataset = DATASETS.build(dict(type='CheckedVideoDataset', ann_file=str(ann), pipeline=[], num_classes=4,
                                  data_prefix=dict(video='/v')))
    assert [dataset.get_data_info(i)['filename'] for i in range(3)] == ['/v/a.mp4', '/v/my clip.mp4', '/v/c.mp4']
    assert [dataset.get_data_info(i)['label'] for i in range(3)] == [1, 2, 3]


def test_kmash_list_reads_tabs_and_a_bom(tmp_path):
    init_default_scope('mmaction')
    ann = tmp_path / 'kmash.txt'
    ann.write_bytes('\ufeffa.mp4\nb.mp4\t4\nc d.mp4\t4\t1.0\t3.0\t10.0\n'.encode('utf-8'))
    dataset = DATASETS.build(dict(type='KMashVideoDataset', ann_file=str(ann), pipeline=[]))
    infos = [dataset.get_data_info(i) for i in range(3)]
    assert [i['filename'] for i in infos] == ['a.mp4', 'b.mp4', 'c d.mp4']
    assert [i['label'] for i in infos] == [-1, 4, 4]
    assert infos[2]['time_window'] == (1.0, 3.0, 10.0)


@pytest.mark.parametrize('kind', ['CheckedVideoDataset', 'KMashVideoDataset'])
def test_latin1_bytes_are_reported_with_file_and_line(tmp_path, kind):
    init_default_scope('mmaction')
    ann = tmp_path / 'list.txt'
    ann.write_bytes('a.mp4 0\ncaf\u00e9.mp4 1\n'.encode('latin-1'))
    with pytest.raises(ValueError, match=rf"{ann}:2: byte b'\\xe9' at column 4 is not UTF-8"):
        DATASETS.build(dict(type=kind, ann_file=str(ann), pipeline=[], num_classes=2))


def test_demo_recognizer_checks_labels_when_built(tmp_path, video_clips):
    init_default_scope('mmaction')
    ann = tmp_path / 'list.txt'
    ann.write_text('a.mp4 0\nb.mp4 7\n')
    with pytest.raises(ValueError, match=rf'{ann}:2: label 7 is outside \[0, 4\)'):
        DATASETS.build(tiny_dataset_cfg('train', ann, str(video_clips.video_dir)))


def test_extraction_video_list_takes_one_whole_path_per_line(tmp_path):
    from ivnext.api.extraction import list_videos
    listing = tmp_path / 'videos.txt'
    listing.write_bytes('\ufeffmy holiday.mp4\n\n/abs/path with  spaces.mp4\r\n'.encode('utf-8'))
    assert list_videos(str(listing)) == [str(tmp_path / 'my holiday.mp4'), '/abs/path with  spaces.mp4']
    listing.write_bytes(b'ok.mp4\n\xff.mp4\n')
    with pytest.raises(ValueError, match=f'{listing}:2: byte'):
        list_videos(str(listing))


# ------------------------------------------------------------------------------------------ shipped configs
def _datasets_of(cfg: Config):
    for split in SPLITS:
        loader = cfg.get(f'{split}_dataloader')
        if loader and loader.get('dataset'):
            yield split, loader.dataset


@pytest.mark.parametrize('relpath', [p for p in shipped_configs() if not p.startswith('_base_/')])
def test_every_shipped_config_reads_checked_lists_through_skip_bad_clips(relpath):
    cfg = Config.fromfile(str(CONFIGS / relpath))
    for split, dataset in _datasets_of(cfg):
        where = f'{relpath}: {split}_dataloader.dataset'
        assert dataset.get('type') == 'SkipBadClips', f'{where} is not wrapped in SkipBadClips'
        wraps = dataset.get('wraps')
        if wraps == 'ConcatDataset':
            inner = [d.get('type') for d in dataset.datasets]
            assert all(t in CHECKED for t in inner), f'{where}.datasets are {inner}, not {CHECKED}'
        else:
            assert wraps in CHECKED, f'{where} wraps {wraps!r}, not one of {CHECKED}'
        if split != 'train':
            evaluator = cfg.get(f'{split}_evaluator') or {}
            evaluators = evaluator if isinstance(evaluator, list) else [evaluator]
            assert all(e.get('type') == 'SkipBadClipsMetric' for e in evaluators), \
                f'{relpath}: {split}_evaluator does not leave bad clips out ({evaluators})'


def test_the_config_walk_sees_the_demo_configs():
    walked = [p for p in shipped_configs() if p.startswith('demo/')]
    assert {'demo/tiny_recognizer_i3dhead_cpu.py', 'demo/tiny_stage1_cpu.py', 'demo/ivnext_demo_stage1.py',
            'demo/ivnext_demo_probe.py'} <= set(walked)


# ------------------------------------------------------------------------------------------ config-mode extraction
def test_config_mode_extraction_counts_each_bad_clip_once_and_applies_the_ceiling():
    from ivnext.api.dataset_extraction import bad_clip_list, check_bad_clip_ceiling
    files = [f'/v/{i}.mp4' for i in range(12)]
    # Clip 0 is met twice with different reasons (its own sample, then as a stand-in): one bad clip.
    reports = [f'{f}: VideoDecodeError: broken' for f in files] + ['/v/0.mp4: OSError: again']
    bad = bad_clip_list(files, reports)
    assert len(bad) == 12 and bad[0] == '/v/0.mp4: VideoDecodeError: broken'
    cfg = Config(dict(default_hooks=dict(bad_clips=dict(type='BadClipHook', max_bad_fraction=0.01))))
    check_bad_clip_ceiling(cfg, 'test', bad[:10], 12)
    with pytest.raises(ValueError, match=r'12 of the 12 clips of the test split could not be read, more than the '
                       r'ceiling of 10'):
        check_bad_clip_ceiling(cfg, 'test', bad, 12)
