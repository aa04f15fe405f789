"""FLOP counting with fvcore, extended to the operators our models use.

Convention (the one fvcore and mmaction2's ``get_flops.py`` use): one fused multiply-add counts as ONE flop,
so the "FLOPs" reported here are multiply-accumulates (MACs). Hardware peaks (and MFU) count a multiply-add
as TWO floating-point operations; :func:`hardware_flops` converts. Element-wise ops (GELU, residual adds,
LayerScale) are not counted, as in fvcore. Attention through ``scaled_dot_product_attention`` is counted
(``Lq*Lk*D`` for ``q k^T`` plus ``Lq*Lk*Dv`` for ``attn v``) and RMSNorm like fvcore's affine norms.
"""
from collections import Counter
from dataclasses import dataclass, field
from math import prod
from typing import Any, Callable, Dict, List, Tuple, Union

import torch
from fvcore.nn import FlopCountAnalysis
from fvcore.nn.jit_handles import get_shape
from torch import nn


def sdpa_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """fvcore handle for ``aten::scaled_dot_product_attention`` on (..., L, D) tensors.

    Returns:
        int: multiply-adds of ``q @ k^T`` and ``softmax(.) @ v``.
    """
    q, k, v = (get_shape(x) for x in inputs[:3])
    batch = prod(q[:-2])
    lq, d = q[-2], q[-1]
    lk, dv = k[-2], v[-1]
    return batch * lq * lk * (d + dv)


def rms_norm_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """fvcore handle for ``aten::rms_norm``: 4 ops per element (5 with an affine weight), as fvcore's norms."""
    shape = get_shape(inputs[0])
    has_weight = len(inputs) > 2 and get_shape(inputs[2]) is not None
    return prod(shape) * (5 if has_weight else 4)


EXTRA_HANDLES = {
    'aten::scaled_dot_product_attention': sdpa_flop_jit,
    'aten::rms_norm': rms_norm_flop_jit,
}


def hardware_flops(fvcore_flops: float) -> float:
    """Multiply-add count (fvcore convention) -> floating-point operations (2 per multiply-add)."""
    return 2.0 * fvcore_flops


@dataclass
class FlopReport:
    """Result of :func:`count_flops`.

    Attributes:
        total: fvcore FLOPs (multiply-adds) of one call on the given inputs.
        by_child: FLOPs of each top-level child module (name -> FLOPs); ``'(other)'`` holds ops outside them.
        params: Parameters of the module (all) and trainable ones.
        unsupported_ops: Operators fvcore skipped (name -> occurrences); element-wise ops are expected here.
    """

    total: int
    by_child: Dict[str, int] = field(default_factory=dict)
    params: Dict[str, int] = field(default_factory=dict)
    unsupported_ops: Dict[str, int] = field(default_factory=dict)


def count_params(module: nn.Module) -> Dict[str, int]:
    """Parameter counts: ``{'total': ..., 'trainable': ...}``."""
    return dict(total=sum(p.numel() for p in module.parameters()),
                trainable=sum(p.numel() for p in module.parameters() if p.requires_grad))


def count_flops(module: nn.Module, inputs: Union[torch.Tensor, Tuple[Any, ...]],
                children_of: str = '') -> FlopReport:
    """Count the forward FLOPs of ``module(*inputs)`` with fvcore, broken down by top-level child.

    Args:
        module: Module to trace (traced with ``torch.jit.trace``: the inputs must be tensors; random ops are
            recorded once, so random masks give the count of the sampled mask size).
        inputs: A tensor or tuple of tensors passed positionally.
        children_of: Dotted name of the submodule whose children form the breakdown ('' = ``module`` itself).

    Returns:
        FlopReport: totals in fvcore's multiply-add convention.
    """
    inputs = inputs if isinstance(inputs, tuple) else (inputs, )
    analysis = FlopCountAnalysis(module, inputs).set_op_handle(**EXTRA_HANDLES)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings('none')
    with torch.no_grad():
        total = int(analysis.total())
        per_module = analysis.by_module()
    parent = module.get_submodule(children_of) if children_of else module
    prefix = f'{children_of}.' if children_of else ''
    by_child = {name: int(per_module.get(prefix + name, 0)) for name, _ in parent.named_children()}
    by_child = {k: v for k, v in by_child.items() if v}
    other = total - sum(by_child.values())
    if other:
        by_child['(other)'] = other
    return FlopReport(total=total, by_child=by_child, params=count_params(module),
                      unsupported_ops=dict(Counter(analysis.unsupported_ops())))


def format_count(value: float, unit: str = 'G') -> str:
    """``1.234e9`` -> ``'1.234'`` in giga (``unit='G'``), mega ('M') or tera ('T')."""
    scale = {'K': 1e3, 'M': 1e6, 'G': 1e9, 'T': 1e12}[unit]
    return f'{value / scale:.3f}'


def _sdpa_shape_flops(query: Tuple[int, ...], key: Tuple[int, ...], value: Tuple[int, ...], *args: Any,
                      **kwargs: Any) -> int:
    """Floating-point operations (2 per multiply-add) of attention from q/k/v shapes (B, heads, L, D)."""
    return 2 * prod(query[:-2]) * query[-2] * key[-2] * (query[-1] + value[-1])


def count_flops_dispatch(module: nn.Module, fn: Callable[[], Any]) -> FlopReport:
    """Count the FLOPs of running ``fn()`` (which calls ``module``) at the dispatcher, without tracing.

    For code :func:`count_flops` cannot trace (data-dependent sampling, in-place index ops, diffusion
    timesteps): PyTorch's ``FlopCounterMode`` sees every matrix product, convolution and attention kernel that
    runs, whichever method called it. Its counts (2 per multiply-add) are halved into fvcore's convention;
    norms are not counted. Ops inside a top-level child are attributed to it even when the child is reached
    through a method other than ``forward`` (e.g. ``backbone.forward_tokens``).

    Args:
        module: The module whose top-level children form the breakdown.
        fn: Zero-argument callable running the computation once.

    Returns:
        FlopReport: totals in multiply-adds; ``unsupported_ops`` is empty (not tracked by this counter).
    """
    from torch.utils.flop_counter import FlopCounterMode
    custom = {}
    cpu_flash = getattr(torch.ops.aten, '_scaled_dot_product_flash_attention_for_cpu', None)
    if cpu_flash is not None:  # PyTorch's table covers the CUDA attention kernels only
        custom[cpu_flash] = _sdpa_shape_flops
    with FlopCounterMode(display=False, custom_mapping=custom) as counter:
        fn()
    counts = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    total = counts.pop('Global', 0) // 2
    root = type(module).__name__
    by_child: Dict[str, int] = {}
    for name, _ in module.named_children():
        prefix = f'{root}.{name}'
        keys = {k for k in counts if k == prefix or k.startswith(prefix + '.')}
        # a module's count includes its submodules: sum only the outermost recorded modules of this child
        outermost = [k for k in keys if not any(k.startswith(other + '.') for other in keys)]
        flops = sum(counts[k] for k in outermost) // 2
        if flops:
            by_child[name] = flops
    other = total - sum(by_child.values())
    if other:
        by_child['(other)'] = other
    return FlopReport(total=total, by_child=by_child, params=count_params(module))
