"""Timing, memory and utilisation helpers for benchmarking models."""
import resource
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, Iterable, List, Optional

import torch

# Dense bf16 tensor-core peaks in TFLOP/s (vendor data sheets, no sparsity): A100 SXM, H100 SXM, H200 SXM.
PEAK_TFLOPS: Dict[str, float] = {'a100': 312.0, 'h100': 989.0, 'h200': 989.0}


@dataclass
class TimingStats:
    """Summary of per-step wall times in seconds.

    Attributes:
        median: Median step time.
        q1: First quartile.
        q3: Third quartile.
        iqr: ``q3 - q1``.
        mean: Mean step time.
        std: Sample standard deviation (0 for a single step).
        min: Fastest step (the least disturbed one on a shared machine).
        steps: Number of timed steps.
    """

    median: float
    q1: float
    q3: float
    iqr: float
    mean: float
    std: float
    min: float
    steps: int

    @classmethod
    def from_times(cls, times: List[float]) -> 'TimingStats':
        """Summarise a non-empty list of step times (seconds)."""
        if not times:
            raise ValueError('no timed steps; use steps >= 1')
        ordered = sorted(times)
        if len(ordered) >= 2:
            q1, _, q3 = statistics.quantiles(ordered, n=4, method='inclusive')
        else:
            q1 = q3 = ordered[0]
        return cls(median=statistics.median(ordered), q1=q1, q3=q3, iqr=q3 - q1, mean=statistics.fmean(ordered),
                   std=statistics.stdev(ordered) if len(ordered) > 1 else 0.0, min=ordered[0], steps=len(ordered))

    def to_dict(self) -> Dict[str, float]:
        return asdict(self)


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels on CUDA devices (no-op on CPU)."""
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize(device)


def time_interleaved(fns: Dict[str, Callable[[], object]], steps: int, warmup: int,
                     device: torch.device) -> Dict[str, TimingStats]:
    """Time several step functions, alternating them step by step so they see the same machine state.

    Args:
        fns: Name -> zero-argument step function.
        steps: Timed steps per function.
        warmup: Untimed steps per function first.
        device: Device to synchronise before and after each step.

    Returns:
        dict: name -> :class:`TimingStats`.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    synchronize(device)
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(steps):
        for name, fn in fns.items():
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return {name: TimingStats.from_times(ts) for name, ts in times.items()}


def time_steps(fn: Callable[[], object], steps: int, warmup: int, device: torch.device) -> TimingStats:
    """Time one step function (see :func:`time_interleaved`)."""
    return time_interleaved({'step': fn}, steps, warmup, device)['step']


def reset_peak_memory(device: torch.device) -> None:
    """Reset the CUDA peak-memory counter (the CPU RSS peak cannot be reset)."""
    if torch.device(device).type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_bytes(device: torch.device) -> int:
    """Peak memory: ``torch.cuda.max_memory_allocated`` on CUDA, else the process's peak RSS.

    The CPU figure is the whole process's high-water mark (``ru_maxrss``), so it never decreases; measure the
    smaller workload first when comparing on CPU.
    """
    if torch.device(device).type == 'cuda':
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux reports KiB


def saved_activation_bytes(fn: Callable[[], object], exclude: Iterable[torch.Tensor] = ()) -> int:
    """Bytes of distinct tensors autograd saves for backward while running ``fn``.

    A device-independent measure of training activation memory that, unlike a process-wide peak, can be
    taken for several models in one process. Each storage is counted once; tensors sharing a storage with one of
    ``exclude`` (pass the model's parameters and buffers: they are model states, booked separately and fixed in
    size) are left out, so what remains grows with the batch.
    """
    seen: Dict[tuple, int] = {}
    skip = set()
    for tensor in exclude:
        try:
            skip.add((tensor.device.type, tensor.untyped_storage().data_ptr()))
        except (RuntimeError, NotImplementedError):  # no storage to match (as in ``pack``): it cannot be excluded
            continue

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        try:
            storage = tensor.untyped_storage()
            key = (tensor.device.type, storage.data_ptr())
            if key in skip:
                return tensor
            seen[key] = max(seen.get(key, 0), storage.nbytes())
        except (RuntimeError, NotImplementedError):  # tensors without storage (e.g. functorch wrappers)
            key = ('id', id(tensor))
            seen[key] = tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = fn()
    del out
    return sum(seen.values())


def achieved_tflops(flops_per_step: float, seconds_per_step: float) -> float:
    """Floating-point operations per step (2 per multiply-add) / step time, in TFLOP/s."""
    return flops_per_step / seconds_per_step / 1e12


def mfu(tflops: float, peak_tflops: Optional[float]) -> Optional[float]:
    """Model FLOPs utilisation ``tflops / peak`` (None without a peak)."""
    return tflops / peak_tflops if peak_tflops else None
