"""Evaluate a checkpoint with an MMEngine config (mmaction2-compatible command line).

Examples:
    python tools/test.py configs/demo/tiny_recognizer_i3dhead_cpu.py work_dirs/tiny/iter_8.pth
    bash tools/dist_test.sh CONFIG CHECKPOINT 2 --dump results.pkl
"""
from ivnext.cli.evaluate import main

if __name__ == '__main__':
    main()
