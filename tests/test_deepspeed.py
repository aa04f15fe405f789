"""DeepSpeed ZeRO-2 (bf16) on two CPU processes: the ViT-L recipe's strategy on the tiny Stage-1 model."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from mmaction.registry import MODELS
from mmengine.config import Config

from ivnext.utils.checkpoint import read_state_dict

REPO = Path(__file__).resolve().parents[1]
DS_RECIPE = 'ivnext-stage1_vit-l-p14_siglip2_16x224_50e_kmash-ds-zero2.py'


def test_deepspeed_zero2_recipe_trains_and_checkpoint_feeds_stage2(tmp_path, video_clips):
    recipe = Config.fromfile(str(REPO / 'configs' / 'pretrain' / DS_RECIPE))
    strategy = recipe.strategy.to_dict()
    assert strategy['zero_optimization']['stage'] == 2 and strategy['bf16']['enabled']
    optim_wrapper = recipe.optim_wrapper.to_dict()
    optim_wrapper.pop('_delete_', None)
    config = tmp_path / 'ds_cfg.py'
    config.write_text(f"""
_base_ = [{str(REPO / 'configs' / 'demo' / 'tiny_stage1_cpu.py')!r}]
runner_type = {recipe.runner_type!r}
strategy = {strategy!r}
optim_wrapper = dict(_delete_=True, **{optim_wrapper!r})
""")
    work = tmp_path / 'work'
    options = ['train_cfg.max_iters=2', 'default_hooks.checkpoint.interval=1']
    for i, ann in enumerate((video_clips.train_ann_file, video_clips.val_ann_file)):
        options += [f'train_dataloader.dataset.datasets.{i}.ann_file={ann}',
                    f'train_dataloader.dataset.datasets.{i}.data_prefix.video={video_clips.video_dir}']
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, PYTHON=sys.executable, MASTER_ADDR='127.0.0.1', PORT=str(port), OMP_NUM_THREADS='1',
               DS_ACCELERATOR='cpu')  # DeepSpeed's CPU accelerator talks gloo without oneCCL
    proc = subprocess.run(['bash', 'tools/dist_train.sh', str(config), '2', '--work-dir', str(work),
                           '--cfg-options', *options], cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert 'Iter(train) [2/2]' in output
    # DeepSpeed writes a checkpoint directory; ivnext reads its module weights like any checkpoint.
    assert (work / 'iter_2.pth' / 'mp_rank_00_model_states.pt').is_file()
    state = read_state_dict(str(work / 'iter_2.pth'))
    assert not any(k.startswith('teacher.') for k in state)
    model = MODELS.build(Config.fromfile(str(config)).model)
    model.load_state_dict(state, strict=True)
    assert next(iter(state.values())).dtype == torch.bfloat16  # ZeRO bf16 keeps bf16 module weights
    # the second ZeRO step moved encoder and decoder weights
    first = read_state_dict(str(work / 'iter_1.pth'))
    moved = [k for k in state if not torch.equal(state[k], first[k])]
    assert any(k.startswith('backbone.blocks') for k in moved) and any(k.startswith('head.') for k in moved)


def test_deepspeed_is_imported_only_when_used():
    """MMEngine imports deepspeed whenever it is installed; ivnext defers that to the first real use."""
    code = ('import sys, ivnext, mmengine.runner, transformers, inspect; inspect.getmodule(test := lambda: 0); '
            "state = 'loaded' if 'deepspeed.accelerator' in sys.modules else 'deferred'; "
            "import deepspeed; print('RESULT', state, deepspeed.__version__, callable(deepspeed.initialize))")
    out = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result = next(line for line in out.stdout.splitlines() if line.startswith('RESULT'))
    from importlib.metadata import version
    assert result.split()[1:] == ['deferred', version('deepspeed'), 'True']
