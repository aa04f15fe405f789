"""Benchmark a config's model on synthetic clips: step time, throughput, peak memory, FLOPs and MFU.

What is measured:

* ``train``: one optimisation step: forward of ``mode='loss'`` (or of the component), backward, AdamW step.
* ``forward``: ``torch.no_grad`` inference: ``mode='tensor'`` of the model in eval mode (or the component).
* Times are per step; the median and the interquartile range over ``steps`` timed steps after ``warmup``
  untimed ones (CUDA is synchronised around every step).
* Peak memory: ``torch.cuda.max_memory_allocated`` on CUDA; on CPU the process's peak RSS (forward is measured
  before train because the RSS high-water mark never decreases).
* FLOPs per clip: fvcore on a batch of one clip, fvcore's convention (one multiply-add = one FLOP, the number
  mmaction2's ``get_flops.py`` prints). The model's loss path is traced for ``train`` (random masks are
  recorded once, at their sampled size) and ``mode='tensor'`` for ``forward``; code that jit tracing cannot
  follow is counted at the dispatcher instead (``torch.utils.flop_counter``: matmuls, convolutions and
  attention, halved into multiply-adds), and the JSON's ``flops_counted`` says which was used. Training
  FLOPs = 3 x forward for children with trainable parameters (forward + backward for inputs and weights) and
  1 x forward for frozen children (teachers). Achieved TFLOP/s and MFU use 2 floating-point operations per
  multiply-add against the peak (dense bf16: A100 312, H100 SXM 989, H200 989 TFLOP/s).
"""
import json
import os.path as osp
from typing import Any, Dict

import torch
from torch import nn

from ivnext.analysis.benchmark import (achieved_tflops, mfu, peak_memory_bytes, reset_peak_memory,
                                       time_interleaved)
from ivnext.analysis.config_model import build_model, clip_shape, load_config, set_clip_shape
from ivnext.analysis.flops import FlopReport, count_params, hardware_flops
from ivnext.analysis.options import BenchmarkOptions
from ivnext.analysis.profile import profile_markdown, profile_step
from ivnext.analysis.report import MD_COLUMNS, environment, markdown_row, record_stem, write_outputs
from ivnext.analysis.workload import (Workload, backbone_workload, make_forward_step, make_train_step,
                                      model_workload)


def train_flops_per_clip(report: FlopReport, module: nn.Module) -> float:
    """3 x forward for children with trainable parameters, 1 x for frozen ones (fvcore multiply-adds)."""
    children = dict(module.named_children())
    total = 0.0
    for name, flops in report.by_child.items():
        child = children.get(name)
        frozen = child is not None and not any(p.requires_grad for p in child.parameters())
        total += flops * (1 if frozen else 3)
    return total if report.by_child else 3.0 * report.total


def measure(workload: Workload, options: BenchmarkOptions, device: torch.device) -> Dict[str, Any]:
    """Time, memory and FLOPs of one workload in the requested modes."""
    modes = options.modes
    peak = options.peak()
    result: Dict[str, Any] = dict(params=count_params(workload.module), modes={})
    flops: Dict[str, FlopReport] = {}
    if not options.no_flops:
        for mode in modes:
            flops[mode] = workload.flop_fns[mode]()
        result['flops_counted'] = {m: workload.counted[m] for m in modes}
    for mode in modes:
        entry: Dict[str, Any] = {}
        if mode == 'train':
            workload.module.train()
            step = make_train_step(workload, device, options.amp)
            if step is None:
                result['modes'][mode] = dict(skipped='no trainable parameters')
                continue
        else:
            workload.module.eval()
            step = make_forward_step(workload, device, options.amp)
        reset_peak_memory(device)
        stats = time_interleaved({mode: step}, options.steps, options.warmup, device)[mode]
        entry['time_s'] = stats.to_dict()
        entry['clips_per_s'] = options.batch_size / stats.median
        entry['peak_mem_bytes'] = peak_memory_bytes(device)
        entry['peak_mem_kind'] = 'cuda max_memory_allocated' if device.type == 'cuda' else 'process peak RSS'
        if options.profile and mode == 'train':
            entry['profile'] = profile_step(step, workload.module, device, steps=options.profile, warmup=1,
                                            trace_path=options.profile_trace)
        if mode in flops:
            report = flops[mode]
            fwd = report.total
            per_clip = train_flops_per_clip(report, workload.module) if mode == 'train' else fwd
            entry['gflops_per_clip_fwd'] = fwd / 1e9
            entry['gflops_per_clip_step'] = per_clip / 1e9
            entry['gflops_by_child_fwd'] = {k: v / 1e9 for k, v in report.by_child.items()}
            entry['unsupported_ops'] = report.unsupported_ops
            tflops = achieved_tflops(hardware_flops(per_clip) * options.batch_size, stats.median)
            entry['tflops'] = tflops
            entry['mfu'] = mfu(tflops, peak)
        result['modes'][mode] = entry
    workload.module.train()
    return result


def run_benchmark(options: BenchmarkOptions) -> Dict[str, Any]:
    """Build ``options.config``'s model (or its backbone) at the measured clip shape and benchmark it.

    Appends a row to ``<out_dir>/benchmark.md``, writes the JSON record (and ``<stem>_profile.md`` with
    ``profile``), prints the row, and returns the record.
    """
    device = options.torch_device()
    cfg = load_config(options.config, options.cfg_options)
    model_cfg = cfg.model
    num_frames, img_size = clip_shape(model_cfg, options.num_frames, options.img_size)
    set_clip_shape(model_cfg, num_frames, img_size, options.with_cp)
    model = build_model(model_cfg, cfg.get('default_scope', 'mmaction')).to(device)
    name = options.name or osp.splitext(osp.basename(options.config))[0]
    if options.component == 'backbone':
        module = getattr(model, 'backbone', None) or model
        workload = backbone_workload(module, options.batch_size, num_frames, img_size, device, options.compile)
    elif hasattr(model, 'parse_losses'):
        workload = model_workload(model, model_cfg, options.batch_size, num_frames, img_size, device,
                                  options.compile)
    else:  # a bare encoder config
        workload = backbone_workload(model, options.batch_size, num_frames, img_size, device, options.compile)
    result = measure(workload, options, device)
    row = markdown_row(name, options.component, options, num_frames, img_size, result)
    record = dict(name=name, config=options.config, component=options.component, batch_size=options.batch_size,
                  num_frames=num_frames, img_size=img_size, amp=options.amp, compile=options.compile,
                  with_cp=options.with_cp, environment=environment(options, device), **result)
    stem = record_stem(name, options, num_frames, img_size, options.component)
    profile = result['modes'].get('train', {}).pop('profile', None)
    md, js = write_outputs(options.out_dir, [row], record, stem)
    print('| ' + ' | '.join(MD_COLUMNS) + ' |')
    print(row)
    if profile is not None:
        step_ms = result['modes']['train']['time_s']['median'] * 1e3
        text = profile_markdown(profile, step_ms)
        path = osp.join(options.out_dir, f'{stem}_profile.md')
        with open(path, 'w') as f:
            f.write(f'# Profile: {name}\n\n{text}\n```\n{profile["table"]}\n```\n')
        record['profile'] = {k: v for k, v in profile.items() if k != 'table'}
        with open(js, 'w') as f:
            json.dump(record, f, indent=2, default=str)
        print(text)
        print(f'wrote {path}')
    print(f'wrote {md} and {js}')
    return record
