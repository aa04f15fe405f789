"""``import ivnext`` loads the library alone: no demo clip rendering, ONNX conversion or analysis (FLOP counting,
benchmarking, profiling) module; each of those packages still imports on its own."""
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Packages (and modules) that only the demo, the converters, tools/analysis and the command lines need.
APART = ('ivnext.demo', 'ivnext.convert', 'ivnext.analysis', 'ivnext.cli', 'ivnext.visualization')
NAME_PARTS = ('demo', 'onnx', 'flops', 'benchmark', 'profile')


def _modules_after(code: str) -> list:
    """Names of the ``ivnext`` modules in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    script = code + ('\nimport json, sys\n'
                     'print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "ivnext")))')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get('PYTHONPATH', '')]))
    out = subprocess.run([sys.executable, '-c', script], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_ivnext_loads_no_demo_onnx_or_analysis_module():
    modules = _modules_after('import ivnext')
    assert 'ivnext.models' in modules and 'ivnext.datasets' in modules  # the library itself is loaded
    leaked = [m for m in modules
              if m.startswith(APART) or any(part in m.rsplit('.', 1)[-1] for part in NAME_PARTS)]
    assert leaked == [], f'`import ivnext` loaded {leaked}'


def test_apart_packages_import_on_their_own():
    apart = ('ivnext.demo.object_motion_clips', 'ivnext.convert.onnx_dinov2', 'ivnext.convert.export_backbone',
             'ivnext.convert.release', 'ivnext.convert.kmash_list', 'ivnext.analysis.flops',
             'ivnext.analysis.benchmark', 'ivnext.analysis.profile', 'ivnext.analysis.config_benchmark',
             'ivnext.analysis.compare', 'ivnext.analysis.config_flops', 'ivnext.analysis.memory',
             'ivnext.visualization.reconstruction', 'ivnext.cli.train', 'ivnext.cli.evaluate')
    modules = _modules_after('import ' + ', '.join(apart))
    for name in ('ivnext.demo.clip_io', *apart):
        assert name in modules
