"""Extract frozen InternVideo-Next features for a dataset, with the config's test (or val/train) pipeline.

Saves one feature array per clip view and the labels:

* ``--out feats.npy``: features in ``feats.npy``, labels in ``feats_labels.npy``;
* ``--out feats.npz``: arrays ``features`` and ``labels``;
* ``--out feats.pt``: ``{'features', 'labels', 'filenames', 'mode', 'config'}`` (torch tensors).

Feature shapes: ``pooled`` (N, V, clip_embed_dims) from the clip projector, ``avg`` (N, V, C) mean patch token,
``tokens`` (N, V, num_cls + T'H'W', C); V = views per clip (e.g. 3 with ThreeCrop), or no V axis with
``--average-views``.

Examples::

    python tools/extract_features.py configs/probe/attnprobe_ivnext-vit-b-p14_16x224_20e_k400.py \
        checkpoints/ivnext_vit-b_stage2.pth --out work_dirs/k400_val_pooled.npy --mode pooled
    python tools/extract_features.py CONFIG none --out feats.pt --mode avg --split val   # weights from the config
"""
import argparse
import os
import os.path as osp
import sys
from typing import Dict, List, Optional

import numpy as np
import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import ivnext  # noqa: E402,F401
from ivnext.utils.checkpoint import load_encoder_checkpoint  # noqa: E402
from mmaction.registry import MODELS  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from mmengine.utils import ProgressBar  # noqa: E402

MODES = ('pooled', 'tokens', 'avg')
SUFFIXES = ('.npy', '.npz', '.pt', '.pth')


def load_backbone_weights(backbone: torch.nn.Module, path: str) -> None:
    """Load encoder weights from any checkpoint (released, exported, recognizer or MMEngine training run).

    Raises:
        KeyError: When encoder weights are missing from the file (features of random weights are useless).
    """
    missing, _ = load_encoder_checkpoint(backbone, path, strict=False)
    if missing:
        raise KeyError(f'{path} lacks encoder weights {missing}; is it an InternVideo-Next checkpoint?')


def build_model(cfg: Config, checkpoint: Optional[str], mode: str, device: str) -> torch.nn.Module:
    """The config's model with the backbone set to ``out_type=mode`` and its weights loaded, in eval mode."""
    backbone_cfg = cfg.model.backbone
    if backbone_cfg.get('type') != 'InternVideoNextViT':
        raise ValueError(f"model.backbone.type must be 'InternVideoNextViT', got {backbone_cfg.get('type')!r}")
    backbone_cfg.out_type = mode
    if mode == 'pooled':
        backbone_cfg.with_clip_projector = True
    if checkpoint is not None:
        backbone_cfg.pretrained = None
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        load_backbone_weights(model.backbone, checkpoint)
    else:
        model.backbone.init_weights()
    return model.to(device).eval()


def extract(cfg: Config, checkpoint: Optional[str], mode: str = 'pooled', split: str = 'test',
            batch_size: Optional[int] = None, num_workers: Optional[int] = None, average_views: bool = False,
            device: str = 'cpu') -> Dict:
    """Run the backbone over every clip of ``split``.

    Returns:
        dict: ``features`` (N, V, ...) or (N, ...) float32 tensor, ``labels`` (N,) int64 tensor,
        ``filenames`` list of str.
    """
    if mode not in MODES:
        raise ValueError(f'--mode must be one of {MODES}, got {mode!r}')
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    key = f'{split}_dataloader'
    if cfg.get(key) is None:
        raise KeyError(f'the config has no {key}; choose --split among train/val/test')
    loader_cfg = cfg[key].copy()
    if batch_size is not None:
        loader_cfg.batch_size = batch_size
    if num_workers is not None:
        loader_cfg.num_workers = num_workers
        loader_cfg.persistent_workers = num_workers > 0 and loader_cfg.get('persistent_workers', False)
    loader_cfg.sampler = dict(type='DefaultSampler', shuffle=False)
    loader = Runner.build_dataloader(loader_cfg)
    model = build_model(cfg, checkpoint, mode, device)

    feats: List[torch.Tensor] = []
    labels: List[torch.Tensor] = []
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
            feats.append((out.mean(1) if average_views else out).cpu())
            for sample in data['data_samples']:
                labels.append(sample.gt_label.view(-1)[:1].long().cpu())
            progress.update(b)
    sys.stdout.write('\n')
    # The sampler is sequential in one process, so clips come in dataset order.
    dataset = loader.dataset
    names = [str(dataset.get_data_info(i).get('filename', '')) for i in range(len(dataset))]
    return dict(features=torch.cat(feats), labels=torch.cat(labels), filenames=names)


def save(result: Dict, out: str, mode: str, config: str) -> List[str]:
    """Write ``result`` to ``out`` (.npy + _labels.npy, .npz, or .pt / .pth). Returns the written paths."""
    suffix = osp.splitext(out)[1]
    if suffix not in SUFFIXES:
        raise ValueError(f'--out must end with one of {SUFFIXES}, got {out!r}')
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


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Extract frozen InternVideo-Next features with a config pipeline')
    parser.add_argument('config', help='config whose model.backbone is InternVideoNextViT')
    parser.add_argument('checkpoint', help="encoder / recognizer / training checkpoint, or 'none' for the "
                        "config's model.backbone.pretrained")
    parser.add_argument('--out', required=True, help='output .npy (+ _labels.npy), .npz or .pt')
    parser.add_argument('--mode', choices=MODES, default='pooled', help='which backbone output to save')
    parser.add_argument('--split', choices=('train', 'val', 'test'), default='test',
                        help="dataloader (and pipeline) of the config to read (default 'test')")
    parser.add_argument('--batch-size', type=int, default=None, help='override the dataloader batch size')
    parser.add_argument('--num-workers', type=int, default=None, help='override the dataloader workers')
    parser.add_argument('--average-views', action='store_true', help='average the views (crops / clips) per video')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries, key=value')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    checkpoint = None if args.checkpoint.lower() == 'none' else args.checkpoint
    result = extract(cfg, checkpoint, args.mode, args.split, args.batch_size, args.num_workers,
                     args.average_views, args.device)
    paths = save(result, args.out, args.mode, args.config)
    print(f"features {tuple(result['features'].shape)}, labels {tuple(result['labels'].shape)} -> {', '.join(paths)}")


if __name__ == '__main__':
    main()
