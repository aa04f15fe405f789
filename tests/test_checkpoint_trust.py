"""Checkpoints cannot run code, wrong checkpoints do not load, ivnext's own checkpoints load without opt-in.

A malicious checkpoint's pickle carries a ``__reduce__`` payload that writes a marker file; every loader path of
ivnext must refuse it (and name the opt-in), and only an explicit opt-in runs it.
"""
import copy
import itertools
import os
import pickle
from pathlib import Path

import pytest
import torch
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.runner import Runner

import ivnext.cli.evaluate as test_tool
import ivnext.cli.train as train_tool
from ivnext.visualization.reconstruction import load_model as load_reconstruction_model
from ivnext.convert.export_backbone import export_backbone
from ivnext.convert.release import convert_release
from ivnext.utils.checkpoint import (CheckpointMismatchError, UntrustedCheckpointError, load_checkpoint_file,
                                     read_state_dict)

REPO = Path(__file__).resolve().parents[1]

STAGE1_CFG = REPO / 'configs' / 'demo' / 'tiny_stage1_cpu.py'
STAGE2_CFG = REPO / 'configs' / 'demo' / 'tiny_stage2_cpu.py'
_names = itertools.count()


class Payload:
    """Unpickling this writes ``path`` (what an attacker's code would do)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (exec, (f'open({self.path!r}, "w").write("ran")',))


@pytest.fixture
def evil(tmp_path):
    """(checkpoint path, marker path): a checkpoint with real-looking weights and a payload."""
    marker = tmp_path / 'payload_ran'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'backbone.cls_token': torch.zeros(1, 1, 8)}, 'meta': {'note': Payload(marker)}},
               path)
    return path, marker


def make_runner(cfg: Config, work_dir: Path) -> Runner:
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = f'trust_{next(_names)}'
    return Runner.from_cfg(cfg)


def tool_cfg(tool, tiny_cfg, argv):
    """``tiny_cfg`` after ``tool``'s command-line handling of ``argv`` (config path first, then options)."""
    args = tool.parse_args(['unused.py', *argv])
    return tool.merge_args(copy.deepcopy(tiny_cfg), args)


@pytest.fixture(scope='module')
def trained(tmp_path_factory, video_clips, tiny_config_path):
    """An ivnext recognizer training run of 4 iterations (its iter_4.pth is an MMEngine checkpoint)."""
    from conftest import point_cfg_at_clips
    cfg = point_cfg_at_clips(Config.fromfile(str(tiny_config_path)), video_clips)
    cfg.train_cfg.max_iters = 4
    cfg.train_cfg.val_interval = 100
    work_dir = tmp_path_factory.mktemp('trained')
    make_runner(cfg, work_dir).train()
    return work_dir / 'iter_4.pth'


def test_own_training_checkpoint_needs_pickle_types_and_loads_weights_only(trained):
    # Plain weights-only torch refuses it (message hub objects) ...
    with pytest.raises(pickle.UnpicklingError):
        torch.load(trained, weights_only=True)
    # ... ivnext's reader allows exactly those types, only inside its own call.
    checkpoint = load_checkpoint_file(str(trained))
    assert checkpoint['meta']['iter'] == 4 and 'message_hub' in checkpoint
    assert not any('HistoryBuffer' in repr(g) for g in torch.serialization.get_safe_globals())
    assert 'backbone.cls_token' in read_state_dict(str(trained))


@pytest.mark.parametrize('path_kind', ['load_from', 'resume_path', 'test_tool'])
def test_runner_paths_refuse_a_payload(path_kind, evil, tiny_cfg, tmp_path):
    path, marker = evil
    if path_kind == 'load_from':
        cfg = copy.deepcopy(tiny_cfg)
        cfg.load_from = str(path)
        run = 'train'
    elif path_kind == 'resume_path':
        cfg = tool_cfg(train_tool, tiny_cfg, ['--resume', str(path)])
        run = 'train'
    else:
        cfg = tool_cfg(test_tool, tiny_cfg, [str(path)])
        run = 'test'
    runner = make_runner(cfg, tmp_path / 'work')
    with pytest.raises(UntrustedCheckpointError, match='--trust-checkpoint'):
        getattr(runner, run)()
    assert not marker.exists()


def test_trust_checkpoint_opt_in_is_what_unpickles(evil, tiny_cfg, tmp_path):
    path, marker = evil
    runner = make_runner(tool_cfg(test_tool, tiny_cfg, [str(path), '--trust-checkpoint']), tmp_path / 'work')
    with pytest.raises(Exception):
        runner.test()  # the payload runs; the file then does not fit the model
    assert marker.exists()
    assert os.environ.get('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD') is None  # the opt-in ends with the load


def test_model_and_mmengine_paths_refuse_a_payload(evil, tiny_cfg):
    path, marker = evil
    # init_cfg=dict(type='Pretrained'): MMEngine's own loader, left weights-only by ivnext.
    cfg = copy.deepcopy(tiny_cfg.model)
    cfg.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(path))
    with pytest.raises(pickle.UnpicklingError):
        MODELS.build(cfg).init_weights()
    # model.backbone.pretrained
    cfg = copy.deepcopy(tiny_cfg.model)
    cfg.backbone.pretrained = str(path)
    with pytest.raises(UntrustedCheckpointError, match='export_backbone.py --trust-checkpoint'):
        MODELS.build(cfg).init_weights()
    # model.stage1_checkpoint
    cfg = copy.deepcopy(Config.fromfile(str(STAGE2_CFG)).model)
    cfg.stage1_checkpoint = str(path)
    with pytest.raises(UntrustedCheckpointError, match='stage1_checkpoint_trusted'):
        MODELS.build(cfg).init_weights()
    # Any other code using MMEngine's loader in the process.
    from mmengine.runner import load_checkpoint
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(torch.nn.Linear(1, 1), str(path))
    assert not marker.exists()


def test_tools_refuse_a_payload(evil, tmp_path, video_clips):
    path, marker = evil
    with pytest.raises(UntrustedCheckpointError, match='--trust-checkpoint'):
        export_backbone(str(path), str(tmp_path / 'out.pth'))
    with pytest.raises(UntrustedCheckpointError, match='--trust-checkpoint'):
        convert_release(str(path), str(tmp_path / 'out.pth'))
    cfg = Config.fromfile(str(STAGE1_CFG))
    with pytest.raises(UntrustedCheckpointError, match='--trust-checkpoint'):
        load_reconstruction_model(cfg, str(path), 'cpu')
    assert not marker.exists()
    # The opt-in of a tool is what runs it.
    with pytest.raises(Exception):
        export_backbone(str(path), str(tmp_path / 'out.pth'), trusted=True)
    assert marker.exists()


def test_own_checkpoint_tests_and_exports_without_opt_in(trained, tiny_cfg, tmp_path):
    metrics = make_runner(tool_cfg(test_tool, tiny_cfg, [str(trained)]), tmp_path / 'work').test()
    assert 'acc/top1' in metrics
    out = tmp_path / 'encoder.safetensors'
    export_backbone(str(trained), str(out))
    exported = read_state_dict(str(out))
    original = read_state_dict(str(trained))
    assert exported.keys() == {k for k in original if k.startswith('backbone.')}
    assert all(torch.equal(exported[k], original[k]) for k in exported)
    cfg = copy.deepcopy(tiny_cfg.model)
    cfg.backbone.pretrained = str(out)
    model = MODELS.build(cfg)
    model.init_weights()
    assert torch.equal(model.backbone.cls_token, original['backbone.cls_token'])


def _wrong_width(state):
    return {k: torch.zeros(*v.shape[:-1], v.shape[-1] + 8) if k == 'backbone.cls_token' else v
            for k, v in state.items()}


def _renamed(state):
    return {f'encoder_v2.{k}': v for k, v in state.items()}


@pytest.mark.parametrize('change', [_wrong_width, _renamed])
def test_test_tool_refuses_a_checkpoint_that_does_not_fit(change, trained, tiny_cfg, tmp_path):
    state = read_state_dict(str(trained))
    path = tmp_path / 'wrong.pth'
    torch.save({'state_dict': change(state)}, path)
    runner = make_runner(tool_cfg(test_tool, tiny_cfg, [str(path)]), tmp_path / 'work')
    with pytest.raises(CheckpointMismatchError) as err:
        runner.test()
    message = str(err.value)
    assert 'backbone.cls_token' in message and '--partial-load' in message
    # Asked for explicitly, the keys that fit load and the test runs.
    runner = make_runner(tool_cfg(test_tool, tiny_cfg, [str(path), '--partial-load']), tmp_path / 'work2')
    assert 'acc/top1' in runner.test()


def test_load_from_refuses_a_checkpoint_that_does_not_fit(trained, tiny_cfg, tmp_path):
    state = read_state_dict(str(trained))
    state.pop('cls_head.fc_cls.weight')
    path = tmp_path / 'partial.pth'
    torch.save({'state_dict': state}, path)
    cfg = copy.deepcopy(tiny_cfg)
    cfg.load_from = str(path)
    with pytest.raises(CheckpointMismatchError, match='1 missing: cls_head.fc_cls.weight'):
        make_runner(cfg, tmp_path / 'work').train()
