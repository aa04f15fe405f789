"""Configs inherit each other across packages: every shipped config through ``ivnext::``, and mmaction2's stock
bases with ivnext models.

``_base_ = 'ivnext::<relpath>'`` gives the inherited dicts MMEngine's ``_scope_='ivnext'``, so the runner builds
them from the ``ivnext`` scope registries (``ivnext/registry.py``). Those run in a fresh interpreter that imported
ivnext only, as ``tools/train.py`` does (``config_runner_worker.py``): this suite's conftest imports every mmaction2
module, which would hide a registry that misses mmaction2's lazily imported modules.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from config_runner_worker import shipped_configs

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().with_name('config_runner_worker.py')
CONFIGS = shipped_configs()


def run_worker(*args: str) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get('PYTHONPATH', '')]))
    result = subprocess.run([sys.executable, str(WORKER), *args], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stderr[-5000:]


@pytest.fixture(scope='module')
def runner_builds(tmp_path_factory) -> dict:
    """``{relpath: '' or the traceback}`` of building every shipped config's ``ivnext::`` child."""
    work = tmp_path_factory.mktemp('ivnext_children')
    run_worker('configs', str(work / 'report.json'), str(work))
    return json.loads((work / 'report.json').read_text())


def test_every_config_file_is_listed():
    assert len(CONFIGS) >= 60
    assert 'demo/tiny_recognizer_i3dhead_cpu.py' in CONFIGS and '_base_/default_runtime.py' in CONFIGS


@pytest.mark.parametrize('relpath', CONFIGS)
def test_config_inherited_through_ivnext_scope_builds_its_runner(relpath, runner_builds):
    assert runner_builds.get(relpath) == '', f"_base_ = 'ivnext::{relpath}':\n{runner_builds.get(relpath)}"


def test_ivnext_scope_registries_find_every_module_of_their_ancestors(tmp_path):
    """In a fresh interpreter, importing mmaction2's and MMEngine's registry locations adds no name that an
    ``ivnext`` registry did not already find (mmaction2 imports its visualizer, engine and evaluation modules
    only when its own registries are first used)."""
    run_worker('registries', str(tmp_path / 'gaps.json'))
    assert json.loads((tmp_path / 'gaps.json').read_text()) == {}


def test_ivnext_scope_covers_every_mmengine_registry():
    from mmengine.registry import Registry
    from mmengine.registry import root as mmengine_root
    for name, root in vars(mmengine_root).items():
        if isinstance(root, Registry):
            assert root._search_child('ivnext') is not None, f'MMEngine {name} has no ivnext scope registry'


def readme_snippet() -> str:
    text = (REPO / 'README.md').read_text()
    match = re.search(r'<!-- readme-test: mmaction-snippet -->\n```python\n(.*?)```', text, re.S)
    assert match, 'README.md has no block marked readme-test: mmaction-snippet'
    return match.group(1)


def test_readme_mmaction_snippet_with_mmaction_stock_runtime_builds_a_runner(tmp_path):
    snippet = readme_snippet()
    for old, new in {"arch='base', num_frames=16, img_size=224":
                     "arch=dict(embed_dims=32, num_layers=2, num_heads=2), num_frames=4, img_size=56",
                     'num_classes=400, in_channels=768': 'num_classes=3, in_channels=32'}.items():
        assert old in snippet
        snippet = snippet.replace(old, new)
    config = tmp_path / 'mmaction_runtime_ivnext_model.py'
    config.write_text("_base_ = ['mmaction::_base_/default_runtime.py']\n" + snippet)
    cfg = Config.fromfile(str(config))
    assert cfg.visualizer._scope_ == 'mmaction' and cfg.default_hooks.checkpoint.type == 'CheckpointHook'
    cfg.work_dir = str(tmp_path / 'work')
    runner = Runner.from_cfg(cfg)
    assert type(runner.model.backbone).__name__ == 'InternVideoNextViT'
    assert type(runner.visualizer).__name__ == 'ActionVisualizer'
    assert 'CheckpointHook' in [type(hook).__name__ for hook in runner.hooks]
