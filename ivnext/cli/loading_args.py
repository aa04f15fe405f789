"""The checkpoint-loading flags that ``tools/train.py`` and ``tools/test.py`` share.

``--trust-checkpoint`` and ``--partial-load`` become the config's top-level ``trust_checkpoint`` and
``allow_partial_load``, which :class:`ivnext.hooks.SafeCheckpointHook` and
:func:`ivnext.hooks.safe_checkpoint_hook.install_safe_loading` read.
"""
import argparse

from mmengine.config import Config


def add_loading_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the tools' checkpoint-loading flags: ``--trust-checkpoint`` and ``--partial-load``."""
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='unpickle the loaded / resumed checkpoint in full (it can run code stored in the file: '
                        'only for files you trust); by default checkpoints load weights-only')
    parser.add_argument('--partial-load', action='store_true',
                        help='load the keys of the checkpoint that fit the model and warn about the rest (by default '
                        'a checkpoint with missing, unexpected or differently shaped keys stops the run)')


def apply_loading_arguments(cfg: Config, args: argparse.Namespace) -> None:
    """Copy the flags of :func:`add_loading_arguments` into the config's top-level loading fields."""
    if args.trust_checkpoint:
        cfg.trust_checkpoint = True
    if args.partial_load:
        cfg.allow_partial_load = True
