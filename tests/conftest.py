"""Shared pytest fixtures for ivnext tests.

``ivnext`` is imported first so its compatibility fixes apply before anything imports mmaction2, timm or
transformers, and its modules are registered in mmaction2's registries. mmaction2's registries are then set as
the default scope, as ``default_scope='mmaction'`` does in configs.

Fixtures:
    video_clips (session): a :class:`helpers_video.VideoClipSet` of 8 real H.264 mp4s (4 classes x 2 clips,
        20 frames, 64x64, 10 fps) written once per session to a temporary folder. Fields: ``root``,
        ``video_dir`` (use as ``data_prefix=dict(video=...)``), ``ann_file`` (all 8 clips, ``name.mp4 label``
        lines), ``train_ann_file`` / ``val_ann_file`` (4 clips each, every class in both), ``files``,
        ``labels``, ``num_frames``, ``size``, ``num_classes``. Each clip is a coloured square on grey whose
        colour and direction of motion depend on the label. Treat it as read-only.
    repo_root (session): ``pathlib.Path`` of the repository root (for configs and tools).
    tiny_config_path (session): ``pathlib.Path`` of configs/demo/tiny_recognizer_i3dhead_cpu.py.
    tiny_cfg: that config loaded with ``mmengine.Config`` and its train/val/test data pointed at
        ``video_clips``; a fresh copy per test, free to modify.
Helpers (``from helpers_video import ...``): ``render_clip``, ``write_mp4``, ``write_clip_set``.
"""
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ivnext  # noqa: E402,F401
from helpers_video import VideoClipSet, write_clip_set  # noqa: E402
from mmaction.utils import register_all_modules  # noqa: E402

# Every ivnext config runs in mmaction2's scope; building transforms/datasets/models from bare dicts needs it too.
register_all_modules(init_default_scope=True)

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO_ROOT / 'configs' / 'demo' / 'tiny_recognizer_i3dhead_cpu.py'


@pytest.fixture(autouse=True)
def single_thread():
    """Run every test on one intra-op thread: the tiny tensors of unit tests gain nothing from more, and the
    2-core CI machine loses badly when threads of one process contend with each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='session')
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope='session')
def tiny_config_path() -> Path:
    return TINY_CONFIG


@pytest.fixture(scope='session')
def video_clips(tmp_path_factory) -> VideoClipSet:
    return write_clip_set(tmp_path_factory.mktemp('video_clips'), clips_per_class=2, num_frames=20, size=64)


def point_cfg_at_clips(cfg, clips: VideoClipSet):
    """Point the train/val/test dataloaders of an mmengine Config at a :class:`VideoClipSet`."""
    splits = (('train_dataloader', clips.train_ann_file), ('val_dataloader', clips.val_ann_file),
              ('test_dataloader', clips.val_ann_file))
    for key, ann_file in splits:
        if cfg.get(key) is not None:
            cfg[key].dataset.ann_file = str(ann_file)
            cfg[key].dataset.data_prefix = dict(video=str(clips.video_dir))
    return cfg


@pytest.fixture
def tiny_cfg(video_clips, tiny_config_path):
    from mmengine.config import Config
    return point_cfg_at_clips(Config.fromfile(str(tiny_config_path)), video_clips)
