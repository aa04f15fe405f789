"""A stock mmaction2 Recognizer3D with the InternVideo-Next ViT backbone and mmaction2's I3DHead."""
import copy

import pytest
import torch
from mmaction.registry import DATASETS, MODELS
from mmaction.structures import ActionDataSample
from mmengine.dataset import pseudo_collate

from ivnext.models.backbones import InternVideoNextViT


def _batch(cfg, split: str, indices=(0, 1, 2, 3)):
    dataset = DATASETS.build(cfg[f'{split}_dataloader'].dataset)
    return pseudo_collate([dataset[i] for i in indices])


@pytest.fixture
def recognizer(tiny_cfg):
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg.model)
    model.init_weights()
    return model


def test_builds_from_config_with_registered_backbone(recognizer, tiny_cfg):
    assert type(recognizer).__name__ == 'Recognizer3D'
    assert isinstance(recognizer.backbone, InternVideoNextViT)
    assert type(recognizer.cls_head).__name__ == 'I3DHead'
    assert recognizer.backbone.embed_dims == tiny_cfg.model.cls_head.in_channels
    assert recognizer.backbone.grid_size == (4, 4, 4)


def test_tensor_mode_returns_backbone_featmap(recognizer, tiny_cfg):
    data = recognizer.data_preprocessor(_batch(tiny_cfg, 'train'), training=False)
    recognizer.eval()
    with torch.no_grad():
        feats = recognizer(data['inputs'], data['data_samples'], mode='tensor')
        direct = recognizer.backbone(data['inputs'][:, 0])
    # (B * num_clips, C, T', H', W'): the featmap I3DHead pools.
    assert feats.shape == (4, 64, 4, 4, 4)
    torch.testing.assert_close(feats, direct)
    # Different clips give different features (the backbone is not constant in its input).
    assert (feats[0] - feats[1]).abs().max() > 1e-3


def test_loss_mode_trains_backbone_and_head(recognizer, tiny_cfg):
    data = recognizer.data_preprocessor(_batch(tiny_cfg, 'train'), training=True)
    recognizer.train()
    losses = recognizer(data['inputs'], data['data_samples'], mode='loss')
    assert set(losses) >= {'loss_cls', 'top1_acc'}
    assert torch.isfinite(losses['loss_cls']) and losses['loss_cls'] > 0
    losses['loss_cls'].backward()
    for name in ('backbone.patch_embed.proj.weight', 'backbone.cls_token', 'backbone.blocks.1.attn.qkv.weight',
                 'cls_head.fc_cls.weight'):
        grad = dict(recognizer.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_few_steps_fit_a_fixed_batch(recognizer, tiny_cfg):
    data = recognizer.data_preprocessor(_batch(tiny_cfg, 'val'), training=False)
    optimizer = torch.optim.AdamW(recognizer.parameters(), lr=3e-3)
    recognizer.train()
    history = []
    for _ in range(15):
        loss = recognizer(data['inputs'], data['data_samples'], mode='loss')['loss_cls']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    assert history[-1] < 0.5 * history[0]


def test_predict_mode_returns_action_data_samples(recognizer, tiny_cfg, video_clips):
    data = recognizer.data_preprocessor(_batch(tiny_cfg, 'val'), training=False)
    recognizer.eval()
    with torch.no_grad():
        results = recognizer(data['inputs'], data['data_samples'], mode='predict')
    assert len(results) == 4
    for sample in results:
        assert isinstance(sample, ActionDataSample)
        assert sample.pred_score.shape == (video_clips.num_classes,)
        # average_clips='prob': a probability vector.
        torch.testing.assert_close(sample.pred_score.sum(), torch.tensor(1.0))
        assert 'gt_label' in sample and 'pred_label' in sample
        assert int(sample.pred_label) == int(sample.pred_score.argmax())


def test_predict_averages_several_clips_per_video(recognizer, tiny_cfg):
    cfg = copy.deepcopy(tiny_cfg)
    sampler = cfg.test_dataloader.dataset.pipeline[1]
    assert sampler.type == 'SampleFrames'
    sampler.num_clips = 3
    batch = _batch(cfg, 'test', indices=(0, 1))
    data = recognizer.data_preprocessor(batch, training=False)
    assert data['inputs'].shape == (2, 3, 3, 4, 56, 56)
    recognizer.eval()
    with torch.no_grad():
        results = recognizer(data['inputs'], data['data_samples'], mode='predict')
        per_clip = recognizer.cls_head(recognizer.backbone(data['inputs'][0])).softmax(-1)
    assert len(results) == 2
    torch.testing.assert_close(results[0].pred_score, per_clip.mean(0))
