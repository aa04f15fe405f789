"""Probe sweeps: N heads with their own lr / weight decay on one frozen forward, the best one selected on val."""
import copy
import json
import types

import pytest
import torch
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from mmengine.config import Config
from mmengine.logging import MessageHub, MMLogger
from mmengine.optim import build_optim_wrapper
from test_probe import PREPROCESSOR, TINY_BACKBONE, make_batch, shrink_pipeline

from ivnext.hooks import ProbeSweepHook
from ivnext.models.backbones import InternVideoNextViT
from ivnext.models.heads import ProbeSweepHead
from ivnext.models.heads.probe_sweep_head import expand_grid, select_best

SETTINGS = [dict(lr=1e-3, weight_decay=0.05), dict(lr=3e-3, weight_decay=0.0), dict(lr=1e-2, weight_decay=0.3)]
HEADS = {'AttentiveProbeHead': dict(type='AttentiveProbeHead', num_heads=4, label_smooth_eps=0.1, topk=(1, )),
         'LinearProbeHead': dict(type='LinearProbeHead', norm='ln', num_cls_tokens=4, label_smooth_eps=0.1, topk=(1, ))}


def recognizer(cls_head: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    model = MODELS.build(dict(type='FrozenBackboneRecognizer3D', backbone=copy.deepcopy(TINY_BACKBONE),
                              cls_head=cls_head, data_preprocessor=PREPROCESSOR))
    model.init_weights()
    return model


@pytest.mark.parametrize('head_type', sorted(HEADS))
def test_each_head_steps_exactly_like_a_single_head_run(head_type):
    sweep = recognizer(dict(type='ProbeSweepHead', num_classes=3, in_channels=32, head=HEADS[head_type],
                            settings=SETTINGS))
    optim = build_optim_wrapper(sweep, dict(constructor='ProbeSweepOptimWrapperConstructor',
                                            optimizer=dict(type='AdamW', lr=1.0, betas=(0.9, 0.999),
                                                           weight_decay=1.0)))
    # Single-head runs: same backbone, the same initial head, AdamW at the head's lr / weight decay.
    singles = []
    for i, setting in enumerate(SETTINGS):
        single = recognizer(dict(HEADS[head_type], num_classes=3, in_channels=32))
        single.backbone.load_state_dict(sweep.backbone.state_dict())
        single.cls_head.load_state_dict(sweep.cls_head.heads[i].state_dict())
        single_optim = build_optim_wrapper(single, dict(constructor='TrainableOptimWrapperConstructor',
                                                        optimizer=dict(type='AdamW', betas=(0.9, 0.999), **setting)))
        singles.append((single, single_optim))
    start = [copy.deepcopy(h.state_dict()) for h in sweep.cls_head.heads]
    sweep.train()
    batches = [make_batch(6, 3, seed=s) for s in (0, 1)]
    for data in batches:
        sweep.train_step(copy.deepcopy(data), optim)
        for single, single_optim in singles:
            single.train()
            single.train_step(copy.deepcopy(data), single_optim)
    for i, (single, _) in enumerate(singles):
        for name, value in single.cls_head.state_dict().items():
            swept = sweep.cls_head.heads[i].state_dict()[name]
            torch.testing.assert_close(swept, value, rtol=0, atol=1e-6, msg=f'head {i} {name}')
        assert not torch.equal(single.cls_head.fc_cls.weight, start[i]['fc_cls.weight'])
    # Different settings, different heads.
    w = [sweep.cls_head.heads[i].fc_cls.weight for i in range(3)]
    assert not torch.allclose(w[0], w[1]) and not torch.allclose(w[1], w[2])


def test_groups_carry_each_heads_settings_and_clip_grad_is_refused():
    sweep = recognizer(dict(type='ProbeSweepHead', num_classes=3, in_channels=32, head=HEADS['AttentiveProbeHead'],
                            grid=dict(lr=[1e-3, 1e-2], weight_decay=[0.0, 0.1])))
    assert sweep.cls_head.settings == expand_grid(dict(lr=[1e-3, 1e-2], weight_decay=[0.0, 0.1]))
    assert [s['lr'] for s in sweep.cls_head.settings] == [1e-3, 1e-3, 1e-2, 1e-2]
    optim = build_optim_wrapper(sweep, dict(constructor='ProbeSweepOptimWrapperConstructor',
                                            optimizer=dict(type='AdamW', lr=5e-4, weight_decay=0.05)))
    groups = optim.optimizer.param_groups
    assert {id(p) for g in groups for p in g['params']} == {id(p) for p in sweep.cls_head.parameters()}
    for g in groups:
        setting = sweep.cls_head.settings[g['head']]
        assert g['lr'] == setting['lr']
        # Norms, biases and the query tokens have no weight decay, as in the single-head constructor.
        assert g['weight_decay'] in (setting['weight_decay'], 0.0)
    queries = sweep.cls_head.heads[3].query_tokens
    assert [g['weight_decay'] for g in groups if any(p is queries for p in g['params'])] == [0.0]
    with pytest.raises(ValueError, match='clip_grad'):
        build_optim_wrapper(sweep, dict(constructor='ProbeSweepOptimWrapperConstructor', clip_grad=dict(max_norm=1),
                                        optimizer=dict(type='AdamW', lr=5e-4)))
    with pytest.raises(ValueError, match='exactly one of grid'):
        ProbeSweepHead(3, 32, head=HEADS['AttentiveProbeHead'])


def test_backbone_runs_once_per_batch_whatever_the_number_of_heads():
    calls = []
    for num_heads in (1, 5):
        sweep = recognizer(dict(type='ProbeSweepHead', num_classes=3, in_channels=32, head=HEADS['AttentiveProbeHead'],
                                grid=dict(lr=[1e-3] * num_heads)))
        optim = build_optim_wrapper(sweep, dict(constructor='ProbeSweepOptimWrapperConstructor',
                                                optimizer=dict(type='AdamW', lr=1e-3)))
        count = [0]
        sweep.backbone.register_forward_hook(lambda *args: count.__setitem__(0, count[0] + 1))
        sweep.train()
        for seed in range(3):
            sweep.train_step(make_batch(4, 3, seed=seed), optim)
        sweep.eval()
        sweep.test_step(make_batch(2, 3, views=3))
        calls.append(count[0])
    assert calls == [4, 4]


def test_select_best_takes_the_highest_top1_and_the_lowest_index_on_ties():
    assert select_best([0.2, 0.7, 0.5]) == 1
    assert select_best([0.5, 0.7, 0.7, 0.1]) == 1
    assert select_best([0.3]) == 0
    with pytest.raises(ValueError):
        select_best([])


def fake_runner(model, work_dir):
    return types.SimpleNamespace(model=model, work_dir=str(work_dir), epoch=1, iter=10,
                                 message_hub=MessageHub.get_instance('probe_sweep_test'),
                                 logger=MMLogger.get_current_instance())


def scripted_sweep(perfect):
    """4 linear heads on (B, 3) features equal to the one-hot label: heads in ``perfect`` are always right, the
    others always wrong."""
    head = ProbeSweepHead(3, 3, head=dict(type='LinearProbeHead', norm=None), settings=[dict(lr=0.1 * (i + 1))
                                                                                      for i in range(4)]).eval()
    with torch.no_grad():
        for i, h in enumerate(head.heads):
            h.fc_cls.weight.copy_(torch.eye(3) if i in perfect else torch.eye(3).roll(1, 0))
            h.fc_cls.bias.zero_()
    return head


def val_samples(head, labels):
    feats = torch.nn.functional.one_hot(torch.tensor(labels), 3).float()
    return head.predict(feats, [ActionDataSample().set_gt_label(y) for y in labels])


@pytest.mark.parametrize('perfect,expected', [((2, ), 2), ((1, 3), 1)])
def test_hook_logs_every_head_selects_and_saves_the_best(perfect, expected, tmp_path):
    head = scripted_sweep(perfect)
    model = types.SimpleNamespace(cls_head=head)
    runner = fake_runner(model, tmp_path)
    hook = ProbeSweepHook()
    hook.before_val_epoch(runner)
    for labels in ([0, 1, 2], [2, 1]):
        hook.after_val_iter(runner, 0, None, val_samples(head, labels))
    metrics = {}
    hook.after_val_epoch(runner, metrics)
    top1 = [1.0 if i in perfect else 0.0 for i in range(4)]
    assert [metrics[f'sweep/head_{i:02d}_top1'] for i in range(4)] == top1
    assert metrics['sweep/best_head'] == expected and metrics['sweep/best_top1'] == 1.0
    assert int(head.selected) == expected and 'selected' in head.state_dict()
    report = json.loads((tmp_path / 'probe_sweep.json').read_text())
    assert report['selected'] == expected and [h['top1'] for h in report['validations'][-1]['heads']] == top1
    assert report['validations'][-1]['heads'][expected]['lr'] == pytest.approx(0.1 * (expected + 1))
    best = torch.load(tmp_path / 'best_probe_head.pth', weights_only=True)
    assert torch.equal(best['state_dict']['cls_head.fc_cls.weight'], head.heads[expected].fc_cls.weight)
    # Predictions now come from the selected head.
    samples = val_samples(head, [0, 1])
    expected_scores = head.heads[expected](torch.eye(3)[:2]).softmax(-1)
    torch.testing.assert_close(torch.stack([s.pred_score for s in samples]), expected_scores)
    assert [int(s.pred_label) for s in samples] == [0, 1]


def test_cached_feature_path_trains_the_sweep_and_reports_the_best(repo_root):
    from ivnext.evaluation.cached_probe import train_probe
    from test_probe import separable_tokens

    cfg = Config.fromfile(str(repo_root / 'configs/probe/attnprobe-sweep_ivnext-vit-b-p14_16x224_20e_k400.py'))
    cfg.model.cls_head.update(in_channels=32, head=dict(type='AttentiveProbeHead', num_heads=4, label_smooth_eps=0.1),
                              grid=dict(lr=[1e-6, 3e-3], weight_decay=[0.05]))
    cfg.train_cfg.max_epochs = 3
    cfg.train_dataloader.batch_size = 32
    x, y = separable_tokens(128, 4, 16, 32, seed=1)
    vx, vy = separable_tokens(64, 4, 16, 32, seed=2)
    result = train_probe(cfg, 4, x, y, vx, vy)
    assert len(result['head_top1']) == 2 and result['best_head'] == select_best(result['head_top1'])
    assert result['top1'] == result['head_top1'][result['best_head']]
    assert result['head_top1'][1] > result['head_top1'][0]  # lr 3e-3 learns, lr 1e-6 barely moves


def test_sweep_config_trains_through_tools_train_over_videos(repo_root, video_clips, tmp_path, monkeypatch):
    from ivnext.cli.train import main

    cfg = Config.fromfile(str(repo_root / 'configs/probe/attnprobe-sweep_ivnext-vit-b-p14_16x224_20e_k400.py'))
    cfg.model.backbone.update(arch=dict(embed_dims=64, num_layers=2, num_heads=4), img_size=56, num_frames=4,
                              pretrained=None, use_flash_attn=False)
    cfg.model.cls_head.update(num_classes=4, in_channels=64, head=dict(type='AttentiveProbeHead', num_heads=4,
                                                                       label_smooth_eps=0.1),
                              grid=dict(lr=[1e-3, 1e-2], weight_decay=[0.0, 0.05]))
    cfg.model.data_preprocessor.blending.num_classes = 4
    for split, ann in (('train', video_clips.train_ann_file), ('val', video_clips.val_ann_file),
                       ('test', video_clips.val_ann_file)):
        loader = cfg[f'{split}_dataloader']
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        loader.dataset.update(ann_file=str(ann), data_prefix=dict(video=str(video_clips.video_dir)))
        shrink_pipeline(loader.dataset.pipeline)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=2)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint.update(interval=2, by_epoch=False)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    config = tmp_path / 'sweep.py'
    cfg.dump(str(config))

    calls = [0]
    forward = InternVideoNextViT.forward

    def counting(self, *args, **kwargs):
        calls[0] += 1
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(InternVideoNextViT, 'forward', counting)
    main([str(config), '--work-dir', str(tmp_path / 'work')])
    # 2 training batches + 2 validation batches (4 clips, batch 2): one backbone pass each, for 4 heads.
    assert calls[0] == 4
    report = json.loads((tmp_path / 'work' / 'probe_sweep.json').read_text())
    top1 = [h['top1'] for h in report['validations'][-1]['heads']]
    assert len(top1) == 4 and report['selected'] == select_best(top1)
    assert (tmp_path / 'work' / 'best_probe_head.pth').is_file()
    assert list((tmp_path / 'work').glob('best_sweep_best_top1*.pth'))


def test_benchmark_measures_one_backbone_forward_per_step():
    from ivnext.analysis.probe_sweep import format_sweep_table, measure_sweep

    arch = dict(embed_dims=32, num_layers=1, num_heads=4)
    records = [measure_sweep(n, batch=2, num_frames=2, img_size=28, arch=arch, num_classes=3, steps=1, warmup=0)
               for n in (1, 3)]
    assert [r['backbone_forwards_per_step'] for r in records] == [1, 1]
    one, three = records
    assert one['gflops']['backbone_fwd'] == three['gflops']['backbone_fwd'] > 0
    assert three['gflops']['heads_fwd'] == pytest.approx(3 * one['gflops']['heads_fwd'])
    assert three['head_state_mib'] == pytest.approx(3 * one['head_state_mib'])
    assert format_sweep_table(records).count('\n') == 3
