"""Other encoders as backbones: tiny random transformers models (V-JEPA 2, VideoMAE, TimeSformer, DINOv2, ...)
behind ``TransformersBackbone``, in the probe recognizer, in both extraction modes and in ``load_encoder``."""
import copy
import importlib
import json

import numpy as np
import pytest
import torch
from mmaction.registry import MODELS
from mmengine.optim import build_optim_wrapper

import ivnext
from ivnext.models.backbones import TransformersBackbone

SMALL = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=96)
# 4 frames x 56 px, patch 14: the shrunk probe pipeline of test_probe.py.
TINY = {
    'vjepa2': dict(SMALL, crop_size=56, frames_per_clip=4, patch_size=14, tubelet_size=2, pred_hidden_size=32,
                   pred_num_hidden_layers=1, pred_num_attention_heads=4, pred_num_mask_tokens=2),
    'videomae': dict(SMALL, image_size=56, num_frames=4, patch_size=14, tubelet_size=2),
    'timesformer': dict(SMALL, image_size=56, num_frames=4, patch_size=14),
    'dinov2': dict(SMALL, image_size=56, patch_size=14),
    'dinov2_with_registers': dict(SMALL, image_size=56, patch_size=14, num_register_tokens=2),
    'siglip2_vision_model': dict(SMALL, num_patches=16, patch_size=14),
    'videoprism_vision_model': dict(SMALL, image_size=56, num_frames=4, tubelet_size=[1, 14, 14],
                                    num_spatial_layers=1, num_temporal_layers=1),
}
# (prefix tokens, token grid of a 4 x 56 x 56 clip)
EXPECTED = {'vjepa2': (0, (2, 4, 4)), 'videomae': (0, (2, 4, 4)), 'timesformer': (1, (4, 4, 4)),
            'dinov2': (1, (4, 4, 4)), 'dinov2_with_registers': (3, (4, 4, 4)),
            'siglip2_vision_model': (0, (4, 4, 4)), 'videoprism_vision_model': (0, (4, 4, 4))}


def has_videoprism() -> bool:
    import transformers
    try:
        return transformers.VideoPrismVisionModel is not None
    except (AttributeError, ModuleNotFoundError):
        return False


def build(model_type: str, **kwargs) -> TransformersBackbone:
    torch.manual_seed(0)
    return TransformersBackbone(model_type=model_type, model_config=copy.deepcopy(TINY[model_type]), **kwargs)


def clips(batch: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, 3, 4, 56, 56, generator=torch.Generator().manual_seed(seed))


def siglip2_patches(frame: torch.Tensor) -> torch.Tensor:
    """SigLIP2's own image processor patchification of one frame (C, H, W) -> (N, p * p * C)."""
    import inspect

    from transformers.models.siglip2 import image_processing_siglip2 as processing
    if 'num_channels, image_height' in inspect.getsource(processing.convert_image_to_patches):  # transformers 5
        return processing.convert_image_to_patches(frame, 14)
    return torch.as_tensor(processing.convert_image_to_patches(frame.permute(1, 2, 0).numpy(), 14))


def reference_tokens(backbone: TransformersBackbone, x: torch.Tensor) -> torch.Tensor:
    """What the transformers model itself returns, arranged as (B, P + T'H'W', C) with patches in (t, h, w)."""
    hf, p = backbone.model, backbone.num_cls_tokens
    b, c, t, h, w = x.shape
    with torch.no_grad():
        if backbone.family.kind == 'video':
            kwargs = dict(skip_predictor=True) if backbone.model_type == 'vjepa2' else {}
            if backbone.model_type.startswith('videoprism'):
                return hf(pixel_values_videos=x.transpose(1, 2)).last_hidden_state
            out = hf(x.transpose(1, 2), **kwargs).last_hidden_state
            if backbone.model_type == 'timesformer':  # TimeSformer returns (h, w, t) order
                out = torch.cat([out[:, :1], out[:, 1:].reshape(b, 4, 4, t, -1).permute(0, 3, 1, 2, 4)
                                 .flatten(1, 3)], 1)
            return out
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        if backbone.family.patchified:
            patches = torch.stack([siglip2_patches(f) for f in frames])
            out = hf(pixel_values=patches, pixel_attention_mask=torch.ones(patches.shape[:2], dtype=torch.long),
                     spatial_shapes=torch.tensor([[4, 4]] * len(frames))).last_hidden_state
        else:
            out = hf(pixel_values=frames).last_hidden_state
        prefix = out[:, :p].reshape(b, t, p, out.shape[-1]).mean(1)
        return torch.cat([prefix, out[:, p:].reshape(b, -1, out.shape[-1])], 1)


@pytest.mark.parametrize('model_type', sorted(TINY))
def test_tokens_are_the_transformers_model_outputs_in_ivnext_layout(model_type):
    if model_type.startswith('videoprism') and not has_videoprism():
        with pytest.raises(ImportError, match='VideoPrismVisionModel'):
            build(model_type)
        pytest.skip('this transformers has no VideoPrism (transformers >= 5 has)')
    backbone = build(model_type)
    prefix, grid = EXPECTED[model_type]
    x = clips()
    assert backbone.num_cls_tokens == prefix and backbone.grid_of(x) == grid
    assert backbone.input_layout == ('NTCHW' if backbone.family.kind == 'video' else 'frames')
    with torch.no_grad():
        tokens = backbone(x)
    assert tokens.shape == (2, prefix + grid[0] * grid[1] * grid[2], 64)
    torch.testing.assert_close(tokens, reference_tokens(backbone, x), rtol=1e-5, atol=1e-5)
    # featmap and avg are the patch tokens (prefix tokens dropped) as a grid and as their mean.
    backbone.out_type = 'featmap'
    with torch.no_grad():
        featmap = backbone(x)
    assert featmap.shape == (2, 64, *grid)
    torch.testing.assert_close(featmap.flatten(2).transpose(1, 2), tokens[:, prefix:])
    backbone.out_type = 'avg'
    with torch.no_grad():
        torch.testing.assert_close(backbone(x), tokens[:, prefix:].mean(1))


def test_token_frames_follow_time_order():
    """Token frame t's patch tokens sit at rows t*H'W' .. (t+1)*H'W': changing only frames 2-3 moves those most."""
    backbone = build('videomae')  # tubelet 2: frames 2-3 form token frame 1
    x = clips(1)
    y = x.clone()
    y[:, :, 2:] += 1.0
    with torch.no_grad():
        a, b = backbone(x), backbone(y)
    assert a.shape[1] == 32
    # The encoder mixes all tokens, so every token changes, but the token frame that saw the change moves most.
    change = (a - b).norm(dim=-1).reshape(2, 16).mean(1)
    assert change[1] > change[0]


def video_batch(num: int, num_classes: int) -> dict:
    """Clips (1 view, 3, 4, 56, 56) uint8 whose brightness depends on the class, as mmaction2 loaders give them."""
    from mmaction.structures import ActionDataSample
    gen = torch.Generator().manual_seed(0)
    inputs = [(torch.rand(1, 3, 4, 56, 56, generator=gen) * 60 + 60 * (i % num_classes)).round().to(torch.uint8)
              for i in range(num)]
    return dict(inputs=inputs, data_samples=[ActionDataSample().set_gt_label(i % num_classes) for i in range(num)])


def test_frozen_means_frozen_in_the_probe_recognizer():
    model = MODELS.build(dict(
        type='FrozenBackboneRecognizer3D',
        backbone=dict(type='TransformersBackbone', model_type='vjepa2', model_config=TINY['vjepa2']),
        cls_head=dict(type='AttentiveProbeHead', num_classes=3, in_channels=64, num_heads=4, topk=(1, )),
        data_preprocessor=dict(type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], format_shape='NCTHW')))
    model.init_weights()
    assert not any(p.requires_grad for p in model.backbone.parameters())
    optim = build_optim_wrapper(model, dict(constructor='TrainableOptimWrapperConstructor',
                                            optimizer=dict(type='AdamW', lr=1e-2, weight_decay=0.05)))
    assert {id(p) for g in optim.optimizer.param_groups for p in g['params']} == {
        id(p) for p in model.cls_head.parameters()}
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head_before = model.cls_head.fc_cls.weight.clone()
    model.train()
    assert not any(m.training for m in model.backbone.modules())
    data = video_batch(4, 3)
    for _ in range(2):
        model.train_step(data, optim)
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert not torch.equal(model.cls_head.fc_cls.weight, head_before)
    assert all(p.grad is None for p in model.backbone.parameters())
    assert not model.backbone.model.training

    # frozen=False hands the encoder to the optimizer.
    trainable = build('videomae', frozen=False).train()
    assert all(p.requires_grad for p in trainable.parameters()) and trainable.model.training


def test_pretrained_folder_loads_offline_with_its_normalisation(tmp_path):
    reference = build('videomae')
    reference.model.save_pretrained(tmp_path / 'videomae')
    (tmp_path / 'videomae' / 'preprocessor_config.json').write_text(
        json.dumps(dict(image_mean=[0.5, 0.4, 0.3], image_std=[0.2, 0.2, 0.2])))
    loaded = TransformersBackbone(pretrained=str(tmp_path / 'videomae'))
    assert loaded.model_type == 'videomae' and loaded.mean == pytest.approx((127.5, 102.0, 76.5))
    x = clips()
    with torch.no_grad():
        assert torch.equal(loaded(x), reference(x))
    # MMEngine's init_weights leaves loaded weights alone.
    loaded.init_weights()
    with torch.no_grad():
        assert torch.equal(loaded(x), reference(x))
    with pytest.raises(ValueError, match='out_type'):
        TransformersBackbone(pretrained=str(tmp_path / 'videomae'), out_type='pooled')
    # An image-text folder gives its vision tower, with CLIP's normalisation.
    from transformers import CLIPConfig, CLIPModel
    torch.manual_seed(0)
    clip = CLIPModel(CLIPConfig(vision_config=dict(SMALL, image_size=56, patch_size=14),
                                text_config=dict(SMALL, vocab_size=99))).eval()
    clip.save_pretrained(tmp_path / 'clip')
    tower = TransformersBackbone(pretrained=str(tmp_path / 'clip'))
    assert tower.model_type == 'clip_vision_model' and tower.num_cls_tokens == 1 and tower.mean[0] == pytest.approx(
        122.7709383)
    frames = x[:, :, 0]
    with torch.no_grad():
        expected = clip.vision_model(pixel_values=frames).last_hidden_state[:, 1:]
        torch.testing.assert_close(tower(x[:, :, :1])[:, 1:], expected)
    with pytest.raises(FileNotFoundError, match='local folder'):
        TransformersBackbone(pretrained=str(tmp_path / 'missing'))
    with pytest.raises(KeyError, match='supported'):
        TransformersBackbone(model_type='bert', model_config={})


def backbone_config(tmp_path, model_type: str = 'vjepa2') -> dict:
    """A saved tiny model and the backbone config that reads it."""
    folder = tmp_path / model_type
    build(model_type).model.save_pretrained(folder)
    return dict(type='TransformersBackbone', pretrained=str(folder), out_type='tokens')


def probe_config(repo_root, video_clips, tmp_path, backbone: dict, prefix: int):
    from mmengine.config import Config
    from test_probe import shrink_pipeline

    cfg = Config.fromfile(str(repo_root / 'configs/probe/attnprobe_ivnext-vit-b-p14_16x224_20e_k400.py'))
    cfg.model.backbone = backbone
    cfg.model.cls_head.update(num_classes=4, in_channels=64, num_heads=4, num_cls_tokens=prefix)
    cfg.model.data_preprocessor.update(blending=dict(type='CutmixBlending', alpha=1.0, num_classes=4),
                                       mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])
    for split, ann in (('train', video_clips.train_ann_file), ('val', video_clips.val_ann_file),
                       ('test', video_clips.val_ann_file)):
        loader = cfg[f'{split}_dataloader']
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        loader.dataset.update(ann_file=str(ann), data_prefix=dict(video=str(video_clips.video_dir)))
        shrink_pipeline(loader.dataset.pipeline)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=2)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=2, by_epoch=False, save_best=None)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    cfg.work_dir = str(tmp_path / 'work')
    return cfg


def test_probe_config_trains_two_iterations_on_videos(repo_root, video_clips, tmp_path):
    from mmengine.runner import Runner

    cfg = probe_config(repo_root, video_clips, tmp_path, backbone_config(tmp_path, 'vjepa2'), prefix=0)
    runner = Runner.from_cfg(cfg)
    before = {k: v.clone() for k, v in runner.model.backbone.state_dict().items()}
    runner.train()
    for key, value in runner.model.backbone.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert runner.iter == 2
    metrics = runner.test()
    assert 0.0 <= metrics['acc/top1'] <= 1.0


def test_extract_features_config_mode_with_a_transformers_backbone(repo_root, video_clips, tmp_path):
    tool = importlib.import_module('ivnext.cli.extract_features')
    cfg = probe_config(repo_root, video_clips, tmp_path, backbone_config(tmp_path, 'dinov2'), prefix=1)
    cfg.test_dataloader.dataset.pipeline = cfg.val_dataloader.dataset.pipeline  # one view
    config = tmp_path / 'dinov2_probe.py'
    cfg.dump(str(config))
    tool.run([str(config), 'none', '--out', str(tmp_path / 'tokens.pt'), '--mode', 'tokens'])
    tool.run([str(config), 'none', '--out', str(tmp_path / 'avg.npy'), '--mode', 'avg', '--average-views'])
    tokens = torch.load(tmp_path / 'tokens.pt', weights_only=True)['features']
    n = len(video_clips.val_ann_file.read_text().split('\n')) - 1
    assert tokens.shape == (n, 1, 1 + 4 * 16, 64)  # mean CLS + 4 frames x 4 x 4 patches
    np.testing.assert_allclose(np.load(tmp_path / 'avg.npy'), tokens[:, 0, 1:].mean(1).numpy(), rtol=1e-4,
                               atol=1e-5)
    with pytest.raises(ValueError, match='--mode avg'):
        tool.run([str(config), 'none', '--out', str(tmp_path / 'p.npy'), '--mode', 'pooled'])


def test_load_encoder_and_videos_mode_read_a_transformers_folder(video_clips, tmp_path):
    tool = importlib.import_module('ivnext.cli.extract_features')
    folder = tmp_path / 'vjepa2'
    reference = build('vjepa2')
    reference.model.save_pretrained(folder)

    encoder = ivnext.load_encoder(str(folder))
    p = encoder.preprocessing
    assert (p.num_frames, p.crop, p.resize) == (4, 56, 56) and p.mean == pytest.approx((123.675, 116.28, 103.53))
    x = clips()
    out = encoder.encode(x, output='tokens')
    with torch.no_grad():
        expected = reference.model(x.transpose(1, 2), skip_predictor=True).last_hidden_state
    torch.testing.assert_close(out.features, expected)
    video = video_clips.files[0]
    feats = encoder.encode(str(video), output='avg').features
    assert feats.shape == (1, 64)
    with pytest.raises(ValueError, match="output='avg'"):
        encoder.encode(x, output='pooled')
    # Saved as an ivnext folder, the encoder rebuilds from its own config (the transformers folder not needed).
    encoder.save_pretrained(tmp_path / 'saved')
    again = ivnext.load_encoder(str(tmp_path / 'saved'))
    assert torch.equal(again.encode(x, output='tokens').features, out.features)

    listed = tmp_path / 'videos.txt'  # the good clips by name (other tests add bad files to the shared folder)
    listed.write_text(''.join(f'{path}\n' for path in video_clips.files))
    summary = tool.run([str(folder), '--videos', str(listed), '--out-dir', str(tmp_path / 'feats'),
                        '--output', 'avg', '--stride', '4', '--stride-unit', 'frames', '--no-progress'])
    assert len(summary.done) == len(video_clips.files) and not summary.bad
    index = json.loads((tmp_path / 'feats' / 'index.json').read_text())
    assert len(index['videos']) == len(video_clips.files)
    first = np.load(tmp_path / 'feats' / index['videos'][0]['features'])
    assert first.ndim == 2 and first.shape[1] == 64 and index['settings']['model']['encoder']['pretrained'] == str(
        folder)
