"""FLOPs and parameters of a config's model on one clip, in the style of mmaction2's ``get_flops.py``.

FLOPs come from fvcore with one multiply-add counted as one FLOP (mmaction2's convention), extended to count
``scaled_dot_product_attention`` and RMSNorm (:mod:`ivnext.analysis.flops`). What is traced is the model's
``extract_feat`` (mmaction2's choice; for recognizers and pretraining algorithms this is the backbone path),
or the forward of a bare encoder config.
"""
import copy
from typing import Any, Dict, Sequence, Tuple

import torch
from torch import nn

from ivnext.analysis.config_model import build_model, set_clip_shape
from ivnext.analysis.flops import count_flops, format_count


def input_shape_of(shape: Sequence[int]) -> Tuple[int, ...]:
    """(1, 3, T, H, W) from ``--shape`` T H W, T S (square) or N C T H W.

    Raises:
        ValueError: Any other number of values.
    """
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
    """FLOPs (fvcore) and parameters of ``cfg.model`` on one clip of ``shape`` (see :func:`input_shape_of`).

    Returns:
        dict: ``input_shape``, ``traced`` (what was traced), ``flops``, ``params``, ``by_child`` (FLOPs per
        top-level module) and ``unsupported_ops`` (element-wise ops fvcore does not count).
    """
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


def format_flops_report(res: Dict[str, Any]) -> str:
    """The text ``get_flops.py`` prints for a :func:`get_flops` result."""
    split_line = '=' * 30
    lines = ['module | GFLOPs'] + [f'{name} | {format_count(flops)}' for name, flops in res['by_child'].items()]
    lines.append(f"\n{split_line}\nInput shape: {res['input_shape']}\nTraced: {res['traced']}\n"
                 f"Flops: {format_count(res['flops'])} G\nParams: {format_count(res['params'], 'M')} M\n{split_line}")
    lines.append(f"Not counted (element-wise) ops: {res['unsupported_ops']}")
    lines.append('FLOPs follow fvcore/mmaction2: one multiply-add = one FLOP. Check the ops above before citing them.')
    return '\n'.join(lines)
