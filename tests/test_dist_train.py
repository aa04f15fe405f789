"""Two-process training through tools/dist_train.sh (torchrun, gloo on CPU), testing and resuming."""
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.runner import load_checkpoint

from conftest import point_cfg_at_clips

from ivnext.utils.checkpoint import checkpoint_load_scope

# A hook that writes one JSON line per event and rank, so every rank's progress is visible
# (MMEngine logs from rank 0 only).
RANK_MARKER_MODULE = textwrap.dedent('''
    import json
    import os.path as osp

    import torch
    import torch.distributed as torch_dist
    from mmaction.registry import HOOKS
    from mmengine.hooks import Hook
    from mmengine.model import is_model_wrapper


    def _checksum(runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        return float(sum(p.detach().double().sum() for p in model.parameters()))


    @HOOKS.register_module()
    class RankMarkerHook(Hook):
        priority = 'LOWEST'

        def _write(self, runner, **record):
            rank = torch_dist.get_rank() if torch_dist.is_initialized() else 0
            record.update(rank=rank, world_size=runner.world_size,
                          backend=torch_dist.get_backend() if torch_dist.is_initialized() else None)
            with open(osp.join(runner.work_dir, f'rank{rank}.jsonl'), 'a') as f:
                f.write(json.dumps(record) + '\\n')

        def before_train(self, runner):
            self._write(runner, event='start', iter=runner.iter, checksum=_checksum(runner))

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            inputs = float(sum(x.double().sum() for x in data_batch['inputs']))
            self._write(runner, event='iter', iter=runner.iter + 1, checksum=_checksum(runner), inputs=inputs,
                        loss=float(outputs['loss']))
''')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _records(work_dir: Path, rank: int):
    lines = (work_dir / f'rank{rank}.jsonl').read_text().splitlines()
    return [json.loads(line) for line in lines]


def _run(cmd, env, cwd):
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, f'{cmd} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}'
    return result


def _checksum(model: torch.nn.Module) -> float:
    return float(sum(p.detach().double().sum() for p in model.parameters()))


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(abs(a), abs(b))


@pytest.fixture(scope='module')
def dist_run(tmp_path_factory, repo_root, tiny_config_path, video_clips):
    """Train 4 iterations with ``tools/dist_train.sh CONFIG 2`` (CPU, gloo); return paths and the environment."""
    root = tmp_path_factory.mktemp('dist_train')
    (root / 'rank_marker_hook.py').write_text(RANK_MARKER_MODULE)
    config = root / 'dist_cfg.py'
    config.write_text(textwrap.dedent(f'''
        _base_ = [{str(tiny_config_path)!r}]
        custom_imports = dict(imports=['ivnext', 'rank_marker_hook'], allow_failed_imports=False)
        custom_hooks = [dict(type='RankMarkerHook')]
        train_cfg = dict(max_iters=4, val_interval=4)
        default_hooks = dict(checkpoint=dict(interval=4))
        randomness = dict(seed=0)
        train_dataloader = dict(dataset=dict(ann_file={str(video_clips.ann_file)!r},
                                             data_prefix=dict(video={str(video_clips.video_dir)!r})))
        val_dataloader = dict(dataset=dict(ann_file={str(video_clips.val_ann_file)!r},
                                           data_prefix=dict(video={str(video_clips.video_dir)!r})))
        test_dataloader = val_dataloader
    '''))
    work_dir = root / 'work'
    env = dict(os.environ, PYTHON=sys.executable, MASTER_ADDR='127.0.0.1', OMP_NUM_THREADS='1',
               PORT=str(_free_port()),
               PYTHONPATH=os.pathsep.join([str(root), os.environ.get('PYTHONPATH', '')]))
    _run(['bash', str(repo_root / 'tools' / 'dist_train.sh'), str(config), '2', '--work-dir', str(work_dir)],
         env, root)
    return dict(root=root, config=config, work_dir=work_dir, env=env)


def _steps(work_dir: Path, rank: int):
    return [r for r in _records(work_dir, rank) if r['event'] == 'iter']


def test_both_ranks_train_in_sync_and_save_a_checkpoint(dist_run):
    work_dir = dist_run['work_dir']
    for rank in (0, 1):
        records = _records(work_dir, rank)
        assert {(r['rank'], r['world_size'], r['backend']) for r in records} == {(rank, 2, 'gloo')}
        assert [r['iter'] for r in _steps(work_dir, rank)] == [1, 2, 3, 4]
    steps0, steps1 = _steps(work_dir, 0), _steps(work_dir, 1)
    # DDP: both ranks hold the same weights after every step, while each rank reads its own share of the data.
    assert all(_close(s0['checksum'], s1['checksum']) for s0, s1 in zip(steps0, steps1))
    assert any(s0['inputs'] != s1['inputs'] for s0, s1 in zip(steps0, steps1))
    assert not _close(_records(work_dir, 0)[0]['checksum'], steps0[-1]['checksum'])
    assert (work_dir / 'iter_4.pth').is_file()
    assert (work_dir / 'last_checkpoint').read_text().strip().endswith('iter_4.pth')


def test_checkpoint_reloads_and_evaluates_with_test_py(dist_run, repo_root, tiny_config_path, video_clips):
    checkpoint = dist_run['work_dir'] / 'iter_4.pth'
    cfg = point_cfg_at_clips(Config.fromfile(str(tiny_config_path)), video_clips)
    model = MODELS.build(cfg.model)
    with checkpoint_load_scope():  # MMEngine's loader, weights-only, with the message-hub types of ivnext's runs
        load_checkpoint(model, str(checkpoint), map_location='cpu', strict=True)
    assert _close(_checksum(model), _steps(dist_run['work_dir'], 0)[-1]['checksum'])

    dump = dist_run['root'] / 'preds.pkl'
    env = {k: v for k, v in dist_run['env'].items() if k != 'PYTHONPATH'}
    result = _run([sys.executable, str(repo_root / 'tools' / 'test.py'), str(tiny_config_path), str(checkpoint),
                   '--work-dir', str(dist_run['root'] / 'test'), '--dump', str(dump), '--cfg-options',
                   f'test_dataloader.dataset.ann_file={video_clips.val_ann_file}',
                   f'test_dataloader.dataset.data_prefix.video={video_clips.video_dir}'], env, dist_run['root'])
    assert 'acc/top1' in result.stdout + result.stderr
    with open(dump, 'rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == 4
    assert all(torch.as_tensor(p['pred_score']).shape == (video_clips.num_classes,) for p in predictions)


def test_resume_continues_from_the_latest_checkpoint(dist_run, repo_root, tmp_path):
    # Resume in a copy of the work dir, so the other tests see the first run untouched.
    work_dir = tmp_path / 'work'
    shutil.copytree(dist_run['work_dir'], work_dir)
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'iter_4.pth'))
    trained = [len(_records(work_dir, rank)) for rank in (0, 1)]
    env = dict(dist_run['env'], PORT=str(_free_port()))
    _run(['bash', str(repo_root / 'tools' / 'dist_train.sh'), str(dist_run['config']), '2', '--work-dir',
          str(work_dir), '--resume', '--cfg-options', 'train_cfg.max_iters=6'], env, tmp_path)
    saved = _steps(work_dir, 0)[3]['checksum']
    for rank in (0, 1):
        resumed = _records(work_dir, rank)[trained[rank]:]
        assert resumed[0]['event'] == 'start' and resumed[0]['iter'] == 4
        assert _close(resumed[0]['checksum'], saved)
        assert [r['iter'] for r in resumed[1:]] == [5, 6]
    assert torch.load(work_dir / 'iter_6.pth', map_location='cpu', weights_only=False)['meta']['iter'] == 6
