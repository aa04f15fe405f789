"""Extract frozen InternVideo-Next features: sliding windows over videos, or a config's dataset.

**Windows over videos** (``--videos``; shares :func:`ivnext.api.extract_videos` with the Python API): one
``.npy`` per video with (windows, D) features, a ``.json`` with each window's start / end seconds, and an
``index.json`` / ``index.csv`` over all videos; done videos are skipped on rerun, unreadable videos are listed in
``bad_videos.txt`` and skipped. Memory does not grow with video length (``--batch-size`` windows at a time).
Several processes split the videos: ``torchrun --nproc-per-node N tools/extract_features.py ...``::

    python tools/extract_features.py internvideo-next-base --videos /data/videos --out-dir feats \
        --stride 1 --stride-unit seconds --fps 8
    python tools/extract_features.py work_dirs/stage2/epoch_100.pth --trust-checkpoint --videos list.txt ...

**A config's dataset** (``CONFIG CHECKPOINT --out``): one feature array per clip view and the labels, with the
config's test (or val/train) pipeline:

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

Installed, the same runs as ``ivnext-extract-features``.
"""
import argparse
import os
import os.path as osp
import sys
from typing import Dict, List, Optional

import numpy as np
import torch

import ivnext  # noqa: F401
from ivnext.datasets.skip_bad_clips import BAD_CLIPS_KEY, PLACEHOLDER_KEY
from ivnext.utils.checkpoint import load_encoder_checkpoint
from mmaction.registry import MODELS
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.utils import ProgressBar

MODES = ('pooled', 'tokens', 'avg')
SUFFIXES = ('.npy', '.npz', '.pt', '.pth')


def load_backbone_weights(backbone: torch.nn.Module, path: str, trusted: bool = False) -> None:
    """Load encoder weights from any checkpoint (released, exported, recognizer or MMEngine training run).

    The file is read weights-only; ``trusted`` unpickles it in full (files of your own origin only).

    Raises:
        KeyError: When encoder weights are missing from the file (features of random weights are useless).
    """
    missing, _ = load_encoder_checkpoint(backbone, path, strict=False, trusted=trusted,
                                         opt_in='`--trust-checkpoint`')
    if missing:
        raise KeyError(f'{path} lacks encoder weights {missing}; is it an InternVideo-Next checkpoint?')


def build_model(cfg: Config, checkpoint: Optional[str], mode: str, device: str,
                trusted: bool = False) -> torch.nn.Module:
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
        load_backbone_weights(model.backbone, checkpoint, trusted)
    else:
        model.backbone.init_weights()
    return model.to(device).eval()


def extract(cfg: Config, checkpoint: Optional[str], mode: str = 'pooled', split: str = 'test',
            batch_size: Optional[int] = None, num_workers: Optional[int] = None, average_views: bool = False,
            device: str = 'cpu', trusted: bool = False) -> Dict:
    """Run the backbone over every clip of ``split``.

    Clips that cannot be read are left out when the split's dataset is wrapped in ``SkipBadClips`` (every base
    dataset config is): their stand-ins are dropped and the files are listed in ``bad_clips``.

    Returns:
        dict: ``features`` (N, V, ...) or (N, ...) float32 tensor, ``labels`` (N,) int64 tensor,
        ``filenames`` list of str (the N kept clips), ``bad_clips`` list of ``'path: reason'`` str.
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
    model = build_model(cfg, checkpoint, mode, device, trusted)

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
    names = [str(dataset.get_data_info(i).get('filename', '')) for i in range(len(dataset)) if keep[i]]
    bad = list(dict.fromkeys(bad))
    if bad:
        print(f'{len(bad)} clip(s) could not be read and are left out:\n  ' + '\n  '.join(bad))
    labels_out = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long)
    return dict(features=torch.cat(feats), labels=labels_out, filenames=names, bad_clips=bad)


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
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='allow a checkpoint that pickles Python objects (files of your own origin only)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries, key=value')
    return parser.parse_args(argv)


def parse_window_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Windowed InternVideo-Next features of videos (one file per video)')
    parser.add_argument('source', help='preset name, encoder folder, checkpoint file, or Hugging Face id')
    parser.add_argument('--videos', required=True, help='folder of videos (recursive) or a list file (path per line)')
    parser.add_argument('--out-dir', required=True, help='output folder (features/, index.json, bad_videos.txt)')
    parser.add_argument('--root', default=None, help='folder the video ids are relative to (default: --videos)')
    parser.add_argument('--output', choices=('pooled', 'avg', 'tokens'), default='pooled')
    parser.add_argument('--window', type=float, default=None, help='window length (default: the model frames)')
    parser.add_argument('--window-unit', choices=('frames', 'seconds'), default='frames')
    parser.add_argument('--stride', type=float, default=1.0, help='distance between window starts')
    parser.add_argument('--stride-unit', choices=('frames', 'seconds'), default='seconds')
    parser.add_argument('--fps', type=float, default=None, help='sampling rate inside windows (frames/s)')
    parser.add_argument('--frame-interval', type=int, default=None, help='source frames between sampled frames '
                        '(when --fps is not given)')
    parser.add_argument('--num-frames', type=int, default=None, help='frames per window the model sees')
    parser.add_argument('--batch-size', type=int, default=8, help='windows per forward pass')
    parser.add_argument('--backend', default='auto', choices=('auto', 'decord', 'pyav', 'torchcodec'))
    parser.add_argument('--include-tail', action='store_true', help='add a window ending at each video end')
    parser.add_argument('--precision', default='auto', choices=('auto', 'bf16', 'fp16', 'fp32'))
    parser.add_argument('--dtype', default='float32', choices=('float32', 'float16'), help='saved feature dtype')
    parser.add_argument('--no-resume', action='store_true', help='re-extract videos that are already done')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='allow checkpoints that pickle Python objects (your own training runs only)')
    parser.add_argument('--cache-dir', default=None, help='Hugging Face cache for Hub ids and presets')
    parser.add_argument('--num-heads', type=int, default=None, help='heads, for encoder widths not in the paper')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--no-progress', action='store_true')
    return parser.parse_args(argv)


def main_windows(argv=None):
    """The ``--videos`` mode: windowed features per video, sharded over torch.distributed ranks."""
    from ivnext.api import extract_videos, load_encoder
    args = parse_window_args(argv)
    distributed = int(os.environ.get('WORLD_SIZE', '1')) > 1
    if distributed and not torch.distributed.is_initialized():
        backend = 'nccl' if args.device.startswith('cuda') else 'gloo'
        torch.distributed.init_process_group(backend)
        if args.device.startswith('cuda'):
            args.device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    preprocessing = {k: v for k, v in dict(fps=args.fps, frame_interval=args.frame_interval,
                                           num_frames=args.num_frames).items() if v is not None}
    encoder = load_encoder(args.source, device=args.device, trust_checkpoint=args.trust_checkpoint,
                           cache_dir=args.cache_dir, num_heads=args.num_heads, **preprocessing)
    try:
        summary = extract_videos(encoder, args.videos, args.out_dir, root=args.root, output=args.output,
                                 stride=args.stride, stride_unit=args.stride_unit, window=args.window,
                                 window_unit=args.window_unit, batch_size=args.batch_size, backend=args.backend,
                                 include_tail=args.include_tail, precision=args.precision, dtype=args.dtype,
                                 resume=not args.no_resume, progress=not args.no_progress)
    finally:
        if distributed:
            torch.distributed.destroy_process_group()
    print(f'{len(summary.done)} videos extracted ({summary.windows} windows, {summary.clips_per_second:.2f} '
          f'clips/s), {len(summary.skipped)} already done, {len(summary.bad)} unreadable -> {args.out_dir}')
    for path, error in summary.bad:
        print(f'  bad: {path}: {error}')
    return summary


def main(argv=None):
    """``tools/extract_features.py`` / ``ivnext-extract-features``: windows with ``--videos``, else a dataset."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if '--videos' in argv or any(a.startswith('--videos=') for a in argv):
        return main_windows(argv)
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    checkpoint = None if args.checkpoint.lower() == 'none' else args.checkpoint
    result = extract(cfg, checkpoint, args.mode, args.split, args.batch_size, args.num_workers,
                     args.average_views, args.device, args.trust_checkpoint)
    paths = save(result, args.out, args.mode, args.config)
    print(f"features {tuple(result['features'].shape)}, labels {tuple(result['labels'].shape)} -> {', '.join(paths)}")


if __name__ == '__main__':
    main()
