"""A user's install from nothing: ``tools/check_clean_install.py`` builds the wheel, installs torch and then
mmcv-lite + ivnext into a fresh venv with every requirement resolved by pip from PyPI, and uses the result
(``import ivnext``, Runners from ``ivnext::`` and ``mmaction::`` configs, both console scripts).

It needs PyPI and takes minutes, so it runs only with ``IVNEXT_CLEAN_INSTALL=1``; ``IVNEXT_CLEAN_INSTALL_CACHE=DIR``
reuses a pip cache (every requirement is still resolved against the registry; only downloads are saved). The
fast, offline wheel check is ``tests/test_packaging.py``.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    os.environ.get('IVNEXT_CLEAN_INSTALL') != '1',
    reason='clean install from PyPI (network, minutes): set IVNEXT_CLEAN_INSTALL=1 to run it')


def test_a_fresh_venv_installs_ivnext_from_pypi_and_uses_it(tmp_path):
    record_path = tmp_path / 'clean_install.json'
    cmd = [sys.executable, str(REPO / 'tools' / 'check_clean_install.py'), '--json', str(record_path)]
    if os.environ.get('IVNEXT_CLEAN_INSTALL_CACHE'):
        cmd += ['--cache-dir', os.environ['IVNEXT_CLEAN_INSTALL_CACHE']]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    print(result.stdout)
    assert record_path.is_file(), f'no record written:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}'
    record = json.loads(record_path.read_text())
    output = f'{result.stdout[-4000:]}\n{result.stderr[-4000:]}'
    assert result.returncode == 0 and record['passed'], output
    # The checks all ran, in the venv, on the wheel: nothing was borrowed from this environment.
    assert set(record['checks']) == {'pip_check', 'import', 'ivnext_runner', 'mmaction_runner',
                                     'extract_features_help', 'video_list_help', 'video_list_run'}, output
    prefix = Path(record['checker']['prefix']).resolve()
    assert prefix != Path(sys.prefix).resolve() and REPO not in prefix.parents, prefix
    assert Path(record['checks']['import']['details']['locations']['ivnext']).resolve().is_relative_to(prefix)
    # torch stayed the one installed first and alone; the resolve went straight through.
    assert record['versions']['torch'].split('+')[0] == '2.13.0', output
    steps = record['steps']
    assert not record['backtracking'], 'pip backtracked: ' + '; '.join(
        f"{name}: {steps[name]['backtracking_lines']} {steps[name]['several_versions']}"
        for name in ('install_torch', 'install_ivnext'))
    if record['cache'] == 'cold':
        assert record['steps']['install_ivnext']['downloads'] > 0, output
