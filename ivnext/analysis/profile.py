"""Where a training step spends its time: torch.profiler with one named range per model component."""
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Optional

import torch
from torch import nn
from torch.autograd.profiler import record_function


@contextmanager
def component_ranges(model: nn.Module, max_depth: int = 3) -> Iterator[List[str]]:
    """Open a profiler range named after the top-level component around its forward work.

    Components are the model's direct children (``teacher``, ``backbone``, ``neck``, ``head``, ...). The
    algorithms call methods other than ``forward`` on some of them (``backbone.forward_tokens``, ``head.loss``),
    so hooks sit on every submodule down to ``max_depth``; a counter per component keeps one range open from the
    first hooked call that enters the component to the matching exit, so nested calls are not counted twice.
    Backward work is not attributed (backward hooks would wrap outputs and clash with in-place ops); it shows
    in the operator table.

    Yields:
        list: The component names.
    """
    handles = []
    depth: Dict[str, int] = {}
    ranges: Dict[str, record_function] = {}

    def enter(name: str) -> Callable:
        def hook(module, args):
            if depth[name] == 0:
                ranges[name] = record_function(f'## {name} (forward)')
                ranges[name].__enter__()
            depth[name] += 1
        return hook

    def leave(name: str) -> Callable:
        def hook(module, args, output):
            depth[name] -= 1
            if depth[name] == 0:
                ranges.pop(name).__exit__(None, None, None)
        return hook

    names = []
    for name, child in model.named_children():
        if not any(True for _ in child.modules()):
            continue
        names.append(name)
        depth[name] = 0
        stack = [(child, 0)]
        while stack:
            module, level = stack.pop()
            handles.append(module.register_forward_pre_hook(enter(name)))
            handles.append(module.register_forward_hook(leave(name)))
            if level < max_depth:
                stack.extend((c, level + 1) for c in module.children())
    try:
        yield names
    finally:
        for handle in handles:
            handle.remove()
        for rf in ranges.values():
            rf.__exit__(None, None, None)


def profile_step(step: Callable[[], None], model: nn.Module, device: torch.device, steps: int = 3,
                 warmup: int = 1, row_limit: int = 25, trace_path: Optional[str] = None) -> Dict[str, object]:
    """Profile ``steps`` calls of ``step`` and summarise them.

    Args:
        step: One full training (or inference) step.
        model: The module whose direct children are the components.
        device: cpu or cuda (CUDA kernels are timed with CUPTI).
        steps: Profiled steps (after ``warmup`` unprofiled ones).
        row_limit: Operators listed.
        trace_path: Optional Chrome trace output (``.json``).

    Returns:
        dict: ``components`` (name -> ms per step, device time on CUDA, CPU time otherwise), ``ops`` (the
        top operators by self time, as rows), ``table`` (the profiler's own text table) and ``time_kind``.
    """
    from torch.profiler import ProfilerActivity, profile
    for _ in range(warmup):
        step()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == 'cuda' else [])
    with component_ranges(model) as names, profile(activities=activities, record_shapes=False) as prof:
        for _ in range(steps):
            step()
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
    if trace_path:
        prof.export_chrome_trace(trace_path)
    on_device = device.type == 'cuda'
    kind = 'device' if on_device else 'cpu'
    events = prof.key_averages()

    def total_us(event) -> float:
        return float(getattr(event, 'device_time_total' if on_device else 'cpu_time_total', 0.0))

    def self_us(event) -> float:
        return float(getattr(event, 'self_device_time_total' if on_device else 'self_cpu_time_total', 0.0))

    components = {}
    for event in events:
        if event.key.startswith('## '):
            components[event.key[3:].replace(' (forward)', '')] = total_us(event) / 1e3 / steps
    ops = sorted((e for e in events if not e.key.startswith('## ')), key=self_us, reverse=True)[:row_limit]
    total_self = sum(self_us(e) for e in events if not e.key.startswith('## ')) or 1.0
    rows = [dict(op=e.key, calls_per_step=e.count / steps, self_ms_per_step=self_us(e) / 1e3 / steps,
                 share=self_us(e) / total_self) for e in ops]
    sort_by = 'self_cuda_time_total' if on_device else 'self_cpu_time_total'
    return dict(components={n: components.get(n, 0.0) for n in names}, ops=rows, time_kind=kind,
                table=events.table(sort_by=sort_by, row_limit=row_limit))


def profile_markdown(report: Dict[str, object], step_ms: Optional[float] = None) -> str:
    """Markdown of :func:`profile_step`'s report: component forward times, then the top operators."""
    kind = report['time_kind']
    title = f'Forward time per component ({kind} time, ms per step)'
    if step_ms:
        title += f'; whole step {step_ms:.1f} ms'
    lines = [title + ':', '', '| component | forward ms/step |', '|---|---|']
    for name, ms in sorted(report['components'].items(), key=lambda kv: -kv[1]):
        lines.append(f'| {name} | {ms:.2f} |')
    lines += ['', f'Top operators by self {kind} time (forward + backward + optimizer):', '',
              '| operator | calls/step | self ms/step | share |', '|---|---|---|---|']
    for row in report['ops']:
        lines.append(f"| `{row['op']}` | {row['calls_per_step']:.0f} | {row['self_ms_per_step']:.2f} | "
                     f"{100 * row['share']:.1f} % |")
    return '\n'.join(lines) + '\n'
