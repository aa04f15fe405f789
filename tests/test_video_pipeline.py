"""mmaction2's VideoDataset + decord pipeline on the shared mp4 fixtures."""
import numpy as np
import pytest
import torch
from mmaction.registry import DATASETS
from mmaction.structures import ActionDataSample
from mmengine.config import Config

from helpers_video import CLASS_STYLES, render_clip


def _dataset(cfg: Config, split: str):
    return DATASETS.build(cfg[f'{split}_dataloader'].dataset)


def test_fixture_clips_decode_to_the_rendered_frames(video_clips):
    import decord
    assert len(video_clips.files) == 8 and sorted(set(video_clips.labels)) == [0, 1, 2, 3]
    reader = decord.VideoReader(str(video_clips.files[0]))
    assert len(reader) == video_clips.num_frames
    frames = reader.get_batch(list(range(len(reader)))).asnumpy()
    expected = render_clip(video_clips.labels[0], video_clips.num_frames, video_clips.size, seed=0)
    assert frames.shape == expected.shape
    # Lossy H.264: close to the rendered frames, and the square is where it was drawn.
    assert np.abs(frames.astype(np.int16) - expected).mean() < 6
    colour = np.array(CLASS_STYLES[video_clips.labels[0]][0])
    square = np.all(np.abs(expected[-1].astype(np.int16) - colour) == 0, axis=-1)
    assert np.abs(frames[-1][square].mean(0) - colour).max() < 25


def test_annotation_lists_cover_every_class(video_clips):
    for ann_file in (video_clips.train_ann_file, video_clips.val_ann_file):
        lines = ann_file.read_text().split('\n')
        labels = sorted(int(line.split()[1]) for line in lines if line)
        assert labels == list(range(video_clips.num_classes))
    assert len(video_clips.ann_file.read_text().split()) == 2 * len(video_clips.files)


@pytest.mark.parametrize('split', ['train', 'val'])
def test_video_dataset_yields_packed_nCTHW_clips(tiny_cfg, video_clips, split):
    dataset = _dataset(tiny_cfg, split)
    assert len(dataset) == 4
    labels = []
    for index in range(len(dataset)):
        sample = dataset[index]
        inputs, data_sample = sample['inputs'], sample['data_samples']
        # FormatShape NCTHW: (num_clips * num_crops, C, clip_len, H, W) uint8 before the data preprocessor.
        assert inputs.shape == (1, 3, 4, 56, 56)
        assert inputs.dtype == torch.uint8
        assert isinstance(data_sample, ActionDataSample)
        labels.append(int(data_sample.gt_label))
        assert data_sample.metainfo['img_shape'] == (56, 56)
        assert dataset.get_data_info(index)['filename'].startswith(str(video_clips.video_dir))
    assert sorted(labels) == [0, 1, 2, 3]


def test_val_sampling_is_deterministic_and_frames_move(tiny_cfg):
    dataset = _dataset(tiny_cfg, 'val')
    first, again = dataset[0], dataset[0]
    assert torch.equal(first['inputs'], again['inputs'])
    clip = first['inputs'][0].float()  # (C, T, H, W)
    # The square moves: consecutive sampled frames differ, and not only by codec noise.
    assert (clip[:, 1:] - clip[:, :-1]).abs().amax() > 100


def test_preprocessed_batch_is_normalised_float(tiny_cfg):
    from mmaction.registry import MODELS
    from mmengine.dataset import pseudo_collate
    dataset = _dataset(tiny_cfg, 'train')
    preprocessor = MODELS.build(tiny_cfg.model.data_preprocessor)
    batch = preprocessor(pseudo_collate([dataset[0], dataset[1]]), training=True)
    # (batch, num_clips * num_crops, C, T, H, W); Recognizer3D folds the second axis into the batch.
    assert batch['inputs'].shape == (2, 1, 3, 4, 56, 56)
    assert batch['inputs'].dtype == torch.float32
    # Grey background (~110-130) normalised with the ImageNet mean/std lands near zero.
    assert batch['inputs'].median().abs() < 0.5
