"""End to end on CPU through the command-line tools: Stage-1 training, resuming, Stage 2 from the Stage-1
checkpoint, and the reconstruction grid."""
import subprocess
import sys
from pathlib import Path

import cv2
import torch

REPO = Path(__file__).resolve().parents[1]
STAGE1 = 'configs/demo/tiny_stage1_cpu.py'
STAGE2 = 'configs/demo/tiny_stage2_cpu.py'


def run(*args: str) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=400)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    return output


def data_options(clips):
    options = []
    for i, ann in enumerate((clips.train_ann_file, clips.val_ann_file)):
        options += [f'train_dataloader.dataset.datasets.{i}.ann_file={ann}',
                    f'train_dataloader.dataset.datasets.{i}.data_prefix.video={clips.video_dir}']
    return options


def read_checkpoint(path: Path) -> dict:
    # Our own MMEngine checkpoint (it pickles the runner's message hub).
    return torch.load(path, map_location='cpu', weights_only=False)


def test_stage1_train_resume_stage2_and_visualize(tmp_path, video_clips):
    data = data_options(video_clips)
    s1 = tmp_path / 'stage1'

    run('tools/train.py', STAGE1, '--work-dir', str(s1), '--cfg-options', *data)
    ckpt = read_checkpoint(s1 / 'iter_4.pth')
    assert ckpt['meta']['iter'] == 4 and (s1 / 'iter_2.pth').is_file()
    state = ckpt['state_dict']
    assert any(k.startswith('backbone.') for k in state) and any(k.startswith('head.') for k in state)
    assert not any(k.startswith('teacher.') for k in state)  # the frozen teacher is not saved

    out = run('tools/train.py', STAGE1, '--work-dir', str(s1), '--resume', '--cfg-options', 'train_cfg.max_iters=6',
              *data)
    assert 'Iter(train) [5/6]' in out and 'Iter(train) [1/6]' not in out
    resumed = read_checkpoint(s1 / 'iter_6.pth')
    assert resumed['meta']['iter'] == 6
    assert not torch.equal(resumed['state_dict']['backbone.blocks.0.attn.qkv.weight'],
                           state['backbone.blocks.0.attn.qkv.weight'])

    s2 = tmp_path / 'stage2'
    out = run('tools/train.py', STAGE2, '--work-dir', str(s2), '--cfg-options',
              f'model.stage1_checkpoint={s1}/iter_4.pth', 'train_cfg.max_iters=2', *data)
    assert 'initialised Stage 2 from' in out and 'loss_latent' in out
    assert 'keys missing' not in out and 'unexpected keys' not in out
    stage2 = read_checkpoint(s2 / 'iter_2.pth')['state_dict']
    assert not any(k.startswith('teacher.') for k in stage2)
    # The predictor started from Stage 1's (same shapes): its weights moved only by two small steps.
    key = 'neck.layers.0.attn.Wqkv.weight'
    assert (stage2[key] - state[key]).abs().max() < 0.01

    grid_png = tmp_path / 'grid.png'
    run('tools/visualize_reconstruction.py', STAGE1, str(s1 / 'iter_6.pth'), str(video_clips.files[0]), '--out',
        str(grid_png), '--steps', '5', '--seed', '1')
    grid = cv2.imread(str(grid_png))
    gap, label, size, frames = 2, 96, 56, 4
    assert grid.shape == (3 * (size + gap) + gap, label + frames * (size + gap) + gap, 3)
    rows = [grid[gap + r * (size + gap):gap + r * (size + gap) + size, label + gap:] for r in range(3)]
    original, masked, recon = rows
    same = (original == recon).all(-1).mean()
    # Visible patches (1/4 of each frame at mask ratio 0.75) are copied; masked ones are decoded.
    assert 0.2 < same < 0.6
    assert ((masked == 127).all(-1) | (masked == original).all(-1)).all()


def test_stage1_two_processes_with_dist_train(tmp_path, video_clips):
    """Stage 1 through tools/dist_train.sh with 2 CPU processes (torchrun, gloo): both ranks step, one checkpoint."""
    import os
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    work = tmp_path / 'stage1_dist'
    env = dict(os.environ, PYTHON=sys.executable, MASTER_ADDR='127.0.0.1', PORT=str(port), OMP_NUM_THREADS='1')
    proc = subprocess.run(['bash', 'tools/dist_train.sh', STAGE1, '2', '--work-dir', str(work), '--cfg-options',
                           'train_cfg.max_iters=2', 'default_hooks.checkpoint.interval=2', *data_options(video_clips)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    # MMEngine's environment report: two processes in one DDP job (its "GPU number" is the world size).
    assert 'Distributed training: True' in output and 'GPU number: 2' in output
    assert 'Iter(train) [2/2]' in output
    state = read_checkpoint(work / 'iter_2.pth')['state_dict']
    assert any(k.startswith('backbone.') for k in state) and not any(k.startswith('teacher.') for k in state)
