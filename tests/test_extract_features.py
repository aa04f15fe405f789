"""tools/extract_features.py on real mp4s through the tiny config's test pipeline."""
import importlib
from pathlib import Path

import numpy as np
import pytest
import torch
from mmaction.registry import MODELS
from mmengine.registry import init_default_scope

from ivnext.utils.checkpoint import CheckpointMismatchError


@pytest.fixture(scope='module')
def tool():
    """The module behind the script (``tools/...`` only calls its ``main``)."""
    return importlib.import_module('ivnext.cli.extract_features')


@pytest.fixture
def setup(tiny_cfg, tmp_path):
    """The tiny config saved to disk and a recognizer checkpoint of its (clip-projector) encoder."""
    init_default_scope('mmaction')
    tiny_cfg.model.backbone.with_clip_projector = True
    config = tmp_path / 'tiny.py'
    tiny_cfg.dump(str(config))
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg.model)
    ckpt = tmp_path / 'recognizer.pth'
    torch.save({'state_dict': model.state_dict()}, ckpt)
    return config, ckpt, model


def read_labels(ann_file: Path):
    return [int(line.split()[1]) for line in ann_file.read_text().splitlines() if line.strip()]


def test_features_and_labels_match_the_backbone(tool, setup, video_clips, tmp_path):
    config, ckpt, model = setup
    tool.run([str(config), str(ckpt), '--out', str(tmp_path / 'tokens.pt'), '--mode', 'tokens', '--batch-size',
               '3', '--num-workers', '0'])
    tool.run([str(config), str(ckpt), '--out', str(tmp_path / 'avg.npz'), '--mode', 'avg', '--average-views'])
    tool.run([str(config), str(ckpt), '--out', str(tmp_path / 'pooled.npy'), '--mode', 'pooled'])

    labels = read_labels(video_clips.val_ann_file)
    n = len(labels)
    tokens = torch.load(tmp_path / 'tokens.pt', weights_only=True)
    assert tokens['mode'] == 'tokens'
    # Tiny config: 4 frames x 56 px, patch 14 -> 4 x 4 x 4 = 64 patch tokens + 4 CLS, width 64, 1 view.
    assert tokens['features'].shape == (n, 1, 4 + 64, 64)
    assert tokens['labels'].tolist() == labels
    assert [Path(f).name for f in tokens['filenames']] == [
        line.split()[0] for line in video_clips.val_ann_file.read_text().splitlines()]

    avg = np.load(tmp_path / 'avg.npz')
    assert avg['features'].shape == (n, 64)
    assert avg['labels'].tolist() == labels
    np.testing.assert_allclose(avg['features'], tokens['features'][:, 0, 4:].mean(1).numpy(), rtol=1e-4, atol=1e-5)

    pooled = np.load(tmp_path / 'pooled.npy')
    assert pooled.shape == (n, 1, 768)
    assert np.load(tmp_path / 'pooled_labels.npy').tolist() == labels
    # The saved features are the checkpoint's encoder applied to the test-pipeline clips.
    model.backbone.eval()
    with torch.no_grad():
        expected = model.backbone.pool(tokens['features'][:, 0])
    np.testing.assert_allclose(pooled[:, 0], expected.numpy(), rtol=1e-4, atol=1e-5)
    assert np.abs(pooled[0] - pooled[1]).max() > 1e-3  # different clips, different features


def test_weights_really_come_from_the_checkpoint(tool, setup, tmp_path):
    config, ckpt, _ = setup
    tool.run([str(config), str(ckpt), '--out', str(tmp_path / 'a.npy'), '--mode', 'avg'])
    state = torch.load(ckpt, weights_only=True)['state_dict']
    state['backbone.blocks.1.ls2.gamma'] += 1.0
    torch.save({'state_dict': state}, tmp_path / 'shifted.pth')
    tool.run([str(config), str(tmp_path / 'shifted.pth'), '--out', str(tmp_path / 'b.npy'), '--mode', 'avg'])
    a, b = np.load(tmp_path / 'a.npy'), np.load(tmp_path / 'b.npy')
    assert np.abs(a - b).max() > 1e-3

    # An MMEngine training checkpoint (pickled numpy objects besides tensors) gives the same features.
    original = torch.load(ckpt, weights_only=True)['state_dict']
    torch.save({'state_dict': original, 'meta': dict(epoch=np.int64(2)),
                'message_hub': dict(log_scalars=dict(loss=[np.float64(0.3)]))}, tmp_path / 'epoch_2.pth')
    tool.run([str(config), str(tmp_path / 'epoch_2.pth'), '--out', str(tmp_path / 'e.npy'), '--mode', 'avg'])
    np.testing.assert_array_equal(np.load(tmp_path / 'e.npy'), a)

    # A checkpoint without the encoder is refused rather than giving features of random weights.
    torch.save({'state_dict': {'cls_head.fc_cls.weight': torch.zeros(4, 64)}}, tmp_path / 'head_only.pth')
    with pytest.raises(CheckpointMismatchError, match='missing: cls_token'):
        tool.run([str(config), str(tmp_path / 'head_only.pth'), '--out', str(tmp_path / 'c.npy')])
    with pytest.raises(ValueError, match='--out'):
        tool.run([str(config), str(ckpt), '--out', str(tmp_path / 'c.csv'), '--mode', 'avg'])
