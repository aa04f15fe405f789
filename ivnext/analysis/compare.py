"""Encoders side by side, interleaved step by step in one process.

* :func:`run_compare_mmaction_vit`: our encoder (``out_type='avg'``) against mmaction2's VideoMAE
  ``VisionTransformer`` at equal width, depth, heads, patch tokens and batch.
* :func:`run_compare_attn`: the SDPA path of our encoder against its flash-attn path (same weights); flash-attn
  needs the package, CUDA and bf16/fp16 autocast, otherwise SDPA is timed alone and the reason recorded.

Both report FLOPs, the bytes autograd saves for backward, interleaved forward / train step times, CUDA step
memory and the ratios between the variants.
"""
import copy
import gc
import math
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import nn

from ivnext.analysis.benchmark import (achieved_tflops, mfu, peak_memory_bytes, reset_peak_memory,
                                       saved_activation_bytes, time_interleaved)
from ivnext.analysis.config_model import build_model, clip_shape, load_config, main_encoder_cfg
from ivnext.analysis.flops import count_params, hardware_flops
from ivnext.analysis.options import BenchmarkOptions
from ivnext.analysis.report import environment, format_cell, markdown_row, record_stem, write_outputs
from ivnext.analysis.workload import autocast, backbone_workload, make_forward_step, make_train_step


def encoder_dims(options: BenchmarkOptions, cfg: Any) -> Dict[str, Any]:
    """Width / depth / heads / patch / MLP ratio: the arguments, else the config's backbone, else 384/4/6/14."""
    from ivnext.models.backbones import ARCH_SETTINGS
    arch: Dict[str, Any] = {}
    patch = None
    if cfg is not None:
        enc = main_encoder_cfg(cfg.model) or {}
        arch = enc.get('arch', {})
        arch = dict(ARCH_SETTINGS[arch]) if isinstance(arch, str) else dict(arch or {})
        patch = enc.get('patch_size')
    return dict(embed_dims=options.embed_dims or arch.get('embed_dims', 384),
                num_layers=options.depth or arch.get('num_layers', 4),
                num_heads=options.num_heads or arch.get('num_heads', 6),
                mlp_ratio=arch.get('mlp_ratio', 4.0),
                patch_size=options.patch_size or patch or 14)


def build_our_encoder(dims: Dict[str, Any], num_frames: int, img_size: int, **kwargs) -> nn.Module:
    """Our encoder at ``dims`` (see :func:`encoder_dims`) with ``out_type='avg'``, no clip projector by default."""
    from ivnext.models.backbones import InternVideoNextViT
    arch = {k: dims[k] for k in ('embed_dims', 'num_layers', 'num_heads', 'mlp_ratio')}
    kwargs.setdefault('with_clip_projector', False)
    return InternVideoNextViT(arch=arch, img_size=img_size, patch_size=dims['patch_size'], num_frames=num_frames,
                              out_type='avg', **kwargs)


def build_mmaction_vit(dims: Dict[str, Any], num_frames: int, img_size: int) -> nn.Module:
    """mmaction2's VideoMAE ``VisionTransformer`` with our width/depth/heads, patch, tubelet 1 and LayerScale."""
    from mmaction.models.backbones.vit_mae import VisionTransformer
    return VisionTransformer(img_size=img_size, patch_size=dims['patch_size'], embed_dims=dims['embed_dims'],
                             depth=dims['num_layers'], num_heads=dims['num_heads'], mlp_ratio=dims['mlp_ratio'],
                             qkv_bias=False, init_values=1e-5, num_frames=num_frames, tubelet_size=1,
                             use_mean_pooling=True)


def compare_variants(variants: Dict[str, Tuple[nn.Module, Callable[[], None]]], options: BenchmarkOptions,
                     device: torch.device, num_frames: int, img_size: int) -> Dict[str, Dict[str, Any]]:
    """Measure encoders side by side: FLOPs, activation memory, then interleaved forward and train steps.

    Args:
        variants: name -> (module, activate) where ``activate()`` switches the module into that variant.
    """
    modes = options.modes
    peak = options.peak()
    works = {name: backbone_workload(module, options.batch_size, num_frames, img_size, device, options.compile)
             for name, (module, _) in variants.items()}
    results: Dict[str, Dict[str, Any]] = {}
    for name, (module, activate) in variants.items():
        activate()
        module.train()
        res: Dict[str, Any] = dict(params=count_params(module), modes={})
        if not options.no_flops:
            res['flops'] = works[name].flop_fns['forward']()
        with autocast(device, options.amp):
            res['saved_activation_bytes'] = saved_activation_bytes(works[name].loss_fn)
        module.zero_grad(set_to_none=True)
        results[name] = res
    for mode in modes:
        steps = {}
        for name, (module, activate) in variants.items():
            inner = (make_train_step(works[name], device, options.amp) if mode == 'train'
                     else make_forward_step(works[name], device, options.amp))

            def step(inner=inner, module=module, activate=activate, train=mode == 'train') -> None:
                activate()
                module.train(train)
                inner()

            steps[name] = step
        if device.type == 'cuda':  # separate CUDA peaks per variant, one step each after a warm-up step
            for name, step in steps.items():
                step()
                gc.collect()
                torch.cuda.empty_cache()
                reset_peak_memory(device)
                resident = torch.cuda.memory_allocated(device)
                step()
                entry = results[name]['modes'].setdefault(mode, {})
                entry['peak_mem_bytes'] = peak_memory_bytes(device)
                # what this step adds on top of everything already resident (both models, optimiser states)
                entry['step_mem_bytes'] = entry['peak_mem_bytes'] - resident
        stats = time_interleaved(steps, options.steps, options.warmup, device)
        for name, st in stats.items():
            entry = results[name]['modes'].setdefault(mode, {})
            entry['time_s'] = st.to_dict()
            entry['clips_per_s'] = options.batch_size / st.median
            if 'flops' in results[name]:
                fwd = results[name]['flops'].total
                per_clip = 3 * fwd if mode == 'train' else fwd
                entry['gflops_per_clip_fwd'] = fwd / 1e9
                entry['tflops'] = achieved_tflops(hardware_flops(per_clip) * options.batch_size, st.median)
                entry['mfu'] = mfu(entry['tflops'], peak)
    for res in results.values():
        if 'flops' in res:
            report = res.pop('flops')
            res['gflops_per_clip_fwd'] = report.total / 1e9
            res['gflops_by_child_fwd'] = {k: v / 1e9 for k, v in report.by_child.items()}
    return results


def ratios(results: Dict[str, Dict[str, Any]], ours: str, theirs: str) -> Dict[str, float]:
    """ours / theirs for median (and fastest) step times, CUDA step memory and saved activations."""
    out: Dict[str, float] = {}
    for mode in results[ours]['modes']:
        a, b = results[ours]['modes'][mode], results[theirs]['modes'][mode]
        out[f'{mode}_time'] = a['time_s']['median'] / b['time_s']['median']
        out[f'{mode}_time_min'] = a['time_s']['min'] / b['time_s']['min']
        if 'step_mem_bytes' in a:
            out[f'{mode}_step_mem'] = a['step_mem_bytes'] / b['step_mem_bytes']
    out['train_saved_activations'] = (results[ours]['saved_activation_bytes']
                                      / max(results[theirs]['saved_activation_bytes'], 1))
    return out


def print_side_by_side(results: Dict[str, Dict[str, Any]], title: str) -> None:
    """Print ``title`` and a Markdown table of the variants' times, FLOPs and memory."""
    print(title)
    head = ['variant', 'params (M)', 'GFLOPs/clip', 'fwd ms (median ± IQR)', 'train ms (median ± IQR)',
            'train saved activations (MiB)', 'cuda step memory fwd / train (MiB)']
    print('| ' + ' | '.join(head) + ' |')
    for name, res in results.items():
        cells = [name, format_cell(res['params']['total'] / 1e6), format_cell(res.get('gflops_per_clip_fwd'), '.3f')]
        for mode in ('forward', 'train'):
            t = res['modes'].get(mode, {}).get('time_s')
            cells.append(f"{t['median'] * 1e3:.1f} ± {t['iqr'] * 1e3:.1f}" if t else '-')
        cells.append(format_cell(res['saved_activation_bytes'] / 2**20, '.1f'))
        peaks = [res['modes'].get(m, {}).get('step_mem_bytes') for m in ('forward', 'train')]
        cells.append(' / '.join(format_cell(None if p is None else p / 2**20, '.0f') for p in peaks))
        print('| ' + ' | '.join(cells) + ' |')


def side_by_side_rows(results: Dict[str, Dict[str, Any]], options: BenchmarkOptions, num_frames: int,
                      img_size: int) -> List[str]:
    """One ``benchmark.md`` row per variant (component ``backbone``)."""
    rows = []
    for name, res in results.items():
        for mode, entry in res['modes'].items():
            entry.setdefault('gflops_per_clip_fwd', res.get('gflops_per_clip_fwd'))
        rows.append(markdown_row(name, 'backbone', options, num_frames, img_size, res))
    return rows


def run_compare_mmaction_vit(options: BenchmarkOptions) -> Dict[str, Any]:
    """Our encoder against mmaction2's ViT; prints the table and ratios, writes the rows and JSON, returns it."""
    device = options.torch_device()
    cfg = load_config(options.config, options.cfg_options) if options.config else None
    num_frames, img_size = clip_shape(cfg.model if cfg else {}, options.num_frames, options.img_size)
    dims = encoder_dims(options, cfg)
    torch.manual_seed(0)
    ours = build_our_encoder(dims, num_frames, img_size).to(device)
    theirs = build_mmaction_vit(dims, num_frames, img_size).to(device)
    names = ('ivnext InternVideoNextViT', 'mmaction2 VisionTransformer')
    results = compare_variants({names[0]: (ours, lambda: None), names[1]: (theirs, lambda: None)}, options, device,
                               num_frames, img_size)
    ratio = ratios(results, *names)
    tokens = math.prod((num_frames, img_size // dims['patch_size'], img_size // dims['patch_size']))
    print_side_by_side(results, f"encoders at width {dims['embed_dims']}, depth {dims['num_layers']}, heads "
                       f"{dims['num_heads']}, {tokens} patch tokens (+{ours.num_cls_tokens} CLS in ours), "
                       f'batch {options.batch_size}, {options.device}, amp {options.amp}, '
                       f'threads {torch.get_num_threads()}')
    print('ratios ours/theirs: ' + ', '.join(f'{k} {v:.3f}' for k, v in ratio.items()))
    record = dict(kind='compare-mmaction-vit', dims=dims, num_frames=num_frames, img_size=img_size,
                  batch_size=options.batch_size, patch_tokens=tokens, environment=environment(options, device),
                  results=results, ratios_ours_over_theirs=ratio)
    rows = side_by_side_rows(results, options, num_frames, img_size)
    md, js = write_outputs(options.out_dir, rows, record,
                           record_stem('compare_mmaction_vit', options, num_frames, img_size,
                                       f"w{dims['embed_dims']}d{dims['num_layers']}"))
    print(f'wrote {md} and {js}')
    return record


def flash_unavailable_reason(device: torch.device, amp: str) -> Optional[str]:
    """Why the flash-attn path cannot run here (None when it can)."""
    from ivnext.models.layers import flash_attn_available
    if not flash_attn_available():
        return 'the flash-attn package is not installed'
    if device.type != 'cuda':
        return 'flash-attn needs CUDA'
    if amp not in ('bf16', 'fp16'):
        return 'flash-attn needs bf16/fp16 activations (use --amp bf16)'
    return None


def run_compare_attn(options: BenchmarkOptions) -> Dict[str, Any]:
    """SDPA against flash-attn in the config's encoder (or one at ``encoder_dims``); prints, writes, returns."""
    device = options.torch_device()
    cfg = load_config(options.config, options.cfg_options) if options.config else None
    num_frames, img_size = clip_shape(cfg.model if cfg else {}, options.num_frames, options.img_size)
    torch.manual_seed(0)
    if cfg is not None and main_encoder_cfg(cfg.model) is not None and options.embed_dims is None:
        enc_cfg = copy.deepcopy(main_encoder_cfg(cfg.model))
        enc_cfg.update(num_frames=num_frames, img_size=img_size, out_type='avg', out_indices=-1)
        encoder = build_model(enc_cfg, cfg.get('default_scope', 'mmaction'))
    else:
        encoder = build_our_encoder(encoder_dims(options, cfg), num_frames, img_size)
    encoder = encoder.to(device)
    attn_modules = [m for m in encoder.modules() if hasattr(m, 'use_flash_attn')]

    def use(flag: bool) -> Callable[[], None]:
        def activate() -> None:
            for m in attn_modules:
                m.use_flash_attn = flag
        return activate

    variants = {'sdpa': (encoder, use(False))}
    reason = flash_unavailable_reason(device, options.amp)
    if reason:
        print(f'flash-attn path unavailable: {reason}; timing the SDPA path only')
    else:
        variants['flash-attn'] = (encoder, use(True))
    results = compare_variants(variants, options, device, num_frames, img_size)
    record = dict(kind='compare-attn', num_frames=num_frames, img_size=img_size, batch_size=options.batch_size,
                  flash_unavailable=reason, environment=environment(options, device), results=results)
    if not reason:
        x = torch.randn(1, 3, num_frames, img_size, img_size, device=device)
        encoder.eval()
        outs = {}
        with torch.no_grad(), autocast(device, options.amp):
            for flag in (False, True):
                use(flag)()
                outs[flag] = encoder(x).float()
        use(False)()
        record['max_abs_diff_flash_vs_sdpa'] = float((outs[True] - outs[False]).abs().max())
        record['ratios_flash_over_sdpa'] = ratios(results, 'flash-attn', 'sdpa')
    print_side_by_side(results, f'attention kernels of {type(encoder).__name__}, batch {options.batch_size}, '
                       f'{num_frames} x {img_size}, {options.device}, amp {options.amp}')
    if not reason:
        print('ratios flash/sdpa: ' + ', '.join(f'{k} {v:.3f}' for k, v in record['ratios_flash_over_sdpa'].items())
              + f"; max |flash - sdpa| = {record['max_abs_diff_flash_vs_sdpa']:.3g}")
    rows = side_by_side_rows(results, options, num_frames, img_size)
    md, js = write_outputs(options.out_dir, rows, record,
                           record_stem('compare_attn', options, num_frames, img_size, 'attn'))
    print(f'wrote {md} and {js}')
    return record

