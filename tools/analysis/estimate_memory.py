"""Training memory per GPU of a config at its batch size, for machines that cannot run it.

Three parts, computed per GPU:

* **Model states**: trainable parameters in fp32 with their gradients and AdamW's two moments (16 bytes per
  parameter), frozen parameters at their stored dtype (the image teacher is bf16 in the recipes). Under FSDP full
  sharding the trainable states and the sharded weights are divided by the number of GPUs (frozen teachers stay
  replicated, as the recipes set ``ignored_modules``); under ZeRO-2 the gradients and optimizer moments are.
* **Activations**: the bytes autograd saves for backward during one training forward, measured by running the
  model's ``mode='loss'`` forward on ``--measure-batch`` synthetic clips under the chosen autocast on any device
  (``ivnext.analysis.benchmark.saved_activation_bytes``), scaled linearly to the batch.
* Not modelled: kernel workspaces, the allocator's fragmentation, transient teacher activations, communication
  buckets. ``--calibrate MEASURED_GIB`` with a measured peak of the same config rescales by the measured / computed
  ratio and prints it.

Example (CPU, bf16 autocast, one clip measured, the recipe's batch per GPU)::

    python tools/analysis/estimate_memory.py configs/benchmark/bench_ivnext-stage1_vit-b-p14_siglip2-1b-random_16x224.py \
        --amp bf16 --measure-batch 1 --gpus 8
"""
import argparse
import json
import os.path as osp
import sys
from typing import Any, Dict, Optional, Sequence

import torch

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import ivnext  # noqa: E402,F401
from benchmark import (autocast, build_model, clip_shape, load_config, model_workload,  # noqa: E402
                       num_classes_of, set_clip_shape)
from ivnext.analysis.benchmark import saved_activation_bytes  # noqa: E402

GIB = 1024**3
TRAINABLE_BYTES_PER_PARAM = 16  # fp32 weight + fp32 gradient + AdamW exp_avg + exp_avg_sq


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('--batch-size', type=int, default=None, help='clips per GPU (default: the config\'s)')
    parser.add_argument('--measure-batch', type=int, default=1, help='clips in the measured forward')
    parser.add_argument('--num-frames', type=int, default=None)
    parser.add_argument('--img-size', type=int, default=None)
    parser.add_argument('--amp', choices=['none', 'bf16', 'fp16'], default='bf16')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--with-cp', action='store_true', help='activation checkpointing in the backbone')
    parser.add_argument('--gpus', type=int, default=8, help='GPUs for the FSDP / ZeRO-2 columns')
    parser.add_argument('--calibrate', type=float, default=None, metavar='MEASURED_GIB',
                        help='a measured peak (GiB) of this config and batch: prints the measured / computed ratio')
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--out', default=None, help='write the estimate as JSON here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return parser.parse_args(argv)


def model_state_bytes(model: torch.nn.Module) -> Dict[str, int]:
    """Trainable parameter count and bytes of weights + grads + AdamW moments; frozen parameter bytes."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() * p.element_size() for p in model.parameters() if not p.requires_grad)
    return dict(trainable_params=trainable, trainable_bytes=trainable * TRAINABLE_BYTES_PER_PARAM,
                frozen_bytes=frozen)


def estimate(states: Dict[str, int], act_per_clip: float, batch: int, gpus: int) -> Dict[str, float]:
    """Bytes per GPU for DDP, ZeRO-2 and FSDP full sharding."""
    act = act_per_clip * batch
    weights = states['trainable_params'] * 4
    grads_and_moments = states['trainable_bytes'] - weights
    return dict(
        activations=act,
        ddp=states['trainable_bytes'] + states['frozen_bytes'] + act,
        zero2=weights + grads_and_moments / gpus + states['frozen_bytes'] + act,
        fsdp=states['trainable_bytes'] / gpus + states['frozen_bytes'] + act,
    )


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cfg = load_config(args.config, args.cfg_options)
    model_cfg = cfg.model
    num_frames, img_size = clip_shape(model_cfg, args.num_frames, args.img_size)
    set_clip_shape(model_cfg, num_frames, img_size, args.with_cp)
    batch = args.batch_size or cfg.get('train_dataloader', {}).get('batch_size') or 1
    model = build_model(model_cfg, cfg.get('default_scope', 'mmaction')).to(device)
    model.train()
    states = model_state_bytes(model)
    work = model_workload(model, model_cfg, args.measure_batch, num_frames, img_size, device)

    def training_forward():
        with autocast(device, args.amp):
            return work.loss_fn()

    saved = saved_activation_bytes(training_forward)
    per_clip = saved / args.measure_batch
    result = estimate(states, per_clip, batch, args.gpus)
    calibration = None
    if args.calibrate:
        calibration = args.calibrate * GIB / result['ddp']
    name = osp.splitext(osp.basename(args.config))[0]
    print(f'{name}: {num_frames} x {img_size}, batch {batch} per GPU, {args.amp} autocast, '
          f'activations measured on {args.measure_batch} clip(s) on {device.type}')
    print(f"  trainable {states['trainable_params'] / 1e6:.1f} M params: {states['trainable_bytes'] / GIB:.2f} GiB "
          f"(weights, grads, AdamW); frozen weights {states['frozen_bytes'] / GIB:.2f} GiB")
    print(f'  saved activations {per_clip / GIB:.2f} GiB per clip, {result["activations"] / GIB:.1f} GiB per GPU')
    print('| strategy | GiB per GPU (computed) |' + (' x calibration |' if calibration else ''))
    print('|---|---|' + ('---|' if calibration else ''))
    for key, label in (('ddp', 'DDP'), ('zero2', f'ZeRO-2, {args.gpus} GPUs'), ('fsdp', f'FSDP, {args.gpus} GPUs')):
        cells = f'| {label} | {result[key] / GIB:.1f} |'
        if calibration:
            cells += f' {result[key] * calibration / GIB:.1f} |'
        print(cells)
    if calibration:
        print(f'  calibration: measured {args.calibrate:.1f} GiB / computed {result["ddp"] / GIB:.1f} GiB = '
              f'{calibration:.2f}')
    record = dict(config=args.config, num_frames=num_frames, img_size=img_size, batch_size=batch, amp=args.amp,
                  measure_batch=args.measure_batch, device=device.type, gpus=args.gpus, with_cp=args.with_cp,
                  activation_bytes_per_clip=per_clip, calibration=calibration, **states,
                  **{f'{k}_bytes': v for k, v in result.items()})
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(record, f, indent=2)
    return record


if __name__ == '__main__':
    main()
