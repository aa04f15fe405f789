"""tools/convert/export_backbone.py and ivnext.convert.export_backbone: the encoder of any stage's checkpoint -> an
mmaction2 backbone checkpoint."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmaction.registry import MODELS
from mmengine.runner import load_checkpoint

import ivnext.convert.export_backbone as tool
from ivnext.models.backbones import InternVideoNextViT
from ivnext.utils.checkpoint import load_encoder_checkpoint

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / 'tools' / 'convert' / 'export_backbone.py'
ENCODER = dict(arch=dict(embed_dims=32, num_layers=2, num_heads=4), img_size=28, patch_size=14, num_frames=2,
               clip_embed_dims=32, clip_num_heads=4, use_flash_attn=False)


def stage_checkpoint(path: Path, student: InternVideoNextViT, student_prefix: str = 'backbone.') -> Path:
    """An MMEngine-style pretraining checkpoint: student encoder, a frozen teacher encoder, other modules."""
    torch.manual_seed(1)
    teacher = InternVideoNextViT(**ENCODER)
    state = {f'{student_prefix}{k}': v for k, v in student.state_dict().items()}
    state.update({f'teacher.{k}': v for k, v in teacher.state_dict().items()})
    state['predictor.layers.0.weight'] = torch.randn(8, 8)
    state['head.decoder.0.weight'] = torch.randn(8, 8)
    torch.save({'meta': dict(epoch=np.int64(3), seed=0), 'state_dict': state,
                'message_hub': dict(log_scalars=dict(loss=[np.float64(0.5)]))}, path)
    return path


def build_recognizer() -> torch.nn.Module:
    backbone = dict(type='InternVideoNextViT', out_type='featmap', **ENCODER)
    return MODELS.build(
        dict(type='Recognizer3D', backbone=backbone,
             cls_head=dict(type='I3DHead', num_classes=3, in_channels=32)))


def test_export_loads_into_stock_recognizer3d(tmp_path):
    torch.manual_seed(0)
    student = InternVideoNextViT(**ENCODER)
    src = stage_checkpoint(tmp_path / 'epoch_3.pth', student)
    dst = tmp_path / 'exported.pth'
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.run([sys.executable, str(TOOL), str(src), str(dst)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "exported encoder (prefix 'backbone.'" in proc.stdout

    saved = torch.load(dst, map_location='cpu', weights_only=True)  # plain tensors and types only
    assert saved['meta']['source_prefix'] == 'backbone.'
    assert saved['meta']['encoder']['num_layers'] == 2 and saved['meta']['encoder']['embed_dims'] == 32
    assert all(k.startswith('backbone.') for k in saved['state_dict'])

    recognizer = build_recognizer()
    result = recognizer.load_state_dict(saved['state_dict'], strict=False)
    assert [k for k in result.missing_keys if k.startswith('backbone.')] == []
    assert result.unexpected_keys == []
    for key, value in student.state_dict().items():  # the student's weights, not the teacher's
        assert torch.equal(recognizer.backbone.state_dict()[key], value), key

    # mmaction2's own loader (what `load_from` uses) and ivnext's `backbone.pretrained` loader read it too.
    fresh = build_recognizer()
    load_checkpoint(fresh, str(dst), map_location='cpu', strict=False)
    assert torch.equal(fresh.backbone.blocks[1].mlp.fc1.weight, student.blocks[1].mlp.fc1.weight)
    encoder = InternVideoNextViT(**ENCODER)
    missing, unexpected = load_encoder_checkpoint(encoder, str(dst))
    assert missing == [] and unexpected == []
    x = torch.randn(1, 3, 2, 28, 28)
    assert torch.equal(encoder.eval()(x), student.eval()(x))


def test_prefix_choice(tmp_path):
    torch.manual_seed(0)
    student = InternVideoNextViT(**ENCODER)
    src = stage_checkpoint(tmp_path / 'algo.pth', student, student_prefix='student.encoder.')
    with pytest.raises(KeyError, match='--prefix'):  # student.encoder. and teacher. are both encoders
        tool.export_backbone(str(src), str(tmp_path / 'out.pth'))
    meta, dropped = tool.export_backbone(str(src), str(tmp_path / 'out.pth'), prefix='student.encoder.')
    assert meta['source_prefix'] == 'student.encoder.' and dropped == []
    state = torch.load(tmp_path / 'out.pth', weights_only=True)['state_dict']
    assert torch.equal(state['backbone.cls_token'], student.cls_token)
    with pytest.raises(KeyError, match='no encoder keys'):
        tool.export_backbone(str(src), str(tmp_path / 'out.pth'), prefix='backbone.')

    # A bare encoder file (released-weights layout) needs no prefix; foreign extra keys are dropped or fatal.
    bare = dict(student.state_dict(), mask_token=torch.zeros(1, 1, 32))
    torch.save(bare, tmp_path / 'bare.pth')
    meta, dropped = tool.export_backbone(str(tmp_path / 'bare.pth'), str(tmp_path / 'bare_out.pth'))
    assert meta['source_prefix'] == '' and dropped == ['mask_token']
    with pytest.raises(KeyError, match='mask_token'):
        tool.export_backbone(str(tmp_path / 'bare.pth'), str(tmp_path / 'bare_out.pth'), strict=True)


def test_incomplete_encoder_is_refused(tmp_path):
    student = InternVideoNextViT(**ENCODER)
    state = {f'backbone.{k}': v for k, v in student.state_dict().items() if 'blocks.1.attn' not in k}
    torch.save({'state_dict': state}, tmp_path / 'broken.pth')
    with pytest.raises(KeyError, match='blocks.1.attn'):
        tool.export_backbone(str(tmp_path / 'broken.pth'), str(tmp_path / 'out.pth'))
