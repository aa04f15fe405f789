"""Frozen features of a config's dataset split: the config's model, its pipeline, one feature array per clip view.

The library side of ``tools/extract_features.py CONFIG CHECKPOINT --out OUT`` (windows over videos are
:mod:`ivnext.api.extraction`). Feature shapes: ``pooled`` (N, V, clip_embed_dims) from the clip projector, ``avg``
(N, V, C) mean patch token, ``tokens`` (N, V, num_cls + T'H'W', C); V = views per clip (e.g. 3 with ThreeCrop), or
no V axis with ``average_views``. A config whose ``model.backbone`` is a ``TransformersBackbone`` gives ``avg`` and
``tokens`` (num_cls = its prefix tokens).

Example::

    from mmengine.config import Config
    from ivnext.api import extract_dataset, save_features
    cfg = Config.fromfile('configs/probe/attnprobe_ivnext-vit-b-p14_16x224_20e_k400.py')
    result = extract_dataset(cfg, 'checkpoints/ivnext_vit-b_stage2.pth', mode='pooled', split='val')
    save_features(result, 'work_dirs/k400_val_pooled.npy', 'pooled', 'attnprobe_k400.py')
"""
import os
import os.path as osp
import sys
from typing import Dict, List, Optional

import numpy as np
import torch
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.utils import ProgressBar

from ivnext.datasets.skip_bad_clips import BAD_CLIPS_KEY, PLACEHOLDER_KEY
from ivnext.utils.checkpoint import load_weights

FEATURE_MODES = ('pooled', 'tokens', 'avg')
# Backbones whose output the dataset mode saves (a TransformersBackbone builds from its own pretrained folder or
# model_config; a CHECKPOINT then replaces its weights).
BACKBONES = ('InternVideoNextViT', 'TransformersBackbone')
FEATURE_SUFFIXES = ('.npy', '.npz', '.pt', '.pth')


def build_feature_model(cfg: Config, checkpoint: Optional[str], mode: str, device: str,
                        trusted: bool = False) -> torch.nn.Module:
    """The config's model with the backbone set to ``out_type=mode`` and its weights loaded, in eval mode.

    Args:
        cfg: Config whose ``model.backbone`` is one of :data:`BACKBONES`.
        checkpoint: Encoder / recognizer / training checkpoint holding every encoder tensor, or None for the
            config's own weights (``model.backbone.pretrained`` or the initialisation).
        mode: One of :data:`FEATURE_MODES`.
        device: Where to put the model.
        trusted: Unpickle the checkpoint in full (files of your own origin only).
    """
    backbone_cfg = cfg.model.backbone
    backbone_type = backbone_cfg.get('type')
    if backbone_type not in BACKBONES:
        raise ValueError(f'model.backbone.type must be one of {BACKBONES}, got {backbone_type!r}')
    if backbone_type == 'TransformersBackbone' and mode == 'pooled':
        raise ValueError('mode pooled (--mode pooled) needs the InternVideo-Next clip projector; a '
                         'TransformersBackbone has none: use --mode avg or --mode tokens')
    backbone_cfg.out_type = mode
    if mode == 'pooled':
        backbone_cfg.with_clip_projector = True
    if checkpoint is not None and backbone_type == 'InternVideoNextViT':
        backbone_cfg.pretrained = None
    model = MODELS.build(cfg.model)
    if checkpoint is not None:  # every encoder tensor; a recognizer's head or a run's predictor are left out
        load_weights(model.backbone, checkpoint, 'complete', trusted=trusted, opt_in='`--trust-checkpoint`')
    else:
        model.backbone.init_weights()
    return model.to(device).eval()


def bad_clip_list(files: List[str], reports: List[str]) -> List[str]:
    """One ``'path: reason'`` per unreadable clip of the split (``files``: the clips that got a placeholder),
    whatever number of times each was met while loading."""
    out = []
    for name in dict.fromkeys(files):
        out.append(next((r for r in reports if r.startswith(f'{name}: ')), f'{name}: could not be read'))
    return out


def check_bad_clip_ceiling(cfg: Config, split: str, bad: List[str], total: int) -> None:
    """Stop, as training and testing do (``BadClipHook``), when more clips are bad than the config's ceiling.

    Raises:
        ValueError: More than ``max(min_bad_clips, max_bad_fraction * total)`` clips could not be read.
    """
    hook = dict((cfg.get('default_hooks') or {}).get('bad_clips') or {})
    fraction = float(hook.get('max_bad_fraction', 0.01))
    limit = max(int(hook.get('min_bad_clips', 10)), int(fraction * total))
    if len(bad) > limit:
        raise ValueError(f'{len(bad)} of the {total} clips of the {split} split could not be read, more than the '
                         f'ceiling of {limit} (default_hooks.bad_clips.max_bad_fraction={fraction}, min_bad_clips); '
                         'fix the data or raise the ceiling with --cfg-options: ' + '; '.join(bad[:20]))


def extract_dataset(cfg: Config, checkpoint: Optional[str], mode: str = 'pooled', split: str = 'test',
            batch_size: Optional[int] = None, num_workers: Optional[int] = None, average_views: bool = False,
            device: str = 'cpu', trusted: bool = False) -> Dict:
    """Run the backbone over every clip of ``split``.

    Clips that cannot be read are left out when the split's dataset is wrapped in ``SkipBadClips`` (every base
    dataset config is): their stand-ins are dropped and the files are listed in ``bad_clips``.

    Returns:
        dict: ``features`` (N, V, ...) or (N, ...) float32 tensor, ``labels`` (N,) int64 tensor,
        ``filenames`` list of str (the N kept clips), ``bad_clips`` list of ``'path: reason'`` str.
    """
    if mode not in FEATURE_MODES:
        raise ValueError(f'mode (--mode) must be one of {FEATURE_MODES}, got {mode!r}')
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    key = f'{split}_dataloader'
    if cfg.get(key) is None:
        raise KeyError(f'the config has no {key}; choose split (--split) among train/val/test')
    loader_cfg = cfg[key].copy()
    if batch_size is not None:
        loader_cfg.batch_size = batch_size
    if num_workers is not None:
        loader_cfg.num_workers = num_workers
        loader_cfg.persistent_workers = num_workers > 0 and loader_cfg.get('persistent_workers', False)
    loader_cfg.sampler = dict(type='DefaultSampler', shuffle=False)
    loader = Runner.build_dataloader(loader_cfg)
    model = build_feature_model(cfg, checkpoint, mode, device, trusted)

    feats: List[torch.Tensor] = []
    labels: List[torch.Tensor] = []
    keep: List[bool] = []
    bad: List[str] = []
    progress = ProgressBar(len(loader.dataset))
    with torch.no_grad():
        for data in loader:
            data = model.data_preprocessor(data, False)
            inputs = data['inputs']  # (B, V, C, T, H, W)
            b, v = inputs.shape[:2]
            out = model.backbone(inputs.flatten(0, 1))
            if isinstance(out, (tuple, list)):
                raise ValueError('the backbone returns several out_indices; set model.backbone.out_indices=-1')
            out = out.float().view(b, v, *out.shape[1:])
            out = out.mean(1) if average_views else out
            samples = data['data_samples']
            placeholder = torch.tensor([bool(s.metainfo.get(PLACEHOLDER_KEY, False)) for s in samples])
            feats.append(out.cpu()[~placeholder])
            for sample, is_placeholder in zip(samples, placeholder.tolist()):
                bad.extend(sample.metainfo.get(BAD_CLIPS_KEY, []))
                keep.append(not is_placeholder)
                if not is_placeholder:
                    labels.append(sample.gt_label.view(-1)[:1].long().cpu())
            progress.update(b)
    sys.stdout.write('\n')
    # The sampler is sequential in one process, so clips come in dataset order.
    dataset = loader.dataset
    files = [str(dataset.get_data_info(i).get('filename', '')) for i in range(len(dataset))]
    names = [name for name, kept in zip(files, keep) if kept]
    bad = bad_clip_list([name for name, kept in zip(files, keep) if not kept], bad)
    if bad:
        print(f'{len(bad)} clip(s) could not be read and are left out:\n  ' + '\n  '.join(bad))
    check_bad_clip_ceiling(cfg, split, bad, len(dataset))
    labels_out = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long)
    return dict(features=torch.cat(feats), labels=labels_out, filenames=names, bad_clips=bad)


def save_features(result: Dict, out: str, mode: str, config: str) -> List[str]:
    """Write ``result`` to ``out`` (.npy + _labels.npy, .npz, or .pt / .pth). Returns the written paths."""
    suffix = osp.splitext(out)[1]
    if suffix not in FEATURE_SUFFIXES:
        raise ValueError(f'out (--out) must end with one of {FEATURE_SUFFIXES}, got {out!r}')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    feats, labels = result['features'].numpy(), result['labels'].numpy()
    if suffix == '.npy':
        label_path = osp.splitext(out)[0] + '_labels.npy'
        np.save(out, feats)
        np.save(label_path, labels)
        return [out, label_path]
    if suffix == '.npz':
        np.savez(out, features=feats, labels=labels, filenames=np.array(result['filenames']))
        return [out]
    torch.save(dict(result, mode=mode, config=config), out)
    return [out]
