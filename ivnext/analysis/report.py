"""Benchmark results on disk: one Markdown row per run appended to ``benchmark.md`` and a JSON record each."""
import datetime
import json
import os
import os.path as osp
import sys
from typing import Any, Dict, List, Optional, Tuple

import torch

from ivnext.analysis.options import BenchmarkOptions

MD_COLUMNS = ['name', 'component', 'device', 'amp', 'batch x T x S', 'params (M)', 'GFLOPs/clip (fwd)',
              'train ms (median ± IQR)', 'train clips/s', 'train TFLOP/s', 'train MFU', 'fwd ms (median ± IQR)',
              'fwd clips/s', 'fwd TFLOP/s', 'fwd MFU', 'train peak mem (MiB)', 'fwd peak mem (MiB)']


def format_cell(value: Optional[float], spec: str = '.2f') -> str:
    """``value`` formatted with ``spec``, ``-`` for None."""
    return '-' if value is None else format(value, spec)


def markdown_row(name: str, component: str, options: BenchmarkOptions, num_frames: int, img_size: int,
                 result: Dict[str, Any]) -> str:
    """One table row of :data:`MD_COLUMNS`."""
    cells = [name, component, options.device, options.amp, f'{options.batch_size} x {num_frames} x {img_size}',
             format_cell(result['params']['total'] / 1e6)]
    modes = result['modes']
    fwd_flops = next((m['gflops_per_clip_fwd'] for m in (modes.get('forward', {}), modes.get('train', {}))
                      if 'gflops_per_clip_fwd' in m), None)
    cells.append(format_cell(fwd_flops, '.3f'))
    for mode in ('train', 'forward'):
        m = modes.get(mode, {})
        t = m.get('time_s')
        cells.append(f"{t['median'] * 1e3:.1f} ± {t['iqr'] * 1e3:.1f}" if t else '-')
        cells.append(format_cell(m.get('clips_per_s')))
        cells.append(format_cell(m.get('tflops'), '.3g'))
        mfu = m.get('mfu')
        cells.append(format_cell(None if mfu is None else 100 * mfu, '.1f') + ('%' if mfu else ''))
    for mode in ('train', 'forward'):
        mem = modes.get(mode, {}).get('peak_mem_bytes')
        cells.append(format_cell(None if mem is None else mem / 2**20, '.0f'))
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


def environment(options: BenchmarkOptions, device: torch.device) -> Dict[str, Any]:
    """Versions, threads, device, time, command line, peak and FLOP convention of a run (for the JSON)."""
    env = dict(torch=torch.__version__, threads=torch.get_num_threads(), device=str(device),
               time=datetime.datetime.now().isoformat(timespec='seconds'), argv=sys.argv[1:])
    if device.type == 'cuda':
        env['gpu_name'] = torch.cuda.get_device_name(device)
    env['peak_tflops'] = options.peak()
    env['flop_convention'] = ('fvcore: 1 multiply-add = 1 FLOP; TFLOP/s and MFU use 2 per multiply-add; '
                              'train = 3 x forward for trainable children, 1 x for frozen ones')
    return env


def record_stem(name: str, options: BenchmarkOptions, num_frames: int, img_size: int, tag: str) -> str:
    """File stem of a run's JSON record: name, tag, batch, shape, device and autocast."""
    return f'{name}_{tag}_b{options.batch_size}_t{num_frames}_s{img_size}_{options.device}_{options.amp}'

