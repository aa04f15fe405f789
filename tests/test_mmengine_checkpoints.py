"""Checkpoints of a stock MMEngine run (a config with MMEngine's own ``CheckpointHook``, mmaction2's default
runtime) load weights-only through every ivnext load call; ``--trust-checkpoint`` is what unpickles anything else.

The run trains a tiny recognizer for 2 iterations with mmaction2's ``default_runtime.py``, a ``MultiStepLR``
schedule (its milestones are a ``collections.Counter``) and validation (``save_best='auto'`` puts the best score,
a numpy scalar, in the message hub).
"""
import copy
import itertools
import json
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from mmaction.registry import MODELS
from mmengine.config import Config

import ivnext
import ivnext.cli.evaluate as test_tool
import ivnext.cli.train as train_tool
from ivnext.convert.export_backbone import export_backbone
from ivnext.utils.checkpoint import UntrustedCheckpointError, load_checkpoint_file, load_weights, read_state_dict

REPO = Path(__file__).resolve().parents[1]
STAGE1_CFG = REPO / 'configs' / 'demo' / 'tiny_stage1_cpu.py'
STAGE2_CFG = REPO / 'configs' / 'demo' / 'tiny_stage2_cpu.py'

STOCK_CONFIG = '''
_base_ = ['mmaction::_base_/default_runtime.py']
custom_imports = dict(imports=['ivnext'], allow_failed_imports=False)

model = dict(
    type='Recognizer3D',
    backbone=dict(type='InternVideoNextViT', arch=dict(embed_dims=32, num_layers=1, num_heads=2, mlp_ratio=2.0),
                  img_size=56, patch_size=14, num_frames=4, out_type='featmap', with_clip_projector=False,
                  use_flash_attn=False),
    cls_head=dict(type='I3DHead', num_classes=4, in_channels=32, average_clips='prob'),
    data_preprocessor=dict(type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], format_shape='NCTHW'))

pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=4, frame_interval=2, num_clips=1, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 64)),
    dict(type='CenterCrop', crop_size=56),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False, sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='VideoDataset', ann_file={train!r}, data_prefix=dict(video={videos!r}), pipeline=pipeline))
val_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='VideoDataset', ann_file={val!r}, data_prefix=dict(video={videos!r}), pipeline=pipeline,
                 test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator

train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=2)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
param_scheduler = [dict(type='MultiStepLR', by_epoch=False, milestones=[1], gamma=0.1)]

default_hooks = dict(logger=dict(interval=1), checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=False))
log_processor = dict(by_epoch=False)
'''


_runs = itertools.count()


def run_tool(tool, argv: list, cfg_options: tuple = ()) -> None:
    """``tools/train.py`` or ``tools/test.py`` (``tool``: ``ivnext.cli.train`` / ``ivnext.cli.evaluate``) with
    ``argv``, as its own experiment: MMEngine names a run's logger and visualizer after the config file and the
    second the run starts, so two runs of one config within a second would share them."""
    tool.main([*argv, '--cfg-options', f'experiment_name=stock_{next(_runs)}', *cfg_options])


class Payload:
    """Unpickling this writes ``path`` (what an attacker's code would do)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (exec, (f'open({self.path!r}, "w").write("ran")',))


@pytest.fixture(scope='module')
def stock_run(tmp_path_factory, video_clips):
    """(config path, iter_2.pth) of a 2-iteration run of a stock config, trained with tools/train.py."""
    root = tmp_path_factory.mktemp('stock_run')
    config = root / 'stock_recognizer.py'
    config.write_text(STOCK_CONFIG.format(train=str(video_clips.train_ann_file), val=str(video_clips.val_ann_file),
                                          videos=str(video_clips.video_dir)))
    assert Config.fromfile(str(config)).default_hooks.checkpoint.type == 'CheckpointHook'
    run_tool(train_tool, [str(config), '--work-dir', str(root / 'work')])
    checkpoint = root / 'work' / 'iter_2.pth'
    assert checkpoint.is_file()
    return config, checkpoint


def logged_metrics(work_dir: Path) -> dict:
    """The metrics tools/test.py logged in ``work_dir`` (its one run there)."""
    (log,) = [p for p in work_dir.glob('*/*.json') if p.parent.name == p.stem]
    return json.loads(log.read_text().splitlines()[-1])


def with_payload(checkpoint: Path, out: Path, marker: Path) -> Path:
    """``checkpoint`` with one more pickled object, of a type no weights-only load allows, in its meta."""
    content = torch.load(checkpoint, weights_only=False)
    content['meta']['note'] = Payload(marker)
    torch.save(content, out)
    return out


def as_written_by_numpy1(checkpoint: Path, out: Path) -> Path:
    """``checkpoint`` as numpy 1 pickles it: array and scalar rebuilders named ``numpy.core.multiarray.*``."""
    with zipfile.ZipFile(checkpoint) as src, zipfile.ZipFile(out, 'w', zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith('/data.pkl'):
                assert b'numpy._core.multiarray\n' in data
                data = data.replace(b'numpy._core.multiarray\n', b'numpy.core.multiarray\n')
            dst.writestr(info.filename, data)
    return out


def test_stock_checkpoint_holds_mmengine_types_and_loads_weights_only_in_ivnext_calls(stock_run):
    _, checkpoint = stock_run
    with pytest.raises(pickle.UnpicklingError):
        torch.load(checkpoint, weights_only=True)  # torch alone refuses the message hub and the scheduler states
    content = load_checkpoint_file(str(checkpoint))
    assert 'rng_state' not in content  # written by MMEngine's CheckpointHook, not ivnext's SafeCheckpointHook
    assert type(content['message_hub']['log_scalars']['train/loss']).__name__ == 'HistoryBuffer'
    assert type(content['param_schedulers'][0]['milestones']).__name__ == 'Counter'
    assert 'best_score' in content['message_hub']['runtime_info']
    assert not any('HistoryBuffer' in repr(g) or 'Counter' in repr(g) for g in torch.serialization.get_safe_globals())


def test_test_tool_scores_a_stock_checkpoint_without_opt_in(stock_run, tmp_path):
    config, checkpoint = stock_run
    run_tool(test_tool, [str(config), str(checkpoint), '--work-dir', str(tmp_path)])
    assert 'acc/top1' in logged_metrics(tmp_path)


# FlexibleRunner (the FSDP / DeepSpeed recipes' runner) resumes through its strategy, not runner.load_checkpoint.
RESUMES = {'resume': (), 'resume_flexible_runner': ('runner_type=FlexibleRunner',)}


@pytest.mark.parametrize('how', [*RESUMES, 'load_from'])
def test_train_tool_continues_from_a_stock_checkpoint_without_opt_in(how, stock_run, tmp_path):
    config, checkpoint = stock_run
    if how in RESUMES:
        options = ['--resume', str(checkpoint)]
        cfg_options = ('train_cfg.max_iters=3', 'train_cfg.val_interval=9', *RESUMES[how])
        written = tmp_path / 'iter_3.pth'
    else:
        options, cfg_options = [], (f'load_from={checkpoint}', 'train_cfg.max_iters=1', 'train_cfg.val_interval=9')
        written = tmp_path / 'iter_1.pth'
    run_tool(train_tool, [str(config), '--work-dir', str(tmp_path), *options], cfg_options)
    # Resumed at iteration 2, the run trains and saves only iteration 3 (from scratch it would save 1, 2 and 3).
    assert sorted(p.name for p in tmp_path.glob('iter_*.pth')) == [written.name]
    assert 'state_dict' in load_checkpoint_file(str(written))


def test_stock_checkpoint_written_under_numpy1_loads_weights_only(stock_run, tmp_path):
    config, checkpoint = stock_run
    old = as_written_by_numpy1(checkpoint, tmp_path / 'numpy1.pth')
    assert load_checkpoint_file(str(old))['message_hub']['log_scalars']['train/loss'].current() > 0
    run_tool(test_tool, [str(config), str(old), '--work-dir', str(tmp_path / 'test')])
    assert 'acc/top1' in logged_metrics(tmp_path / 'test')


@pytest.mark.parametrize('tool', ['test', *RESUMES, 'load_from'])
def test_another_pickled_object_needs_trust_checkpoint_which_unpickles_it(tool, stock_run, tmp_path):
    config, checkpoint = stock_run
    marker = tmp_path / 'payload_ran'
    path = with_payload(checkpoint, tmp_path / 'with_object.pth', marker)

    def run(work: Path, *flags: str) -> None:
        if tool == 'test':
            run_tool(test_tool, [str(config), str(path), '--work-dir', str(work), *flags])
        else:
            options = ['--resume', str(path)] if tool in RESUMES else []
            cfg_options = RESUMES.get(tool, (f'load_from={path}',))
            run_tool(train_tool, [str(config), '--work-dir', str(work), *options, *flags],
                     ('train_cfg.max_iters=3', 'train_cfg.val_interval=9', *cfg_options))

    with pytest.raises(UntrustedCheckpointError, match=r'with_object\.pth .*--trust-checkpoint'):
        run(tmp_path / 'refused')
    assert not marker.exists()
    run(tmp_path / 'trusted', '--trust-checkpoint')
    assert marker.exists()  # the opt-in unpickles the file in full
    if tool == 'test':
        assert 'acc/top1' in logged_metrics(tmp_path / 'trusted')
    else:
        assert (tmp_path / 'trusted' / 'iter_3.pth').is_file()


def stock_checkpoint_of(state_dict: dict, stock: Path, out: Path) -> Path:
    """A checkpoint as MMEngine's CheckpointHook writes it (the stock run's meta, message hub, optimizer and
    scheduler states) around ``state_dict``."""
    content = torch.load(stock, weights_only=False)
    content['state_dict'] = state_dict
    torch.save(content, out)
    return out


def test_weight_loaders_read_stock_checkpoints_without_opt_in(stock_run, tmp_path):
    config, checkpoint = stock_run
    weights = read_state_dict(str(checkpoint))
    # tools/convert/export_backbone.py
    export_backbone(str(checkpoint), str(tmp_path / 'encoder.safetensors'))
    exported = read_state_dict(str(tmp_path / 'encoder.safetensors'))
    assert torch.equal(exported['backbone.cls_token'], weights['backbone.cls_token'])
    # model.backbone.pretrained, tools/extract_features.py
    model_cfg = copy.deepcopy(Config.fromfile(str(config)).model)
    model_cfg.backbone.pretrained = str(checkpoint)
    model = MODELS.build(model_cfg)
    model.init_weights()
    assert torch.equal(model.backbone.cls_token, weights['backbone.cls_token'])
    backbone = MODELS.build(copy.deepcopy(Config.fromfile(str(config)).model.backbone))
    load_weights(backbone, str(checkpoint), 'complete')
    assert torch.equal(backbone.pos_embed, weights['backbone.pos_embed'])
    # the Python API
    encoder = ivnext.load_encoder(str(checkpoint), num_heads=2)
    assert torch.equal(encoder.backbone.pos_embed, weights['backbone.pos_embed'])
    # model.stage1_checkpoint: a Stage-1 model's weights in a stock checkpoint
    torch.manual_seed(0)
    stage1 = MODELS.build(copy.deepcopy(Config.fromfile(str(STAGE1_CFG)).model))
    stage1_path = stock_checkpoint_of(stage1.state_dict(), checkpoint, tmp_path / 'stage1.pth')
    stage2_cfg = copy.deepcopy(Config.fromfile(str(STAGE2_CFG)).model)
    stage2_cfg.stage1_checkpoint = str(stage1_path)
    stage2 = MODELS.build(stage2_cfg)
    stage2.init_weights()
    assert torch.equal(stage2.backbone.patch_embed.proj.weight, stage1.backbone.patch_embed.proj.weight)


def test_stage1_checkpoint_with_another_object_needs_its_own_opt_in(stock_run, tmp_path):
    _, checkpoint = stock_run
    marker = tmp_path / 'payload_ran'
    stage1 = MODELS.build(copy.deepcopy(Config.fromfile(str(STAGE1_CFG)).model))
    path = with_payload(stock_checkpoint_of(stage1.state_dict(), checkpoint, tmp_path / 'stage1.pth'),
                        tmp_path / 'stage1_object.pth', marker)
    stage2_cfg = copy.deepcopy(Config.fromfile(str(STAGE2_CFG)).model)
    stage2_cfg.stage1_checkpoint = str(path)
    with pytest.raises(UntrustedCheckpointError, match='stage1_checkpoint_trusted'):
        MODELS.build(copy.deepcopy(stage2_cfg)).init_weights()
    assert not marker.exists()
    stage2_cfg.stage1_checkpoint_trusted = True
    MODELS.build(stage2_cfg).init_weights()
    assert marker.exists()
