"""Cost of a probe sweep: FLOPs, train-step time and memory of a frozen encoder with N probe heads.

The measured model is a ``FrozenBackboneRecognizer3D`` (InternVideo-Next encoder, ``out_type='tokens'``) with a
``ProbeSweepHead`` of N heads and its ``ProbeSweepOptimWrapperConstructor`` optimizer (AdamW). One train step is
the recognizer's ``train_step`` on a synthetic batch: the frozen backbone forward (once, under ``no_grad``), the N
heads' forward and backward, and the AdamW update.

* **FLOPs** (fvcore, one multiply-add = one FLOP, see :mod:`ivnext.analysis.flops`): backbone forward and heads
  forward on the batch; step = backbone forward + 3 x heads forward (the heads' backward costs two forwards, the
  frozen backbone has none).
* **time**: per-step wall time (median, IQR) over ``steps`` timed steps after ``warmup``.
* **memory**: on CUDA the step's ``max_memory_allocated``; on CPU the process's peak RSS (run each head count in a
  fresh process, as ``tools/analysis/probe_sweep_benchmark.py`` does), plus the bytes autograd saves for backward
  and the heads' parameter + AdamW state bytes (any device).
"""
import copy
from typing import Dict, Union

import torch

HEADS = dict(attentive=dict(type='AttentiveProbeHead', num_heads=None, label_smooth_eps=0.1),
             linear=dict(type='LinearProbeHead', norm='bn', num_cls_tokens=4, label_smooth_eps=0.1))
PREPROCESSOR = dict(type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                    format_shape='NCTHW')


def build_sweep_model(num_heads: int, arch: Union[str, Dict] = 'base', num_frames: int = 4, img_size: int = 112,
                      num_classes: int = 400, head: str = 'attentive') -> torch.nn.Module:
    """The frozen encoder with an N-head probe sweep (lrs log-spaced over 1e-4 .. 1e-3, weight decay 0.05).

    Args:
        num_heads: Probe heads N.
        arch: Encoder size ('base', 'large' or a dict).
        num_frames: Clip frames T.
        img_size: Clip side (a multiple of 14).
        num_classes: Classes of every head.
        head: 'attentive' or 'linear'.

    Returns:
        nn.Module: the recognizer, weights initialised.
    """
    from mmaction.registry import MODELS
    from mmengine.registry import init_default_scope

    from ivnext.models.backbones.internvideo_next_vit import ARCH_SETTINGS
    if head not in HEADS:
        raise ValueError(f'head must be one of {sorted(HEADS)}, got {head!r}')
    if num_heads < 1:
        raise ValueError(f'num_heads must be >= 1, got {num_heads}')
    init_default_scope('mmaction')
    width = (ARCH_SETTINGS[arch] if isinstance(arch, str) else arch)['embed_dims']
    lrs = torch.logspace(-4, -3, num_heads).tolist() if num_heads > 1 else [3e-4]
    backbone = dict(type='InternVideoNextViT', arch=arch, img_size=img_size, patch_size=14, num_frames=num_frames,
                    out_type='tokens', with_clip_projector=False, use_flash_attn=False)
    model = MODELS.build(dict(
        type='FrozenBackboneRecognizer3D', backbone=backbone, data_preprocessor=copy.deepcopy(PREPROCESSOR),
        cls_head=dict(type='ProbeSweepHead', num_classes=num_classes, in_channels=width, head=HEADS[head],
                      settings=[dict(lr=lr, weight_decay=0.05) for lr in lrs])))
    model.init_weights()
    return model


def measure_sweep(num_heads: int, batch: int = 4, num_frames: int = 4, img_size: int = 112,
                  arch: Union[str, Dict] = 'base', head: str = 'attentive', num_classes: int = 400, steps: int = 5,
                  warmup: int = 2, device: str = 'cpu') -> Dict:
    """FLOPs, step time and memory of one probe-sweep train step with ``num_heads`` heads.

    Returns:
        dict: ``num_heads``, ``shape``, ``gflops`` (``backbone_fwd``, ``heads_fwd``, ``step``), ``time_s``
        (median, q1, q3, min), ``peak_memory_mib`` (see the module docstring), ``saved_activations_mib``,
        ``head_state_mib`` (head parameters + AdamW moments), ``backbone_forwards_per_step``.
    """
    from mmengine.optim import build_optim_wrapper

    from .benchmark import peak_memory_bytes, reset_peak_memory, saved_activation_bytes, time_steps
    from .flops import count_flops

    device = torch.device(device)
    model = build_sweep_model(num_heads, arch, num_frames, img_size, num_classes, head).to(device)
    optim = build_optim_wrapper(model, dict(constructor='ProbeSweepOptimWrapperConstructor',
                                            optimizer=dict(type='AdamW', lr=3e-4, betas=(0.9, 0.999),
                                                           weight_decay=0.05)))
    model.train()
    from mmaction.structures import ActionDataSample
    gen = torch.Generator().manual_seed(0)
    data = dict(inputs=[torch.randint(0, 256, (1, 3, num_frames, img_size, img_size), generator=gen).float()
                        for _ in range(batch)],
                data_samples=[ActionDataSample().set_gt_label(i % num_classes) for i in range(batch)])
    prepared = model.data_preprocessor(copy.deepcopy(data), False)
    clips = prepared['inputs'].flatten(0, 1)  # (B, 3, T, H, W), normalised

    with torch.no_grad():
        tokens = model.backbone(clips)
    backbone_flops = count_flops(model.backbone, clips).total
    heads_flops = count_flops(model.cls_head, tokens).total

    forwards = [0]
    handle = model.backbone.register_forward_hook(lambda *args: forwards.__setitem__(0, forwards[0] + 1))
    model.train_step(data, optim)
    handle.remove()
    reset_peak_memory(device)
    timing = time_steps(lambda: model.train_step(data, optim), steps, warmup, device)
    peak = peak_memory_bytes(device)
    head_params = list(model.cls_head.parameters())
    saved = saved_activation_bytes(lambda: model.cls_head.loss(tokens, prepared['data_samples'])['loss_cls'],
                                   exclude=[*model.parameters(), *model.buffers()])
    state = sum(p.numel() * p.element_size() for p in head_params) * 3  # parameters + AdamW exp_avg, exp_avg_sq
    mib = 1024.0**2
    return dict(num_heads=num_heads, head=head, arch=arch, shape=[batch, 3, num_frames, img_size, img_size],
                device=str(device), tokens=list(tokens.shape),
                gflops=dict(backbone_fwd=backbone_flops / 1e9, heads_fwd=heads_flops / 1e9,
                            step=(backbone_flops + 3 * heads_flops) / 1e9),
                time_s=dict(median=timing.median, q1=timing.q1, q3=timing.q3, min=timing.min, steps=timing.steps),
                peak_memory_mib=peak / mib, saved_activations_mib=saved / mib, head_state_mib=state / mib,
                backbone_forwards_per_step=forwards[0])


def format_sweep_table(records) -> str:
    """Markdown table of :func:`measure_sweep` records."""
    lines = ['| heads | GFLOPs backbone fwd | GFLOPs heads fwd | GFLOPs train step | step time s (median [IQR]) | '
             'peak memory MiB | saved activations MiB | head params + AdamW MiB | backbone forwards / step |',
             '|---|---|---|---|---|---|---|---|---|']
    for r in records:
        t = r['time_s']
        lines.append(f"| {r['num_heads']} | {r['gflops']['backbone_fwd']:.1f} | {r['gflops']['heads_fwd']:.1f} | "
                     f"{r['gflops']['step']:.1f} | {t['median']:.3f} [{t['q1']:.3f}, {t['q3']:.3f}] | "
                     f"{r['peak_memory_mib']:.0f} | {r['saved_activations_mib']:.1f} | {r['head_state_mib']:.1f} | "
                     f"{r['backbone_forwards_per_step']} |")
    return '\n'.join(lines)
