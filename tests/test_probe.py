"""Probe heads and the frozen-backbone recognizer, trained through mmaction2 / MMEngine machinery."""
import copy
from pathlib import Path

import pytest
import torch
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from mmengine.optim import build_optim_wrapper

from ivnext.models.heads import AttentiveProbeHead, LinearProbeHead

TINY_BACKBONE = dict(type='InternVideoNextViT', arch=dict(embed_dims=32, num_layers=2, num_heads=4), img_size=28,
                     patch_size=14, num_frames=2, drop_path_rate=0.2, out_type='tokens', with_clip_projector=True,
                     clip_embed_dims=32, clip_num_heads=4, use_flash_attn=False)


PREPROCESSOR = dict(type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                    format_shape='NCTHW')


def make_batch(num: int, num_classes: int, views: int = 1, seed: int = 0) -> dict:
    """Clips whose brightness depends on the class (learnable), as mmaction2 dataloaders deliver them."""
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i in range(num):
        label = i % num_classes
        clip = torch.rand(views, 3, 2, 28, 28, generator=gen) * 60 + 60 * label
        inputs.append(clip.round().to(torch.uint8))
        samples.append(ActionDataSample().set_gt_label(label))
    return dict(inputs=inputs, data_samples=samples)


def build_probe(num_classes: int = 3) -> torch.nn.Module:
    torch.manual_seed(0)
    model = MODELS.build(
        dict(type='FrozenBackboneRecognizer3D', backbone=copy.deepcopy(TINY_BACKBONE),
             cls_head=dict(type='AttentiveProbeHead', num_classes=num_classes, in_channels=32, num_heads=4,
                           topk=(1, )),
             data_preprocessor=PREPROCESSOR))
    model.init_weights()
    return model


def test_frozen_backbone_bit_identical_while_head_learns():
    model = build_probe()
    optim_wrapper = build_optim_wrapper(
        model,
        dict(constructor='TrainableOptimWrapperConstructor',
             optimizer=dict(type='AdamW', lr=3e-3, betas=(0.9, 0.999), weight_decay=0.05)))
    backbone_before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head_before = {k: v.clone() for k, v in model.cls_head.state_dict().items()}

    # Only head parameters reach the optimizer.
    optimized = {id(p) for g in optim_wrapper.optimizer.param_groups for p in g['params']}
    assert optimized == {id(p) for p in model.cls_head.parameters()}

    model.train()
    assert model.training and model.cls_head.training and not model.backbone.training
    assert not any(m.training for m in model.backbone.modules())

    data = make_batch(6, 3)
    losses = [float(model.train_step(data, optim_wrapper)['loss'].detach()) for _ in range(12)]

    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, backbone_before[key]), f'backbone {key} changed'
    changed = [k for k, v in model.cls_head.state_dict().items() if not torch.equal(v, head_before[k])]
    assert 'fc_cls.weight' in changed and 'query_tokens' in changed
    assert losses[-1] < 0.7 * losses[0]

    # Features: no graph, and deterministic in training mode although the backbone has drop-path.
    inputs = model.data_preprocessor(data, True)['inputs']
    feats1, _ = model.extract_feat(inputs)
    feats2, _ = model.extract_feat(inputs)
    assert feats1.grad_fn is None and not feats1.requires_grad
    assert torch.equal(feats1, feats2)


def test_probe_predicts_over_three_crops():
    model = build_probe(num_classes=3).eval()
    data = make_batch(2, 3, views=3, seed=1)
    results = model.test_step(data)
    assert len(results) == 2
    for res in results:
        assert res.pred_score.shape == (3, )
        assert torch.isclose(res.pred_score.sum(), torch.tensor(1.0), atol=1e-5)
    # 'prob' averaging over the 3 views equals the mean of per-view softmax scores.
    inputs = model.data_preprocessor(data, False)['inputs']
    scores = model.cls_head(model.backbone(inputs.flatten(0, 1))).softmax(-1).view(2, 3, 3).mean(1)
    assert torch.allclose(torch.stack([r.pred_score for r in results]), scores, atol=1e-5)


def separable_tokens(num: int, num_classes: int, length: int, dims: int, seed: int):
    """Noise tokens; in each sample a few random positions carry the class direction (the rest is noise)."""
    gen = torch.Generator().manual_seed(seed)
    centers = torch.nn.functional.normalize(torch.randn(num_classes, dims, generator=torch.Generator().manual_seed(7)),
                                            dim=-1) * 4
    labels = torch.arange(num) % num_classes
    tokens = torch.randn(num, length, dims, generator=gen)
    positions = torch.rand(num, length, generator=gen).argsort(dim=1)[:, :3]
    tokens.scatter_add_(1, positions[..., None].expand(-1, -1, dims),
                        centers[labels][:, None].expand(-1, 3, -1).contiguous())
    return tokens, labels


def test_attentive_probe_reaches_high_accuracy_on_separable_tokens():
    torch.manual_seed(0)
    num_classes, length, dims = 4, 24, 32
    head = AttentiveProbeHead(num_classes, dims, num_heads=4, topk=(1, ))
    x_train, y_train = separable_tokens(512, num_classes, length, dims, seed=1)
    x_test, y_test = separable_tokens(256, num_classes, length, dims, seed=2)
    samples = [ActionDataSample().set_gt_label(int(y)) for y in y_train]
    opt = torch.optim.AdamW(head.parameters(), lr=2e-3)
    head.train()
    first = None
    for step in range(120):
        idx = torch.randint(0, 512, (64, ), generator=torch.Generator().manual_seed(step))
        loss = head.loss(x_train[idx], [samples[i] for i in idx])['loss_cls']
        first = first if first is not None else float(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    head.eval()
    with torch.no_grad():
        acc = (head(x_test).argmax(-1) == y_test).float().mean()
    assert float(loss) < first
    assert acc > 0.9, f'attentive probe accuracy {acc:.3f}'


def test_attentive_probe_accepts_featmap_and_tuples():
    torch.manual_seed(0)
    head = AttentiveProbeHead(5, 16, num_heads=2).eval()
    featmap = torch.randn(2, 16, 2, 3, 3)
    tokens = featmap.flatten(2).transpose(1, 2)
    assert torch.allclose(head(featmap), head(tokens), atol=1e-6)
    assert torch.allclose(head((torch.randn(2, 4, 16), tokens)), head(tokens), atol=1e-6)
    with pytest.raises(ValueError, match='in_channels'):
        head(torch.randn(2, 4, 8))
    with pytest.raises(ValueError, match="out_type='tokens'"):
        head(torch.randn(2, 16))


def test_time_slots_pool_each_token_frame_and_keep_time_order():
    torch.manual_seed(0)
    frames, per_frame, dims = 3, 4, 16
    head = AttentiveProbeHead(5, dims, num_heads=2, num_cls_tokens=1, time_slots=frames).eval()
    tokens = torch.randn(2, 1 + frames * per_frame, dims)
    # Equivalent to pooling every token frame alone with the same queries and concatenating in time order.
    slots = [head.pooler(head.query_tokens.expand(2, -1, -1), tokens[:, 1 + t * per_frame:1 + (t + 1) * per_frame])
             .mean(1) for t in range(frames)]
    assert torch.allclose(head.pool(tokens), torch.cat(slots, -1), atol=1e-6)
    assert head.fc_cls.in_features == frames * dims
    # Reversing the frames changes what the slotted probe sees; one pooled vector cannot tell the two apart.
    reversed_frames = torch.cat([tokens[:, :1], tokens[:, 1:].reshape(2, frames, per_frame, dims).flip(1)
                                 .reshape(2, -1, dims)], 1)
    assert not torch.allclose(head(tokens), head(reversed_frames), atol=1e-4)
    whole = AttentiveProbeHead(5, dims, num_heads=2, num_cls_tokens=1).eval()
    assert torch.allclose(whole(tokens), whole(reversed_frames), atol=1e-5)
    with pytest.raises(ValueError, match='time_slots'):
        head(tokens[:, :-1])
    with pytest.raises(ValueError, match='time_slots'):
        AttentiveProbeHead(5, dims, num_heads=2, time_slots=0)


def test_time_slots_read_the_order_of_frames():
    """Class = which of two patterns comes first: a one-vector probe is at chance, the slotted one learns it."""
    gen = torch.Generator().manual_seed(0)
    dims, per_frame = 16, 6
    patterns = torch.randn(2, dims, generator=gen) * 2

    def batch(n):
        labels = torch.randint(0, 2, (n, ), generator=gen)
        first, second = patterns[labels], patterns[1 - labels]
        noise = torch.randn(n, 2 * per_frame, dims, generator=gen) * 0.5
        tokens = torch.cat([first[:, None].expand(-1, per_frame, -1), second[:, None].expand(-1, per_frame, -1)], 1)
        return tokens + noise, labels

    def fit(head):
        torch.manual_seed(0)
        opt = torch.optim.AdamW(head.parameters(), lr=3e-3)
        for _ in range(150):
            x, y = batch(32)
            loss = torch.nn.functional.cross_entropy(head(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        x, y = batch(256)
        with torch.no_grad():
            return float((head(x).argmax(-1) == y).float().mean())

    assert fit(AttentiveProbeHead(2, dims, num_heads=2, time_slots=2)) > 0.95
    assert fit(AttentiveProbeHead(2, dims, num_heads=2)) < 0.65


def test_linear_probe_pools_every_input_layout():
    torch.manual_seed(0)
    head = LinearProbeHead(3, 8, norm='ln', num_cls_tokens=2).eval()
    tokens = torch.randn(4, 6, 8)
    assert torch.allclose(head(tokens), head(tokens[:, 2:].mean(1)), atol=1e-6)
    featmap = torch.randn(4, 8, 2, 2, 2)
    assert torch.allclose(head(featmap), head(featmap.mean((2, 3, 4))), atol=1e-6)
    bn_head = LinearProbeHead(3, 8, norm='bn')
    assert not any(p.requires_grad for p in bn_head.norm.parameters())  # BN without affine
    with pytest.raises(ValueError, match='norm'):
        LinearProbeHead(3, 8, norm='group')


def test_linear_probe_pools_prefix_frames_and_cells_in_order():
    """with_prefix + time_slots + spatial_cells: the prefix mean, then each frame's cells in raster order."""
    torch.manual_seed(0)
    b, prefix, frames, side, dims = 2, 2, 3, 4, 5
    tokens = torch.randn(b, prefix + frames * side * side, dims)
    head = LinearProbeHead(7, dims, norm=None, num_cls_tokens=prefix, time_slots=frames, spatial_cells=2,
                           with_prefix=True).eval()
    grid = tokens[:, prefix:].reshape(b, frames, side, side, dims)
    expected = [tokens[:, :prefix].mean(1)]
    for t in range(frames):
        for row in range(2):
            for col in range(2):
                expected.append(grid[:, t, 2 * row:2 * row + 2, 2 * col:2 * col + 2].mean((1, 2)))
    pooled = head.pool(tokens)
    assert torch.allclose(pooled, torch.cat(expected, -1), atol=1e-6)
    assert head.fc_cls.in_features == dims * (1 + frames * 4)
    # Pooled once, the features give the same scores (the cached-token probe pools each clip once).
    assert torch.allclose(head(tokens), head(pooled), atol=1e-6)
    # Swapping the halves of every frame moves the object from one cell to another: a whole-clip mean cannot see it.
    swapped = torch.cat([tokens[:, :prefix], grid.flip(3).reshape(b, -1, dims)], 1)
    assert not torch.allclose(head(tokens), head(swapped), atol=1e-4)
    plain = LinearProbeHead(7, dims, norm=None, num_cls_tokens=prefix).eval()
    assert torch.allclose(plain(tokens), plain(swapped), atol=1e-5)
    with pytest.raises(ValueError, match='spatial_cells'):
        LinearProbeHead(7, dims, num_cls_tokens=prefix, time_slots=frames, spatial_cells=3)(tokens)
    with pytest.raises(ValueError, match='time_slots'):
        head(tokens[:, :-1])
    with pytest.raises(ValueError, match='num_cls_tokens'):
        LinearProbeHead(7, dims, with_prefix=True)
    with pytest.raises(ValueError, match='pooled'):
        head(torch.randn(b, dims))


def test_linear_probe_trains_in_recognizer_with_pooled_backbone():
    torch.manual_seed(0)
    backbone = dict(TINY_BACKBONE, out_type='pooled')
    model = MODELS.build(
        dict(type='FrozenBackboneRecognizer3D', backbone=backbone,
             cls_head=dict(type='LinearProbeHead', num_classes=3, in_channels=32, norm='bn', topk=(1, )),
             data_preprocessor=PREPROCESSOR))
    optim_wrapper = build_optim_wrapper(
        model, dict(constructor='TrainableOptimWrapperConstructor', optimizer=dict(type='AdamW', lr=1e-2)))
    projector = {k: v.clone() for k, v in model.backbone.clip_projector.state_dict().items()}
    model.train()
    data = make_batch(6, 3)
    losses = [float(model.train_step(data, optim_wrapper)['loss'].detach()) for _ in range(8)]
    assert losses[-1] < losses[0]
    for key, value in model.backbone.clip_projector.state_dict().items():
        assert torch.equal(value, projector[key])


def shrink_pipeline(pipeline):
    """The paper pipeline at test size: 4 frames, 64 px short side, 56 px crops."""
    for step in pipeline:
        if step['type'] in ('SampleFrames', 'UniformSample'):
            step['clip_len'] = 4
            step.pop('frame_interval', None) if step['type'] == 'UniformSample' else step.update(frame_interval=2)
        elif step['type'] == 'Resize':
            step['scale'] = {(224, 224): (56, 56), (-1, 256): (-1, 64), (-1, 224): (-1, 56)}[tuple(step['scale'])]
        elif step['type'] in ('CenterCrop', 'ThreeCrop'):
            step['crop_size'] = 56
    return pipeline


def test_k400_probe_config_trains_and_tests_with_the_runner(video_clips, repo_root, tmp_path):
    """The real probe config (CutMix, RandAugment, label smoothing, ThreeCrop) run by MMEngine at tiny size."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    cfg = Config.fromfile(str(repo_root / 'configs/probe/attnprobe_ivnext-vit-b-p14_16x224_20e_k400.py'))
    assert cfg.model.cls_head.label_smooth_eps == 0.1 and cfg.optim_wrapper.optimizer.lr == 3e-4
    assert cfg.optim_wrapper.optimizer.betas == (0.9, 0.999) and cfg.train_cfg.max_epochs == 20
    assert any(s['type'] == 'ThreeCrop' for s in cfg.test_dataloader.dataset.pipeline)
    cfg.model.backbone.update(arch=dict(embed_dims=64, num_layers=2, num_heads=4), img_size=56, num_frames=4,
                              pretrained=None, use_flash_attn=False)
    cfg.model.cls_head.update(num_classes=4, in_channels=64, num_heads=4)
    cfg.model.data_preprocessor.blending.num_classes = 4
    for split, ann in (('train', video_clips.train_ann_file), ('val', video_clips.val_ann_file),
                       ('test', video_clips.val_ann_file)):
        loader = cfg[f'{split}_dataloader']
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        loader.dataset.update(ann_file=str(ann), data_prefix=dict(video=str(video_clips.video_dir)))
        shrink_pipeline(loader.dataset.pipeline)
    cfg.train_cfg.max_epochs = 2
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end=2)]
    cfg.optim_wrapper.optimizer.lr = 1e-2
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=2, save_best=None)
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    cfg.work_dir = str(tmp_path)

    runner = Runner.from_cfg(cfg)
    backbone_before = {k: v.clone() for k, v in runner.model.backbone.state_dict().items()}
    runner.train()
    for key, value in runner.model.backbone.state_dict().items():
        assert torch.equal(value, backbone_before[key]), key
    metrics = runner.test()
    assert 0.0 <= metrics['acc/top1'] <= 1.0
    assert (tmp_path / 'epoch_2.pth').is_file()


CONFIG_DIR = Path(__file__).resolve().parents[1] / 'configs'
EVAL_CONFIGS = sorted(str(p.relative_to(CONFIG_DIR)) for p in [*CONFIG_DIR.glob('probe/*.py'),
                                                               *CONFIG_DIR.glob('finetune/*.py')])


@pytest.mark.parametrize('name', EVAL_CONFIGS)
def test_configs_carry_the_paper_settings(name):
    from mmaction.registry import TRANSFORMS
    from mmengine.config import Config

    cfg = Config.fromfile(str(CONFIG_DIR / name))
    data = name.rsplit('_', 1)[-1][:-3]
    head = cfg.model.cls_head
    sweep = head.type == 'ProbeSweepHead'
    if sweep:  # every head of a probe sweep carries the settings of the single probe
        assert cfg.optim_wrapper.constructor == 'ProbeSweepOptimWrapperConstructor'
        assert cfg.optim_wrapper.clip_grad is None
        assert {'type': 'ProbeSweepHook'} in cfg.custom_hooks
        head = dict(head.head, num_classes=head.num_classes, in_channels=head.in_channels)
    assert head['label_smooth_eps'] == 0.1
    assert cfg.optim_wrapper.optimizer.type == 'AdamW' and cfg.optim_wrapper.optimizer.betas == (0.9, 0.999)
    train_steps = [s['type'] for s in cfg.train_dataloader.dataset.pipeline]
    test_steps = [s['type'] for s in cfg.test_dataloader.dataset.pipeline]
    assert 'ThreeCrop' in test_steps and 'TorchVisionWrapper' in train_steps
    assert ('Flip' in train_steps) == (data != 'ssv2')
    for step in cfg.train_dataloader.dataset.pipeline + cfg.test_dataloader.dataset.pipeline:
        TRANSFORMS.build(step)
    clip_len = [s for s in cfg.test_dataloader.dataset.pipeline if 'clip_len' in s][0]['clip_len']
    assert clip_len == cfg.model.backbone.num_frames == 16
    if name.startswith('probe/attnprobe'):
        lr, epochs = {'k400': (3e-4, 20), 'ssv2': (1e-3, 30), 'coin': (2e-4, 20)}.get(data, (None, None))
        if lr is not None:
            assert cfg.optim_wrapper.optimizer.lr == lr and cfg.train_cfg.max_epochs == epochs
        assert cfg.model.type == 'FrozenBackboneRecognizer3D' and cfg.model.backbone.out_type == 'tokens'
        assert sweep or cfg.optim_wrapper.constructor == 'TrainableOptimWrapperConstructor'
        blending = cfg.model.data_preprocessor.blending
        assert blending.type == 'CutmixBlending' and blending.num_classes == head['num_classes']
        assert head['in_channels'] == {'base': 768, 'large': 1024}[cfg.model.backbone.arch]
    if name.startswith('finetune/'):
        assert cfg.optim_wrapper.constructor == 'LayerDecayOptimWrapperConstructor'
        rate = {'base': 0.75, 'large': 0.85}[cfg.model.backbone.arch]
        assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == rate
