"""The labelled video dataset bases (COIN, Diving48, Kinetics-400 dense and sparse, SSv2) are one skeleton,
``configs/_base_/datasets/video_classification.py``, filled with each dataset's classes, paths, sampler and flip.

Each base resolves to exactly the skeleton with its row of :data:`DATASETS` filled in (nothing else differs), and
the skeleton's pipelines and loaders are pinned here, so a change to either is a deliberate edit of this file.
"""
import copy
from pathlib import Path

import pytest
from mmengine.config import Config

DATASETS_DIR = Path(__file__).resolve().parents[1] / 'configs' / '_base_' / 'datasets'
SKELETON = DATASETS_DIR / 'video_classification.py'
# What each base fills in: classes, train / val roots, list files, the frame sampler (None: the skeleton's one
# frame per equal segment) and the horizontal flip.
DATASETS = {
    'coin.py': dict(num_classes=180, data_root='data/coin/videos', data_root_val='data/coin/videos',
                    ann_file_train='data/coin/coin_train_list_videos.txt',
                    ann_file_val='data/coin/coin_val_list_videos.txt', sampler=None, flip=True),
    'diving48.py': dict(num_classes=48, data_root='data/diving48/videos', data_root_val='data/diving48/videos',
                        ann_file_train='data/diving48/diving48_train_list_videos.txt',
                        ann_file_val='data/diving48/diving48_val_list_videos.txt', sampler=None, flip=True),
    'k400.py': dict(num_classes=400, data_root='data/kinetics400/videos_train',
                    data_root_val='data/kinetics400/videos_val',
                    ann_file_train='data/kinetics400/kinetics400_train_list_videos.txt',
                    ann_file_val='data/kinetics400/kinetics400_val_list_videos.txt',
                    sampler=dict(type='SampleFrames', frame_interval=4), flip=True),
    'ssv2.py': dict(num_classes=174, data_root='data/sthv2/videos', data_root_val='data/sthv2/videos',
                    ann_file_train='data/sthv2/sthv2_train_list_videos.txt',
                    ann_file_val='data/sthv2/sthv2_val_list_videos.txt', sampler=None, flip=False),
}
# Kinetics-400 with the skeleton's sampling (the paper's K400 probe protocol), filled through k400.py.
DATASETS['k400_sparse_uniform.py'] = dict(DATASETS['k400.py'], sampler=None)


def filled(skeleton: dict, num_classes: int, data_root: str, data_root_val: str, ann_file_train: str,
           ann_file_val: str, sampler: dict, flip: bool) -> dict:
    """The skeleton's resolved dict with one dataset's fields filled in, built step by step."""
    cfg = copy.deepcopy(skeleton)
    cfg.update(num_classes=num_classes, data_root=data_root, data_root_val=data_root_val,
               ann_file_train=ann_file_train, ann_file_val=ann_file_val, ann_file_test=ann_file_val)
    for split in ('train', 'val', 'test'):
        pipeline = cfg[f'{split}_pipeline']
        if sampler is not None:
            pipeline = [dict(step, **sampler) if step['type'] == 'UniformSample' else step for step in pipeline]
        if not flip:
            pipeline = [step for step in pipeline if step['type'] != 'Flip']
        cfg[f'{split}_pipeline'] = pipeline
        dataset = cfg[f'{split}_dataloader']['dataset']
        dataset.update(num_classes=num_classes, ann_file=cfg[f'ann_file_{split}'], pipeline=pipeline,
                       data_prefix=dict(video=data_root if split == 'train' else data_root_val))
    return cfg


@pytest.fixture(scope='module')
def skeleton() -> dict:
    return Config.fromfile(str(SKELETON)).to_dict()


def test_the_skeleton_is_pinned(skeleton):
    sample = dict(type='UniformSample', clip_len=16, num_clips=1)
    assert skeleton['train_pipeline'] == [
        dict(type='DecordInit', io_backend='disk'), sample, dict(type='DecordDecode'),
        dict(type='Resize', scale=(-1, 256)),
        dict(type='RandomResizedCrop', area_range=(0.3, 1.0), aspect_ratio_range=(0.75, 4 / 3)),
        dict(type='Resize', scale=(224, 224), keep_ratio=False), dict(type='Flip', flip_ratio=0.5),
        dict(type='TorchVisionWrapper', op='RandAugment', num_ops=2, magnitude=9),
        dict(type='FormatShape', input_format='NCTHW'), dict(type='PackActionInputs')]
    head = [dict(type='DecordInit', io_backend='disk'), dict(sample, test_mode=True), dict(type='DecordDecode'),
            dict(type='Resize', scale=(-1, 224))]
    tail = [dict(type='FormatShape', input_format='NCTHW'), dict(type='PackActionInputs')]
    assert skeleton['val_pipeline'] == head + [dict(type='CenterCrop', crop_size=224)] + tail
    assert skeleton['test_pipeline'] == head + [dict(type='ThreeCrop', crop_size=224)] + tail
    for split, batch, shuffle in (('train', 16, True), ('val', 16, False), ('test', 4, False)):
        loader = skeleton[f'{split}_dataloader']
        assert (loader['batch_size'], loader['num_workers'], loader['persistent_workers']) == (batch, 8, True)
        assert loader['sampler'] == dict(type='DefaultSampler', shuffle=shuffle)
        assert loader['dataset']['type'] == 'SkipBadClips'
        assert loader['dataset']['wraps'] == 'CheckedVideoDataset'
        assert loader['dataset'].get('test_mode', False) == (split != 'train')
    assert skeleton['val_evaluator'] == skeleton['test_evaluator'] == dict(type='SkipBadClipsMetric',
                                                                           metric=dict(type='AccMetric'))


@pytest.mark.parametrize('name', sorted(DATASETS))
def test_each_dataset_base_is_the_skeleton_filled_in(name, skeleton):
    resolved = Config.fromfile(str(DATASETS_DIR / name)).to_dict()
    resolved.pop('_base_', None)
    assert resolved == filled(skeleton, **DATASETS[name])


def test_every_labelled_video_base_uses_the_skeleton():
    bases = [path.name for path in sorted(DATASETS_DIR.glob('*.py'))
             if "'./video_classification.py'" in path.read_text()]
    assert bases == ['coin.py', 'diving48.py', 'k400.py', 'ssv2.py']
    assert "_base_ = ['./k400.py']" in (DATASETS_DIR / 'k400_sparse_uniform.py').read_text()
