"""Clip geometry stated once: changing frames or size on the backbone is one edit, conflicting statements and
clips of another shape stop with both fields named."""
import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

import ivnext  # noqa: F401
from ivnext.models.algorithms.clip_geometry import ClipGeometry, ClipGeometryError
from ivnext.models.layers import sincos_3d
from mmaction.registry import MODELS

REPO = Path(__file__).resolve().parents[1]
STAGE1_TINY = REPO / 'configs' / '_base_' / 'models' / 'ivnext_stage1_tiny.py'
STAGE2_TINY = REPO / 'configs' / '_base_' / 'models' / 'ivnext_stage2_tiny.py'


def model_cfg(path):
    return copy.deepcopy(Config.fromfile(str(path)).model)


def build(cfg):
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(cfg))
    model.init_weights()
    return model


def clips(frames, size, b=2):
    return torch.randn(b, 3, frames, size, size, generator=torch.Generator().manual_seed(0))


def check_grids(model, grid):
    """Every position table is built for ``grid`` itself (sin-cos of that grid, nothing interpolated)."""
    assert model.backbone.grid_size == grid
    assert model.neck.grid_size == grid
    torch.testing.assert_close(model.neck.pos_embed[0, model.neck.num_cls_tokens:],
                               sincos_3d(model.neck.in_dims, grid))


# ------------------------------------------------------------------------------ one edit, two shapes
@pytest.mark.parametrize('field, value, grid', [('num_frames', 8, (8, 4, 4)), ('img_size', 112, (4, 8, 8))])
def test_stage1_builds_and_trains_at_another_clip_shape_by_one_edit(field, value, grid):
    cfg = model_cfg(STAGE1_TINY)
    cfg.backbone[field] = value
    model = build(cfg)
    check_grids(model, grid)
    assert model.align_head.grid_size == grid
    torch.testing.assert_close(model.align_head.clip_pos_embed[0], sincos_3d(cfg.align_head.in_dims, grid))
    assert model.teacher.image_size == grid[1] * model.teacher.patch_size
    frames, size = grid[0], grid[1] * 14
    x = clips(frames, size)
    assert tuple(model.teacher(x)['grid']) == grid  # the teacher's targets sit on the student's grid
    losses = model(x, mode='loss')
    assert {'loss_diffusion', 'loss_align', 'loss_align_pooled'} <= set(losses)
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    assert torch.isfinite(total)
    total.backward()
    assert model.align_head.clip_pos_embed.grad.abs().sum() > 0


@pytest.mark.parametrize('field, value, grid', [('num_frames', 8, (8, 4, 4)), ('img_size', 112, (4, 8, 8))])
def test_stage2_builds_and_trains_at_another_clip_shape_by_one_edit(field, value, grid):
    cfg = model_cfg(STAGE2_TINY)
    cfg.backbone[field] = value
    model = build(cfg)
    check_grids(model, grid)
    assert model.teacher.grid_size == grid  # the frozen target encoder is built from the same backbone config
    losses = model(clips(grid[0], grid[1] * 14), mode='loss')
    assert torch.isfinite(losses['loss_latent'])
    losses['loss_latent'].backward()
    assert model.neck.pos_embed.grad.abs().sum() > 0


def test_real_stage1_config_derives_its_grids_and_teacher_size():
    """The 8-frame ablation config states frames only on the backbone; every grid and the teacher follow."""
    cfg = model_cfg(REPO / 'configs' / 'pretrain' / 'ivnext-stage1_vit-b-p14_siglip2_8x224_30e_k710.py')
    tiny_dims = 32
    cfg.backbone.update(arch=dict(embed_dims=tiny_dims, num_layers=2, num_heads=2), clip_embed_dims=16,
                        clip_num_heads=2, use_flash_attn=False)
    cfg.teacher.update(pretrained=None, dtype='float32', num_return_layers=2, return_interval=1.0,
                       model_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                         num_attention_heads=2, patch_size=16, num_patches=256))
    cfg.neck.update(in_dims=tiny_dims, num_layers=1, pretrained=None,
                    model_config=dict(hidden_size=16, intermediate_size=32, num_attention_heads=2,
                                      num_hidden_layers=1))
    cfg.head.update(in_dims=16, width=588, depth=1)  # at least the 588 values of a patch
    cfg.align_head.update(in_dims=tiny_dims, target_dims=16, num_layers=2)
    cfg.pooled_align_head.update(in_dims=16, target_dims=16)
    model = MODELS.build(cfg)
    assert model.neck.grid_size == model.align_head.grid_size == (8, 16, 16)
    assert model.teacher.image_size == 256  # 224 / 14 = 16 tokens per side x SigLIP2 patch 16


# ------------------------------------------------------------------------------ conflicting statements
def test_conflicting_predictor_grid_names_both_fields():
    cfg = model_cfg(STAGE1_TINY)
    cfg.backbone.update(num_frames=8, img_size=112)
    cfg.neck.grid_size = (4, 8, 8)
    with pytest.raises(ClipGeometryError) as err:
        MODELS.build(cfg)
    assert str(err.value) == ('model.neck.grid_size=(4,8,8) disagrees with model.backbone num_frames=8 / '
                              'img_size=112 / patch_size=14 -> (8,8,8); drop neck.grid_size or fix it')


def test_conflicting_stage2_predictor_grid_is_stopped():
    cfg = model_cfg(STAGE2_TINY)
    cfg.backbone.num_frames = 8
    cfg.neck.grid_size = (4, 4, 4)
    with pytest.raises(ClipGeometryError, match=r'model\.neck\.grid_size=\(4,4,4\) disagrees with model\.backbone '
                       r'num_frames=8 .* -> \(8,4,4\)'):
        MODELS.build(cfg)


def test_conflicting_alignment_grid_is_stopped_and_a_consistent_one_accepted():
    cfg = model_cfg(STAGE1_TINY)
    cfg.align_head.grid_size = (8, 4, 4)
    with pytest.raises(ClipGeometryError, match=r'model\.align_head\.grid_size=\(8,4,4\) .* -> \(4,4,4\); '
                       r'drop align_head\.grid_size'):
        MODELS.build(cfg)
    cfg.align_head.grid_size = (4, 4, 4)
    cfg.neck.grid_size = (4, 4, 4)
    assert MODELS.build(cfg).align_head.grid_size == (4, 4, 4)


def test_alignment_head_without_table_stays_without_one():
    cfg = model_cfg(STAGE1_TINY)
    cfg.align_head.with_pos_embed = False
    model = MODELS.build(cfg)
    assert model.align_head.grid_size is None and model.align_head.clip_pos_embed is None


@pytest.mark.parametrize('wrapped', [False, True])
def test_conflicting_teacher_size_names_both_fields(wrapped):
    cfg = model_cfg(STAGE1_TINY)
    cfg.teacher.image_size = 112  # 8x8 teacher patches for a 4x4 student grid
    name = 'model.teacher'
    if wrapped:
        cfg.teacher = dict(type='CachedTeacher', teacher=cfg.teacher)
        name = 'model.teacher.teacher'
    with pytest.raises(ClipGeometryError) as err:
        MODELS.build(cfg)
    message = str(err.value)
    assert message.startswith(f'{name}.image_size=112 disagrees with model.backbone num_frames=4 / img_size=56')
    assert 'image_size = 4 x 14 = 56' in message and 'image_size or fix it' in message


def test_stated_teacher_size_that_agrees_is_kept_and_a_wrapped_teacher_is_sized():
    cfg = model_cfg(STAGE1_TINY)
    cfg.backbone.img_size = 112
    cfg.teacher = dict(type='CachedTeacher', teacher=cfg.teacher)
    model = MODELS.build(copy.deepcopy(cfg))
    assert model.teacher.teacher.image_size == 112  # set on the wrapped teacher, which does the resizing
    cfg.teacher.teacher.image_size = 112
    assert MODELS.build(cfg).teacher.teacher.image_size == 112


def test_teacher_with_tubelets_is_stopped():
    cfg = model_cfg(STAGE1_TINY)
    cfg.backbone.tubelet_size = 2
    with pytest.raises(ClipGeometryError, match='tubelet_size=2'):
        MODELS.build(cfg)


def test_alignment_head_table_flags():
    with pytest.raises(ValueError, match='needs grid_size'):
        MODELS.build(dict(type='AlignmentHead', in_dims=8, target_dims=8, num_layers=1, with_pos_embed=True))
    with pytest.raises(ValueError, match='with_pos_embed=False'):
        MODELS.build(dict(type='AlignmentHead', in_dims=8, target_dims=8, num_layers=1, grid_size=(1, 2, 2),
                          with_pos_embed=False))


def test_teacher_size_must_be_a_multiple_of_its_patch():
    teacher = MODELS.build(model_cfg(STAGE1_TINY).teacher)
    with pytest.raises(ValueError, match='multiple of the teacher patch size 14'):
        teacher.set_image_size(57)


# ------------------------------------------------------------------------------ run time
@pytest.mark.parametrize('stage', [STAGE1_TINY, STAGE2_TINY], ids=['stage1', 'stage2'])
@pytest.mark.parametrize('frames, size', [(8, 56), (4, 112)])
def test_clips_of_another_shape_name_backbone_and_pipeline_fields(stage, frames, size):
    model = MODELS.build(model_cfg(stage))
    with pytest.raises(ClipGeometryError) as err:
        model(clips(frames, size), mode='loss')
    message = str(err.value)
    assert f'clips of {frames} frames at {size}x{size} px' in message
    assert 'model.backbone.num_frames=4 / img_size=56' in message
    assert 'clip_len' in message and 'crop' in message


def test_geometry_of_a_tubelet_encoder():
    geometry = ClipGeometry(num_frames=16, img_size=224, patch_size=14, tubelet_size=2)
    assert geometry.grid == (8, 16, 16)
    assert 'tubelet_size=2 -> (8,16,16)' in geometry.describe()
    encoder = MODELS.build(dict(type='InternVideoNextViT', arch=dict(embed_dims=16, num_layers=1, num_heads=2),
                                img_size=28, num_frames=4, tubelet_size=2, use_flash_attn=False))
    assert ClipGeometry.of(encoder) == ClipGeometry(4, 28, 14, 2)


def test_pixel_head_width_follows_the_patch():
    cfg = model_cfg(STAGE1_TINY)
    cfg.head.pop('target_dims')
    assert MODELS.build(copy.deepcopy(cfg)).head.target_dims == 3 * 14 * 14
    cfg.backbone.patch_size = 7  # an 8x8 grid at 56 px
    model = MODELS.build(copy.deepcopy(cfg))
    assert model.head.target_dims == 3 * 7 * 7 and model.neck.grid_size == (4, 8, 8)
    cfg.head.target_dims = 588
    with pytest.raises(ClipGeometryError) as err:
        MODELS.build(cfg)
    assert str(err.value) == ('model.head.target_dims=588 disagrees with model.backbone patch_size=7 with 3 channels '
                              '-> 147 values per patch; drop head.target_dims or fix it')
