"""Crash-safe checkpoints: atomic saves, resume from the newest complete checkpoint, bit-exact random states."""
import copy
import glob
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import point_cfg_at_clips
from mmengine.config import Config
from mmengine.runner import Runner

from ivnext.hooks import safe_checkpoint_hook
from ivnext.hooks.safe_checkpoint_hook import checkpoint_problem, newest_complete_checkpoint
from ivnext.utils.checkpoint import load_checkpoint_file

REPO = Path(__file__).resolve().parents[1]
STAGE1_CFG = REPO / 'configs' / 'demo' / 'tiny_stage1_cpu.py'


def stage1_cfg(clips, work_dir: Path, max_iters: int, resume: bool = False) -> Config:
    cfg = Config.fromfile(str(STAGE1_CFG))
    for i, ann in enumerate((clips.train_ann_file, clips.val_ann_file)):
        cfg.train_dataloader.dataset.datasets[i].ann_file = str(ann)
        cfg.train_dataloader.dataset.datasets[i].data_prefix = dict(video=str(clips.video_dir))
    cfg.train_cfg.max_iters = max_iters
    cfg.work_dir = str(work_dir)
    cfg.resume = resume
    cfg.experiment_name = f'{work_dir.name}_{max_iters}_{resume}'
    return cfg


def logged_losses(work_dir: Path) -> dict:
    """{iteration: loss} from the runs' scalars.json files in ``work_dir``."""
    losses = {}
    for path in glob.glob(str(work_dir / '*' / 'vis_data' / 'scalars.json')):
        for line in Path(path).read_text().splitlines():
            record = json.loads(line)
            if 'loss' in record:
                losses[record['iter']] = record['loss']
    return losses


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def test_stage1_resume_past_a_truncated_checkpoint_repeats_the_uninterrupted_losses(video_clips, tmp_path):
    whole = tmp_path / 'whole'
    Runner.from_cfg(stage1_cfg(video_clips, whole, 6)).train()
    reference = logged_losses(whole)
    assert sorted(reference) == [1, 2, 3, 4, 5, 6]
    checkpoint = load_checkpoint_file(str(whole / 'iter_4.pth'))
    assert len(checkpoint['rng_state']['ranks']) == 1

    # The interrupted run: its newest checkpoint was cut short, and it has no last_checkpoint file.
    resumed = tmp_path / 'resumed'
    resumed.mkdir()
    for name in ('iter_2.pth', 'iter_4.pth', 'iter_6.pth'):
        shutil.copy(whole / name, resumed / name)
    truncate(resumed / 'iter_6.pth')
    (resumed / 'iter_8.pth.partial').write_bytes(b'interrupted save')
    random.seed(123)
    torch.manual_seed(123)  # whatever state this process is in, the checkpoint's states win
    Runner.from_cfg(stage1_cfg(video_clips, resumed, 6, resume=True)).train()
    losses = logged_losses(resumed)
    assert sorted(losses) == [5, 6]
    assert losses == {5: reference[5], 6: reference[6]}
    assert checkpoint_problem(str(resumed / 'iter_6.pth')) is None  # rewritten whole
    assert not (resumed / 'iter_8.pth.partial').exists()


def test_newest_complete_checkpoint_skips_broken_files_and_needs_no_last_checkpoint(tmp_path):
    for step in (1, 2, 3, 10):
        torch.save({'step': step}, tmp_path / f'iter_{step}.pth')
    truncate(tmp_path / 'iter_10.pth')
    (tmp_path / 'iter_3.pth').write_text('not a checkpoint')
    (tmp_path / 'iter_11.pth.partial').write_bytes(b'')
    warnings = []
    assert newest_complete_checkpoint(str(tmp_path), 'iter_{}.pth', warnings.append) == str(tmp_path / 'iter_2.pth')
    assert [w.split(':')[0] for w in warnings] == [f'skipping checkpoint {tmp_path}/iter_10.pth',
                                                    f'skipping checkpoint {tmp_path}/iter_3.pth']
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_1.pth'))
    assert newest_complete_checkpoint(str(tmp_path), 'iter_{}.pth', warnings.append) == str(tmp_path / 'iter_2.pth')
    for step in (1, 2):
        os.remove(tmp_path / f'iter_{step}.pth')
    assert newest_complete_checkpoint(str(tmp_path), 'iter_{}.pth', warnings.append) is None


def test_a_crash_inside_the_save_keeps_the_previous_checkpoint(tiny_cfg, tmp_path, monkeypatch):
    cfg = copy.deepcopy(tiny_cfg)
    cfg.train_cfg.max_iters = 4
    cfg.train_cfg.val_interval = 100
    cfg.default_hooks.checkpoint.update(interval=2, max_keep_ckpts=1)
    cfg.work_dir = str(tmp_path)
    cfg.experiment_name = 'crash_in_save'
    real_replace = os.replace

    def crash_at_second_save(src, dst):
        if str(src).endswith('iter_4.pth.partial'):
            raise KeyboardInterrupt('killed while saving')
        real_replace(src, dst)

    monkeypatch.setattr(safe_checkpoint_hook.os, 'replace', crash_at_second_save)
    with pytest.raises(KeyboardInterrupt):
        Runner.from_cfg(cfg).train()
    monkeypatch.setattr(safe_checkpoint_hook.os, 'replace', real_replace)
    # max_keep_ckpts=1 did not remove the only complete checkpoint before the new one was in place.
    assert checkpoint_problem(str(tmp_path / 'iter_2.pth')) is None
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'iter_2.pth')
    assert not (tmp_path / 'iter_4.pth').exists() and (tmp_path / 'iter_4.pth.partial').exists()

    cfg.resume = True
    cfg.experiment_name = 'crash_in_save_resumed'
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 4
    assert sorted(p.name for p in tmp_path.glob('iter_*')) == ['iter_4.pth']  # pruned only after the new save


def test_sigkill_during_training_leaves_a_resumable_state(video_clips, tmp_path):
    work = tmp_path / 'killed'
    options = [f'train_dataloader.dataset.datasets.{i}.{field}'
               for i in range(2) for field in ('ann_file', 'data_prefix.video')]
    values = [video_clips.train_ann_file, video_clips.video_dir, video_clips.val_ann_file, video_clips.video_dir]
    data = [f'{key}={value}' for key, value in zip(options, values)]
    head = [sys.executable, 'tools/train.py', str(STAGE1_CFG), '--work-dir', str(work)]
    options = ['--cfg-options', *data, 'default_hooks.checkpoint.interval=1', 'default_hooks.checkpoint.max_keep_ckpts=1']
    proc = subprocess.Popen(head + options + ['train_cfg.max_iters=50'], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while not (work / 'iter_1.pth').exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(random.uniform(0.0, 2.0))  # somewhere in a step or inside a save
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    newest = newest_complete_checkpoint(str(work), 'iter_{}.pth')
    assert newest is not None
    done = load_checkpoint_file(newest)['meta']['iter']
    out = subprocess.run(head + ['--resume'] + options + [f'train_cfg.max_iters={done + 1}'], cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert f'Iter(train) [{done + 1}/{done + 1}]' in out.stdout + out.stderr
    assert checkpoint_problem(str(work / f'iter_{done + 1}.pth')) is None
