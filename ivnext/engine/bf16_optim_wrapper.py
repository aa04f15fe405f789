"""bf16 mixed-precision optimizer wrapper without loss scaling, with global-norm clipping that is right under FSDP."""
from contextlib import contextmanager
from typing import List, Optional

import torch
import torch.distributed as dist
from mmaction.registry import OPTIM_WRAPPERS
from mmengine.optim import OptimWrapper
from torch import nn

from .deferred_scalars import defer_scalar


@OPTIM_WRAPPERS.register_module()
class BFloat16OptimWrapper(OptimWrapper):
    """Optimizer wrapper for bf16 autocast training (the paper's precision) that never waits for the device.

    Compared with MMEngine's ``AmpOptimWrapper(dtype='bfloat16')``:

    - No loss scaler. bf16 has float32's exponent range, so scaling buys nothing, while the scaler's inf check
      reads a flag back from the GPU every step.
    - Gradient clipping by the global L2 norm (``clip_grad=dict(max_norm=...)``, ``torch.nn.utils.clip_grad_norm_``
      semantics) computed on the device. Under FSDP each rank holds a shard of every gradient; the squared norms
      are summed over ranks first, so all shards are scaled by the same factor (MMEngine's wrapper clips each
      shard by its own local norm). The norm is logged through :func:`defer_scalar`, i.e. read back only at
      logging points when ``LazyRuntimeInfoHook`` is used.

    Args:
        optimizer: The optimizer.
        clip_grad: ``dict(max_norm=float, norm_type=2)`` or None. Only L2 norms are supported.
        enabled: Autocast on (default). ``False`` trains in float32 with the same clipping.
        **kwargs: ``accumulative_counts`` and the rest of ``OptimWrapper``'s arguments.
    """

    def __init__(self, optimizer, clip_grad: Optional[dict] = None, enabled: bool = True, **kwargs) -> None:
        clip_grad = dict(clip_grad) if clip_grad else None
        if clip_grad is not None:
            if clip_grad.pop('type', 'norm') != 'norm':
                raise ValueError("BFloat16OptimWrapper clips by norm only: use clip_grad=dict(max_norm=...)")
            if float(clip_grad.get('norm_type', 2.0)) != 2.0:
                raise ValueError('BFloat16OptimWrapper supports norm_type=2 only')
            unknown = set(clip_grad) - {'max_norm', 'norm_type'}
            if unknown or 'max_norm' not in clip_grad:
                raise ValueError(f'clip_grad must be dict(max_norm=..., norm_type=2), got keys {sorted(clip_grad)}')
        super().__init__(optimizer, clip_grad=clip_grad, **kwargs)
        self.enabled = bool(enabled)
        self._sharded_group = None
        self._is_sharded = False

    @contextmanager
    def optim_context(self, model: nn.Module):
        """Gradient-accumulation context of ``OptimWrapper`` plus bf16 autocast on the model's device."""
        self._is_sharded = _is_fsdp(model)
        if self._is_sharded:
            self._sharded_group = getattr(model, 'process_group', None)
        device_type = _device_type(model)
        with super().optim_context(model), torch.autocast(device_type=device_type, dtype=torch.bfloat16,
                                                          enabled=self.enabled):
            yield

    def global_grad_norm(self, params: List[torch.Tensor]) -> torch.Tensor:
        """L2 norm of all gradients (over every rank's shard under FSDP), as a float32 device tensor."""
        grads = [p.grad for p in params]
        if grads:
            squares = torch.stack([g.detach().float().pow(2).sum() for g in grads]).sum()
        else:
            squares = torch.zeros((), device=_default_device(self.optimizer))
        if self._is_sharded and dist.is_available() and dist.is_initialized():
            dist.all_reduce(squares, group=self._sharded_group)
        return squares.sqrt()

    def _clip_grad(self) -> None:
        params = [p for group in self.optimizer.param_groups for p in group['params']
                  if p.requires_grad and p.grad is not None]
        total = self.global_grad_norm(params)
        if params:
            scale = (self.clip_grad_kwargs['max_norm'] / (total + 1e-6)).clamp(max=1.0)
            torch._foreach_mul_([p.grad for p in params], scale.to(params[0].grad.dtype))
        defer_scalar(self.message_hub, f'train/{self.grad_name}', total)


def _is_fsdp(model: nn.Module) -> bool:
    try:
        from torch.distributed.fsdp import FullyShardedDataParallel
    except ImportError:  # pragma: no cover - builds without distributed
        return False
    return isinstance(model, FullyShardedDataParallel)


def _device_type(model: nn.Module) -> str:
    for tensor in model.parameters():
        return tensor.device.type
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def _default_device(optimizer) -> torch.device:
    for group in optimizer.param_groups:
        for p in group['params']:
            return p.device
    return torch.device('cpu')
