"""The default runtime ends a job whose rank is stuck in a collective after minutes, not torch's 30."""
import datetime
from pathlib import Path

from mmengine.config import Config

REPO = Path(__file__).resolve().parents[1]


def test_default_runtime_sets_a_dist_timeout_that_reaches_the_process_group(monkeypatch):
    cfg = Config.fromfile(str(REPO / 'configs' / 'demo' / 'tiny_recognizer_i3dhead_cpu.py'))
    timeout = cfg.env_cfg.dist_cfg.timeout
    assert 60 <= timeout <= 1200  # seconds

    import mmengine.dist.utils as dist_utils
    seen = {}
    monkeypatch.setattr(dist_utils.torch_dist, 'init_process_group', lambda **kwargs: seen.update(kwargs))
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '1')
    monkeypatch.setenv('LOCAL_RANK', '0')
    dist_utils.init_dist('pytorch', **cfg.env_cfg.dist_cfg)
    assert seen['timeout'] == datetime.timedelta(seconds=timeout)
