"""The command line of ``tools/leaderboard.py``: probe encoders x tasks from a spec file, write one table.

The work is :mod:`ivnext.evaluation.leaderboard`'s; this module only parses and calls.
"""
import argparse
import os.path as osp
from typing import List

from ivnext.evaluation.leaderboard import load_spec, render_markdown, run_leaderboard, write_tables


def parse_args(argv=None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description='Probe a list of encoders on a list of tasks (frozen features, probe sweeps selected on val) '
                    'and write one leaderboard (Markdown, CSV, JSON); see docs/evaluation.md')
    parser.add_argument('spec', help='spec file (.yaml, .json or .py) listing `encoders` and `tasks`')
    parser.add_argument('--work-dir', default='work_dirs/leaderboard',
                        help='folder of the per-row results (reused when the inputs are unchanged) and the tables')
    parser.add_argument('--out', default=None, help='table path without extension (default: WORK_DIR/leaderboard)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Run the leaderboard; prints the Markdown table and the written paths."""
    args = parse_args(argv)
    encoders, tasks = load_spec(args.spec)
    rows = run_leaderboard(encoders, tasks, args.work_dir)
    paths: List[str] = write_tables(rows, args.out or osp.join(args.work_dir, 'leaderboard'))
    print(render_markdown(rows))
    print('wrote ' + ', '.join(paths))
    return 0
