"""Bad clips (zero-byte, truncated, not a video, missing) are skipped, named and counted; a ceiling stops the job."""
import copy
import itertools
from pathlib import Path

import pytest
from mmaction.registry import DATASETS
from mmengine.runner import Runner

from helpers_video import render_clip, write_mp4

_names = itertools.count()


@pytest.fixture(scope='module')
def bad_files(tmp_path_factory, video_clips):
    """Four bad entries next to the good clips: {kind: file name relative to the clip folder}."""
    root = Path(video_clips.video_dir)
    good = write_mp4(tmp_path_factory.mktemp('whole') / 'whole.mp4', render_clip(0, 20, 64, seed=7)).read_bytes()
    (root / 'bad_zero_bytes.mp4').write_bytes(b'')
    (root / 'bad_truncated.mp4').write_bytes(good[:len(good) * 6 // 10])
    (root / 'bad_text.mp4').write_text('this is not a video\n')
    return dict(zero='bad_zero_bytes.mp4', truncated='bad_truncated.mp4', text='bad_text.mp4',
                missing='bad_missing_file.mp4')


def write_list(path: Path, good_ann: Path, bad: dict) -> Path:
    lines = Path(good_ann).read_text().splitlines() + [f'{name} 1' for name in bad.values()]
    path.write_text('\n'.join(lines) + '\n')
    return path


def wrapped(cfg, ann_file: Path):
    """``cfg`` with its train/test datasets wrapped in SkipBadClips reading ``ann_file``, scores via the metric."""
    cfg = copy.deepcopy(cfg)
    for key in ('train_dataloader', 'test_dataloader'):
        dataset = dict(cfg[key].dataset)
        if dataset['type'] != 'SkipBadClips':
            dataset = dict(type='SkipBadClips', wraps=dataset.pop('type'), **dataset)
        cfg[key].dataset = dict(dataset, ann_file=str(ann_file))
    cfg.test_evaluator = dict(type='SkipBadClipsMetric', metric=dict(type='AccMetric'))
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.randomness = dict(seed=0)  # the same initial weights in every run, so scores can be compared
    cfg.experiment_name = f'bad_clips_{next(_names)}'
    return cfg


def run(cfg, work_dir: Path, mode: str):
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = str(work_dir)
    runner = Runner.from_cfg(cfg)
    return runner, getattr(runner, mode)()


def test_wrapper_names_each_bad_file_and_replaces_it(bad_files, video_clips, tmp_path, tiny_cfg):
    ann = write_list(tmp_path / 'list.txt', video_clips.val_ann_file, bad_files)
    test = wrapped(tiny_cfg, ann).test_dataloader.dataset
    dataset = DATASETS.build(test)
    good = len(Path(video_clips.val_ann_file).read_text().splitlines())
    assert len(dataset) == good + 4
    for offset, name in enumerate(bad_files.values()):
        sample = dataset[good + offset]
        failure = sample['data_samples'].metainfo['bad_clips'][0]  # later bad entries follow it
        assert failure.startswith(str(Path(video_clips.video_dir) / name) + ': ')
        assert sample['data_samples'].metainfo['bad_clip_placeholder']
    assert not dataset[0]['data_samples'].metainfo['bad_clip_placeholder']


def test_training_skips_bad_clips_to_the_end_and_counts_them(bad_files, video_clips, tmp_path, tiny_cfg, capsys):
    ann = write_list(tmp_path / 'train.txt', video_clips.train_ann_file, bad_files)
    cfg = wrapped(tiny_cfg, ann)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=4)  # one pass over the 8 entries
    cfg.default_hooks.bad_clips.max_bad_fraction = 1.0
    cfg.default_hooks.checkpoint.interval = 100
    runner, _ = run(cfg, tmp_path / 'train', 'train')
    assert runner.iter == 4
    assert runner.message_hub.get_scalar('train/bad_clips').current() == 4
    text = capsys.readouterr().out
    for name in bad_files.values():
        assert f'bad clip skipped: {Path(video_clips.video_dir) / name}: ' in text
    assert '4 bad clips were skipped in training' in text


def test_testing_leaves_bad_clips_out_of_the_scores_and_reports_them(bad_files, video_clips, tmp_path, tiny_cfg,
                                                                    capsys):
    clean_cfg = wrapped(tiny_cfg, video_clips.val_ann_file)
    _, clean = run(clean_cfg, tmp_path / 'clean', 'test')
    ann = write_list(tmp_path / 'test.txt', video_clips.val_ann_file, bad_files)
    _, metrics = run(wrapped(tiny_cfg, ann), tmp_path / 'test', 'test')
    assert metrics['acc/bad_clips'] == 4 and metrics['bad_clips/test'] == 4
    assert clean['acc/bad_clips'] == 0
    # The same weights (seeded init) score the same on the readable clips.
    assert metrics['acc/top1'] == clean['acc/top1'] and metrics['acc/mean1'] == clean['acc/mean1']
    assert '4 bad clips left out of the test split' in capsys.readouterr().out


def test_a_split_over_the_ceiling_stops_with_the_list(bad_files, video_clips, tmp_path, tiny_cfg):
    ann = write_list(tmp_path / 'test.txt', video_clips.val_ann_file, bad_files)
    cfg = wrapped(tiny_cfg, ann)
    cfg.default_hooks.bad_clips.update(max_bad_fraction=0.25, min_bad_clips=0)  # 2 of 8
    with pytest.raises(RuntimeError, match='exceed the ceiling of 2') as err:
        run(cfg, tmp_path / 'test', 'test')
    assert 'bad_zero_bytes.mp4' in str(err.value) or 'bad_truncated.mp4' in str(err.value)


def test_an_evaluator_that_would_score_stand_ins_is_named(bad_files, video_clips, tmp_path, tiny_cfg, capsys):
    ann = write_list(tmp_path / 'test.txt', video_clips.val_ann_file, bad_files)
    cfg = wrapped(tiny_cfg, ann)
    cfg.test_evaluator = dict(type='AccMetric')
    _, metrics = run(cfg, tmp_path / 'test', 'test')
    assert metrics['bad_clips/test'] == 4
    assert "wrap it as test_evaluator = dict(type='SkipBadClipsMetric'" in capsys.readouterr().out


def test_dataset_feature_extraction_leaves_bad_clips_out_and_lists_them(bad_files, video_clips, tmp_path, tiny_cfg):
    from ivnext.api import extract_dataset
    ann = write_list(tmp_path / 'test.txt', video_clips.val_ann_file, bad_files)
    cfg = wrapped(tiny_cfg, ann)
    cfg.test_dataloader.batch_size = 3
    result = extract_dataset(cfg, None, mode='avg', split='test', num_workers=0)
    good_lines = Path(video_clips.val_ann_file).read_text().splitlines()
    assert result['features'].shape[0] == len(good_lines) == len(result['labels']) == len(result['filenames'])
    assert [Path(f).name for f in result['filenames']] == [line.split()[0] for line in good_lines]
    assert sorted(Path(entry.split(': ')[0]).name for entry in result['bad_clips']) == sorted(bad_files.values())
