"""Stage-2 algorithm: Stage-1 initialisation, frozen teacher, gradient routing, mask views, EMA ablation."""
import copy
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper

import ivnext  # noqa: F401
from ivnext.hooks import TeacherEMAHook
from ivnext.utils.checkpoint import CheckpointMismatchError
from mmaction.registry import MODELS

REPO = Path(__file__).resolve().parents[1]
STAGE1_CFG = REPO / 'configs' / 'demo' / 'tiny_stage1_cpu.py'
STAGE2_CFG = REPO / 'configs' / 'demo' / 'tiny_stage2_cpu.py'


def model_cfg(path, **overrides):
    cfg = copy.deepcopy(Config.fromfile(str(path)).model)
    cfg.update(overrides)
    return cfg


def build(cfg, seed=0):
    torch.manual_seed(seed)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def clips(b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 3, 4, 56, 56, generator=g)


def stage1_checkpoint(tmp_path, drop=(), extra=None):
    """A tiny Stage-1 model's weights, saved as a plain state dict."""
    stage1 = build(model_cfg(STAGE1_CFG), seed=1)
    state = stage1.state_dict()
    for key in drop:
        state.pop(key)
    state.update(extra or {})
    path = tmp_path / 'stage1.pth'
    torch.save(dict(state_dict=state, meta=dict(iter=4)), path)
    return stage1, path


def test_stage1_weights_initialise_student_teacher_and_predictor(tmp_path):
    stage1, path = stage1_checkpoint(tmp_path)
    model = build(model_cfg(STAGE2_CFG, stage1_checkpoint=str(path)))
    for part, source in (('backbone', stage1.backbone), ('teacher', stage1.backbone), ('neck', stage1.neck)):
        ours = getattr(model, part).state_dict()
        for key, value in source.state_dict().items():
            assert torch.equal(ours[key], value), f'{part}.{key}'


def test_missing_and_unexpected_keys_are_reported_by_name(tmp_path):
    _, path = stage1_checkpoint(tmp_path, drop=('neck.mask_token', 'backbone.cls_token'),
                                extra={'backbone.extra_proj.weight': torch.zeros(2, 2)})
    model = build(model_cfg(STAGE2_CFG))
    with pytest.raises(CheckpointMismatchError) as err:
        model.load_stage1(str(path))
    for key in ('backbone.cls_token', 'neck.mask_token', 'backbone.extra_proj.weight', 'stage1_partial_load'):
        assert key in str(err.value)
    model = build(model_cfg(STAGE2_CFG, stage1_partial_load=True))
    report = model.load_stage1(str(path))
    assert report['backbone']['missing'] == ['cls_token']
    assert report['backbone']['unexpected'] == ['extra_proj.weight']
    assert report['neck']['missing'] == ['mask_token']
    assert report['neck']['unexpected'] == []


def test_teacher_frozen_and_bit_identical_while_student_predictor_head_train():
    model = build(model_cfg(STAGE2_CFG))
    x = clips()
    before = copy.deepcopy(model.teacher.state_dict())
    targets_before = model.teacher_targets(x)
    opt = OptimWrapper(torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3))
    model.train()
    for _ in range(3):
        model.train_step(dict(inputs=list(clips(2, seed=1)), data_samples=None), opt)
    assert not model.teacher.training and model.backbone.training
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert torch.equal(model.teacher_targets(x), targets_before)
    assert all(not p.requires_grad and p.grad is None for p in model.teacher.parameters())
    assert not any(k.startswith('teacher.') for k in model.state_dict())
    # One more step by hand: the student encoder (but its unused clip projector), predictor and head get gradient.
    losses = model(x, mode='loss')
    assert set(losses) == {'loss_latent', 'view0_latent', 'view1_latent'}
    losses['loss_latent'].backward()
    for part in ('backbone', 'neck', 'head'):
        named = [(n, p) for n, p in getattr(model, part).named_parameters()
                 if p.requires_grad and not n.startswith('clip_projector')]
        assert all(p.grad is not None for _, p in named), part
        assert sum(p.grad.abs().sum() for _, p in named) > 0, part
    assert all(p.grad is None for p in model.teacher.parameters())


@pytest.mark.parametrize('view, num_blocks, scale', [(0, 8, 0.15), (1, 2, 0.70)])
def test_mask_views_have_the_configured_block_statistics(view, num_blocks, scale):
    model = build(model_cfg(STAGE2_CFG))
    masker = model.maskers[view]
    grid = (8, 16, 16)
    g = torch.Generator().manual_seed(view)
    fractions = []
    for _ in range(20):
        token_mask, blocks = masker.sample_with_blocks(4, grid, generator=g)
        mask = token_mask.mask
        assert blocks.shape == (4, num_blocks, 6)
        # Full temporal extent, one block size per call with the configured area and aspect ratio.
        assert (blocks[..., 0] == 0).all() and (blocks[..., 3] == grid[0]).all()
        h = (blocks[..., 4] - blocks[..., 1]).unique()
        w = (blocks[..., 5] - blocks[..., 2]).unique()
        assert len(h) == 1 and len(w) == 1
        area = int(16 * 16 * scale)
        assert abs(int(h) * int(w) - area) <= int(h) + int(w)
        assert 0.75 * 0.8 <= int(h) / int(w) <= 1.5 * 1.25
        # Every block is masked; all samples keep the same number of context tokens.
        union = masker.blocks_to_union(blocks, grid)
        assert mask[union].all()
        counts = (~mask).sum(1)
        assert (counts == counts[0]).all() and counts[0] > 0
        fractions.append(union.float().mean().item())
    expected = 1 - (1 - scale)**num_blocks  # union of independent uniform blocks, roughly
    assert abs(sum(fractions) / len(fractions) - expected) < 0.15


def test_ema_ablation_moves_the_teacher_and_the_default_does_not():
    runs = {}
    for momentum in (None, 0.9998):
        model = build(model_cfg(STAGE2_CFG, ema_momentum=momentum))
        opt = OptimWrapper(torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2))
        hook = TeacherEMAHook()
        runner = SimpleNamespace(model=model)
        before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
        model.train()
        model.train_step(dict(inputs=list(clips(2)), data_samples=None), opt)
        student = {k: v.clone() for k, v in model.backbone.state_dict().items()}
        hook.after_train_iter(runner, 0)
        runs[momentum] = (model, before, student)
    model, before, _ = runs[None]
    assert all(torch.equal(v, before[k]) for k, v in model.teacher.state_dict().items())
    model, before, student = runs[0.9998]
    after = model.teacher.state_dict()
    weight = 'blocks.0.attn.qkv.weight'
    assert not torch.equal(after[weight], before[weight])
    expected = before[weight] + (1 - 0.9998) * (student[weight] - before[weight])
    assert torch.allclose(after[weight], expected, atol=1e-7)
    assert all(not p.requires_grad for p in model.teacher.parameters())
    assert any(k.startswith('teacher.') for k in model.state_dict())  # the EMA teacher is saved


def test_invalid_ema_momentum_is_rejected():
    with pytest.raises(ValueError, match='ema_momentum'):
        build(model_cfg(STAGE2_CFG, ema_momentum=1.0))
