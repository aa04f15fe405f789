"""A training step reads nothing back from the device.

Every module is moved to PyTorch's ``meta`` device, where tensors have shapes but no data: any host read
(``.item()``, ``bool(t)``, ``.tolist()``, data-dependent shapes) raises there, exactly where it would stall a GPU
step with a host-device sync. Forward and backward must go through.
"""
import contextlib
import copy
from pathlib import Path

import pytest
import torch
from mmaction.registry import MODELS
from mmengine.config import Config

import ivnext  # noqa: F401
from ivnext.models.maskers import TokenMask

REPO = Path(__file__).resolve().parents[1]
META = torch.device('meta')


@pytest.fixture
def meta_autocast(monkeypatch):
    """transformers' ModernBERT rotary turns autocast off with ``torch.autocast(device_type=x.device.type)``, which
    has no ``meta`` backend; on ``meta`` that context does nothing (it changes no shape)."""
    real = torch.autocast

    def autocast(device_type, *args, **kwargs):
        return contextlib.nullcontext() if device_type == 'meta' else real(device_type, *args, **kwargs)

    monkeypatch.setattr(torch, 'autocast', autocast)


def _model(config: str, **overrides):
    cfg = copy.deepcopy(Config.fromfile(str(REPO / config)).model)
    cfg.update(overrides)
    torch.manual_seed(0)
    return MODELS.build(cfg).to(META)


def _step(model, clips):
    losses = model.loss(clips)
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    total.backward()
    return losses


def test_host_read_is_caught_on_meta():
    """The probe works: the count-less index path reads the mask back and fails on meta."""
    mask = torch.zeros(2, 8, dtype=torch.bool, device=META)
    with pytest.raises(NotImplementedError, match='meta tensor'):  # .tolist() of a meta tensor: no data to copy
        TokenMask.from_mask(mask)
    assert TokenMask.from_mask(mask, num_masked=0).visible_index.shape == (2, 8)


def test_stage1_step_has_no_host_read(meta_autocast):
    model = _model('configs/demo/tiny_stage1_cpu.py')
    losses = _step(model, torch.randn(2, 1, 3, 4, 56, 56, device=META))
    assert {'loss_diffusion', 'loss_align', 'loss_align_pooled'} <= set(losses)
    assert model.backbone.patch_embed.proj.weight.grad is not None
    assert all(p.grad is not None for p in model.head.parameters() if p.requires_grad)
    assert model.data_preprocessor._non_blocking  # batches reach the GPU without blocking the host


@pytest.mark.parametrize('teacher', [
    dict(type='SigLIP2Teacher', num_return_layers=2,
         model_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           patch_size=14, num_patches=16)),
    dict(type='CLIPTeacher', image_size=56, num_return_layers=2,
         model_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           patch_size=14, image_size=56, projection_dim=32)),
])
def test_stage1_step_with_other_teachers_has_no_host_read(meta_autocast, teacher):
    model = _model('configs/demo/tiny_stage1_cpu.py', teacher=teacher)
    _step(model, torch.randn(2, 3, 4, 56, 56, device=META))


def test_stage2_step_has_no_host_read(meta_autocast):
    """Multi-block masks are drawn on the host and only copied to the device, with their count."""
    model = _model('configs/demo/tiny_stage2_cpu.py')
    losses = _step(model, torch.randn(2, 3, 4, 56, 56, device=META))
    assert 'view1_latent' in losses
    assert all(p.grad is None for p in model.teacher.parameters())
    assert model.backbone.patch_embed.proj.weight.grad is not None


def test_reported_count_is_checked_against_the_mask():
    mask = torch.tensor([[True, False, False, True], [False, True, False, True]])
    assert TokenMask.from_mask(mask, num_masked=2).visible_index.tolist() == [[1, 2], [0, 2]]
    assert TokenMask.from_mask(mask, num_masked=2).masked_index.tolist() == [[0, 3], [1, 3]]
    with pytest.raises(ValueError, match='must hold 3 visible tokens'):
        TokenMask.from_mask(mask, num_masked=1)
