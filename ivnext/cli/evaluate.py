"""The command line of ``tools/test.py``: evaluate a checkpoint with an MMEngine config (mmaction2-compatible
options).

``parse_args`` and ``merge_args`` turn the command line into the runner's config; ``main`` tests.
"""
import argparse
import os
import os.path as osp

import ivnext  # noqa: F401  (compat fixes and registration, before mmengine and mmaction2)
import torch
from mmaction.registry import RUNNERS
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from ivnext.cli.loading_args import add_loading_arguments, apply_loading_arguments
from ivnext.hooks.safe_checkpoint_hook import prepare_runner_loading


def parse_args(argv=None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description='Test (and evaluate) an ivnext / mmaction2 model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='directory for the metrics file (default: work_dirs/<config name>)')
    parser.add_argument('--dump', type=str, help='also dump the predictions to this .pkl file')
    add_loading_arguments(parser)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, key=value (nested keys with dots, lists as key="[a,b]")')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the command-line options to the config."""
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    if args.dump is not None:
        if not args.dump.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--dump must name a .pkl or .pickle file, got {args.dump!r}.')
        dump = dict(type='DumpResults', out_file_path=args.dump)
        evaluators = cfg.test_evaluator
        evaluators = list(evaluators) if isinstance(evaluators, (list, tuple)) else [evaluators]
        cfg.test_evaluator = evaluators + [dump]

    cfg.load_from = args.checkpoint
    apply_loading_arguments(cfg, args)
    return cfg


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = merge_args(Config.fromfile(args.config), args)
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    prepare_runner_loading(runner)  # FlexibleRunner loads checkpoints before any hook runs
    runner.test()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()  # while the interpreter is intact, not in exit-time destructors

