"""The demo's configs: ``configs/demo/`` pointed at the work dir's data, teacher and checkpoints, at the preset's
clip shape and schedule, and written out as the configs of record (``<work-dir>/configs/``)."""
import os
import os.path as osp
from typing import Optional

from mmengine.config import Config

# ivnext/.mim/configs/demo (the repository's configs/ in a source checkout, shipped in the wheel).
CONFIG_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '.mim', 'configs', 'demo')


def set_clip_shape(node, frames: int, size: int):
    """Set the clip length and frame side of a config: the encoder (the predictor's grid and the teacher's image
    size derive from it when the model is built), the pipelines that make the clips and a frame-wise probe pool."""
    if isinstance(node, dict):
        kind = node.get('type')
        if kind == 'InternVideoNextViT':
            node['num_frames'], node['img_size'] = frames, size
        elif kind == 'UniformSample':
            node['clip_len'] = frames
        elif kind == 'MultiScaleCrop':
            node['input_size'] = size
        elif kind == 'Resize':
            node['scale'] = (size, size) if node.get('keep_ratio', True) is False else (-1, size)
        elif kind == 'CenterCrop':
            node['crop_size'] = size
        elif kind in ('AttentiveProbeHead', 'LinearProbeHead') and node.get('time_slots', 1) > 1:
            node['time_slots'] = frames  # one slot per token frame (the demo encoders' tubelet is 1)
        for value in node.values():
            set_clip_shape(value, frames, size)
    elif isinstance(node, (list, tuple)):
        for value in node:
            set_clip_shape(value, frames, size)
    return node


def set_iterations(cfg: Config, iters: int) -> None:
    """Shorten an iteration-based schedule to ``iters`` steps, scaling the scheduler milestones."""
    old = int(cfg.train_cfg.max_iters)
    cfg.train_cfg.max_iters = iters

    def scale(v):
        return min(iters, max(1, round(v * iters / old))) if v else 0

    for sched in cfg.param_scheduler:
        sched.begin, sched.end = scale(sched.get('begin', 0)), scale(sched.get('end', old))
    cfg.default_hooks.checkpoint.interval = iters


def stage_config(name: str, filename: str, work: str, data_root: str, teacher_dir: str, preset: dict,
                 stage1_ckpt: Optional[str] = None) -> Config:
    """A pretraining config of ``configs/demo/`` pointed at the work dir's data, teacher and upstream checkpoint,
    at the preset's sizes."""
    cfg = Config.fromfile(osp.join(CONFIG_DIR, filename))
    set_clip_shape(cfg._cfg_dict, preset['frames'], preset['clips']['size'])
    loader = cfg.train_dataloader
    loader.dataset.ann_file = osp.join(data_root, 'pretrain.txt')
    loader.dataset.data_prefix = dict(video=data_root)
    if preset['batch_size']:
        loader.batch_size = preset['batch_size']
    if preset['schedule']:
        set_iterations(cfg, preset['schedule'])
    if cfg.model.get('teacher'):
        teacher = cfg.model.teacher
        (teacher.teacher if teacher.type == 'CachedTeacher' else teacher).pretrained = teacher_dir
    if stage1_ckpt is not None:
        cfg.model.stage1_checkpoint = stage1_ckpt
    cfg.work_dir = osp.join(work, 'work_dirs', name)
    return cfg


def probe_config(work: str, data_root: str, preset: dict) -> Config:
    """The probe config (``ivnext_demo_probe.py``) at the preset's sizes, reading the work dir's clips (the
    appearance lists; the leaderboard's tasks swap in each label kind's lists)."""
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'ivnext_demo_probe.py'))
    set_clip_shape(cfg._cfg_dict, preset['frames'], preset['clips']['size'])
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.dataset.ann_file = osp.join(data_root, f'{split}_appearance.txt')
        loader.dataset.data_prefix = dict(video=data_root)
    if preset['probe_epochs']:
        cfg.train_cfg.max_epochs = preset['probe_epochs']
        cfg.train_cfg.val_interval = preset['probe_epochs']
        cfg.param_scheduler[0].end = preset['probe_epochs']
    cfg.work_dir = osp.join(work, 'work_dirs', 'probe')
    return cfg


def dump_config(cfg: Config, work: str, name: str) -> str:
    """Write ``cfg`` to ``<work>/configs/<name>.py`` and return the path."""
    path = osp.join(work, 'configs', f'{name}.py')
    os.makedirs(osp.dirname(path), exist_ok=True)
    cfg.dump(path)
    return path


__all__ = ('CONFIG_DIR', 'dump_config', 'probe_config', 'set_clip_shape', 'set_iterations', 'stage_config')
