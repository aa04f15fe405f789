"""The whole InternVideo-Next method in miniature on a CPU: run the demo's steps (:mod:`ivnext.demo.steps`) and
write the report (:mod:`ivnext.demo.report`) to ``table.md`` / ``table.json``.

Example::

    bash tools/run_demo.sh                                       # the full demo into demo_artifacts/
    python tools/demo/run_demo.py --work-dir /tmp/demo --smoke   # tiny sizes, about a minute (CI)
"""
import argparse
import os
import os.path as osp
import resource
import shutil
import sys
import time
from typing import Dict

import torch

import ivnext  # noqa: F401  (compat fixes and registration, before mmengine and mmaction2)
import ivnext.datasets  # noqa: F401

from .report import Tee, make_table
from .steps import STEPS, DemoRun, write_json

# Demo sizes. The full demo: 8 object shapes x 6 motions; 5 train / 4 val / 3 held-out test clips per pair
# (240 / 192 / 144 clips) of 8 frames x 112 px, plus 960 unlabelled clips of the same generator that only
# pretraining reads (pretrain.txt: 1200 clips); the models see 4 frames sampled uniformly from each clip, 8x8
# patches of 14 px per frame (the DINOv2 teacher's grid at 112 px).
FULL = dict(clips=dict(shapes=('star', 'heart', 'arrow', 'cross', 'triangle', 'crescent', 'house', 'lightning'),
                       motions=('move_left', 'move_right', 'grow', 'shrink', 'rotate_cw', 'rotate_ccw'),
                       num_clips_per_class=5, num_val_clips_per_class=4, num_test_clips_per_class=3,
                       num_pretrain_clips=960, frames=8, size=112), frames=4,
            schedule=None, batch_size=None, probe_epochs=None, recon_clips=2, recon_mse_clips=4, recon_steps=None,
            retrieval_seconds=5.0)
# Smoke: 3 shapes x 2 motions, 1 clip per pair and split and 2 unlabelled ones, 4 frames x 56 px (models see 2),
# 2 iterations per stage, 2 probe epochs, 1 s of text alignment.
SMOKE = dict(clips=dict(num_clips_per_class=1, num_val_clips_per_class=1, num_test_clips_per_class=1,
                        num_pretrain_clips=2, frames=4, size=56, shapes=('star', 'heart', 'arrow'),
                        motions=('move_left', 'grow')), frames=2,
             schedule=2, batch_size=2, probe_epochs=2, recon_clips=1, recon_mse_clips=4, recon_steps=4,
             retrieval_seconds=1.0)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='InternVideo-Next in miniature on a CPU (see docs/demo.md)')
    parser.add_argument('--work-dir', default='demo_artifacts', help='artefact folder (reused on reruns)')
    parser.add_argument('--smoke', action='store_true', help='tiny sizes and 2 iterations per stage (CI)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the data, the random encoder and the probes')
    parser.add_argument('--force', action='store_true', help='delete the artefact folder first and rebuild all')
    return parser.parse_args(argv)


def run(argv=None) -> dict:
    """Run the demo from a command line; returns the report (what ``table.json`` holds)."""
    args = parse_args(argv)
    start, start_cpu = time.perf_counter(), time.process_time()
    work = osp.abspath(args.work_dir)
    if args.force:
        shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work, exist_ok=True)
    sys.stdout = Tee(sys.stdout, osp.join(work, 'demo.log'))
    sys.stderr = Tee(sys.stderr, osp.join(work, 'demo.log'))
    print(f'ivnext demo ({"smoke" if args.smoke else "full"}) into {work}; torch {torch.__version__}, '
          f'{torch.get_num_threads()} threads, {os.cpu_count()} CPUs, load average '
          f'{", ".join(f"{x:.1f}" for x in os.getloadavg())}')
    demo = DemoRun(work=work, preset=SMOKE if args.smoke else FULL, seed=args.seed)
    times: Dict[str, dict] = {}
    setup_s = os.environ.get('IVNEXT_DEMO_SETUP_SECONDS')
    if setup_s:
        times['set-up (tools/setup_env.sh)'] = dict(seconds=float(setup_s), cpu_seconds=None)
    for i, step in enumerate(STEPS, 1):
        print(f'\n=== {i}/{len(STEPS)} {step.title} ===', flush=True)
        tic, cpu = time.perf_counter(), time.process_time()
        reused = step.run(demo)
        times[step.name] = dict(seconds=time.perf_counter() - tic, cpu_seconds=time.process_time() - cpu,
                                reused=bool(reused))

    print('\n=== results ===')
    times['total (this run)'] = dict(seconds=time.perf_counter() - start + float(setup_s or 0),
                                     cpu_seconds=time.process_time() - start_cpu)
    classes = demo.results['classes']
    counts = demo.results['data']['counts']
    recon = demo.results.get('recon')
    meta = dict(counts=counts, frames=demo.preset['frames'], size=demo.preset['clips']['size'],
                recon=recon['mse'] if recon else None,
                steps={k: (v['iters'], v['batch_size'], v['seconds']) for k, v in demo.stages.items()})
    table = make_table(demo.rows, classes, times, meta, demo.sections)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = dict(
        mode='smoke' if args.smoke else 'full', seed=args.seed, classes=classes, counts=counts,
        frames=meta['frames'], size=meta['size'], chance={k: 1.0 / len(v) for k, v in classes.items()},
        rows=demo.rows,
        stages={k: dict(config=v['config'], checkpoint=v['checkpoint'], iters=v['iters'], batch_size=v['batch_size'],
                        seconds=v['seconds'], reused=v['reused']) for k, v in demo.stages.items()},
        wall_seconds={k: round(v['seconds'], 1) for k, v in times.items()},
        cpu_seconds={k: round(v['cpu_seconds'], 1) for k, v in times.items() if v.get('cpu_seconds') is not None},
        reused={k: bool(v.get('reused', False)) for k, v in times.items()},
        images=[osp.relpath(p, work) for p in recon['images']] if recon else [],
        recon_mse=meta['recon'], results={k: v for k, v in demo.results.items() if k not in ('recon', 'classes')},
        load_average=list(os.getloadavg()), peak_rss_mb=round(peak_rss_mb, 1),
        torch_threads=torch.get_num_threads(), cpu_count=os.cpu_count(), teacher=demo.teacher_dir,
        data=demo.data_root)
    with open(osp.join(work, 'table.md'), 'w') as f:
        f.write(table)
    write_json(osp.join(work, 'table.json'), report)
    print(table)
    print(f'peak RSS {peak_rss_mb:.0f} MB; artefacts in {work}: configs/, work_dirs/ (checkpoints, logs), probes/, '
          f'recon/, table.md, table.json, demo.log')
    sys.stdout.flush()
    return report


def main(argv=None) -> int:
    """``tools/demo/run_demo.py``: exit code 0 once the table is written (the report is :func:`run`'s)."""
    run(argv)
    return 0
