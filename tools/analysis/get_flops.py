"""Print the FLOPs and parameters of a config's model, in the style of mmaction2's ``get_flops.py``.

FLOPs come from fvcore with one multiply-add counted as one FLOP (mmaction2's convention), extended to count
``scaled_dot_product_attention`` and RMSNorm (:mod:`ivnext.analysis.flops`). What is traced is the model's
``extract_feat`` (mmaction2's choice; for recognizers and pretraining algorithms this is the backbone path),
or the forward of a bare encoder config, on one clip.

Example::

    python tools/analysis/get_flops.py configs/demo/tiny_recognizer_i3dhead_cpu.py --shape 16 224 224
"""
import argparse
import copy
import os.path as osp
import sys
from typing import Any, Dict, Optional, Sequence

import torch
from torch import nn

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import ivnext  # noqa: E402,F401
from benchmark import build_model, load_config, set_clip_shape  # noqa: E402
from ivnext.analysis.flops import count_flops, format_count  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Get the FLOPs and parameters of a model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--shape', type=int, nargs='+', default=[16, 224, 224],
                        help='clip shape: T H W, or T S (square), or N C T H W')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config keys, xxx=yyy')
    return parser.parse_args(argv)


def input_shape_of(shape: Sequence[int]) -> tuple:
    """(1, 3, T, H, W) from ``--shape``."""
    if len(shape) == 2:
        return (1, 3, shape[0], shape[1], shape[1])
    if len(shape) == 3:
        return (1, 3) + tuple(shape)
    if len(shape) == 5:
        return tuple(shape)
    raise ValueError(f'--shape takes T H W, T S or N C T H W, got {list(shape)}')


class _ExtractFeat(nn.Module):
    """``model.extract_feat(x)`` as a module returning only tensors."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        out = self.model.extract_feat(x)
        out = out[0] if isinstance(out, tuple) and len(out) == 2 and not torch.is_tensor(out[1]) else out
        return out


def get_flops(cfg: Any, shape: Sequence[int]) -> Dict[str, Any]:
    """FLOPs (fvcore) and parameters of ``cfg.model`` on one clip of ``shape`` (T, H, W)."""
    input_shape = input_shape_of(shape)
    model_cfg = copy.deepcopy(cfg.model)
    if input_shape[3] != input_shape[4]:
        raise ValueError(f'square crops only, got H={input_shape[3]} W={input_shape[4]}')
    set_clip_shape(model_cfg, input_shape[2], input_shape[3], with_cp=False)
    model = build_model(model_cfg, cfg.get('default_scope', 'mmaction')).eval()
    x = torch.randn(input_shape)
    from mmaction.models.recognizers import BaseRecognizer
    if isinstance(model, BaseRecognizer):
        x = x.unsqueeze(1)  # mmaction2's (N, num_clips, C, T, H, W) layout
    if hasattr(model, 'extract_feat'):
        report = count_flops(_ExtractFeat(model), x, children_of='model')
        traced = f'{type(model).__name__}.extract_feat'
    else:
        report = count_flops(model, x)
        traced = f'{type(model).__name__}.forward'
    return dict(input_shape=tuple(x.shape), traced=traced, flops=report.total, params=report.params['total'],
                by_child=report.by_child, unsupported_ops=report.unsupported_ops)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    res = get_flops(cfg, args.shape)
    split_line = '=' * 30
    print('module | GFLOPs')
    for name, flops in res['by_child'].items():
        print(f'{name} | {format_count(flops)}')
    print(f"\n{split_line}\nInput shape: {res['input_shape']}\nTraced: {res['traced']}\n"
          f"Flops: {format_count(res['flops'])} G\nParams: {format_count(res['params'], 'M')} M\n{split_line}")
    print(f"Not counted (element-wise) ops: {res['unsupported_ops']}")
    print('FLOPs follow fvcore/mmaction2: one multiply-add = one FLOP. Check the ops above before citing them.')
    return res


if __name__ == '__main__':
    main()
