"""Benchmark a model from an MMEngine config: step time, throughput, peak memory, FLOPs and MFU.

Examples::

    # full train step and inference forward of a config's model on synthetic clips
    python tools/analysis/benchmark.py CONFIG --batch-size 8 --num-frames 16 --img-size 224 \
        --device cuda --amp bf16 --gpu h100 --mode both
    # only the encoder of the config
    python tools/analysis/benchmark.py CONFIG --component backbone --device cpu --steps 5
    # our encoder against mmaction2's VisionTransformer at equal width/depth/heads/tokens/batch
    python tools/analysis/benchmark.py --compare-mmaction-vit --embed-dims 384 --depth 4 --num-heads 6 \
        --num-frames 8 --img-size 112 --batch-size 2 --device cpu
    # SDPA against the flash-attn path of our encoder (flash only with flash-attn + CUDA + bf16/fp16)
    python tools/analysis/benchmark.py CONFIG --compare-attn --device cuda --amp bf16

What is measured (times, memory, FLOPs, MFU) is described in :mod:`ivnext.analysis.config_benchmark`; the
side-by-side modes in :mod:`ivnext.analysis.compare`. One Markdown row per run (per variant) is appended to
``<out-dir>/benchmark.md`` and a JSON record written next to it.
"""
import argparse
import sys
from typing import Any, Dict, Optional, Sequence

import ivnext  # noqa: F401  (compat fixes and registration, before mmengine and mmaction2)
import torch
from mmengine.config import DictAction

from ivnext.analysis.benchmark import PEAK_TFLOPS
from ivnext.analysis.compare import run_compare_attn, run_compare_mmaction_vit
from ivnext.analysis.config_benchmark import run_benchmark
from ivnext.analysis.options import BenchmarkOptions


def parse_args(argv: Optional[Sequence[str]] = None) -> BenchmarkOptions:
    """The command line as :class:`BenchmarkOptions` (an invalid combination exits with the parser's error)."""
    parser = argparse.ArgumentParser(description='Benchmark an ivnext / mmaction2 model on synthetic clips')
    parser.add_argument('config', nargs='?', help='MMEngine config (optional with the --compare-* modes)')
    parser.add_argument('--batch-size', type=int, default=2, help='clips per step')
    parser.add_argument('--num-frames', type=int, help='frames per clip (default: the config backbone, else 16)')
    parser.add_argument('--img-size', type=int, help='square crop side (default: the config backbone, else 224)')
    parser.add_argument('--steps', type=int, default=10, help='timed steps per mode')
    parser.add_argument('--warmup', type=int, default=3, help='untimed steps before timing')
    parser.add_argument('--amp', choices=['none', 'bf16', 'fp16'], default='none', help='autocast dtype')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu', help='cpu or cuda')
    peak = parser.add_mutually_exclusive_group()
    peak.add_argument('--peak-tflops', type=float, help='peak TFLOP/s of the device for MFU')
    peak.add_argument('--gpu', choices=sorted(PEAK_TFLOPS), help='use the dense bf16 peak of this GPU for MFU')
    parser.add_argument('--mode', choices=['train', 'forward', 'both'], default='both')
    parser.add_argument('--component', choices=['model', 'backbone'], default='model',
                        help="'backbone': only cfg.model.backbone (or the model itself if it is an encoder)")
    parser.add_argument('--compile', nargs='?', const='model', default='none', choices=['none', 'model', 'blocks'],
                        help="torch.compile: 'model' (the whole benchmarked module; the default of a bare "
                        "--compile) or 'blocks' (each residual block, as CompileBlocksHook does in training)")
    parser.add_argument('--with-cp', action='store_true', help='activation checkpointing in the backbone')
    parser.add_argument('--no-flops', action='store_true', help='skip fvcore FLOP counting')
    parser.add_argument('--threads', type=int, help='torch.set_num_threads on CPU')
    parser.add_argument('--out-dir', default='work_dirs/benchmark', help='benchmark.md and JSON go here')
    parser.add_argument('--name', help='row name (default: the config file stem)')
    parser.add_argument('--profile', type=int, default=0, metavar='STEPS',
                        help='after timing, profile this many training steps (torch.profiler) and write a table of '
                        'forward time per model component and the top operators (<name>_profile.md)')
    parser.add_argument('--profile-trace', default=None, help='also write a Chrome trace (.json) of the profile')
    compare = parser.add_mutually_exclusive_group()
    compare.add_argument('--compare-mmaction-vit', action='store_true',
                         help="our encoder (out_type='avg') vs mmaction2's VisionTransformer, interleaved")
    compare.add_argument('--compare-attn', action='store_true', help='SDPA vs flash-attn path of our encoder')
    parser.add_argument('--embed-dims', type=int, help='compare modes: width (default: config backbone, else 384)')
    parser.add_argument('--depth', type=int, help='compare modes: blocks (default: config backbone, else 4)')
    parser.add_argument('--num-heads', type=int, help='compare modes: heads (default: config backbone, else 6)')
    parser.add_argument('--patch-size', type=int, help='compare modes: patch side (default: config, else 14)')
    parser.add_argument('--cfg-options', nargs='+', default={}, action=DictAction,
                        help='override config keys, xxx=yyy (MMEngine DictAction syntax)')
    args = parser.parse_args(argv)
    try:
        return BenchmarkOptions(**vars(args))
    except ValueError as err:
        parser.error(str(err))


def run(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Parse the command line, print the report and return its record."""
    options = parse_args(argv)
    try:
        options.torch_device()
    except ValueError as err:
        raise SystemExit(str(err))
    if options.threads:
        torch.set_num_threads(options.threads)
    if options.compare_mmaction_vit:
        return run_compare_mmaction_vit(options)
    if options.compare_attn:
        return run_compare_attn(options)
    return run_benchmark(options)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line: exit code 0 once the report is printed (the record is :func:`run`'s)."""
    run(argv)
    return 0


if __name__ == '__main__':
    sys.exit(main())
