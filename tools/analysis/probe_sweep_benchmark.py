"""FLOPs, CPU (or GPU) train-step time and peak memory of a probe sweep with 1, 5 and 20 heads.

Each head count runs in a fresh process (the CPU peak RSS never decreases within a process) and prints one JSON
record; the parent prints a Markdown table (see ivnext.analysis.probe_sweep for what is measured).

Example::

    python tools/analysis/probe_sweep_benchmark.py --heads 1 5 20 --batch 4 --frames 4 --size 112 --threads 2
"""
import argparse
import json
import subprocess
import sys
from typing import List, Optional, Sequence

import ivnext  # noqa: F401  (compat fixes and registration, before mmengine and mmaction2)
import torch

from ivnext.analysis.probe_sweep import format_sweep_table, measure_sweep


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Cost of training N probe heads on one frozen forward')
    parser.add_argument('--heads', type=int, nargs='+', default=[1, 5, 20], help='head counts to measure')
    parser.add_argument('--head', choices=('attentive', 'linear'), default='attentive')
    parser.add_argument('--arch', default='base', help="encoder size: 'base' or 'large'")
    parser.add_argument('--batch', type=int, default=4, help='clips per step')
    parser.add_argument('--frames', type=int, default=4, help='frames per clip')
    parser.add_argument('--size', type=int, default=112, help='clip side in pixels (multiple of 14)')
    parser.add_argument('--classes', type=int, default=400)
    parser.add_argument('--steps', type=int, default=5, help='timed steps')
    parser.add_argument('--warmup', type=int, default=2, help='untimed steps first')
    parser.add_argument('--threads', type=int, default=None, help='torch intra-op threads (CPU)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--json', default=None, help='also write the records to this file')
    parser.add_argument('--single', action='store_true', help=argparse.SUPPRESS)  # one head count, JSON out
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.single:
        torch.manual_seed(0)
        print(json.dumps(measure_sweep(args.heads[0], args.batch, args.frames, args.size, args.arch, args.head,
                                       args.classes, args.steps, args.warmup, args.device)))
        return 0
    records: List[dict] = []
    base = [a for a in (argv if argv is not None else sys.argv[1:])]
    for num_heads in args.heads:
        child = [sys.executable, __file__, *base, '--single', '--heads', str(num_heads)]
        out = subprocess.run(child, check=True, capture_output=True, text=True).stdout
        records.append(json.loads(out.strip().splitlines()[-1]))
    print(f'probe sweep, {args.head} heads on a frozen {args.arch} encoder, clips {args.batch}x3x{args.frames}x'
          f'{args.size}x{args.size}, {args.device}, {torch.get_num_threads()} threads')
    print(format_sweep_table(records))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(records, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
