"""The README's demo entry point at smoke sizes: every step runs, the table comes from the leaderboard harness
(probe sweeps selected on val, reported on the held-out test split), artefacts are complete, reruns reuse them."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmaction.registry import MODELS
from mmengine.config import Config

import ivnext  # noqa: F401
from ivnext.demo import configs as demo_configs
from ivnext.demo.steps import ENCODERS, STEPS
from ivnext.evaluation.selection import select_setting
from ivnext.models.algorithms.clip_geometry import ClipGeometry

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def run(work_dir):
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    proc = subprocess.run([sys.executable, osp.join(REPO, 'tools', 'demo', 'run_demo.py'), '--smoke',
                           '--work-dir', str(work_dir)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(osp.join(work_dir, 'table.json')) as f:
        return json.load(f), proc.stdout


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    work = tmp_path_factory.mktemp('demo')
    first, stdout = run(work)
    return work, first, stdout


def test_smoke_run_writes_every_artefact(demo):
    work, report, stdout = demo
    assert report['mode'] == 'smoke'
    assert report['chance'] == pytest.approx({'appearance': 1 / 3, 'motion': 1 / 2})
    assert report['counts'] == dict(train=6, val=6, test=6, pretrain=2)
    for name in ('stage1', 'pixel_linear', 'stage2'):
        stage = report['stages'][name]
        assert osp.isfile(stage['checkpoint']) and stage['iters'] == 2 and stage['batch_size'] == 2
        assert report['wall_seconds'][name] > 0 and report['cpu_seconds'][name] > 0
        cfg = Config.fromfile(osp.join(work, 'configs', f'{name}.py'))
        assert cfg.work_dir == osp.join(str(work), 'work_dirs', name)
        assert cfg.model.backbone.num_frames == 2 and cfg.model.backbone.img_size == 56
        logs = [f for d, _, fs in os.walk(cfg.work_dir) for f in fs if f.endswith('.log')]
        assert logs, f'no MMEngine log for {name}'
    stage1 = Config.fromfile(osp.join(work, 'configs', 'stage1.py'))
    assert stage1.model.teacher.type == 'CachedTeacher'
    inner = stage1.model.teacher.teacher
    assert inner.type == 'DINOv2Teacher'
    assert inner.pretrained == osp.join(str(work), 'teacher', 'dinov2_vits14')
    assert stage1.model.head.type == 'ConditionalDiffusionHead'
    # the predictor's grid and the teacher's image size derive from the encoder when the model is built
    geometry = ClipGeometry.of(MODELS.build(stage1.model.backbone))
    assert geometry.grid == (2, 4, 4) and geometry.teacher_image_size(14) == 56
    pixel = Config.fromfile(osp.join(work, 'configs', 'pixel_linear.py'))
    assert pixel.model.teacher is None and pixel.model.head.type == 'LinearPixelHead'
    stage2 = Config.fromfile(osp.join(work, 'configs', 'stage2.py'))
    assert stage2.model.stage1_checkpoint == report['stages']['stage1']['checkpoint']
    # Stage-1 checkpoints hold the student, not the frozen teacher.
    state = torch.load(report['stages']['stage1']['checkpoint'], map_location='cpu', weights_only=False)
    assert any(k.startswith('backbone.') for k in state['state_dict'])
    assert not any(k.startswith('teacher.') for k in state['state_dict'])
    assert report['recon_mse']['baseline_mse'] > 0 and report['recon_mse']['mse'] > 0
    assert report['recon_mse']['mse_ddpm'] > 0
    import cv2
    assert report['images']
    for rel in report['images']:
        image = cv2.imread(osp.join(work, rel))
        # three rows (original / masked / reconstructed) of 56 px frames with 2 px gaps
        assert image is not None and image.shape[0] == 3 * (56 + 2) + 2
    assert osp.isfile(osp.join(work, 'demo.log'))
    assert report['peak_rss_mb'] > 0
    assert set(report['wall_seconds']) >= {step.name for step in STEPS} | {'total (this run)'}


def test_table_comes_from_the_harness(demo):
    work, report, stdout = demo
    rows = report['rows']
    assert [(r['encoder'], r['task']) for r in rows] == [(e, t) for e, _ in ENCODERS for t in ('appearance', 'motion')]
    probe = Config.fromfile(osp.join(work, 'configs', 'probe.py'))
    settings = probe.model.cls_head.settings
    assert probe.model.cls_head.type == 'ProbeSweepHead' and len(settings) == 6
    assert probe.model.cls_head.head.type == 'LinearProbeHead'
    for r in rows:
        m = r['measured']
        assert m['clips'] == dict(train=6, val=6, test=6) and m['reported_split'] == 'test'
        # the setting is chosen on val; 6 test clips and 2 heads per setting: means are multiples of 1/12
        assert m['selected_heads'] == select_setting(settings, [h['val_top1'] for h in m['heads']])
        assert 0.0 <= m['test_top1'] <= 1.0 and 12 * m['test_top1'] == pytest.approx(round(12 * m['test_top1']))
        assert r['paper'] is None  # the demo's encoders are not the paper's
    teacher = [r for r in rows if r['encoder'] == 'teacher']
    # the frozen image teacher, per frame through TransformersBackbone: its CLS token is its prefix token
    assert all(r['protocol']['frames'] == 2 for r in teacher)
    table = open(osp.join(work, 'table.md')).read()
    for label in [label for _, label in ENCODERS] + ['chance', 'what each stage bought', 'masked-patch MSE',
                                                      'measured test top-1', 'CPU (s)']:
        assert label in table and label in stdout
    assert osp.isfile(osp.join(work, 'probes', 'results', 'teacher__motion.json'))


def test_rerun_reuses_everything(demo):
    work, first, _ = demo
    mtimes = {n: os.stat(first['stages'][n]['checkpoint']).st_mtime_ns for n in first['stages']}
    second, stdout = run(work)
    assert all(second['reused'][n] for n in ('data', 'stage1', 'pixel_linear', 'stage2', 'features + probes',
                                             'reconstructions + MSE'))
    assert {n: os.stat(second['stages'][n]['checkpoint']).st_mtime_ns for n in second['stages']} == mtimes
    assert [r['measured'] for r in second['rows']] == [r['measured'] for r in first['rows']]
    assert 'reusing' in stdout


def test_clip_shape_and_schedule_overrides_reach_every_part():
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'demo', 'ivnext_demo_stage1.py'))
    demo_configs.set_clip_shape(cfg._cfg_dict, 2, 42)
    assert (cfg.model.backbone.num_frames, cfg.model.backbone.img_size) == (2, 42)
    # one edit: the predictor's grid and the teacher's image size follow the encoder at build time
    assert 'grid_size' not in cfg.model.neck and 'image_size' not in cfg.model.teacher.teacher
    assert 'grid_size' not in cfg.model.align_head
    types = {t['type']: t for t in cfg.train_dataloader.dataset.pipeline}
    assert types['UniformSample']['clip_len'] == 2 and types['UniformSample']['test_mode']
    assert types['Resize']['scale'] == (42, 42)
    val = {t['type']: t for t in cfg.val_pipeline}
    assert val['Resize']['scale'] == (-1, 42) and val['CenterCrop']['crop_size'] == 42
    probe = Config.fromfile(osp.join(REPO, 'configs', 'demo', 'ivnext_demo_probe.py'))
    assert probe.model.cls_head.head.time_slots == probe.model.backbone.num_frames
    demo_configs.set_clip_shape(probe._cfg_dict, 2, 42)
    assert probe.model.cls_head.head.time_slots == probe.model.backbone.num_frames == 2
    demo_configs.set_iterations(cfg, 3)
    assert cfg.train_cfg.max_iters == 3 and cfg.default_hooks.checkpoint.interval == 3
    assert cfg.param_scheduler[-1].end == 3 and cfg.param_scheduler[0].end >= 1


def test_text_retrieval_step_reports_each_encoder_on_held_out_clips(demo):
    work, report, stdout = demo
    from ivnext.demo.steps import RETRIEVAL_ENCODERS
    results = report['results']['text_retrieval']
    assert list(results) == list(RETRIEVAL_ENCODERS)
    for r in results.values():
        # 3 shapes x 2 motions: one held-out test clip per pair is searched; R@k is a multiple of 1 / 6
        assert r['gallery'] == 6 and r['eval_split'] == 'test' and r['train_clips'] == 6 and r['steps'] >= 1
        assert r['chance_r1'] == pytest.approx(100 / 6) and r['chance_r5'] == pytest.approx(500 / 6)
        assert 0 <= r['r1'] <= r['r5'] <= 100 and 6 * r['r1'] / 100 == pytest.approx(round(6 * r['r1'] / 100))
        # the top clip's shape / motion: right whenever R@1 is, a multiple of 1 / 6, chance 1 / 3 and 1 / 2
        assert r['r1'] <= min(r['appearance_top1'], r['motion_top1']) and r['motion_top1'] <= 100
        assert r['chance_appearance_top1'] == pytest.approx(100 / 3) and r['chance_motion_top1'] == 50.0
        assert 6 * r['motion_top1'] / 100 == pytest.approx(round(6 * r['motion_top1'] / 100))
    assert 'Text-to-video retrieval' in (work / 'table.md').read_text()
