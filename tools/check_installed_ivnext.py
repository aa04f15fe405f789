"""Use an installed ivnext the way a user would, and report what works.

Run it with the Python of the environment to check, from any directory outside a source tree; it imports nothing
but the standard library before the checks. Each check runs on its own, so one failure does not hide the others:

* ``import``: ``import ivnext`` and ``ivnext.api``; ivnext, mmaction2, MMEngine, mmcv and torch are imported from
  this environment's prefix (``sys.prefix``), not from a source tree or another environment.
* ``ivnext_runner``: a child config of ``ivnext::_base_/models/ivnext_vit_tiny.py`` builds an MMEngine ``Runner``
  (work dir under ``--work-dir``); its model classifies one zero clip.
* ``mmaction_runner``: a child config of ``mmaction::_base_/models/tsn_r50.py`` builds a ``Runner`` (its model:
  mmaction2's TSN with a ResNet-50; no weights are downloaded).
* ``extract_features_help`` / ``video_list_help``: the console scripts ``ivnext-extract-features --help`` and
  ``ivnext-video-list --help`` exit 0.
* ``video_list_run``: ``ivnext-video-list ROOT --out LIST --labels-from-folders`` on two generated clips (MPEG-4,
  written with PyAV, a declared requirement) exits 0 and lists both with their labels.

Prints one line per check and writes the results (status, seconds, details or the error) as JSON with ``--json``.
Exit code 0 when every check passed, 1 otherwise. Example::

    python tools/check_installed_ivnext.py --work-dir /tmp/ivnext-check --json /tmp/ivnext-check.json
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
import traceback
from typing import Callable, Dict, List

# Modules that must come from the checked environment.
ENVIRONMENT_MODULES = ('ivnext', 'mmaction', 'mmengine', 'mmcv', 'torch')
# Versions reported next to the checks (distribution names).
REPORTED_DISTRIBUTIONS = ('ivnext', 'torch', 'mmengine', 'mmcv-lite', 'mmcv', 'mmaction2', 'transformers',
                          'diffusers', 'huggingface_hub', 'numpy', 'timm', 'torchvision', 'av')

IVNEXT_CHILD_CONFIG = """\
_base_ = 'ivnext::_base_/models/ivnext_vit_tiny.py'
default_scope = 'mmaction'
custom_imports = dict(imports=['ivnext'], allow_failed_imports=False)
model = dict(cls_head=dict(num_classes=7))
"""
MMACTION_CHILD_CONFIG = """\
_base_ = 'mmaction::_base_/models/tsn_r50.py'
default_scope = 'mmaction'
custom_imports = dict(imports=['ivnext'], allow_failed_imports=False)
model = dict(cls_head=dict(num_classes=5))
"""


def console_script(name: str) -> str:
    """Path of an installed console script: next to this interpreter (a venv's ``bin``), else on ``PATH``."""
    import shutil
    candidate = osp.join(osp.dirname(sys.executable), name)
    if osp.isfile(candidate):
        return candidate
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f'console script {name} is neither next to {sys.executable} nor on PATH')
    return found


def run_command(cmd: List[str], cwd: str) -> subprocess.CompletedProcess:
    """Run ``cmd``; raise with its exit code and output tail when it does not exit 0."""
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f'{" ".join(cmd)} exited {result.returncode}:\n{result.stdout[-1500:]}\n'
                           f'{result.stderr[-1500:]}')
    return result


def check_import(work_dir: str) -> Dict:
    """``import ivnext`` (and the public API) from this environment."""
    import ivnext
    import ivnext.api  # noqa: F401
    from mmaction.utils import dependency
    locations = {name: sys.modules[name].__file__ for name in ENVIRONMENT_MODULES if name in sys.modules}
    prefix = osp.realpath(sys.prefix) + os.sep
    outside = {name: path for name, path in locations.items() if not osp.realpath(path).startswith(prefix)}
    if outside:
        raise RuntimeError(f'imported from outside the environment {sys.prefix}: {outside}')
    if set(locations) != set(ENVIRONMENT_MODULES):
        raise RuntimeError(f'`import ivnext` did not import {sorted(set(ENVIRONMENT_MODULES) - set(locations))}')
    return dict(version=ivnext.__version__, locations=locations,
                mmaction_with_multimodal=bool(getattr(dependency, 'WITH_MULTIMODAL', False)))


def check_ivnext_runner(work_dir: str) -> Dict:
    """A child of ``ivnext::_base_/models/ivnext_vit_tiny.py`` builds a Runner whose model classifies a clip."""
    import ivnext  # noqa: F401  (registers the ``ivnext::`` package configs)
    import torch
    from mmengine.config import Config
    from mmengine.runner import Runner
    path = osp.join(work_dir, 'ivnext_child.py')
    with open(path, 'w') as f:
        f.write(IVNEXT_CHILD_CONFIG)
    cfg = Config.fromfile(path)
    cfg.work_dir = osp.join(work_dir, 'runner_ivnext')
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    model = runner.model
    backbone = type(model.backbone).__name__
    if backbone != 'InternVideoNextViT':
        raise RuntimeError(f'the ivnext config built a {backbone} backbone, not InternVideoNextViT')
    with torch.no_grad():
        features = model.backbone(torch.zeros(1, 3, 4, 56, 56))
        scores = model.cls_head(features)
    if tuple(scores.shape) != (1, 7):
        raise RuntimeError(f'the classifier gave scores of shape {tuple(scores.shape)}, expected (1, 7)')
    return dict(model=type(model).__name__, backbone=backbone, features=list(features.shape),
                scores=list(scores.shape))


def check_mmaction_runner(work_dir: str) -> Dict:
    """A child of ``mmaction::_base_/models/tsn_r50.py`` builds a Runner (mmaction2's TSN, ResNet-50)."""
    import ivnext  # noqa: F401
    from mmengine.config import Config
    from mmengine.runner import Runner
    path = osp.join(work_dir, 'mmaction_child.py')
    with open(path, 'w') as f:
        f.write(MMACTION_CHILD_CONFIG)
    cfg = Config.fromfile(path)
    cfg.work_dir = osp.join(work_dir, 'runner_mmaction')
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    model = runner.model
    backbone = type(model.backbone).__name__
    if backbone != 'ResNet' or model.cls_head.fc_cls.out_features != 5:
        raise RuntimeError(f'the mmaction config built {type(model).__name__} with a {backbone} backbone and '
                           f'{model.cls_head.fc_cls.out_features} classes, expected a ResNet and 5')
    return dict(model=type(model).__name__, backbone=backbone,
                parameters=sum(p.numel() for p in model.parameters()))


def check_extract_features_help(work_dir: str) -> Dict:
    """``ivnext-extract-features --help`` exits 0."""
    script = console_script('ivnext-extract-features')
    out = run_command([script, '--help'], work_dir)
    if 'usage' not in out.stdout.lower():
        raise RuntimeError(f'{script} --help printed no usage:\n{out.stdout[-1500:]}')
    return dict(script=script)


def check_video_list_help(work_dir: str) -> Dict:
    """``ivnext-video-list --help`` exits 0."""
    script = console_script('ivnext-video-list')
    out = run_command([script, '--help'], work_dir)
    if '--labels-from-folders' not in out.stdout:
        raise RuntimeError(f'{script} --help does not describe --labels-from-folders:\n{out.stdout[-1500:]}')
    return dict(script=script)


def write_clip(path: str, value: int, num_frames: int = 8, size: int = 32) -> None:
    """Write a tiny MPEG-4 clip of flat frames of grey level ``value`` with PyAV."""
    import av
    import numpy as np
    os.makedirs(osp.dirname(path), exist_ok=True)
    with av.open(path, mode='w') as container:
        stream = container.add_stream('mpeg4', rate=8)
        stream.width = stream.height = size
        stream.pix_fmt = 'yuv420p'
        for _ in range(num_frames):
            frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), value, dtype=np.uint8), format='rgb24')
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def check_video_list_run(work_dir: str) -> Dict:
    """``ivnext-video-list`` lists two generated clips, labelled by their folders."""
    root = osp.join(work_dir, 'videos')
    write_clip(osp.join(root, 'class_a', 'first.mp4'), 60)
    write_clip(osp.join(root, 'class_b', 'second.mp4'), 180)
    out_list = osp.join(work_dir, 'lists', 'videos.txt')
    run_command([console_script('ivnext-video-list'), root, '--out', out_list, '--labels-from-folders'], work_dir)
    with open(out_list) as f:
        lines = f.read().split('\n')
    expected = ['class_a/first.mp4 0', 'class_b/second.mp4 1', '']
    if lines != expected:
        raise RuntimeError(f'{out_list} holds {lines}, expected {expected}')
    return dict(list=lines[:-1])


CHECKS: Dict[str, Callable[[str], Dict]] = {
    'import': check_import,
    'ivnext_runner': check_ivnext_runner,
    'mmaction_runner': check_mmaction_runner,
    'extract_features_help': check_extract_features_help,
    'video_list_help': check_video_list_help,
    'video_list_run': check_video_list_run,
}


def installed_versions() -> Dict[str, str]:
    """Versions of :data:`REPORTED_DISTRIBUTIONS` (None for those not installed)."""
    from importlib import metadata
    versions = {}
    for name in REPORTED_DISTRIBUTIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def run_checks(work_dir: str, names: List[str]) -> Dict:
    """Run the named checks in order, each caught on its own.

    Returns:
        dict: ``checks`` (name -> ``passed``, ``seconds`` and ``details`` or ``error``), ``passed`` (all of them),
        ``python``, ``prefix`` and ``versions``.
    """
    os.makedirs(work_dir, exist_ok=True)
    results = {}
    for name in names:
        start = time.perf_counter()
        try:
            results[name] = dict(passed=True, details=CHECKS[name](work_dir))
        except Exception as err:  # noqa: BLE001 - every failure is reported, none stops the other checks
            results[name] = dict(passed=False, error=f'{type(err).__name__}: {err}',
                                 traceback=traceback.format_exc()[-4000:])
        results[name]['seconds'] = round(time.perf_counter() - start, 2)
        status = 'passed' if results[name]['passed'] else f"FAILED: {results[name]['error'].splitlines()[0]}"
        print(f"{name:24s} {results[name]['seconds']:7.2f} s  {status}", flush=True)
    return dict(passed=all(r['passed'] for r in results.values()), checks=results, python=sys.version.split()[0],
                prefix=sys.prefix, versions=installed_versions())


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work-dir', required=True, help='folder for the configs, runner work dirs and clips')
    parser.add_argument('--json', default=None, help='also write the results to this JSON file')
    parser.add_argument('--checks', nargs='+', choices=list(CHECKS), default=list(CHECKS),
                        help='checks to run (default: all)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Run the checks; 0 when all passed, 1 otherwise."""
    args = parse_args(argv)
    work_dir = osp.abspath(args.work_dir)
    result = run_checks(work_dir, args.checks)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)
    return 0 if result['passed'] else 1


if __name__ == '__main__':
    sys.exit(main())
