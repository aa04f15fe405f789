"""Training memory per GPU of a config at its batch size, for machines that cannot run it.

Model states (trainable parameters at 16 bytes, frozen ones at their dtype) and the activations autograd saves in
one measured ``mode='loss'`` forward, scaled to the batch, for DDP, ZeRO-2 and FSDP; see
:mod:`ivnext.analysis.memory` for what is and is not modelled.

Example (CPU, bf16 autocast, one clip measured, the recipe's batch per GPU)::

    python tools/analysis/estimate_memory.py configs/benchmark/bench_ivnext-stage1_vit-b-p14_siglip2-1b-random_16x224.py \
        --amp bf16 --measure-batch 1 --gpus 8
"""
import argparse
import json
import sys
from typing import Any, Dict, Optional, Sequence

import ivnext  # noqa: F401  (compat fixes and registration, before mmengine and mmaction2)
import torch
from mmengine.config import DictAction

from ivnext.analysis.memory import estimate_config_memory, format_memory_estimate


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('--batch-size', type=int, default=None, help='clips per GPU (default: the config\'s)')
    parser.add_argument('--measure-batch', type=int, default=1, help='clips in the measured forward')
    parser.add_argument('--num-frames', type=int, default=None)
    parser.add_argument('--img-size', type=int, default=None)
    parser.add_argument('--amp', choices=['none', 'bf16', 'fp16'], default='bf16')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--with-cp', action='store_true', help='activation checkpointing in the backbone')
    parser.add_argument('--gpus', type=int, default=8, help='GPUs for the FSDP / ZeRO-2 columns')
    parser.add_argument('--calibrate', type=float, default=None, metavar='MEASURED_GIB',
                        help='a measured peak (GiB) of this config and batch: prints the measured / computed ratio')
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--out', default=None, help='write the estimate as JSON here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return parser.parse_args(argv)


def run(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Parse the command line, print the report and return its record."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    record = estimate_config_memory(args.config, batch_size=args.batch_size, measure_batch=args.measure_batch,
                                    num_frames=args.num_frames, img_size=args.img_size, amp=args.amp,
                                    device=args.device, with_cp=args.with_cp, gpus=args.gpus,
                                    calibrate=args.calibrate, cfg_options=args.cfg_options)
    print(format_memory_estimate(record))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(record, f, indent=2)
    return record


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line: exit code 0 once the report is printed (the record is :func:`run`'s)."""
    run(argv)
    return 0


if __name__ == '__main__':
    sys.exit(main())
