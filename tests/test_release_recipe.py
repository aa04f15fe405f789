"""The release's recipe details: weight-decay exemptions of every recipe, learnable position tables and their
Stage-2 interpolation, and the Stage-2 context cap in raster order."""
import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

import ivnext  # noqa: F401
from ivnext.engine.optimizers.trainable_constructor import exempt_from_weight_decay
from ivnext.models.layers import interpolate_pos_embed, sincos_3d
from ivnext.models.maskers import MultiBlockMasker3D
from mmaction.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS

REPO = Path(__file__).resolve().parents[1]
PRETRAIN = sorted((REPO / 'configs' / 'pretrain').glob('*.py'))
PROBE = sorted((REPO / 'configs' / 'probe').glob('*.py'))
DEMO = [REPO / 'configs' / 'demo' / n for n in ('ivnext_demo_stage1.py', 'ivnext_demo_stage2.py',
                                                'ivnext_demo_stage1_pixel_linear.py', 'ivnext_demo_probe.py',
                                                'tiny_stage1_cpu.py', 'tiny_stage2_cpu.py')]


def tiny_model(kind: str, sweep: bool = False) -> torch.nn.Module:
    """A small model with the parameter names of each recipe kind (the groups depend on names and shapes); a probe
    sweep's model has two attentive heads with weight decays 0.05 and 0.1."""
    if kind == 'stage1':
        cfg = Config.fromfile(str(REPO / 'configs' / 'demo' / 'tiny_stage1_cpu.py')).model
    elif kind == 'stage2':
        cfg = Config.fromfile(str(REPO / 'configs' / 'demo' / 'tiny_stage2_cpu.py')).model
    else:
        cfg = dict(type='FrozenBackboneRecognizer3D',
                   backbone=dict(type='InternVideoNextViT', arch=dict(embed_dims=32, num_layers=2, num_heads=2),
                                 img_size=28, num_frames=2, out_type='tokens', use_flash_attn=False,
                                 with_clip_projector=False),
                   cls_head=dict(type='AttentiveProbeHead', num_classes=3, in_channels=32, num_heads=2))
        if sweep:
            cfg['cls_head'] = dict(type='ProbeSweepHead', num_classes=3, in_channels=32,
                                   head=dict(type='AttentiveProbeHead', num_heads=2),
                                   settings=[dict(lr=1e-3, weight_decay=0.05), dict(lr=1e-3, weight_decay=0.1)])
    torch.manual_seed(0)
    return MODELS.build(copy.deepcopy(cfg))


def groups_of(cfg: Config, model: torch.nn.Module):
    wrapper_cfg = copy.deepcopy(cfg.optim_wrapper)
    constructor = wrapper_cfg.pop('constructor', 'DefaultOptimWrapperConstructor')
    paramwise = wrapper_cfg.pop('paramwise_cfg', None)
    if wrapper_cfg.get('type') in ('DeepSpeedOptimWrapper', 'BFloat16OptimWrapper'):
        wrapper_cfg['type'] = 'OptimWrapper'  # the groups are the constructor's; the wrapper type is irrelevant
    builder = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(type=constructor, optim_wrapper_cfg=wrapper_cfg,
                                                    paramwise_cfg=paramwise))
    return builder(model).optimizer.param_groups, float(wrapper_cfg['optimizer']['weight_decay'])


@pytest.mark.parametrize('path', PRETRAIN + PROBE + DEMO, ids=lambda p: p.name)
def test_recipe_groups_exempt_1d_params_tables_and_tokens(path):
    cfg = Config.fromfile(str(path))
    kind = 'probe' if 'probe' in path.name else ('stage2' if 'stage2' in path.name else 'stage1')
    sweep = cfg.model.get('cls_head', {}).get('type') == 'ProbeSweepHead'
    model = tiny_model(kind, sweep)
    groups, wd = groups_of(cfg, model)
    names = {id(p): n for n, p in model.named_parameters()}
    tables = (cfg.optim_wrapper.get('paramwise_cfg') or {}).get('no_decay_names')
    if tables is None:
        tables = ('pos_embed', 'cls_token', 'mask_token', 'query_tokens', 'clip_pos_embed')
    seen, decayed = set(), set()
    for group in groups:
        for p in group['params']:
            name = names[id(p)]
            seen.add(name)
            exempt = p.ndim <= 1 or name in tables or name.rsplit('.', 1)[-1] in tables
            if not exempt:
                decayed.add(name)
            decay = model.cls_head.settings[group['head']]['weight_decay'] if sweep else wd  # a sweep head's own
            assert group['weight_decay'] == (0.0 if exempt else decay), (name, group['weight_decay'])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert seen == trainable
    # The kinds the release names are all present and exempt in the model under test.
    must = {'stage1': ('blocks.0.norm1.weight', 'attn.q_norm.weight', 'ls1.gamma', 'backbone.pos_embed',
                       'backbone.cls_token', 'neck.mask_token', 'neck.pos_embed', 'clip_pos_embed'),
            'stage2': ('blocks.0.norm1.weight', 'ls1.gamma', 'backbone.pos_embed', 'neck.mask_token'),
            'probe': ('query_tokens', 'fc_cls.bias')}[kind]
    for fragment in must:
        assert any(fragment in n for n in seen), fragment
    if path.parent.name == 'pretrain':  # the release decays the predictor's position table and mask token
        assert {'neck.pos_embed', 'neck.mask_token'} <= decayed, sorted(decayed)[:10]


def test_exemption_rule():
    w2 = torch.nn.Parameter(torch.zeros(3, 4))
    assert not exempt_from_weight_decay('backbone.blocks.0.attn.qkv.weight', w2)
    assert exempt_from_weight_decay('backbone.pos_embed', torch.nn.Parameter(torch.zeros(1, 5, 4)))
    assert exempt_from_weight_decay('backbone.blocks.0.ls1.gamma', torch.nn.Parameter(torch.zeros(4)))
    assert exempt_from_weight_decay('x.bias', w2)
    # Dotted names match the full name (wrapper components ignored): the release's pretraining list.
    table = torch.nn.Parameter(torch.zeros(1, 5, 4))
    release = ('backbone.pos_embed', 'backbone.cls_token', 'align_head.clip_pos_embed')
    assert exempt_from_weight_decay('backbone.pos_embed', table, release)
    assert exempt_from_weight_decay('_fsdp_wrapped_module.backbone.pos_embed', table, release)
    assert not exempt_from_weight_decay('neck.pos_embed', table, release)
    assert not exempt_from_weight_decay('neck.mask_token', table, release)


# ------------------------------------------------------------------------------------ position tables
def test_predictor_table_learnable_with_cls_rows_and_stage2_interpolates_it(tmp_path):
    cfg1 = Config.fromfile(str(REPO / 'configs' / 'demo' / 'tiny_stage1_cpu.py')).model
    torch.manual_seed(0)
    stage1 = MODELS.build(copy.deepcopy(cfg1))
    neck = stage1.neck
    assert neck.pos_embed.requires_grad and neck.pos_embed.shape[1] == neck.num_cls_tokens + 4 * 4 * 4
    assert neck.pos_embed[0, :neck.num_cls_tokens].abs().sum() == 0
    torch.testing.assert_close(neck.pos_embed[0, neck.num_cls_tokens:], sincos_3d(neck.in_dims, neck.grid_size))
    with torch.no_grad():  # a "trained" table, to see that Stage 2 keeps it rather than rebuilding it
        neck.pos_embed.add_(torch.randn_like(neck.pos_embed))
    ckpt = tmp_path / 'stage1.pth'
    torch.save(dict(state_dict=stage1.state_dict()), ckpt)

    cfg2 = Config.fromfile(str(REPO / 'configs' / 'demo' / 'tiny_stage2_cpu.py')).model
    cfg2.backbone.num_frames = 8
    cfg2.neck.grid_size = (8, 4, 4)
    cfg2.stage1_checkpoint = str(ckpt)
    stage2 = MODELS.build(copy.deepcopy(cfg2))
    stage2.init_weights()
    table = stage2.neck.pos_embed
    assert table.shape[1] == 4 + 8 * 16
    torch.testing.assert_close(table[:, :4], neck.pos_embed[:, :4])
    torch.testing.assert_close(table[:, 4:], interpolate_pos_embed(neck.pos_embed[:, 4:].detach(), (4, 4, 4),
                                                                   (8, 4, 4)))
    # The encoder table is interpolated the same way and stays learnable.
    assert stage2.backbone.pos_embed.requires_grad and stage2.backbone.pos_embed.shape[1] == 4 + 8 * 16


def test_alignment_positions_gathered_at_visible_tokens():
    head = MODELS.build(dict(type='AlignmentHead', in_dims=16, target_dims=8, num_layers=1, grid_size=(2, 2, 2)))
    x = torch.zeros(1, 3, 16)
    index = torch.tensor([[0, 5, 7]])
    placed = head.add_positions(x, index, (2, 2, 2))
    torch.testing.assert_close(placed[0], head.clip_pos_embed[0, [0, 5, 7]])
    loss = head.loss([torch.randn(1, 3, 16)], [torch.nn.functional.normalize(torch.randn(1, 3, 8), dim=-1)],
                     index, (2, 2, 2))['loss_align']
    loss.backward()
    assert head.clip_pos_embed.grad[0, [0, 5, 7]].abs().sum() > 0
    assert head.clip_pos_embed.grad[0, [1, 2, 3, 4, 6]].abs().sum() == 0
    with pytest.raises(ValueError, match='visible_index'):
        head([torch.randn(1, 3, 16)])


# ------------------------------------------------------------------------------------ Stage-2 context cap
def context_stats(order: str, grid=(8, 8, 8), ratio=400 / 2048, draws=40):
    masker = MultiBlockMasker3D(num_blocks=8, spatial_scale=(0.15, 0.15), max_context_ratio=ratio, context_order=order)
    gen = torch.Generator().manual_seed(0)
    n = grid[0] * grid[1] * grid[2]
    kept_t, dropped_t, counts = [], [], []
    for _ in range(draws):
        token_mask, blocks = masker.sample_with_blocks(4, grid, generator=gen)
        mask, num_masked = token_mask.mask, token_mask.num_masked
        union = masker.blocks_to_union(blocks, grid)
        visible = ~mask
        assert not (visible & union).any()  # context never inside a block
        dropped = ~union & mask  # context tokens removed by the equalisation / the cap
        assert (visible.sum(1) == n - num_masked).all()
        counts.append(n - num_masked)
        pos = torch.arange(n).expand_as(mask)
        if order == 'raster':
            for b in range(4):
                if dropped[b].any():  # every kept context token precedes every dropped one
                    assert pos[b][visible[b]].max() < pos[b][dropped[b]].min()
        frame = pos // (grid[1] * grid[2])
        kept_t.append(frame[visible].float())
        dropped_t.append(frame[dropped].float())
    return torch.cat(kept_t), torch.cat(dropped_t), counts


def test_context_capped_at_release_ratio_and_kept_in_raster_order():
    kept, dropped, counts = context_stats('raster')
    assert max(counts) <= int(400 / 2048 * 512) and min(counts) >= 1
    # Earliest tokens kept: the context sits in the first frames, the late frames lose theirs (future prediction).
    assert kept.mean() < 2.5 and dropped.mean() > 4.0
    assert (kept >= 6).float().mean() < 0.05


def test_random_context_ablation_spreads_over_time():
    kept, dropped, counts = context_stats('random')
    assert max(counts) <= int(400 / 2048 * 512)
    assert 3.0 < kept.mean() < 4.0 and 3.0 < dropped.mean() < 4.0  # uniform over 8 frames: mean 3.5


def test_context_equalised_to_batch_minimum_without_cap():
    masker = MultiBlockMasker3D(num_blocks=2, spatial_scale=(0.3, 0.3), context_order='raster')
    gen = torch.Generator().manual_seed(1)
    token_mask, blocks = masker.sample_with_blocks(6, (4, 8, 8), generator=gen)
    mask, num_masked = token_mask.mask, token_mask.num_masked
    union = masker.blocks_to_union(blocks, (4, 8, 8))
    assert int((~mask).sum(1).min()) == int((~union).sum(1).min())
    assert ((~mask).sum(1) == 256 - num_masked).all()
    with pytest.raises(ValueError, match='context_order'):
        MultiBlockMasker3D(context_order='last')
    with pytest.raises(ValueError, match='max_context_ratio'):
        MultiBlockMasker3D(max_context_ratio=1.5)
