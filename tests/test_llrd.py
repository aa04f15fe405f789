"""Layer-wise lr decay: per-layer lr scales, no weight decay on norms / biases / gamma / CLS, frozen params out."""
import pytest
from mmaction.registry import MODELS
from mmengine.optim import build_optim_wrapper
from mmengine.optim.scheduler import CosineAnnealingLR

from ivnext.engine import get_vit_layer_id

NUM_LAYERS = 3


def build_recognizer(frozen_stages: int = -1):
    return MODELS.build(
        dict(type='Recognizer3D',
             backbone=dict(type='InternVideoNextViT', arch=dict(embed_dims=32, num_layers=NUM_LAYERS, num_heads=4),
                           img_size=28, patch_size=14, num_frames=2, out_type='pooled', clip_embed_dims=32,
                           clip_num_heads=4, frozen_stages=frozen_stages, use_flash_attn=False),
             cls_head=dict(type='LinearProbeHead', num_classes=5, in_channels=32, norm='ln')))


def expected_layer(name: str) -> int:
    """The rule written out by hand for the tiny model."""
    if name.startswith(('backbone.patch_embed.', 'backbone.cls_token', 'backbone.pos_embed')):
        return 0
    for i in range(NUM_LAYERS):
        if name.startswith(f'backbone.blocks.{i}.'):
            return i + 1
    return NUM_LAYERS + 1  # clip projector and head


def group_of(optim_wrapper, param):
    groups = [g for g in optim_wrapper.optimizer.param_groups if any(p is param for p in g['params'])]
    assert len(groups) == 1
    return groups[0]


def test_layer_ids():
    assert get_vit_layer_id('backbone.cls_token', 12) == 0
    assert get_vit_layer_id('backbone.patch_embed.proj.weight', 12) == 0
    assert get_vit_layer_id('backbone.blocks.0.attn.qkv.weight', 12) == 1
    assert get_vit_layer_id('backbone.blocks.11.mlp.fc2.bias', 12) == 12
    assert get_vit_layer_id('backbone.clip_projector.cross_attn.q.weight', 12) == 13
    assert get_vit_layer_id('cls_head.fc_cls.weight', 12) == 13


def test_lr_scales_and_weight_decay_per_parameter():
    model = build_recognizer()
    decay, base_lr, wd = 0.75, 2e-3, 0.05
    optim_wrapper = build_optim_wrapper(
        model, dict(constructor='LayerDecayOptimWrapperConstructor', paramwise_cfg=dict(layer_decay_rate=decay),
                    optimizer=dict(type='AdamW', lr=base_lr, betas=(0.9, 0.999), weight_decay=wd)))
    seen = 0
    for name, param in model.named_parameters():
        group = group_of(optim_wrapper, param)
        layer = expected_layer(name)
        assert group['lr'] == pytest.approx(base_lr * decay**(NUM_LAYERS + 1 - layer)), name
        no_decay = param.ndim == 1 or name.endswith(('.bias', 'cls_token', 'pos_embed'))
        assert group['weight_decay'] == (0.0 if no_decay else wd), name
        seen += 1
    assert seen == sum(len(g['params']) for g in optim_wrapper.optimizer.param_groups)
    # Spot checks of the rule's consequences.
    lr = {n: group_of(optim_wrapper, p)['lr'] for n, p in model.named_parameters()}
    assert lr['cls_head.fc_cls.weight'] == pytest.approx(base_lr)
    assert lr['backbone.blocks.2.attn.qkv.weight'] == pytest.approx(base_lr * decay)
    assert lr['backbone.patch_embed.proj.weight'] == pytest.approx(base_lr * decay**4)
    wd_of = {n: group_of(optim_wrapper, p)['weight_decay'] for n, p in model.named_parameters()}
    assert lr['backbone.pos_embed'] == pytest.approx(base_lr * decay**4)  # learnable table: layer 0
    for name in ('backbone.cls_token', 'backbone.pos_embed', 'backbone.blocks.0.ls1.gamma', 'backbone.blocks.0.norm1.weight',
                 'backbone.blocks.0.attn.q_norm.weight', 'backbone.blocks.1.mlp.fc1.bias', 'cls_head.norm.weight'):
        assert wd_of[name] == 0.0, name
    assert wd_of['backbone.blocks.1.mlp.fc1.weight'] == wd


def test_ratios_survive_mmengine_schedulers():
    model = build_recognizer()
    optim_wrapper = build_optim_wrapper(
        model, dict(constructor='LayerDecayOptimWrapperConstructor', paramwise_cfg=dict(layer_decay_rate=0.5),
                    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05)))
    scheduler = CosineAnnealingLR(optim_wrapper.optimizer, T_max=10, by_epoch=False)
    for _ in range(4):
        optim_wrapper.optimizer.step()
        scheduler.step()
    for group in optim_wrapper.optimizer.param_groups:
        head_lr = optim_wrapper.optimizer.param_groups[-1]['lr']
        assert group['lr'] == pytest.approx(head_lr * group['lr_scale'])
    assert optim_wrapper.optimizer.param_groups[-1]['lr'] < 1e-3


def test_frozen_parameters_and_config_errors():
    model = build_recognizer(frozen_stages=1)
    optim_wrapper = build_optim_wrapper(
        model, dict(constructor='LayerDecayOptimWrapperConstructor', paramwise_cfg=dict(layer_decay_rate=0.75),
                    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05)))
    optimized = {id(p) for g in optim_wrapper.optimizer.param_groups for p in g['params']}
    frozen = [p for n, p in model.named_parameters() if n.startswith(('backbone.patch_embed', 'backbone.blocks.0.'))]
    assert frozen and not any(id(p) in optimized for p in frozen)
    assert {id(p) for p in model.parameters() if p.requires_grad} == optimized
    with pytest.raises(KeyError, match='decay_rate'):
        build_optim_wrapper(model, dict(constructor='LayerDecayOptimWrapperConstructor',
                                        paramwise_cfg=dict(decay_rate=0.75),
                                        optimizer=dict(type='AdamW', lr=1e-3)))
    with pytest.raises(ValueError, match='layer_decay_rate'):
        build_optim_wrapper(model, dict(constructor='LayerDecayOptimWrapperConstructor',
                                        paramwise_cfg=dict(layer_decay_rate=1.5),
                                        optimizer=dict(type='AdamW', lr=1e-3)))
