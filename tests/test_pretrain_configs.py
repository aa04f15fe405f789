"""Stage-1 / Stage-2 configs: every config loads, carries the paper's values, and the tiny ones build and run."""
import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

import ivnext  # noqa: F401
import ivnext.datasets  # noqa: F401
from ivnext.models.algorithms.clip_geometry import ClipGeometry
from ivnext.models.teachers import default_return_layers
from mmaction.registry import DATASETS, MODELS

REPO = Path(__file__).resolve().parents[1]
PRETRAIN = sorted((REPO / 'configs' / 'pretrain').glob('*.py'))
TINY = [REPO / 'configs' / 'demo' / 'tiny_stage1_cpu.py', REPO / 'configs' / 'demo' / 'tiny_stage2_cpu.py']
ENCODER_DIMS = {'base': 768, 'large': 1024}
PREDICTOR_DIMS = {'ModernBertPredictor': 1024}  # ModernBERT-Large hidden size


def load(name):
    return Config.fromfile(str(REPO / 'configs' / 'pretrain' / name))


def pipelines(cfg):
    dataset = cfg.train_dataloader.dataset
    concat = 'ConcatDataset' in (dataset.type, dataset.get('wraps'))  # bare or inside SkipBadClips
    return [d.pipeline for d in dataset.datasets] if concat else [dataset.pipeline]


def step(pipeline, name):
    matches = [t for t in pipeline if t['type'] == name]
    return matches[0] if matches else None


def test_config_names_and_count():
    names = {p.name for p in PRETRAIN}
    assert 'ivnext-stage1_vit-b-p14_siglip2_16x224_50e_kmash.py' in names
    assert 'ivnext-stage2_vit-l-p14_32x224_100e_kmash.py' in names
    assert len(PRETRAIN) >= 14
    assert (REPO / 'configs' / 'pretrain' / 'README.md').is_file()


@pytest.mark.parametrize('path', PRETRAIN + TINY, ids=lambda p: p.name)
def test_every_config_loads_and_is_consistent(path):
    cfg = Config.fromfile(str(path))
    assert cfg.default_scope == 'mmaction'
    assert 'ivnext' in cfg.custom_imports.imports and 'ivnext.datasets' in cfg.custom_imports.imports
    model = cfg.model
    assert model.type in ('InternVideoNextStage1', 'InternVideoNextStage2')
    backbone = model.backbone
    width = ENCODER_DIMS[backbone.arch] if isinstance(backbone.arch, str) else backbone.arch.embed_dims
    grid = (backbone.num_frames, backbone.img_size // backbone.patch_size, backbone.img_size // backbone.patch_size)
    # Frames sampled by every pipeline = frames of the encoder; every pipeline ends in NCTHW + pack.
    for pipeline in pipelines(cfg):
        assert step(pipeline, 'UniformSample').clip_len == backbone.num_frames
        assert step(pipeline, 'FormatShape').input_format == 'NCTHW'
        assert pipeline[-1]['type'] == 'PackActionInputs'
        crop = step(pipeline, 'MultiScaleCrop')
        assert tuple(crop.scales) == (1, 0.875, 0.75, 0.66) and crop.input_size == backbone.img_size
    if model.get('neck') is not None:
        assert model.neck.in_dims == width
        assert tuple(model.neck.get('grid_size', grid)) == grid  # derived from the backbone when not stated
        pred_dims = model.neck.get('embed_dims', PREDICTOR_DIMS.get(model.neck.type))
        if model.neck.get('model_config'):
            pred_dims = model.neck.model_config.hidden_size
        assert model.head.in_dims == pred_dims
    if model.type == 'InternVideoNextStage1':
        if model.get('head') is not None:
            assert model.head.target_dims == 3 * backbone.patch_size**2
        if model.get('align_head') is not None:
            assert model.align_head.in_dims == width
            assert model.pooled_align_head.in_dims == backbone.clip_embed_dims
            teacher = model.teacher
            teacher_patch = 16 if teacher.type == 'SigLIP2Teacher' else 14
            # Derived from the backbone (grid side x teacher patch) when not stated.
            assert teacher.get('image_size', grid[1] * teacher_patch) // teacher_patch == grid[1]
            assert teacher.num_return_layers == model.align_head.num_layers
    else:
        assert 'stage1_checkpoint' in model
        assert model.head.type == 'LatentRegressionHead' and model.head.target_dims == width
        assert cfg.get('model_wrapper_cfg', {}).get('find_unused_parameters', True)


def check_stage1_recipe(cfg, arch, interval):
    model = cfg.model
    assert model.backbone.arch == arch and model.backbone.num_frames == 16 and model.backbone.img_size == 224
    assert model.masker.type == 'SemanticAwareMasker' and model.masker.mask_ratio == 0.8
    assert model.neck.type == 'ModernBertPredictor' and model.neck.num_layers == 5 and model.neck.pretrained
    assert model.head.type == 'ConditionalDiffusionHead'
    assert (model.head.width, model.head.depth, model.head.num_train_timesteps) == (1536, 6, 1000)
    teacher = model.teacher
    assert teacher.type == 'SigLIP2Teacher' and teacher.pretrained and 'image_size' not in teacher
    # The build gives the teacher the student's 16x16 grid at its patch 16: 256 px, as released.
    geometry = ClipGeometry(model.backbone.num_frames, model.backbone.img_size, model.backbone.patch_size)
    assert geometry.teacher_image_size(16) == 256
    assert default_return_layers(40, teacher.num_return_layers, teacher.return_interval) == {
        3.33: [23, 26, 30, 33, 36, 39], 1.67: [31, 33, 34, 36, 38, 39]}[interval]
    assert teacher.return_interval == interval
    assert model.align_head.target_dims == model.pooled_align_head.target_dims == 1536
    assert model.head.loss_weight == model.align_head.loss_weight == model.pooled_align_head.loss_weight == 1.0
    opt = cfg.optim_wrapper
    assert opt.type == 'BFloat16OptimWrapper' and opt.get('enabled', True)  # bf16 autocast
    assert opt.optimizer.type == 'AdamW' and opt.optimizer.lr == 1e-3
    assert tuple(opt.optimizer.betas) == (0.9, 0.98) and opt.optimizer.weight_decay == 0.05
    assert cfg.auto_scale_lr.enable and cfg.auto_scale_lr.base_batch_size == 256
    assert cfg.train_cfg.max_epochs == 50
    warmup, cosine = cfg.param_scheduler
    assert warmup.type == 'ClosedFormLinearLR' and warmup.end == 5 and warmup.start_factor == 0.0  # from 0, as released
    assert cosine.type == 'CosineAnnealingLR' and (cosine.begin, cosine.end) == (5, 50)
    assert cfg.train_dataloader.batch_size * 128 == 2048


def test_stage1_paper_recipe_base_and_large():
    check_stage1_recipe(load('ivnext-stage1_vit-b-p14_siglip2_16x224_50e_kmash.py'), 'base', 3.33)
    large = load('ivnext-stage1_vit-l-p14_siglip2_16x224_50e_kmash.py')
    check_stage1_recipe(large, 'large', 1.67)
    assert large.model.neck.in_dims == large.model.align_head.in_dims == 1024


def test_kmash_flips_every_source_but_ssv2():
    cfg = load('ivnext-stage1_vit-b-p14_siglip2_16x224_50e_kmash.py')
    flip, noflip = cfg.train_dataloader.dataset.datasets
    assert flip.ann_file.endswith('kmash_flip.txt') and noflip.ann_file.endswith('kmash_noflip.txt')
    assert step(flip.pipeline, 'Flip').flip_ratio == 0.5
    assert step(noflip.pipeline, 'Flip') is None
    assert [t['type'] for t in flip.pipeline if t['type'] != 'Flip'] == [t['type'] for t in noflip.pipeline]


@pytest.mark.parametrize('name, arch, batch', [('ivnext-stage2_vit-b-p14_32x224_100e_kmash.py', 'base', 14),
                                               ('ivnext-stage2_vit-l-p14_32x224_100e_kmash.py', 'large', 8)])
def test_stage2_paper_recipe(name, arch, batch):
    cfg = load(name)
    model = cfg.model
    assert model.backbone.arch == arch and model.backbone.num_frames == 32
    assert model.ema_momentum is None and model.stage1_checkpoint is None
    assert model.head.target_dims == ENCODER_DIMS[arch] and model.neck.in_dims == ENCODER_DIMS[arch]
    views = [(m.num_blocks, tuple(m.spatial_scale), tuple(m.aspect_ratio), tuple(m.temporal_scale))
             for m in model.maskers]
    assert views == [(8, (0.15, 0.15), (0.75, 1.5), (1.0, 1.0)), (2, (0.7, 0.7), (0.75, 1.5), (1.0, 1.0))]
    assert cfg.optim_wrapper.optimizer.lr == 1e-4 and cfg.optim_wrapper.type == 'BFloat16OptimWrapper'
    assert cfg.train_cfg.max_epochs == 100
    assert [s.type for s in cfg.param_scheduler] == ['CosineAnnealingLR']  # no warmup
    assert cfg.train_dataloader.batch_size == batch
    assert not cfg.get('custom_hooks')


def test_ablation_configs():
    base = load('ivnext-stage1_vit-b-p14_siglip2_8x224_30e_k710.py')
    assert base.model.backbone.num_frames == 8 and base.train_cfg.max_epochs == 30
    pixel = load('ivnext-stage1-pixel-linear_vit-b-p14_8x224_30e_k710.py').model
    assert pixel.teacher is None and pixel.align_head is None and pixel.pooled_align_head is None
    assert pixel.head.type == 'LinearPixelHead' and pixel.masker.type in ('RandomMasker', 'TubeMasker')
    assert 'width' not in pixel.head and 'mode' not in pixel.masker  # no leftovers of the merged base dicts
    align = load('ivnext-stage1-align-only_vit-b-p14_siglip2_8x224_30e_k710.py').model
    assert align.neck is None and align.head is None and align.teacher.type == 'SigLIP2Teacher'
    linear = load('ivnext-stage1-linear-decoder_vit-b-p14_siglip2_8x224_30e_k710.py').model
    assert linear.head.type == 'LinearPixelHead' and linear.teacher.type == 'SigLIP2Teacher'
    vitpred = load('ivnext-stage1-vit-predictor_vit-b-p14_siglip2_8x224_30e_k710.py').model
    assert vitpred.neck.type == 'TransformerPredictor' and 'pretrained' not in vitpred.neck
    multiblock = load('ivnext-stage1-multiblock_vit-b-p14_siglip2_8x224_30e_k710.py').model
    assert multiblock.masker.type == 'MultiBlockMasker3D' and 'mask_ratio' not in multiblock.masker
    clip = load('ivnext-stage1_vit-b-p14_clip_8x224_30e_k710.py').model
    assert clip.teacher.type == 'CLIPTeacher' and 'return_interval' in clip.teacher
    assert clip.align_head.target_dims == 1024 and clip.pooled_align_head.target_dims == 768
    dino = load('ivnext-stage1_vit-b-p14_dinov2_8x224_30e_k710.py').model
    assert dino.teacher.type == 'DINOv2Teacher' and dino.align_head.target_dims == 1024
    frozen = load('ivnext-stage2_vit-b-p14_8x224_30e_k710.py')
    ema = load('ivnext-stage2-ema_vit-b-p14_8x224_30e_k710.py')
    assert frozen.model.ema_momentum is None and not frozen.get('custom_hooks')
    assert ema.model.ema_momentum == 0.9998
    assert [h.type for h in ema.custom_hooks] == ['TeacherEMAHook']


@pytest.mark.parametrize('path', TINY, ids=lambda p: p.name)
def test_tiny_configs_build_and_compute_losses(path):
    cfg = Config.fromfile(str(path))
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.init_weights()
    x = torch.randint(0, 256, (3, 4, 56, 56), dtype=torch.uint8)
    data = model.data_preprocessor(dict(inputs=[x, x.flip(-1)], data_samples=None), True)
    losses = model(data['inputs'], mode='loss')
    names = {k for k in losses if k.startswith('loss')}
    expected = {'loss_diffusion', 'loss_align', 'loss_align_pooled'} if 'stage1' in path.name else {'loss_latent'}
    assert names == expected
    assert all(torch.isfinite(losses[k]) for k in names)


def test_kmash_dataset_config_builds_on_real_clips(video_clips):
    cfg = load('ivnext-stage1_vit-b-p14_siglip2_16x224_50e_kmash.py')
    dataset_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    for sub, ann in zip(dataset_cfg.datasets, (video_clips.train_ann_file, video_clips.val_ann_file)):
        sub.ann_file = str(ann)
        sub.data_prefix = dict(video=str(video_clips.video_dir))
    dataset = DATASETS.build(dataset_cfg)
    assert len(dataset) == len(video_clips.files)
    sample = dataset[len(dataset) - 1]  # from the no-flip list
    assert sample['inputs'].shape == (1, 3, 16, 224, 224) and sample['inputs'].dtype == torch.uint8
    noflip_types = [type(t).__name__ for t in dataset.datasets[1].pipeline.transforms]
    assert 'Flip' not in noflip_types and 'Flip' in [type(t).__name__ for t in dataset.datasets[0].pipeline.transforms]
