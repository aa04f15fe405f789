"""The command line of ``tools/train.py``: train a model from an MMEngine config (mmaction2-compatible options).

``parse_args`` and ``merge_args`` turn the command line into the runner's config; ``main`` trains.
"""
import argparse
import importlib.util
import os
import os.path as osp
import sys
from typing import Optional

import ivnext  # noqa: F401  (compat fixes and registration, before mmengine and mmaction2)
import torch
from mmaction.registry import RUNNERS
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.runner import Runner

from ivnext.cli.loading_args import add_loading_arguments, apply_loading_arguments
from ivnext.hooks.safe_checkpoint_hook import prepare_runner_loading, remove_partial_checkpoints


def parse_args(argv=None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description='Train an ivnext / mmaction2 model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='directory for logs and checkpoints (default: work_dirs/<config name>)')
    parser.add_argument('--resume', nargs='?', type=str, const='auto', default=None,
                        help='resume training: without a value, from the latest checkpoint in the work dir; '
                        'with a path, from that checkpoint')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision (AmpOptimWrapper)')
    parser.add_argument('--no-validate', action='store_true', help='skip validation during training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by actual batch size / auto_scale_lr.base_batch_size')
    parser.add_argument('--seed', type=int, default=None, help='random seed')
    parser.add_argument('--diff-rank-seed', action='store_true', help='use a different seed on each rank')
    parser.add_argument('--deterministic', action='store_true', help='deterministic cuDNN algorithms')
    add_loading_arguments(parser)
    parser.add_argument('--tensorboard', action='store_true',
                        help='also log to TensorBoard: event files in <work-dir>/<timestamp>/vis_data/ '
                        '(`tensorboard --logdir <work-dir>`)')
    parser.add_argument('--wandb', nargs='?', const='', default=None, metavar='PROJECT',
                        help='also log to Weights & Biases (needs `pip install wandb`), in PROJECT if given '
                        '(otherwise $WANDB_PROJECT or W&B\'s default)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, key=value (nested keys with dots, lists as key="[a,b]")')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the command-line options to the config; --cfg-options are applied last and win."""
    cfg.launcher = args.launcher
    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None

    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        wrapper_type = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if wrapper_type == 'BFloat16OptimWrapper':
            cfg.optim_wrapper.enabled = True
        elif wrapper_type not in ('OptimWrapper', 'AmpOptimWrapper'):
            raise ValueError(f'--amp needs optim_wrapper.type OptimWrapper or AmpOptimWrapper, got {wrapper_type!r}; '
                             'set AMP in the config of your custom optimizer wrapper instead.')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    apply_loading_arguments(cfg, args)

    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise ValueError('--auto-scale-lr needs `auto_scale_lr = dict(base_batch_size=...)` in the config.')
        cfg.auto_scale_lr.enable = True

    add_vis_backends(cfg, tensorboard=args.tensorboard, wandb_project=args.wandb)

    if cfg.get('randomness', None) is None:
        cfg.randomness = ConfigDict(seed=args.seed, diff_rank_seed=args.diff_rank_seed,
                                    deterministic=args.deterministic)

    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def _require(package: str, flag: str) -> None:
    """Stop with the install command when ``package`` cannot be imported."""
    if package in sys.modules:
        return
    if importlib.util.find_spec(package) is None:
        raise SystemExit(f'{flag} needs the {package} package: pip install {package}')


def add_vis_backends(cfg: Config, tensorboard: bool = False, wandb_project: Optional[str] = None) -> Config:
    """Append MMEngine's TensorBoard / W&B backends to ``cfg.visualizer.vis_backends`` (kept once each).

    The backends receive what the runner's visualizer records: the logged scalars (losses, learning rate,
    gradient norm, validation metrics), the config, and images such as ``ReconstructionVisHook``'s grids.

    Args:
        cfg: The run's config; a config without ``visualizer`` gets mmaction2's with MMEngine's local backend.
        tensorboard: Add ``TensorboardVisBackend`` (event files next to the local backend's files).
        wandb_project: Add ``WandbVisBackend`` when not None; a non-empty string names the W&B project.

    Returns:
        Config: ``cfg``, changed in place.
    """
    if not tensorboard and wandb_project is None:
        return cfg
    if cfg.get('visualizer', None) is None:
        cfg.visualizer = ConfigDict(type='ActionVisualizer', vis_backends=[dict(type='LocalVisBackend')])
    backends = list(cfg.visualizer.get('vis_backends', None) or [dict(type='LocalVisBackend')])
    present = {b.get('type') for b in backends}
    if tensorboard and 'TensorboardVisBackend' not in present:
        _require('tensorboard', '--tensorboard')
        backends.append(dict(type='TensorboardVisBackend'))
    if wandb_project is not None and 'WandbVisBackend' not in present:
        _require('wandb', '--wandb')
        backends.append(dict(type='WandbVisBackend',
                             init_kwargs=dict(project=wandb_project) if wandb_project else None))
    cfg.visualizer.vis_backends = backends
    return cfg


def build_runner(cfg: Config) -> Runner:
    """Build the default MMEngine Runner, or the registered ``runner_type`` (e.g. FlexibleRunner)."""
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def clear_partial_saves(cfg: Config) -> None:
    """Remove ``*.partial`` files of failed saves from the checkpoint folder before the runner is built (rank 0).

    A partial file that filled the disk would otherwise stop the runner while it writes its config and logs,
    before any hook could remove it.
    """
    if int(os.environ.get('RANK', '0')) != 0:
        return
    folders = [cfg.work_dir]
    out_dir = ((cfg.get('default_hooks') or {}).get('checkpoint') or {}).get('out_dir')
    if out_dir:
        folders.append(osp.join(out_dir, osp.basename(str(cfg.work_dir).rstrip(osp.sep))))
    for folder in folders:
        remove_partial_checkpoints(folder, log=lambda message: print(message, file=sys.stderr))


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = merge_args(Config.fromfile(args.config), args)
    clear_partial_saves(cfg)
    runner = build_runner(cfg)
    prepare_runner_loading(runner)  # FlexibleRunner loads checkpoints before any hook runs
    runner.train()
    # Tear the process group down while the interpreter is intact; leaving it to exit-time destructors
    # can abort a rank after training has finished.
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()

