"""Watching training: ``tools/train.py --tensorboard`` / ``--wandb`` and Stage-1 reconstruction grids.

The Stage-1 and probe runs go through ``ivnext.cli.train.main`` (what ``tools/train.py`` runs) with TensorBoard
switched on by its flag; their event files are read back with TensorBoard's own reader.
"""
import glob
import json
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from ivnext.cli.train import main, merge_args, parse_args
from ivnext.hooks import ReconstructionVisHook

REPO = Path(__file__).resolve().parents[1]
STAGE1 = str(REPO / 'configs/demo/tiny_stage1_cpu.py')
PROBE = str(REPO / 'configs/probe/attnprobe_ivnext-vit-b-p14_16x224_20e_k400.py')
GAP, LABEL, SIZE, FRAMES = 2, 96, 56, 4  # the grid layout of the tiny Stage-1 config (56 px, 4 frames)


def stage1_data(clips):
    options = []
    for i, ann in enumerate((clips.train_ann_file, clips.val_ann_file)):
        options += [f'train_dataloader.dataset.datasets.{i}.ann_file={ann}',
                    f'train_dataloader.dataset.datasets.{i}.data_prefix.video={clips.video_dir}']
    return options


def vis_dir(work_dir: Path) -> str:
    """The ``vis_data`` folder of the (only) run in ``work_dir``."""
    found = glob.glob(str(work_dir / '*' / 'vis_data'))
    assert len(found) == 1, found
    return found[0]


def read_events(work_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(vis_dir(work_dir), size_guidance={'images': 0, 'scalars': 0})
    events.Reload()
    return events


def local_losses(work_dir: Path) -> list:
    """``loss`` per iteration from MMEngine's local backend (``scalars.json``), which every run writes."""
    with open(Path(vis_dir(work_dir)) / 'scalars.json') as f:
        return [(row['step'], row['loss']) for row in map(json.loads, f) if 'loss' in row]


def test_stage1_tensorboard_losses_and_reconstruction_grids(tmp_path, video_clips):
    """--tensorboard logs every loss term and the reconstruction grids; the grids leave the losses unchanged."""
    watched, plain = tmp_path / 'watched', tmp_path / 'plain'
    main([STAGE1, '--work-dir', str(watched), '--tensorboard', '--cfg-options', *stage1_data(video_clips)])

    events = read_events(watched)
    scalars = set(events.Tags()['scalars'])
    assert {'loss', 'loss_diffusion', 'loss_align', 'loss_align_pooled', 'lr', 'grad_norm'} <= scalars
    assert [e.step for e in events.Scalars('loss')] == [1, 2, 3, 4]
    # tiny_stage1_cpu.py draws every 2 iterations (of 4): two clips, each original / masked / reconstructed.
    images = events.Images('reconstruction')
    assert [e.step for e in images] == [2, 4]
    grid = cv2.cvtColor(cv2.imdecode(np.frombuffer(images[-1].encoded_image_string, np.uint8), cv2.IMREAD_COLOR),
                        cv2.COLOR_BGR2RGB)
    block = 3 * (SIZE + GAP) + GAP
    assert grid.shape == (2 * block, LABEL + FRAMES * (SIZE + GAP) + GAP, 3)
    for clip in range(2):
        original, masked, recon = (grid[clip * block + GAP + r * (SIZE + GAP):][:SIZE, LABEL + GAP:]
                                   for r in range(3))
        assert original.std() > 10  # frames of the clip, not a blank
        # Masked patches are grey, visible ones the clip's own; the reconstruction keeps the visible patches.
        assert ((masked == 127).all(-1) | (masked == original).all(-1)).all()
        assert 0.1 < (recon == original).all(-1).mean() < 0.6
    assert 'wandb' not in sys.modules  # W&B is neither needed nor imported unless switched on

    # The same run without the hook: the same losses, bit for bit (the grids draw from their own generator, and
    # every random state is restored).
    main([STAGE1, '--work-dir', str(plain), '--cfg-options', *stage1_data(video_clips), 'custom_hooks=[]'])
    assert local_losses(plain) == local_losses(watched)
    assert [e.value for e in events.Scalars('loss')] == [loss for _, loss in local_losses(plain)]
    assert not glob.glob(str(plain / '*' / 'vis_data' / 'events.out.tfevents.*'))


def test_probe_validation_curve_reaches_tensorboard(tmp_path, video_clips):
    """A probe run (the real K400 attentive-probe config at test size) logs acc/top1 after every epoch."""
    from test_probe import shrink_pipeline

    cfg = Config.fromfile(PROBE)
    assert cfg.train_cfg.val_interval == 1 and cfg.val_cfg is not None  # validated after every epoch
    cfg.model.backbone.update(arch=dict(embed_dims=32, num_layers=1, num_heads=4), img_size=56, num_frames=4,
                              pretrained=None, use_flash_attn=False)
    cfg.model.cls_head.update(num_classes=4, in_channels=32, num_heads=4)
    cfg.model.data_preprocessor.blending.num_classes = 4
    for split, ann in (('train', video_clips.train_ann_file), ('val', video_clips.val_ann_file)):
        loader = cfg[f'{split}_dataloader']
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        loader.dataset.update(ann_file=str(ann), data_prefix=dict(video=str(video_clips.video_dir)))
        shrink_pipeline(loader.dataset.pipeline)
    cfg.train_cfg.max_epochs = 2
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end=2)]
    cfg.default_hooks.checkpoint = dict(type='SafeCheckpointHook', interval=100, save_best=None)
    config = tmp_path / 'probe_tiny.py'
    cfg.dump(str(config))

    main([str(config), '--work-dir', str(tmp_path / 'probe'), '--tensorboard'])
    events = read_events(tmp_path / 'probe')
    top1 = events.Scalars('acc/top1')
    assert [e.step for e in top1] == [1, 2]  # one point per epoch
    assert all(0.0 <= e.value <= 1.0 for e in top1)
    assert {'loss', 'lr'} <= set(events.Tags()['scalars'])


class FakeWandb(types.ModuleType):
    """The calls MMEngine's WandbVisBackend makes, recorded."""

    def __init__(self):
        super().__init__('wandb')
        self.calls = []
        self.Image = lambda image: ('image', image.shape)

    def init(self, **kwargs):
        self.calls.append(('init', kwargs))

    def log(self, data, commit=True):
        self.calls.append(('log', data))


def test_wandb_flag_adds_the_backend_and_logs_through_it(tmp_path, monkeypatch):
    from mmaction.registry import VISUALIZERS
    from mmengine.registry import init_default_scope

    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, 'wandb', fake)
    args = parse_args([STAGE1, '--work-dir', str(tmp_path), '--wandb', 'ivnext-runs', '--tensorboard'])
    cfg = merge_args(Config.fromfile(STAGE1), args)
    assert [b['type'] for b in cfg.visualizer.vis_backends] == ['LocalVisBackend', 'TensorboardVisBackend',
                                                                'WandbVisBackend']
    assert cfg.visualizer.vis_backends[-1]['init_kwargs'] == dict(project='ivnext-runs')
    # Already present backends are not added twice.
    again = merge_args(cfg, parse_args([STAGE1, '--wandb', '--tensorboard']))
    assert len(again.visualizer.vis_backends) == 3

    init_default_scope('mmaction')
    visualizer = VISUALIZERS.build(dict(cfg.visualizer, name='wandb_flag_test', save_dir=str(tmp_path / 'vis'),
                                        vis_backends=[dict(cfg.visualizer.vis_backends[-1])]))
    visualizer.add_scalars(dict(loss=1.5), step=3)
    visualizer.add_image('reconstruction', np.zeros((8, 8, 3), np.uint8), step=3)
    assert fake.calls == [('init', dict(project='ivnext-runs', dir=str(tmp_path / 'vis' / 'vis_data'))),
                          ('log', dict(loss=1.5)), ('log', dict(reconstruction=('image', (8, 8, 3))))]


def test_wandb_flag_without_the_package_says_what_to_install(monkeypatch):
    import importlib.util
    monkeypatch.delitem(sys.modules, 'wandb', raising=False)
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *a: None)
    with pytest.raises(SystemExit, match='pip install wandb'):
        merge_args(Config.fromfile(STAGE1), parse_args([STAGE1, '--wandb']))


def test_hook_leaves_models_without_a_pixel_decoder_alone():
    """Stage 2 (and alignment-only Stage 1) inherit the hook from the Stage-1 configs; it switches itself off."""
    messages = []
    runner = types.SimpleNamespace(model=torch.nn.Linear(2, 2),
                                   logger=types.SimpleNamespace(info=messages.append))
    hook = ReconstructionVisHook(interval=1)
    hook.before_train(runner)
    assert not hook.enabled and 'no pixel decoder' in messages[0]
    hook.after_train_iter(runner, 0, data_batch=dict(inputs=[torch.zeros(1)]))  # nothing drawn, nothing raised


def test_hook_draws_with_the_linear_decoder_and_leaves_mode_and_random_state():
    """The linear-decoder ablation draws too; train mode and torch's random state are as before the drawing."""
    import test_stage1 as s1

    model = s1.build(s1.stage1_cfg(head='linear', teacher=False, masker='RandomMasker'))
    model.train()
    hook = ReconstructionVisHook(interval=1, num_clips=2)
    clips = [torch.randint(0, 256, (1, 3, s1.FRAMES, s1.SIZE, s1.SIZE), dtype=torch.uint8) for _ in range(3)]
    state = torch.get_rng_state()
    grid = hook.draw(model, clips)
    assert model.training and torch.equal(torch.get_rng_state(), state)
    block = 3 * (s1.SIZE + GAP) + GAP  # original / masked / reconstructed rows of one clip
    assert grid.dtype == np.uint8 and grid.shape == (2 * block, LABEL + s1.FRAMES * (s1.SIZE + GAP) + GAP, 3)
    assert np.array_equal(hook.draw(model, clips), grid)  # the same clips, mask and noise every time
