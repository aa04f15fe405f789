"""Stage-1 algorithm: frozen teacher, gradient routing, overfitting and reconstruction."""
import copy

import pytest
import torch

import ivnext  # noqa: F401
from mmaction.registry import MODELS

PATCH, SIZE, FRAMES = 14, 56, 2


def stage1_cfg(head='diffusion', teacher=True, masker='SemanticAwareMasker', mask_ratio=0.75):
    enc_dims = 64
    cfg = dict(
        type='InternVideoNextStage1',
        backbone=dict(type='InternVideoNextViT',
                      arch=dict(embed_dims=enc_dims, num_layers=3, num_heads=4, mlp_ratio=2.0),
                      img_size=SIZE, num_frames=FRAMES, clip_embed_dims=32, clip_num_heads=4, out_type='tokens'),
        masker=dict(type=masker, mask_ratio=mask_ratio),
        neck=dict(type='TransformerPredictor', in_dims=enc_dims, embed_dims=48, depth=1, num_heads=4,
                  grid_size=(FRAMES, SIZE // PATCH, SIZE // PATCH)),
        data_preprocessor=dict(type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], format_shape='NCTHW'),
    )
    if head == 'diffusion':
        cfg['head'] = dict(type='ConditionalDiffusionHead', in_dims=48, target_dims=3 * PATCH * PATCH, width=640,
                           depth=2, num_inference_steps=20)
    elif head == 'linear':
        cfg['head'] = dict(type='LinearPixelHead', in_dims=48, target_dims=3 * PATCH * PATCH)
    if teacher:
        cfg['teacher'] = dict(type='DINOv2Teacher', image_size=SIZE, num_return_layers=2,
                              model_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                                intermediate_size=64, patch_size=PATCH, image_size=SIZE))
        cfg['align_head'] = dict(type='AlignmentHead', in_dims=enc_dims, target_dims=32, num_layers=2)
        cfg['pooled_align_head'] = dict(type='PooledAlignmentHead', in_dims=32, target_dims=32)
    return cfg


def build(cfg):
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def clips(b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 1, 3, FRAMES, SIZE, SIZE, generator=g)


def test_loss_terms_and_gradient_routing():
    model = build(stage1_cfg())
    teacher_before = copy.deepcopy(model.teacher.state_dict())
    # The diffusion head's modulations and output layer start at zero (adaLN-zero): the first step trains the
    # output layer, the second the modulations, and only from the third does the gradient reach the predictor.
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    for _ in range(2):
        sum(v for k, v in model(clips(), mode='loss').items() if k.startswith('loss')).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    losses = model(clips(), mode='loss')
    assert {'loss_diffusion', 'loss_align', 'loss_align_pooled'} <= set(losses)
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    assert torch.isfinite(total)
    total.backward()
    for part in ('backbone', 'neck', 'head', 'align_head', 'pooled_align_head'):
        grads = [p.grad for p in getattr(model, part).parameters() if p.requires_grad]
        assert grads and all(g is not None for g in grads), part
        assert sum(g.abs().sum() for g in grads) > 0, part
    assert all(not p.requires_grad and p.grad is None for p in model.teacher.parameters())
    assert not any(k.startswith('teacher.') for k in model.state_dict())
    for k, v in model.teacher.state_dict().items():
        assert torch.equal(v, teacher_before[k]), k


def test_teacher_stays_frozen_through_optimizer_steps():
    from mmengine.optim import OptimWrapper
    model = build(stage1_cfg())
    before = copy.deepcopy(model.teacher.state_dict())
    opt = OptimWrapper(torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3))
    model.train()
    for _ in range(3):
        model.train_step(dict(inputs=list(clips(2)), data_samples=None), opt)
    assert not model.teacher.training and model.backbone.training
    for k, v in model.teacher.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(id(p) not in {id(q) for g in opt.optimizer.param_groups for q in g['params']}
               for p in model.teacher.parameters())


def test_ablation_configs_build_and_route_losses():
    pixel_only = build(stage1_cfg(head='linear', teacher=False, masker='RandomMasker'))
    assert set(k for k in pixel_only(clips(), mode='loss') if k.startswith('loss')) == {'loss_pixel'}
    align_only = stage1_cfg(teacher=True)
    align_only.pop('head')
    align_only.pop('neck')
    losses = build(align_only)(clips(), mode='loss')
    assert {k for k in losses if k.startswith('loss')} == {'loss_align', 'loss_align_pooled'}
    with pytest.raises(ValueError, match='needs importance'):
        build(stage1_cfg(teacher=False))(clips(), mode='loss')


def test_tiny_model_overfits_one_batch_and_reconstruction_beats_mask_token_baseline():
    cfg = stage1_cfg(head='linear', teacher=False, masker='RandomMasker', mask_ratio=0.5)
    model = build(cfg)
    x = torch.randn(2, 3, FRAMES, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    x = x + torch.linspace(-1, 1, SIZE).view(1, 1, 1, 1, SIZE)  # some spatial structure to predict
    mask = model.masker(2, model.backbone.grid_of(x), generator=torch.Generator().manual_seed(2))
    model.masker.sample = lambda *a, **k: mask  # one fixed batch, one fixed mask
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    first = None
    for _ in range(150):
        loss = model.loss(x)['loss_pixel']
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first / 5
    model.eval()
    out = model.reconstruct(x, mask=mask)
    masked = mask.mask
    err = (out['reconstruction'] - out['target'])[masked].pow(2).mean()
    # Mask-token baseline: the predictor on an encoder that saw nothing but mask tokens = per-position mean.
    baseline = (out['target'][masked] - out['target'][~masked].mean(0)).pow(2).mean()
    assert err < 0.5 * baseline
    # Visible patches are copied through untouched.
    assert torch.equal(out['reconstruction'][~masked], out['target'][~masked])


def test_diffusion_reconstruct_and_predict_shapes():
    model = build(stage1_cfg()).eval()
    samples = model(clips(1), mode='predict')
    assert len(samples) == 1
    n = FRAMES * (SIZE // PATCH)**2
    assert samples[0].reconstruction.shape == (n, 3 * PATCH * PATCH)
    assert samples[0].mask.sum() == n - FRAMES * ((SIZE // PATCH)**2 - int((SIZE // PATCH)**2 * 0.75))
    feats = model(clips(1), mode='tensor')
    assert feats.shape == (1, 4 + n, 64)


def test_teacher_grid_mismatch_is_reported():
    cfg = stage1_cfg()
    cfg['teacher']['image_size'] = 2 * SIZE
    cfg['teacher']['model_config']['image_size'] = 2 * SIZE
    with pytest.raises(ValueError, match='teacher.image_size'):
        build(cfg)(clips(), mode='loss')
