"""LazyRuntimeInfoHook + BFloat16OptimWrapper: the same log history as MMEngine's hooks, filled once per interval."""
import copy
from pathlib import Path

import torch
from mmaction.registry import HOOKS
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from ivnext.engine import deferred_scalars

REPO = Path(__file__).resolve().parents[1]


@HOOKS.register_module()
class HistoryLengthProbe(Hook):
    """Records how many ``train/loss`` values the message hub holds after each iteration."""

    priority = 'LOWEST'

    def __init__(self):
        self.lengths = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        hub = runner.message_hub
        self.lengths.append(len(hub.log_scalars['train/loss'].data[0]) if 'train/loss' in hub.log_scalars else 0)


def _train(tmp_path, video_clips, runtime_info: str, optim_wrapper: str):
    cfg = Config.fromfile(str(REPO / 'configs' / 'demo' / 'tiny_stage1_cpu.py'))
    for i, ann in enumerate((video_clips.train_ann_file, video_clips.val_ann_file)):
        cfg.train_dataloader.dataset.datasets[i].ann_file = str(ann)
        cfg.train_dataloader.dataset.datasets[i].data_prefix = dict(video=str(video_clips.video_dir))
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.train_cfg.max_iters = 5
    cfg.default_hooks.runtime_info = dict(type=runtime_info)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=2)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=100)
    cfg.optim_wrapper = dict(type=optim_wrapper, optimizer=copy.deepcopy(cfg.optim_wrapper.optimizer),
                             clip_grad=dict(max_norm=1.0))
    if optim_wrapper == 'BFloat16OptimWrapper':
        cfg.optim_wrapper.enabled = False  # float32 like the stock wrapper, so the values compare exactly
    cfg.custom_hooks = [dict(type='HistoryLengthProbe')]
    cfg.work_dir = str(tmp_path / runtime_info)
    cfg.experiment_name = f'lazy_logging_{runtime_info}'
    cfg.randomness = dict(seed=0)
    runner = Runner.from_cfg(cfg)
    runner.train()
    probe = next(h for h in runner.hooks if isinstance(h, HistoryLengthProbe))
    scalars = {k: v.data[0].tolist() for k, v in runner.message_hub.log_scalars.items()
               if k.startswith('train/') and k not in ('train/time', 'train/data_time')}
    return scalars, probe.lengths


def test_same_history_read_once_per_interval(tmp_path, video_clips):
    stock, stock_lengths = _train(tmp_path, video_clips, 'RuntimeInfoHook', 'OptimWrapper')
    lazy, lazy_lengths = _train(tmp_path, video_clips, 'LazyRuntimeInfoHook', 'BFloat16OptimWrapper')
    assert stock_lengths == [1, 2, 3, 4, 5]
    # Values reach the message hub at the logging interval (2) and at the end of training (5).
    assert lazy_lengths == [0, 2, 2, 4, 5]
    assert set(lazy) == set(stock) and 'train/grad_norm' in lazy and 'train/loss_diffusion' in lazy
    for key in stock:
        torch.testing.assert_close(torch.tensor(lazy[key]), torch.tensor(stock[key]), rtol=1e-5, atol=1e-6,
                                   msg=key)
    assert deferred_scalars.num_pending() == 0 and not deferred_scalars.deferred_logging_active()
