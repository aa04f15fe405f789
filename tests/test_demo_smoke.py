"""The README's demo entry point at smoke sizes: every step runs, artefacts are complete, reruns reuse them."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

import ivnext  # noqa: F401
from mmaction.registry import MODELS
from mmengine.config import Config

from ivnext.evaluation import cached_probe
from ivnext.demo import run as run_demo
from ivnext.models.algorithms.clip_geometry import ClipGeometry

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

ENCODERS = ('random', 'pixel_linear', 'stage1', 'stage2')


def run(work_dir):
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    proc = subprocess.run([sys.executable, osp.join(REPO, 'tools', 'demo', 'run_demo.py'), '--smoke',
                           '--work-dir', str(work_dir)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
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
    for name in ENCODERS:
        for kind in ('appearance', 'motion'):
            top1 = report['results'][name][kind]['top1']
            assert 0.0 <= top1 <= 1.0
            # 6 val clips and 1 probe seed: accuracies are multiples of 1/6.
            assert top1 * 6 == pytest.approx(round(top1 * 6))
    for name in ('stage1', 'pixel_linear', 'stage2'):
        stage = report['stages'][name]
        assert osp.isfile(stage['checkpoint']) and stage['iters'] == 2 and stage['batch_size'] == 2
        assert report['wall_seconds'][name] > 0
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

    table = open(osp.join(work, 'table.md')).read()
    for kind in ('appearance', 'motion'):
        assert set(report['calibration'][kind]) == {'teacher_mean', 'teacher_frames', 'pixels'}
        for name in ENCODERS:
            assert set(report['linear'][name][kind]) == {'mean', 'frames'}
    assert report['recon_mse']['baseline_mse'] > 0 and report['recon_mse']['mse'] > 0
    assert report['recon_mse']['mse_ddpm'] > 0
    probe = Config.fromfile(osp.join(work, 'configs', 'probe.py'))
    assert probe.model.cls_head.time_slots == 2  # one slot per token frame at the smoke's 2 frames
    for label in ('random init', 'pixel-only', 'Stage 1', 'Stage 2', 'chance', 'what each stage bought',
                  'calibration reader', 'masked-patch MSE'):
        assert label in table
        assert label in stdout
    import cv2
    assert report['images']
    for rel in report['images']:
        image = cv2.imread(osp.join(work, rel))
        # three rows (original / masked / reconstructed) of 56 px frames with 2 px gaps
        assert image is not None and image.shape[0] == 3 * (56 + 2) + 2
    assert osp.isfile(osp.join(work, 'demo.log'))
    assert report['peak_rss_mb'] > 0


def test_rerun_reuses_everything(demo):
    work, first, _ = demo
    mtimes = {n: os.stat(first['stages'][n]['checkpoint']).st_mtime_ns for n in first['stages']}
    second, stdout = run(work)
    assert all(second['reused'][n] for n in ('stage1', 'pixel_linear', 'stage2', 'features + probes'))
    assert {n: os.stat(second['stages'][n]['checkpoint']).st_mtime_ns for n in second['stages']} == mtimes
    assert second['results'] == first['results']
    assert 'reusing' in stdout


def test_clip_shape_and_schedule_overrides_reach_every_part():
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'demo', 'ivnext_demo_stage1.py'))
    run_demo.set_clip_shape(cfg._cfg_dict, 2, 42)
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
    assert probe.model.cls_head.time_slots == probe.model.backbone.num_frames
    run_demo.set_clip_shape(probe._cfg_dict, 2, 42)
    assert probe.model.cls_head.time_slots == probe.model.backbone.num_frames == 2
    run_demo.set_iterations(cfg, 3)
    assert cfg.train_cfg.max_iters == 3 and cfg.default_hooks.checkpoint.interval == 3
    assert cfg.param_scheduler[-1].end == 3 and cfg.param_scheduler[0].end >= 1


def test_cached_probe_learns_separable_tokens_and_not_noise():
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'demo', 'ivnext_demo_probe.py'))
    # Tokens without CLS or frames here; random token subsets need the whole-clip pool (time_slots=1).
    cfg.model.cls_head.update(in_channels=24, num_cls_tokens=0, time_slots=1)
    cfg.train_cfg.max_epochs = 25
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 24, generator=g) * 2

    def tokens(n, informative=True):
        y = torch.arange(n) % 3
        x = torch.randn(n, 10, 24, generator=g)
        if informative:
            x[:, :3] += centres[y].unsqueeze(1)  # a few tokens per clip carry the class
        return x, y

    (tx, ty), (vx, vy) = tokens(60), tokens(30)
    good = cached_probe.train_probe(cfg, 3, tx, ty, vx, vy, seed=0, train_tokens=6)
    assert good['top1'] > 0.9
    (tx, ty), (vx, vy) = tokens(60, False), tokens(30, False)
    noise = cached_probe.train_probe(cfg, 3, tx, ty, vx, vy, seed=0, train_tokens=6)
    assert noise['top1'] < 0.7
    # A random token subset would mix frames across the time slots of the frame-wise pool: refused.
    cfg.model.cls_head.time_slots = 2
    with pytest.raises(ValueError, match='probe_train_tokens'):
        cached_probe.train_probe(cfg, 3, tx, ty, vx, vy, seed=0, train_tokens=6)
