"""Training memory per GPU of a config at its batch size, for machines that cannot run it.

Three parts, computed per GPU:

* **Model states**: trainable parameters in fp32 with their gradients and AdamW's two moments (16 bytes per
  parameter), frozen parameters at their stored dtype (the image teacher is bf16 in the recipes). Under FSDP full
  sharding the trainable states and the sharded weights are divided by the number of GPUs (frozen teachers stay
  replicated, as the recipes set ``ignored_modules``); under ZeRO-2 the gradients and optimizer moments are.
* **Activations**: the bytes autograd saves for backward during one training forward, measured by running the
  model's ``mode='loss'`` forward on ``measure_batch`` synthetic clips under the chosen autocast on any device
  (:func:`ivnext.analysis.benchmark.saved_activation_bytes`), scaled linearly to the batch.
* Not modelled: kernel workspaces, the allocator's fragmentation, transient teacher activations, communication
  buckets. A measured peak of the same config (``calibrate``) gives the measured / computed ratio.
"""
import os.path as osp
from typing import Any, Dict, Optional

import torch

from ivnext.analysis.benchmark import saved_activation_bytes
from ivnext.analysis.config_model import build_model, clip_shape, load_config, set_clip_shape
from ivnext.analysis.workload import autocast, model_workload

GIB = 1024**3
TRAINABLE_BYTES_PER_PARAM = 16  # fp32 weight + fp32 gradient + AdamW exp_avg + exp_avg_sq
STRATEGIES = ('ddp', 'zero2', 'fsdp')


def model_state_bytes(model: torch.nn.Module) -> Dict[str, int]:
    """Trainable parameter count and bytes of weights + grads + AdamW moments; frozen parameter bytes."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() * p.element_size() for p in model.parameters() if not p.requires_grad)
    return dict(trainable_params=trainable, trainable_bytes=trainable * TRAINABLE_BYTES_PER_PARAM,
                frozen_bytes=frozen)


def estimate(states: Dict[str, int], act_per_clip: float, batch: int, gpus: int) -> Dict[str, float]:
    """Bytes per GPU for DDP, ZeRO-2 and FSDP full sharding (and the activations of ``batch`` clips)."""
    act = act_per_clip * batch
    weights = states['trainable_params'] * 4
    grads_and_moments = states['trainable_bytes'] - weights
    return dict(
        activations=act,
        ddp=states['trainable_bytes'] + states['frozen_bytes'] + act,
        zero2=weights + grads_and_moments / gpus + states['frozen_bytes'] + act,
        fsdp=states['trainable_bytes'] / gpus + states['frozen_bytes'] + act,
    )


def estimate_config_memory(config: str, batch_size: Optional[int] = None, measure_batch: int = 1,
                           num_frames: Optional[int] = None, img_size: Optional[int] = None, amp: str = 'bf16',
                           device: str = 'cpu', with_cp: bool = False, gpus: int = 8,
                           calibrate: Optional[float] = None,
                           cfg_options: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Build ``config``'s model, measure its saved activations and compute the memory per GPU.

    Args:
        config: MMEngine config path.
        batch_size: Clips per GPU (None: the config's ``train_dataloader.batch_size``, else 1).
        measure_batch: Clips in the measured training forward.
        num_frames: Frames per clip (None: the config backbone's).
        img_size: Crop side (None: the config backbone's).
        amp: Autocast of the measured forward: ``'none'``, ``'bf16'`` or ``'fp16'``.
        device: Device of the measured forward.
        with_cp: Activation checkpointing in the backbone.
        gpus: GPUs for the ZeRO-2 and FSDP figures.
        calibrate: A measured peak (GiB) of this config and batch; the record gets measured / computed (DDP).
        cfg_options: Config overrides.

    Returns:
        dict: the settings, the model states, ``activation_bytes_per_clip``, ``calibration`` and
        ``<activations|ddp|zero2|fsdp>_bytes``.
    """
    device = torch.device(device)
    cfg = load_config(config, cfg_options)
    model_cfg = cfg.model
    num_frames, img_size = clip_shape(model_cfg, num_frames, img_size)
    set_clip_shape(model_cfg, num_frames, img_size, with_cp)
    batch = batch_size or cfg.get('train_dataloader', {}).get('batch_size') or 1
    model = build_model(model_cfg, cfg.get('default_scope', 'mmaction')).to(device)
    model.train()
    states = model_state_bytes(model)
    work = model_workload(model, model_cfg, measure_batch, num_frames, img_size, device)

    def training_forward():
        with autocast(device, amp):
            return work.loss_fn()

    # Parameters and buffers saved for backward are model states (booked above), not activations.
    model_tensors = list(model.parameters()) + list(model.buffers())
    per_clip = saved_activation_bytes(training_forward, exclude=model_tensors) / measure_batch
    result = estimate(states, per_clip, batch, gpus)
    calibration = calibrate * GIB / result['ddp'] if calibrate else None
    return dict(config=config, num_frames=num_frames, img_size=img_size, batch_size=batch, amp=amp,
                measure_batch=measure_batch, device=device.type, gpus=gpus, with_cp=with_cp,
                activation_bytes_per_clip=per_clip, calibration=calibration, **states,
                **{f'{k}_bytes': v for k, v in result.items()})


def format_memory_estimate(record: Dict[str, Any]) -> str:
    """The summary and the per-strategy table that ``estimate_memory.py`` prints for a record."""
    name = osp.splitext(osp.basename(record['config']))[0]
    calibration, gpus = record['calibration'], record['gpus']
    lines = [f"{name}: {record['num_frames']} x {record['img_size']}, batch {record['batch_size']} per GPU, "
             f"{record['amp']} autocast, activations measured on {record['measure_batch']} clip(s) on "
             f"{record['device']}",
             f"  trainable {record['trainable_params'] / 1e6:.1f} M params: {record['trainable_bytes'] / GIB:.2f} GiB "
             f"(weights, grads, AdamW); frozen weights {record['frozen_bytes'] / GIB:.2f} GiB",
             f"  saved activations {record['activation_bytes_per_clip'] / GIB:.2f} GiB per clip, "
             f"{record['activations_bytes'] / GIB:.1f} GiB per GPU",
             '| strategy | GiB per GPU (computed) |' + (' x calibration |' if calibration else ''),
             '|---|---|' + ('---|' if calibration else '')]
    for key, label in zip(STRATEGIES, ('DDP', f'ZeRO-2, {gpus} GPUs', f'FSDP, {gpus} GPUs')):
        cells = f"| {label} | {record[f'{key}_bytes'] / GIB:.1f} |"
        if calibration:
            cells += f" {record[f'{key}_bytes'] * calibration / GIB:.1f} |"
        lines.append(cells)
    if calibration:
        lines.append(f"  calibration: measured {calibration * record['ddp_bytes'] / GIB:.1f} GiB / computed "
                     f"{record['ddp_bytes'] / GIB:.1f} GiB = {calibration:.2f}")
    return '\n'.join(lines)
