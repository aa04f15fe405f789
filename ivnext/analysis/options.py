"""What one benchmark run measures and how (the settings of ``tools/analysis/benchmark.py``)."""
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import torch

from ivnext.analysis.benchmark import PEAK_TFLOPS

AMP_CHOICES = ('none', 'bf16', 'fp16')
MODE_CHOICES = ('train', 'forward', 'both')
COMPONENT_CHOICES = ('model', 'backbone')
COMPILE_CHOICES = ('none', 'model', 'blocks')


@dataclass
class BenchmarkOptions:
    """Settings of a benchmark; the field names are the command-line options of ``benchmark.py``.

    Args:
        config: MMEngine config path (optional with the side-by-side modes).
        batch_size: Clips per step.
        num_frames: Frames per clip (None: the config backbone's, else 16).
        img_size: Square crop side (None: the config backbone's, else 224).
        steps: Timed steps per mode.
        warmup: Untimed steps before timing.
        amp: Autocast dtype, ``'none'``, ``'bf16'`` or ``'fp16'``.
        device: ``'cpu'`` or ``'cuda'`` (a CUDA index is allowed).
        peak_tflops: Peak TFLOP/s of the device for MFU.
        gpu: Use the dense bf16 peak of this GPU (a key of ``PEAK_TFLOPS``) for MFU.
        mode: ``'train'``, ``'forward'`` or ``'both'``.
        component: ``'model'`` or ``'backbone'`` (only ``cfg.model.backbone``).
        compile: ``'none'``, ``'model'`` (torch.compile the measured module) or ``'blocks'`` (each block).
        with_cp: Activation checkpointing in the backbone.
        no_flops: Skip FLOP counting.
        threads: ``torch.set_num_threads`` on CPU (applied by the caller).
        out_dir: Where ``benchmark.md`` and the JSON records go.
        name: Row name (None: the config file stem).
        profile: Training steps to profile after timing (0: none).
        profile_trace: Also write a Chrome trace of the profile here.
        compare_mmaction_vit: Our encoder against mmaction2's VisionTransformer, interleaved.
        compare_attn: SDPA against the flash-attn path of our encoder.
        embed_dims: Side-by-side modes: width (None: the config backbone's, else 384).
        depth: Side-by-side modes: blocks (None: the config backbone's, else 4).
        num_heads: Side-by-side modes: heads (None: the config backbone's, else 6).
        patch_size: Side-by-side modes: patch side (None: the config's, else 14).
        cfg_options: Config overrides (MMEngine ``merge_from_dict`` keys).

    Raises:
        ValueError: A setting out of range or two settings that exclude each other, named.
    """

    config: Optional[str] = None
    batch_size: int = 2
    num_frames: Optional[int] = None
    img_size: Optional[int] = None
    steps: int = 10
    warmup: int = 3
    amp: str = 'none'
    device: str = 'cpu'
    peak_tflops: Optional[float] = None
    gpu: Optional[str] = None
    mode: str = 'both'
    component: str = 'model'
    compile: str = 'none'
    with_cp: bool = False
    no_flops: bool = False
    threads: Optional[int] = None
    out_dir: str = 'work_dirs/benchmark'
    name: Optional[str] = None
    profile: int = 0
    profile_trace: Optional[str] = None
    compare_mmaction_vit: bool = False
    compare_attn: bool = False
    embed_dims: Optional[int] = None
    depth: Optional[int] = None
    num_heads: Optional[int] = None
    patch_size: Optional[int] = None
    cfg_options: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (self.compare_mmaction_vit or self.compare_attn or self.config):
            raise ValueError('CONFIG is required unless --compare-mmaction-vit or --compare-attn is given')
        if self.compare_mmaction_vit and self.compare_attn:
            raise ValueError('--compare-mmaction-vit and --compare-attn exclude each other; pick one')
        if min(self.batch_size, self.steps) < 1 or self.warmup < 0:
            raise ValueError('--batch-size and --steps must be >= 1 and --warmup >= 0')
        if self.peak_tflops is not None and self.gpu is not None:
            raise ValueError('--peak-tflops and --gpu exclude each other; give one')
        for name, value, choices in (('--amp', self.amp, AMP_CHOICES), ('--mode', self.mode, MODE_CHOICES),
                                     ('--component', self.component, COMPONENT_CHOICES),
                                     ('--compile', self.compile, COMPILE_CHOICES)):
            if value not in choices:
                raise ValueError(f'{name} must be one of {choices}, got {value!r}')
        if self.gpu is not None and self.gpu not in PEAK_TFLOPS:
            raise ValueError(f'--gpu must be one of {sorted(PEAK_TFLOPS)}, got {self.gpu!r}')

    @property
    def modes(self) -> list:
        """The measured modes in order (forward before train: the CPU RSS high-water mark never decreases)."""
        return ['forward', 'train'] if self.mode == 'both' else [self.mode]

    def peak(self) -> Optional[float]:
        """Peak TFLOP/s for MFU: ``peak_tflops``, else the peak of ``gpu``, else None."""
        if self.peak_tflops:
            return self.peak_tflops
        return PEAK_TFLOPS[self.gpu] if self.gpu else None

    def torch_device(self) -> torch.device:
        """The device to run on.

        Raises:
            ValueError: CUDA requested where it is not available.
        """
        device = torch.device(self.device)
        if device.type == 'cuda' and not torch.cuda.is_available():
            raise ValueError('--device cuda requested but CUDA is not available; use --device cpu')
        return device
