"""Print the FLOPs and parameters of a config's model, in the style of mmaction2's ``get_flops.py``.

FLOPs come from fvcore with one multiply-add counted as one FLOP (mmaction2's convention), extended to count
``scaled_dot_product_attention`` and RMSNorm; see :mod:`ivnext.analysis.config_flops` for what is traced.

Example::

    python tools/analysis/get_flops.py configs/demo/tiny_recognizer_i3dhead_cpu.py --shape 16 224 224
"""
import argparse
import sys
from typing import Any, Dict, Optional, Sequence

import ivnext  # noqa: F401  (compat fixes and registration, before mmengine and mmaction2)
from mmengine.config import DictAction

from ivnext.analysis.config_flops import format_flops_report, get_flops
from ivnext.analysis.config_model import load_config


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Get the FLOPs and parameters of a model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--shape', type=int, nargs='+', default=[16, 224, 224],
                        help='clip shape: T H W, or T S (square), or N C T H W')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config keys, xxx=yyy')
    return parser.parse_args(argv)


def run(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Parse the command line, print the report and return its record."""
    args = parse_args(argv)
    res = get_flops(load_config(args.config, args.cfg_options), args.shape)
    print(format_flops_report(res))
    return res


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line: exit code 0 once the report is printed (the record is :func:`run`'s)."""
    run(argv)
    return 0


if __name__ == '__main__':
    sys.exit(main())
