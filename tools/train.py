"""Train a model from an MMEngine config (mmaction2-compatible command line).

Examples:
    python tools/train.py configs/demo/tiny_recognizer_i3dhead_cpu.py --work-dir work_dirs/tiny
    bash tools/dist_train.sh configs/demo/tiny_recognizer_i3dhead_cpu.py 2 --resume
"""
from ivnext.cli.train import main

if __name__ == '__main__':
    main()
