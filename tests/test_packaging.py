"""The wheel: built from a copy of the repository, installed with --no-deps into a fresh venv that sees this
environment's third-party packages but not its editable ivnext; there it imports, resolves ``ivnext::`` and
``mmaction::`` config bases and runs its console script."""
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
SOURCES = ('setup.py', 'setup.cfg', 'MANIFEST.in', 'LICENSE', 'README.md', 'requirements', 'configs', 'ivnext')

CHECK = r'''
import os, sys
import ivnext
from mmengine.config import Config
from mmaction.registry import MODELS
from mmengine.registry import init_default_scope
venv = sys.argv[1]
assert ivnext.__file__.startswith(venv), f'ivnext imported from {ivnext.__file__}, not from the wheel in {venv}'
assert not any(p.rstrip('/').endswith('wt12') or p == os.getcwd() and os.path.isdir('ivnext') for p in sys.path)
init_default_scope('mmaction')
cfg = Config.fromfile('ivnext_base.py')
model = MODELS.build(cfg.model)
assert type(model.backbone).__name__ == 'InternVideoNextViT' and model.cls_head.fc_cls.out_features == 7
cfg = Config.fromfile('mmaction_base.py')
assert cfg.model.backbone.type == 'ResNet' and cfg.model.cls_head.num_classes == 5
import ivnext.api  # the public API is part of the wheel
print('OK', ivnext.__file__)
'''


def run(cmd, **kwargs):
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f'{cmd} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}'
    return result


def test_wheel_installs_into_a_clean_venv_and_resolves_package_configs(tmp_path):
    src = tmp_path / 'src'
    src.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, symlinks=True, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        else:
            shutil.copy2(path, src / name)
    wheels = tmp_path / 'wheels'
    run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '--no-index', '-q', str(src),
         '-w', str(wheels)])
    wheel = next(wheels.glob('ivnext-*.whl'))

    venv = tmp_path / 'venv'
    run([sys.executable, '-m', 'venv', '--without-pip', str(venv)])
    python = venv / 'bin' / 'python'
    site = Path(run([str(python), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])']).stdout.strip())
    run([sys.executable, '-m', 'pip', '--python', str(python), 'install', '--no-deps', '--no-index',
         '--ignore-installed', '-q', str(wheel)])
    # Then third-party packages from this environment, after the venv's own site-packages. The .pth files of a
    # directory added this way (the editable ivnext's among them) are not processed. (--ignore-installed: pip
    # running from this environment sees its editable ivnext and would otherwise call the wheel installed.)
    (site / 'shared_env.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')
    assert (site / 'ivnext' / '.mim' / 'configs' / '_base_' / 'models' / 'ivnext_vit_tiny.py').is_file()
    assert not (site / 'ivnext' / '.mim' / 'configs').is_symlink()

    work = tmp_path / 'work'
    work.mkdir()
    (work / 'ivnext_base.py').write_text("_base_ = ['ivnext::_base_/models/ivnext_vit_tiny.py']\n"
                                         "model = dict(cls_head=dict(num_classes=7))\n")
    (work / 'mmaction_base.py').write_text("_base_ = ['mmaction::_base_/models/tsn_r50.py']\n"
                                           "model = dict(cls_head=dict(num_classes=5))\n")
    (work / 'check.py').write_text(CHECK)
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV')}
    out = run([str(python), 'check.py', str(venv)], cwd=work, env=env)
    assert out.stdout.startswith('OK')
    # The console script is installed and runs from the wheel.
    out = run([str(venv / 'bin' / 'ivnext-extract-features'), 'SOURCE', '--videos', 'x', '--out-dir', 'y',
               '--help'], cwd=work, env=env)
    assert '--stride-unit' in out.stdout
