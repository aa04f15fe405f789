"""The leaderboard: encoders x tasks through the probe-sweep harness, one table in Markdown / CSV / JSON, with the
protocol beside each number and the paper's reported numbers in their own column, never in a measured one."""
import csv
import json
import os.path as osp

import pytest
import torch
import yaml
from mmengine.config import Config

from helpers_video import render_clip, write_clip_set, write_mp4
from ivnext.evaluation import leaderboard as lb
from ivnext.evaluation.paper_results import PAPER_RESULTS
from ivnext.evaluation.selection import select_setting
from ivnext.models.heads.probe_sweep_head import select_best

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SMALL = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=48)
ENCODERS = [
    dict(name='ivnext-tiny', label='ivnext tiny (random init)', paper='internvideo-next-b-stage2',
         backbone=dict(type='InternVideoNextViT', arch=dict(embed_dims=32, num_layers=1, num_heads=2, mlp_ratio=2.0),
                       img_size=56, patch_size=14, num_frames=4, tubelet_size=1, use_flash_attn=False,
                       with_clip_projector=False)),
    dict(name='vjepa2-tiny', backbone=dict(type='TransformersBackbone', model_type='vjepa2', model_config=dict(
        SMALL, crop_size=56, frames_per_clip=4, patch_size=14, tubelet_size=2, pred_hidden_size=16,
        pred_num_hidden_layers=1, pred_num_attention_heads=2, pred_num_mask_tokens=2))),
    dict(name='videomae-tiny', backbone=dict(type='TransformersBackbone', model_type='videomae', model_config=dict(
        SMALL, image_size=56, num_frames=4, patch_size=14, tubelet_size=2))),
]
# Two heads per setting (init replicas), two settings: the selection rule picks a setting on val.
SETTINGS = [dict(lr=1e-3, weight_decay=0.05)] * 2 + [dict(lr=1e-2, weight_decay=0.05)] * 2


@pytest.fixture(scope='module')
def board(tmp_path_factory):
    """Tiny generated videos (4 classes), a task config with a held-out test list, a YAML spec, and one CLI run."""
    root = tmp_path_factory.mktemp('leaderboard')
    clips = write_clip_set(root / 'clips', clips_per_class=3, num_frames=8, size=64)  # train 8 / val 4 clips
    lines = []
    for label in range(4):  # held-out test clips, drawn apart from train and val
        name = f'test_class{label}.mp4'
        write_mp4(clips.video_dir / name, render_clip(label, 8, 64, seed=1000 + label))
        lines.append(f'{name} {label}')
    (root / 'clips' / 'test.txt').write_text('\n'.join(lines) + '\n')
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'demo', 'ivnext_demo_probe.py'))
    cfg.model.cls_head = dict(type='ProbeSweepHead', num_classes=4, in_channels=128, settings=SETTINGS,
                              head=dict(type='AttentiveProbeHead', num_heads=None, num_cls_tokens=4, time_slots=4,
                                        label_smooth_eps=0.0))
    cfg.optim_wrapper.constructor = 'ProbeSweepOptimWrapperConstructor'
    for step in cfg.val_pipeline:
        if step['type'] == 'Resize':
            step['scale'] = (-1, 56)
        elif step['type'] == 'CenterCrop':
            step['crop_size'] = 56
    for split, ann in (('train', clips.train_ann_file), ('val', clips.val_ann_file),
                       ('test', root / 'clips' / 'test.txt')):
        cfg[f'{split}_dataloader'] = dict(cfg.val_dataloader, batch_size=4)
        cfg[f'{split}_dataloader'].dataset = dict(cfg.val_dataloader.dataset, ann_file=str(ann), num_classes=4,
                                                  data_prefix=dict(video=str(clips.video_dir)),
                                                  pipeline=cfg.val_pipeline)
    cfg.train_cfg.max_epochs = 3
    cfg.param_scheduler[0].end = 3
    config = root / 'task.py'
    cfg.dump(str(config))
    spec = dict(encoders=ENCODERS, tasks=[
        dict(name='squares', label='moving squares', config=str(config), paper_task='K400'),
        dict(name='squares-bs2', config=str(config), cfg_options={'train_dataloader.batch_size': 2})])
    spec_path = root / 'spec.yaml'
    spec_path.write_text(yaml.safe_dump(spec))
    from ivnext.cli.leaderboard import main
    work = root / 'work'
    assert main([str(spec_path), '--work-dir', str(work)]) == 0
    with open(work / 'leaderboard.json') as f:
        rows = json.load(f)['rows']
    return dict(root=root, spec=spec_path, work=work, rows=rows, clips=clips)


def test_every_encoder_x_task_is_a_row_with_its_protocol(board):
    rows = board['rows']
    assert [(r['encoder'], r['task']) for r in rows] == [
        (e['name'], t) for e in ENCODERS for t in ('squares', 'squares-bs2')]
    for r in rows:
        m, p = r['measured'], r['protocol']
        assert m['clips'] == dict(train=8, val=4, test=4) and m['reported_split'] == 'test'
        for key in ('val_top1', 'test_top1', 'train_top1'):
            assert 0.0 <= m[key] <= 1.0
        # 4 heads, 2 settings: the reported numbers are the means over the heads of the setting chosen on val.
        heads = m['heads']
        assert len(heads) == 4 and m['selected_heads'] == select_setting(SETTINGS, [h['val_top1'] for h in heads])
        assert m['val_top1'] == pytest.approx(sum(heads[i]['val_top1'] for i in m['selected_heads']) / 2)
        assert (p['frames'], p['size'], p['views']) == (4, 56, '1 clip x 1 crop')
        assert p['probe'] == '4 x AttentiveProbeHead (lr 0.001, 0.01; wd 0.05; 2 inits each), 3 ep x ' + (
            '4' if r['task'] == 'squares' else '2')
        assert 'best mean val top-1' in p['selection']


def test_tasks_share_the_tokens_and_the_head_fits_each_encoder(board):
    log = []
    encoders = [lb.EncoderSpec(**e) for e in ENCODERS]
    tasks = [lb.TaskSpec(name='a', config=str(board['root'] / 'task.py')),
             lb.TaskSpec(name='b', config=str(board['root'] / 'task.py'), cfg_options={'train_cfg.max_epochs': 1})]
    cache = {}
    for task in tasks:
        lb.evaluate(encoders[1], task, cache, log.append)
    assert sum('extracting' in line for line in log) == 3  # train / val / test once, for both tasks
    widths = {}
    for spec in encoders:
        cfg, prefix = lb.task_config(spec, tasks[0])
        head = cfg.model.cls_head.head
        widths[spec.name] = (cfg.model.cls_head.in_channels, prefix, head.num_cls_tokens, head.time_slots)
    # ivnext: 4 CLS tokens, tubelet 1 (4 token frames); V-JEPA 2 / VideoMAE: no prefix, tubelet 2 (2 token frames)
    assert widths == {'ivnext-tiny': (32, 4, 4, 4), 'vjepa2-tiny': (32, 0, 0, 2), 'videomae-tiny': (32, 0, 0, 2)}


def test_linear_probe_reads_the_prefix_only_of_encoders_that_have_one(board):
    head = dict(type='LinearProbeHead', norm='bn', num_cls_tokens=4, time_slots=4, spatial_cells=2, with_prefix=True)
    task = lb.TaskSpec(name='a', config=str(board['root'] / 'task.py'), cfg_options={'model.cls_head.head': head})
    layouts = {}
    for spec in ENCODERS:
        cfg, prefix = lb.task_config(lb.EncoderSpec(**spec), task)
        single = cfg.model.cls_head.head
        layouts[spec['name']] = (prefix, single.num_cls_tokens, single.with_prefix, single.time_slots)
    assert layouts == {'ivnext-tiny': (4, 4, True, 4), 'vjepa2-tiny': (0, 0, False, 2),
                       'videomae-tiny': (0, 0, False, 2)}


def test_paper_numbers_stay_in_their_own_column(board):
    rows, work = board['rows'], board['work']
    paper_b = PAPER_RESULTS['internvideo-next-b-stage2']['top1']['K400']
    for r in rows:
        if (r['encoder'], r['task']) == ('ivnext-tiny', 'squares'):
            assert r['paper']['top1'] == paper_b and 'Table 1' in r['paper']['source']
        else:  # no paper model, or a task the paper does not report: empty, never filled from a measurement
            assert r['paper'] is None
        assert set(r['measured']) & {'paper', 'paper_top1', 'top1'} == set()
    with open(work / 'leaderboard.csv') as f:
        table = list(csv.DictReader(f))
    assert tuple(table[0]) == lb.CSV_COLUMNS
    measured_cols = [c for c in lb.CSV_COLUMNS if c.startswith('measured_')]
    for r, line in zip(rows, table):
        for col in measured_cols:
            value = line[col]
            assert value == '' or 0.0 <= float(value) <= 1.0  # fractions of this run, never the paper's percent
        expected = '' if r['paper'] is None else str(paper_b)
        assert line['paper_reported_top1'] == expected
        assert float(line['measured_val_top1']) == pytest.approx(r['measured']['val_top1'])
    md = (work / 'leaderboard.md').read_text().splitlines()
    header = [c.strip() for c in md[0].strip('|').split('|')]
    assert header[-1] == 'paper, reported top-1 (%)' and header[2] == 'measured val top-1 (%)'
    body = [[c.strip() for c in line.strip('|').split('|')] for line in md[2:2 + len(rows)]]
    for r, cells in zip(rows, body):
        assert all(str(paper_b) not in c for c in cells[:-1])
        assert cells[-1] == ('' if r['paper'] is None else f'{paper_b} (InternVideo-Next ViT-B/14, Stage 2)')
        assert cells[2].split(' ')[0] == f'{100 * r["measured"]["val_top1"]:.1f}'
    assert any(line.startswith('Paper column: reported, not measured') for line in md)


def test_rerun_reuses_rows_and_a_changed_task_reruns(board, capsys):
    encoders, tasks = lb.load_spec(str(board['spec']))
    rows = lb.run_leaderboard(encoders, tasks, str(board['work']))
    assert all(r['reused'] for r in rows)
    assert [r['measured'] for r in rows] == [r['measured'] for r in board['rows']]
    tasks[1].cfg_options['train_cfg.max_epochs'] = 1
    rows = lb.run_leaderboard(encoders[:1], tasks, str(board['work']))
    assert [r['reused'] for r in rows] == [True, False]


def test_selection_rule_and_spec_errors(tmp_path):
    settings = [dict(lr=1.0)] * 2 + [dict(lr=2.0)] * 2
    assert select_setting(settings, [0.5, 0.7, 0.9, 0.2]) == [0, 1]  # means 0.6 vs 0.55
    assert select_setting(settings, [0.5, 0.6, 0.6, 0.5]) == [0, 1]  # tie: first setting
    distinct = [dict(lr=float(i)) for i in range(4)]
    top1 = [0.2, 0.7, 0.7, 0.1]
    assert select_setting(distinct, top1) == [select_best(top1)]  # one head per setting: select_best
    spec = tmp_path / 'spec.json'
    spec.write_text(json.dumps(dict(encoders=[dict(ENCODERS[0], colour='red')], tasks=[])))
    with pytest.raises(ValueError, match=r"encoders\[0\] has unknown fields \['colour'\]"):
        lb.load_spec(str(spec))
    spec.write_text(json.dumps(dict(encoders=[dict(ENCODERS[0], paper='my-model')], tasks=[])))
    with pytest.raises(KeyError, match='paper=.my-model. is not a paper model'):
        lb.load_spec(str(spec))
    with pytest.raises(FileNotFoundError, match='task .k400.: config nowhere.py does not exist'):
        lb.TaskSpec(name='k400', config='nowhere.py')
    with pytest.raises(ValueError, match='letters, digits'):
        lb.EncoderSpec(name='a b', backbone=dict(type='InternVideoNextViT'))
    torch.manual_seed(0)


def test_cached_probe_learns_separable_tokens_and_not_noise():
    from ivnext.evaluation.cached_probe import train_probe
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'demo', 'ivnext_demo_probe.py'))
    # One head; tokens without CLS or frames here; random token subsets need the whole-clip pool (time_slots=1).
    cfg.model.cls_head = dict(type='AttentiveProbeHead', num_classes=3, in_channels=24, num_heads=None,
                              num_cls_tokens=0, time_slots=1, label_smooth_eps=0.0)
    cfg.train_cfg.max_epochs = 25
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 24, generator=g) * 2

    def tokens(n, informative=True):
        y = torch.arange(n) % 3
        x = torch.randn(n, 10, 24, generator=g)
        if informative:
            x[:, :3] += centres[y].unsqueeze(1)  # a few tokens per clip carry the class
        return x, y

    (tx, ty), (vx, vy), (sx, sy) = tokens(60), tokens(30), tokens(30)
    good = train_probe(cfg, 3, tx, ty, vx, vy, seed=0, train_tokens=6, test_x=sx, test_y=sy)
    assert good['top1'] > 0.9 and good['test_top1'] > 0.9
    (tx, ty), (vx, vy) = tokens(60, False), tokens(30, False)
    noise = train_probe(cfg, 3, tx, ty, vx, vy, seed=0, train_tokens=6)
    assert noise['top1'] < 0.7 and 'test_top1' not in noise
    # A random token subset would mix frames across the time slots of the frame-wise pool: refused.
    cfg.model.cls_head.time_slots = 2
    with pytest.raises(ValueError, match='probe_train_tokens'):
        train_probe(cfg, 3, tx, ty, vx, vy, seed=0, train_tokens=6)
