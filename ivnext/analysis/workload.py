"""What a benchmark runs: a module with a loss step and an inference step on a synthetic batch.

``backbone_workload`` feeds clips (B, 3, T, S, S) straight into an encoder; ``model_workload`` runs a whole model
(recognizer or pretraining algorithm) on a batch through its ``data_preprocessor``. ``make_train_step`` and
``make_forward_step`` turn a workload into the step functions that are timed.
"""
from contextlib import nullcontext
from typing import Any, Callable, Dict, List, Optional

import torch
from torch import nn

from ivnext.analysis.config_model import num_classes_of
from ivnext.analysis.flops import FlopReport, count_flops, count_flops_dispatch
from ivnext.engine import compile_blocks
from ivnext.engine.fsdp_wrap_policy import DEFAULT_BLOCK_CLASSES


def float_tensors(out: Any) -> List[torch.Tensor]:
    """Every floating tensor in a (nested) output."""
    if isinstance(out, torch.Tensor):
        return [out] if out.is_floating_point() else []
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in float_tensors(o)]
    return []


class Workload:
    """What one benchmark runs: a module, a loss step and an inference step on a synthetic batch.

    Args:
        module: The module benchmarked (whole model or backbone).
        loss_fn: Runs a training forward and returns a scalar loss.
        forward_fn: Runs an inference forward.
        flop_fns: ``{'train': fn, 'forward': fn}`` returning a :class:`FlopReport` for one clip.
        counted: How FLOPs were counted, per mode (documentation in the JSON).
    """

    def __init__(self, module: nn.Module, loss_fn: Callable[[], torch.Tensor], forward_fn: Callable[[], Any],
                 flop_fns: Dict[str, Callable[[], FlopReport]], counted: Dict[str, str]):
        self.module = module
        self.loss_fn = loss_fn
        self.forward_fn = forward_fn
        self.flop_fns = flop_fns
        self.counted = counted


class _Traced(nn.Module):
    """Wrap ``model(inputs, data_samples, mode=...)`` as a tensor-in, tensors-out module for fvcore."""

    def __init__(self, model: nn.Module, data_samples: Any, mode: str):
        super().__init__()
        self.model = model
        self.data_samples = data_samples
        self.mode = mode

    def forward(self, inputs: torch.Tensor):
        out = self.model(inputs, self.data_samples, mode=self.mode)
        if self.mode == 'loss':
            return self.model.parse_losses(out)[0]
        return tuple(float_tensors(out))


def compiled_call(module: nn.Module, compile: str) -> Callable:
    """``module`` itself, ``torch.compile(module)``, or ``module`` with its blocks compiled at the first call.

    Blocks are compiled in place, so that happens lazily: FLOPs are counted on the eager module before timing.
    """
    if compile in (None, False, 'none'):
        return module
    if compile in (True, 'model'):
        return torch.compile(module)
    if compile != 'blocks':
        raise ValueError(f"compile must be 'none', 'model' or 'blocks', got {compile!r}")
    done = []

    def call(*args, **kwargs):
        if not done:
            # ivnext blocks, and the ``Block`` of mmaction2's / timm's ViTs for the side-by-side modes
            done.append(compile_blocks(module, DEFAULT_BLOCK_CLASSES + ('Block', )))
            if not done[0]:
                raise ValueError('--compile blocks found no residual blocks in the benchmarked module')
        return module(*args, **kwargs)

    return call


def backbone_workload(module: nn.Module, batch: int, num_frames: int, img_size: int, device: torch.device,
                      compile: str = 'none') -> Workload:
    """Clips (B, 3, T, S, S) straight into an encoder; the training loss is the mean of its outputs."""
    x = torch.randn(batch, 3, num_frames, img_size, img_size, device=device)
    call = compiled_call(module, compile)  # FLOPs are always counted on the eager module

    def loss_fn() -> torch.Tensor:
        return sum(t.float().mean() for t in float_tensors(call(x)))

    def forward_fn() -> Any:
        return call(x)

    def flops() -> FlopReport:
        return count_flops(module, x[:1])

    what = f'{type(module).__name__}.forward on (1, 3, {num_frames}, {img_size}, {img_size})'
    return Workload(module, loss_fn, forward_fn, {'train': flops, 'forward': flops},
                    {'train': what, 'forward': what})


def synthetic_data(model: nn.Module, batch: int, num_frames: int, img_size: int, num_classes: int,
                   device: torch.device) -> Dict[str, Any]:
    """A preprocessed batch: raw 0..255 clips with labels through the model's ``data_preprocessor``.

    Recognizers receive mmaction2's (B, num_clips=1, 3, T, H, W) layout; other models (pretraining algorithms)
    the (B, 3, T, H, W) clips of the ivnext contract.
    """
    from mmaction.models.recognizers import BaseRecognizer
    from mmaction.structures import ActionDataSample
    per_clip = (3, num_frames, img_size, img_size)
    if isinstance(model, BaseRecognizer):
        per_clip = (1, ) + per_clip
    gen = torch.Generator().manual_seed(0)
    inputs = [torch.randint(0, 256, per_clip, generator=gen).float() for _ in range(batch)]
    samples = [ActionDataSample().set_gt_label(int(torch.randint(num_classes, (1, ), generator=gen)))
               for _ in range(batch)]
    data = dict(inputs=inputs, data_samples=samples)
    preprocessor = getattr(model, 'data_preprocessor', None)
    if preprocessor is None:
        data['inputs'] = torch.stack(inputs).to(device)
        return data
    return preprocessor(data, training=True)


def model_workload(model: nn.Module, model_cfg: Dict, batch: int, num_frames: int, img_size: int,
                   device: torch.device, compile: str = 'none') -> Workload:
    """``model(inputs, data_samples, mode='loss')`` for training and ``mode='tensor'`` for inference."""
    data = synthetic_data(model, batch, num_frames, img_size, num_classes_of(model_cfg), device)
    inputs, samples = data['inputs'], data['data_samples']
    call = compiled_call(model, compile)  # FLOPs are always counted on the eager model

    def loss_fn() -> torch.Tensor:
        return model.parse_losses(call(inputs, samples, mode='loss'))[0]

    def forward_fn() -> Any:
        return call(inputs, samples, mode='tensor')

    one = inputs[:1]
    shape = tuple(one.shape)
    counted = {'train': f"{type(model).__name__}(mode='loss') on inputs {shape}",
               'forward': f"{type(model).__name__}(mode='tensor') on inputs {shape}"}

    def counted_at_dispatch(mode: str, err: Exception) -> FlopReport:
        key = 'train' if mode == 'loss' else 'forward'
        counted[key] += (f' counted at the dispatcher (torch.utils.flop_counter: matmuls, convolutions and '
                         f'attention; jit tracing failed with {type(err).__name__}: '
                         f'{str(err).splitlines()[0][:100]})')
        with torch.no_grad():
            return count_flops_dispatch(model, lambda: model(one, samples[:1], mode=mode))

    def forward_flops() -> FlopReport:
        training = model.training
        model.eval()
        try:
            return count_flops(_Traced(model, samples[:1], 'tensor'), one, children_of='model')
        except Exception as err:  # noqa: BLE001 - tracing failures fall back to dispatch-level counting
            return counted_at_dispatch('tensor', err)
        finally:
            model.train(training)

    def train_flops() -> FlopReport:
        training = model.training
        model.train()
        try:
            return count_flops(_Traced(model, samples[:1], 'loss'), one, children_of='model')
        except Exception as err:  # noqa: BLE001 - tracing failures fall back to dispatch-level counting
            return counted_at_dispatch('loss', err)
        finally:
            model.train(training)

    return Workload(model, loss_fn, forward_fn, {'train': train_flops, 'forward': forward_flops}, counted)


def autocast(device: torch.device, amp: str):
    """``torch.autocast`` to bf16 / fp16 on ``device``, or a null context for ``amp='none'``."""
    if amp == 'none':
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if amp == 'bf16' else torch.float16)


def make_train_step(workload: Workload, device: torch.device, amp: str) -> Optional[Callable[[], None]]:
    """One AdamW step of the workload's loss (forward under ``amp``, backward); None without trainable params."""
    params = [p for p in workload.module.parameters() if p.requires_grad]
    if not params:
        return None
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.05)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, amp):
            loss = workload.loss_fn()
        loss.backward()
        optimizer.step()

    return step


def make_forward_step(workload: Workload, device: torch.device, amp: str) -> Callable[[], None]:
    """One ``torch.no_grad`` inference forward of the workload under ``amp``."""

    def step() -> None:
        with torch.no_grad(), autocast(device, amp):
            workload.forward_fn()

    return step

