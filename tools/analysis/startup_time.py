"""Start-up time of ``import ivnext`` and of every command's ``--help``: median wall time of fresh processes.

Each command runs ``--repeat`` times in a new interpreter (after one unmeasured warm-up run that fills the OS file
cache); the median, minimum and maximum are reported. Run it on an idle machine: another busy process moves
every number.

Examples::

    python tools/analysis/startup_time.py                       # this checkout, 5 runs each
    python tools/analysis/startup_time.py --repeat 9 --json startup.json
    python tools/analysis/startup_time.py --source /path/to/other/checkout   # the same with another ivnext
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time
from typing import Dict, List

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
COMMANDS = {
    'import ivnext': ['-c', 'import ivnext'],
    'tools/train.py --help': ['tools/train.py', '--help'],
    'tools/test.py --help': ['tools/test.py', '--help'],
    'tools/extract_features.py --help': ['tools/extract_features.py', '--help'],
    'tools/data/build_video_list.py --help': ['tools/data/build_video_list.py', '--help'],
}


def time_command(args: List[str], source: str, repeat: int) -> Dict[str, float]:
    """Median / min / max seconds of ``python ARGS`` run from ``source`` with that checkout's ivnext first.

    Raises:
        RuntimeError: When the command exits non-zero (the output's tail is in the message).
    """
    env = dict(os.environ, PYTHONPATH=source + os.pathsep + os.environ.get('PYTHONPATH', ''))
    times = []
    for i in range(repeat + 1):
        start = time.perf_counter()
        out = subprocess.run([sys.executable, *args], cwd=source, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if out.returncode != 0:
            raise RuntimeError(f'python {" ".join(args)} exited {out.returncode}:\n{out.stderr[-2000:]}')
        if i:  # the first run only warms the file cache
            times.append(elapsed)
    return dict(median=statistics.median(times), min=min(times), max=max(times), runs=repeat)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--source', default=REPO, help='checkout whose ivnext and tools are timed (default: this one)')
    parser.add_argument('--repeat', type=int, default=5, help='measured runs per command (default 5)')
    parser.add_argument('--json', default=None, help='also write the results to this JSON file')
    args = parser.parse_args(argv)
    source = osp.abspath(args.source)
    results = {}
    print(f'{"command":40s} {"median s":>9s} {"min s":>7s} {"max s":>7s}')
    for name, command in COMMANDS.items():
        if command[0].endswith('.py') and not osp.isfile(osp.join(source, command[0])):
            continue
        results[name] = time_command(command, source, args.repeat)
        r = results[name]
        print(f'{name:40s} {r["median"]:9.2f} {r["min"]:7.2f} {r["max"]:7.2f}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(source=source, python=sys.executable, results=results), f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
