"""Benchmark a model from an MMEngine config: step time, throughput, peak memory, FLOPs and MFU.

Examples::

    # full train step and inference forward of a config's model on synthetic clips
    python tools/analysis/benchmark.py CONFIG --batch-size 8 --num-frames 16 --img-size 224 \
        --device cuda --amp bf16 --gpu h100 --mode both
    # only the encoder of the config
    python tools/analysis/benchmark.py CONFIG --component backbone --device cpu --steps 5
    # our encoder against mmaction2's VisionTransformer at equal width/depth/heads/tokens/batch
    python tools/analysis/benchmark.py --compare-mmaction-vit --embed-dims 384 --depth 4 --num-heads 6 \
        --num-frames 8 --img-size 112 --batch-size 2 --device cpu
    # SDPA against the flash-attn path of our encoder (flash only with flash-attn + CUDA + bf16/fp16)
    python tools/analysis/benchmark.py CONFIG --compare-attn --device cuda --amp bf16

What is measured:

* ``train``: one optimisation step: forward of ``mode='loss'`` (or of the component), backward, AdamW step.
* ``forward``: ``torch.no_grad`` inference: ``mode='tensor'`` of the model in eval mode (or the component).
* Times are per step; the median and the interquartile range over ``--steps`` timed steps after ``--warmup``
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
import argparse
import copy
import datetime
import gc
import json
import math
import os
import os.path as osp
import sys
from contextlib import nullcontext
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

import ivnext  # noqa: E402,F401  (environment fixes and registration, before mmaction.models)
from mmengine.config import DictAction  # noqa: E402
from ivnext.engine import compile_blocks  # noqa: E402
from ivnext.engine.fsdp_wrap_policy import DEFAULT_BLOCK_CLASSES  # noqa: E402
from ivnext.analysis.benchmark import (PEAK_TFLOPS, achieved_tflops, mfu, peak_memory_bytes,  # noqa: E402
                                    reset_peak_memory, saved_activation_bytes, time_interleaved)
from ivnext.analysis.profile import profile_markdown, profile_step  # noqa: E402
from ivnext.analysis.flops import (FlopReport, count_flops, count_flops_dispatch, count_params,  # noqa: E402
                                hardware_flops)

MD_COLUMNS = ['name', 'component', 'device', 'amp', 'batch x T x S', 'params (M)', 'GFLOPs/clip (fwd)',
              'train ms (median ± IQR)', 'train clips/s', 'train TFLOP/s', 'train MFU', 'fwd ms (median ± IQR)',
              'fwd clips/s', 'fwd TFLOP/s', 'fwd MFU', 'train peak mem (MiB)', 'fwd peak mem (MiB)']


# ----------------------------------------------------------------------------------------------- arguments
def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark an ivnext / mmaction2 model on synthetic clips')
    parser.add_argument('config', nargs='?', help='MMEngine config (optional with the --compare-* modes)')
    parser.add_argument('--batch-size', type=int, default=2, help='clips per step')
    parser.add_argument('--num-frames', type=int, help='frames per clip (default: the config backbone, else 16)')
    parser.add_argument('--img-size', type=int, help='square crop side (default: the config backbone, else 224)')
    parser.add_argument('--steps', type=int, default=10, help='timed steps per mode')
    parser.add_argument('--warmup', type=int, default=3, help='untimed steps before timing')
    parser.add_argument('--amp', choices=['none', 'bf16', 'fp16'], default='none', help='autocast dtype')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu', help='cpu or cuda')
    peak = parser.add_mutually_exclusive_group()
    peak.add_argument('--peak-tflops', type=float, help='peak TFLOP/s of the device for MFU')
    peak.add_argument('--gpu', choices=sorted(PEAK_TFLOPS), help='use the dense bf16 peak of this GPU for MFU')
    parser.add_argument('--mode', choices=['train', 'forward', 'both'], default='both')
    parser.add_argument('--component', choices=['model', 'backbone'], default='model',
                        help="'backbone': only cfg.model.backbone (or the model itself if it is an encoder)")
    parser.add_argument('--compile', nargs='?', const='model', default='none', choices=['none', 'model', 'blocks'],
                        help="torch.compile: 'model' (the whole benchmarked module; the default of a bare "
                        "--compile) or 'blocks' (each residual block, as CompileBlocksHook does in training)")
    parser.add_argument('--with-cp', action='store_true', help='activation checkpointing in the backbone')
    parser.add_argument('--no-flops', action='store_true', help='skip fvcore FLOP counting')
    parser.add_argument('--threads', type=int, help='torch.set_num_threads on CPU')
    parser.add_argument('--out-dir', default='work_dirs/benchmark', help='benchmark.md and JSON go here')
    parser.add_argument('--name', help='row name (default: the config file stem)')
    parser.add_argument('--profile', type=int, default=0, metavar='STEPS',
                        help='after timing, profile this many training steps (torch.profiler) and write a table of '
                        'forward time per model component and the top operators (<name>_profile.md)')
    parser.add_argument('--profile-trace', default=None, help='also write a Chrome trace (.json) of the profile')
    compare = parser.add_mutually_exclusive_group()
    compare.add_argument('--compare-mmaction-vit', action='store_true',
                         help="our encoder (out_type='avg') vs mmaction2's VisionTransformer, interleaved")
    compare.add_argument('--compare-attn', action='store_true', help='SDPA vs flash-attn path of our encoder')
    parser.add_argument('--embed-dims', type=int, help='compare modes: width (default: config backbone, else 384)')
    parser.add_argument('--depth', type=int, help='compare modes: blocks (default: config backbone, else 4)')
    parser.add_argument('--num-heads', type=int, help='compare modes: heads (default: config backbone, else 6)')
    parser.add_argument('--patch-size', type=int, help='compare modes: patch side (default: config, else 14)')
    parser.add_argument('--cfg-options', nargs='+', default={}, action=DictAction,
                        help='override config keys, xxx=yyy (MMEngine DictAction syntax)')
    args = parser.parse_args(argv)
    if not (args.compare_mmaction_vit or args.compare_attn or args.config):
        parser.error('CONFIG is required unless --compare-mmaction-vit or --compare-attn is given')
    if min(args.batch_size, args.steps) < 1 or args.warmup < 0:
        parser.error('--batch-size and --steps must be >= 1 and --warmup >= 0')
    return args


# --------------------------------------------------------------------------------------------- model setup
def load_config(path: str, cfg_options: Dict[str, Any]):
    """Read an MMEngine config and apply ``--cfg-options``."""
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def _is_encoder_cfg(cfg: Dict) -> bool:
    return isinstance(cfg, dict) and 'num_frames' in _default_kwargs(cfg.get('type'))


def _default_kwargs(type_name: Any) -> Dict[str, Any]:
    """Constructor defaults of a registered model type (empty when unknown)."""
    import inspect
    from mmaction.registry import MODELS
    cls = MODELS.get(type_name) if isinstance(type_name, str) else type_name
    if cls is None or not inspect.isclass(cls):
        return {}
    params = inspect.signature(cls.__init__).parameters
    return {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}


def encoder_cfgs(model_cfg: Dict) -> List[Dict]:
    """Every encoder-like sub-config (a registered type taking ``num_frames``): the backbone and the like."""
    found = []
    if _is_encoder_cfg(model_cfg):
        found.append(model_cfg)
    for key, value in model_cfg.items():
        if isinstance(value, dict) and key != 'data_preprocessor':
            found.extend(encoder_cfgs(value))
    return found


def main_encoder_cfg(model_cfg: Dict) -> Optional[Dict]:
    """The backbone's config if the model has one, else the model itself if it is an encoder."""
    if isinstance(model_cfg.get('backbone'), dict):
        return model_cfg['backbone']
    return model_cfg if _is_encoder_cfg(model_cfg) else None


def clip_shape(model_cfg: Dict, num_frames: Optional[int], img_size: Optional[int]) -> Tuple[int, int]:
    """Frames and crop side: the arguments, else the backbone config, else its defaults, else 16 x 224."""
    enc = main_encoder_cfg(model_cfg) or {}
    defaults = _default_kwargs(enc.get('type')) if enc else {}
    t = num_frames or enc.get('num_frames') or defaults.get('num_frames') or 16
    s = img_size or enc.get('img_size') or defaults.get('img_size') or 224
    return int(t), int(s)


def set_clip_shape(model_cfg: Dict, num_frames: int, img_size: int, with_cp: bool) -> None:
    """Build the encoders (student and same-family teachers) at the benchmarked clip shape."""
    for enc in encoder_cfgs(model_cfg):
        enc['num_frames'] = num_frames
        if 'img_size' in _default_kwargs(enc.get('type')):
            enc['img_size'] = img_size
    main = main_encoder_cfg(model_cfg)
    if with_cp:
        if main is None or 'with_cp' not in _default_kwargs(main.get('type')):
            raise ValueError('--with-cp needs a backbone with a `with_cp` argument')
        main['with_cp'] = True


def build_model(model_cfg: Dict, default_scope: str = 'mmaction') -> nn.Module:
    """``MODELS.build`` inside the config's default scope."""
    from mmaction.registry import MODELS
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope(default_scope):
        return MODELS.build(copy.deepcopy(model_cfg))


def num_classes_of(model_cfg: Dict) -> int:
    head = model_cfg.get('cls_head') or {}
    return int(head.get('num_classes', 2)) if isinstance(head, dict) else 2


def _tensors(out: Any) -> List[torch.Tensor]:
    """Every floating tensor in a (nested) output."""
    if isinstance(out, torch.Tensor):
        return [out] if out.is_floating_point() else []
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _tensors(o)]
    return []


# ------------------------------------------------------------------------------------------------ workloads
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
        return tuple(_tensors(out))


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
        return sum(t.float().mean() for t in _tensors(call(x)))

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


# ------------------------------------------------------------------------------------------------- running
def autocast(device: torch.device, amp: str):
    if amp == 'none':
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if amp == 'bf16' else torch.float16)


def train_flops_per_clip(report: FlopReport, module: nn.Module) -> float:
    """3 x forward for children with trainable parameters, 1 x for frozen ones (fvcore multiply-adds)."""
    children = dict(module.named_children())
    total = 0.0
    for name, flops in report.by_child.items():
        child = children.get(name)
        frozen = child is not None and not any(p.requires_grad for p in child.parameters())
        total += flops * (1 if frozen else 3)
    return total if report.by_child else 3.0 * report.total


def make_train_step(workload: Workload, device: torch.device, amp: str) -> Optional[Callable[[], None]]:
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

    def step() -> None:
        with torch.no_grad(), autocast(device, amp):
            workload.forward_fn()

    return step


def peak_tflops_of(args: argparse.Namespace) -> Optional[float]:
    if args.peak_tflops:
        return args.peak_tflops
    return PEAK_TFLOPS[args.gpu] if args.gpu else None


def measure(workload: Workload, args: argparse.Namespace, device: torch.device) -> Dict[str, Any]:
    """Time, memory and FLOPs of one workload in the requested modes."""
    modes = ['forward', 'train'] if args.mode == 'both' else [args.mode]
    peak = peak_tflops_of(args)
    result: Dict[str, Any] = dict(params=count_params(workload.module), modes={})
    flops: Dict[str, FlopReport] = {}
    if not args.no_flops:
        for mode in modes:
            flops[mode] = workload.flop_fns[mode]()
        result['flops_counted'] = {m: workload.counted[m] for m in modes}
    for mode in modes:
        entry: Dict[str, Any] = {}
        if mode == 'train':
            workload.module.train()
            step = make_train_step(workload, device, args.amp)
            if step is None:
                result['modes'][mode] = dict(skipped='no trainable parameters')
                continue
        else:
            workload.module.eval()
            step = make_forward_step(workload, device, args.amp)
        reset_peak_memory(device)
        stats = time_interleaved({mode: step}, args.steps, args.warmup, device)[mode]
        entry['time_s'] = stats.to_dict()
        entry['clips_per_s'] = args.batch_size / stats.median
        entry['peak_mem_bytes'] = peak_memory_bytes(device)
        entry['peak_mem_kind'] = 'cuda max_memory_allocated' if device.type == 'cuda' else 'process peak RSS'
        if getattr(args, 'profile', 0) and mode == 'train':
            entry['profile'] = profile_step(step, workload.module, device, steps=args.profile, warmup=1,
                                            trace_path=getattr(args, 'profile_trace', None))
        if mode in flops:
            report = flops[mode]
            fwd = report.total
            per_clip = train_flops_per_clip(report, workload.module) if mode == 'train' else fwd
            entry['gflops_per_clip_fwd'] = fwd / 1e9
            entry['gflops_per_clip_step'] = per_clip / 1e9
            entry['gflops_by_child_fwd'] = {k: v / 1e9 for k, v in report.by_child.items()}
            entry['unsupported_ops'] = report.unsupported_ops
            tflops = achieved_tflops(hardware_flops(per_clip) * args.batch_size, stats.median)
            entry['tflops'] = tflops
            entry['mfu'] = mfu(tflops, peak)
        result['modes'][mode] = entry
    workload.module.train()
    return result


# ------------------------------------------------------------------------------------------------- output
def _fmt(value: Optional[float], spec: str = '.2f') -> str:
    return '-' if value is None else format(value, spec)


def markdown_row(name: str, component: str, args: argparse.Namespace, num_frames: int, img_size: int,
                 result: Dict[str, Any]) -> str:
    """One table row of :data:`MD_COLUMNS`."""
    cells = [name, component, args.device, args.amp, f'{args.batch_size} x {num_frames} x {img_size}',
             _fmt(result['params']['total'] / 1e6)]
    modes = result['modes']
    fwd_flops = next((m['gflops_per_clip_fwd'] for m in (modes.get('forward', {}), modes.get('train', {}))
                      if 'gflops_per_clip_fwd' in m), None)
    cells.append(_fmt(fwd_flops, '.3f'))
    for mode in ('train', 'forward'):
        m = modes.get(mode, {})
        t = m.get('time_s')
        cells.append(f"{t['median'] * 1e3:.1f} ± {t['iqr'] * 1e3:.1f}" if t else '-')
        cells.append(_fmt(m.get('clips_per_s')))
        cells.append(_fmt(m.get('tflops'), '.3g'))
        cells.append(_fmt(None if m.get('mfu') is None else 100 * m['mfu'], '.1f') + ('%' if m.get('mfu') else ''))
    for mode in ('train', 'forward'):
        mem = modes.get(mode, {}).get('peak_mem_bytes')
        cells.append(_fmt(None if mem is None else mem / 2**20, '.0f'))
    return '| ' + ' | '.join(cells) + ' |'


def write_outputs(out_dir: str, rows: List[str], record: Dict[str, Any], stem: str) -> Tuple[str, str]:
    """Append rows to ``benchmark.md`` (header on first use) and write the JSON record."""
    os.makedirs(out_dir, exist_ok=True)
    md_path = osp.join(out_dir, 'benchmark.md')
    new = not osp.exists(md_path) or osp.getsize(md_path) == 0
    with open(md_path, 'a') as f:
        if new:
            f.write('| ' + ' | '.join(MD_COLUMNS) + ' |\n')
            f.write('|' + '---|' * len(MD_COLUMNS) + '\n')
        for row in rows:
            f.write(row + '\n')
    json_path = osp.join(out_dir, f'{stem}.json')
    with open(json_path, 'w') as f:
        json.dump(record, f, indent=2, default=str)
    return md_path, json_path


def _environment(args: argparse.Namespace, device: torch.device) -> Dict[str, Any]:
    env = dict(torch=torch.__version__, threads=torch.get_num_threads(), device=str(device),
               time=datetime.datetime.now().isoformat(timespec='seconds'), argv=sys.argv[1:])
    if device.type == 'cuda':
        env['gpu_name'] = torch.cuda.get_device_name(device)
    env['peak_tflops'] = peak_tflops_of(args)
    env['flop_convention'] = ('fvcore: 1 multiply-add = 1 FLOP; TFLOP/s and MFU use 2 per multiply-add; '
                              'train = 3 x forward for trainable children, 1 x for frozen ones')
    return env


def _stem(name: str, args: argparse.Namespace, num_frames: int, img_size: int, tag: str) -> str:
    return f'{name}_{tag}_b{args.batch_size}_t{num_frames}_s{img_size}_{args.device}_{args.amp}'


# ------------------------------------------------------------------------------------------ the main modes
def run_benchmark(args: argparse.Namespace, device: torch.device) -> Dict[str, Any]:
    cfg = load_config(args.config, args.cfg_options)
    model_cfg = cfg.model
    num_frames, img_size = clip_shape(model_cfg, args.num_frames, args.img_size)
    set_clip_shape(model_cfg, num_frames, img_size, args.with_cp)
    model = build_model(model_cfg, cfg.get('default_scope', 'mmaction')).to(device)
    name = args.name or osp.splitext(osp.basename(args.config))[0]
    if args.component == 'backbone':
        module = getattr(model, 'backbone', None) or model
        workload = backbone_workload(module, args.batch_size, num_frames, img_size, device, args.compile)
    elif hasattr(model, 'parse_losses'):
        workload = model_workload(model, model_cfg, args.batch_size, num_frames, img_size, device, args.compile)
    else:  # a bare encoder config
        workload = backbone_workload(model, args.batch_size, num_frames, img_size, device, args.compile)
    result = measure(workload, args, device)
    row = markdown_row(name, args.component, args, num_frames, img_size, result)
    record = dict(name=name, config=args.config, component=args.component, batch_size=args.batch_size,
                  num_frames=num_frames, img_size=img_size, amp=args.amp, compile=args.compile,
                  with_cp=args.with_cp, environment=_environment(args, device), **result)
    stem = _stem(name, args, num_frames, img_size, args.component)
    profile = result['modes'].get('train', {}).pop('profile', None)
    md, js = write_outputs(args.out_dir, [row], record, stem)
    print('| ' + ' | '.join(MD_COLUMNS) + ' |')
    print(row)
    if profile is not None:
        step_ms = result['modes']['train']['time_s']['median'] * 1e3
        text = profile_markdown(profile, step_ms)
        path = osp.join(args.out_dir, f'{stem}_profile.md')
        with open(path, 'w') as f:
            f.write(f'# Profile: {name}\n\n{text}\n```\n{profile["table"]}\n```\n')
        record['profile'] = {k: v for k, v in profile.items() if k != 'table'}
        with open(js, 'w') as f:
            json.dump(record, f, indent=2, default=str)
        print(text)
        print(f'wrote {path}')
    print(f'wrote {md} and {js}')
    return record


# --------------------------------------------------------------------------------------- side-by-side modes
def encoder_dims(args: argparse.Namespace, cfg: Any) -> Dict[str, Any]:
    """Width / depth / heads / patch / MLP ratio: the arguments, else the config's backbone, else 384/4/6/14."""
    from ivnext.models.backbones import ARCH_SETTINGS
    arch: Dict[str, Any] = {}
    patch = None
    if cfg is not None:
        enc = main_encoder_cfg(cfg.model) or {}
        arch = enc.get('arch', {})
        arch = dict(ARCH_SETTINGS[arch]) if isinstance(arch, str) else dict(arch or {})
        patch = enc.get('patch_size')
    return dict(embed_dims=args.embed_dims or arch.get('embed_dims', 384),
                num_layers=args.depth or arch.get('num_layers', 4),
                num_heads=args.num_heads or arch.get('num_heads', 6),
                mlp_ratio=arch.get('mlp_ratio', 4.0),
                patch_size=args.patch_size or patch or 14)


def build_our_encoder(dims: Dict[str, Any], num_frames: int, img_size: int, **kwargs) -> nn.Module:
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


def compare_variants(variants: Dict[str, Tuple[nn.Module, Callable[[], None]]], args: argparse.Namespace,
                     device: torch.device, num_frames: int, img_size: int) -> Dict[str, Dict[str, Any]]:
    """Measure encoders side by side: FLOPs, activation memory, then interleaved forward and train steps.

    Args:
        variants: name -> (module, activate) where ``activate()`` switches the module into that variant.
    """
    modes = ['forward', 'train'] if args.mode == 'both' else [args.mode]
    peak = peak_tflops_of(args)
    works = {name: backbone_workload(module, args.batch_size, num_frames, img_size, device, args.compile)
             for name, (module, _) in variants.items()}
    results: Dict[str, Dict[str, Any]] = {}
    for name, (module, activate) in variants.items():
        activate()
        module.train()
        res: Dict[str, Any] = dict(params=count_params(module), modes={})
        if not args.no_flops:
            res['flops'] = works[name].flop_fns['forward']()
        with autocast(device, args.amp):
            res['saved_activation_bytes'] = saved_activation_bytes(works[name].loss_fn)
        module.zero_grad(set_to_none=True)
        results[name] = res
    for mode in modes:
        steps = {}
        for name, (module, activate) in variants.items():
            inner = (make_train_step(works[name], device, args.amp) if mode == 'train'
                     else make_forward_step(works[name], device, args.amp))

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
        stats = time_interleaved(steps, args.steps, args.warmup, device)
        for name, st in stats.items():
            entry = results[name]['modes'].setdefault(mode, {})
            entry['time_s'] = st.to_dict()
            entry['clips_per_s'] = args.batch_size / st.median
            if 'flops' in results[name]:
                fwd = results[name]['flops'].total
                per_clip = 3 * fwd if mode == 'train' else fwd
                entry['gflops_per_clip_fwd'] = fwd / 1e9
                entry['tflops'] = achieved_tflops(hardware_flops(per_clip) * args.batch_size, st.median)
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
    print(title)
    head = ['variant', 'params (M)', 'GFLOPs/clip', 'fwd ms (median ± IQR)', 'train ms (median ± IQR)',
            'train saved activations (MiB)', 'cuda step memory fwd / train (MiB)']
    print('| ' + ' | '.join(head) + ' |')
    for name, res in results.items():
        cells = [name, _fmt(res['params']['total'] / 1e6), _fmt(res.get('gflops_per_clip_fwd'), '.3f')]
        for mode in ('forward', 'train'):
            t = res['modes'].get(mode, {}).get('time_s')
            cells.append(f"{t['median'] * 1e3:.1f} ± {t['iqr'] * 1e3:.1f}" if t else '-')
        cells.append(_fmt(res['saved_activation_bytes'] / 2**20, '.1f'))
        peaks = [res['modes'].get(m, {}).get('step_mem_bytes') for m in ('forward', 'train')]
        cells.append(' / '.join(_fmt(None if p is None else p / 2**20, '.0f') for p in peaks))
        print('| ' + ' | '.join(cells) + ' |')


def _side_by_side_rows(results: Dict[str, Dict[str, Any]], args: argparse.Namespace, num_frames: int,
                       img_size: int) -> List[str]:
    rows = []
    for name, res in results.items():
        for mode, entry in res['modes'].items():
            entry.setdefault('gflops_per_clip_fwd', res.get('gflops_per_clip_fwd'))
        rows.append(markdown_row(name, 'backbone', args, num_frames, img_size, res))
    return rows


def run_compare_mmaction_vit(args: argparse.Namespace, device: torch.device) -> Dict[str, Any]:
    cfg = load_config(args.config, args.cfg_options) if args.config else None
    num_frames, img_size = clip_shape(cfg.model if cfg else {}, args.num_frames, args.img_size)
    dims = encoder_dims(args, cfg)
    torch.manual_seed(0)
    ours = build_our_encoder(dims, num_frames, img_size).to(device)
    theirs = build_mmaction_vit(dims, num_frames, img_size).to(device)
    names = ('ivnext InternVideoNextViT', 'mmaction2 VisionTransformer')
    results = compare_variants({names[0]: (ours, lambda: None), names[1]: (theirs, lambda: None)}, args, device,
                               num_frames, img_size)
    ratio = ratios(results, *names)
    tokens = math.prod((num_frames, img_size // dims['patch_size'], img_size // dims['patch_size']))
    print_side_by_side(results, f"encoders at width {dims['embed_dims']}, depth {dims['num_layers']}, heads "
                       f"{dims['num_heads']}, {tokens} patch tokens (+{ours.num_cls_tokens} CLS in ours), "
                       f'batch {args.batch_size}, {args.device}, amp {args.amp}, threads {torch.get_num_threads()}')
    print('ratios ours/theirs: ' + ', '.join(f'{k} {v:.3f}' for k, v in ratio.items()))
    record = dict(kind='compare-mmaction-vit', dims=dims, num_frames=num_frames, img_size=img_size,
                  batch_size=args.batch_size, patch_tokens=tokens, environment=_environment(args, device),
                  results=results, ratios_ours_over_theirs=ratio)
    rows = _side_by_side_rows(results, args, num_frames, img_size)
    md, js = write_outputs(args.out_dir, rows, record, _stem('compare_mmaction_vit', args, num_frames, img_size,
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


def run_compare_attn(args: argparse.Namespace, device: torch.device) -> Dict[str, Any]:
    cfg = load_config(args.config, args.cfg_options) if args.config else None
    num_frames, img_size = clip_shape(cfg.model if cfg else {}, args.num_frames, args.img_size)
    torch.manual_seed(0)
    if cfg is not None and main_encoder_cfg(cfg.model) is not None and args.embed_dims is None:
        enc_cfg = copy.deepcopy(main_encoder_cfg(cfg.model))
        enc_cfg.update(num_frames=num_frames, img_size=img_size, out_type='avg', out_indices=-1)
        encoder = build_model(enc_cfg, cfg.get('default_scope', 'mmaction'))
    else:
        encoder = build_our_encoder(encoder_dims(args, cfg), num_frames, img_size)
    encoder = encoder.to(device)
    attn_modules = [m for m in encoder.modules() if hasattr(m, 'use_flash_attn')]

    def use(flag: bool) -> Callable[[], None]:
        def activate() -> None:
            for m in attn_modules:
                m.use_flash_attn = flag
        return activate

    variants = {'sdpa': (encoder, use(False))}
    reason = flash_unavailable_reason(device, args.amp)
    if reason:
        print(f'flash-attn path unavailable: {reason}; timing the SDPA path only')
    else:
        variants['flash-attn'] = (encoder, use(True))
    results = compare_variants(variants, args, device, num_frames, img_size)
    record = dict(kind='compare-attn', num_frames=num_frames, img_size=img_size, batch_size=args.batch_size,
                  flash_unavailable=reason, environment=_environment(args, device), results=results)
    if not reason:
        x = torch.randn(1, 3, num_frames, img_size, img_size, device=device)
        encoder.eval()
        outs = {}
        with torch.no_grad(), autocast(device, args.amp):
            for flag in (False, True):
                use(flag)()
                outs[flag] = encoder(x).float()
        use(False)()
        record['max_abs_diff_flash_vs_sdpa'] = float((outs[True] - outs[False]).abs().max())
        record['ratios_flash_over_sdpa'] = ratios(results, 'flash-attn', 'sdpa')
    print_side_by_side(results, f'attention kernels of {type(encoder).__name__}, batch {args.batch_size}, '
                       f'{num_frames} x {img_size}, {args.device}, amp {args.amp}')
    if not reason:
        print('ratios flash/sdpa: ' + ', '.join(f'{k} {v:.3f}' for k, v in record['ratios_flash_over_sdpa'].items())
              + f"; max |flash - sdpa| = {record['max_abs_diff_flash_vs_sdpa']:.3g}")
    rows = _side_by_side_rows(results, args, num_frames, img_size)
    md, js = write_outputs(args.out_dir, rows, record, _stem('compare_attn', args, num_frames, img_size, 'attn'))
    print(f'wrote {md} and {js}')
    return record


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda requested but CUDA is not available; use --device cpu')
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.compare_mmaction_vit:
        return run_compare_mmaction_vit(args, device)
    if args.compare_attn:
        return run_compare_attn(args, device)
    return run_benchmark(args, device)


if __name__ == '__main__':
    main()
