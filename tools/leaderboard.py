"""Probe encoders x tasks and write one leaderboard (see docs/evaluation.md and ivnext/evaluation/leaderboard.py).

Example::

    python tools/leaderboard.py my_leaderboard.yaml --work-dir work_dirs/leaderboard
"""
import sys

from ivnext.cli.leaderboard import main

if __name__ == '__main__':
    sys.exit(main())
