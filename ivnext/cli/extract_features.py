"""Extract frozen InternVideo-Next features: sliding windows over videos, or a config's dataset.

**Windows over videos** (``--videos``; shares :func:`ivnext.api.extract_videos` with the Python API): one
``.npy`` per video with (windows, D) features, a ``.json`` with each window's start / end seconds, and an
``index.json`` / ``index.csv`` over all videos; done videos are skipped on rerun with the same settings (a changed
setting stops the run; ``--no-resume`` recomputes), unreadable videos are listed in ``bad_videos.txt`` and skipped.
Memory does not grow with video length (``--batch-size`` windows at a time). Several processes split the videos:
``torchrun --nproc-per-node N tools/extract_features.py ...``::

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
``--average-views``. Other encoders work in both modes: a transformers model folder as SOURCE (``--videos``), or
a config whose ``model.backbone`` is a ``TransformersBackbone`` (``avg`` / ``tokens``; num_cls = its prefix tokens).

Examples::

    python tools/extract_features.py configs/probe/attnprobe_ivnext-vit-b-p14_16x224_20e_k400.py \
        checkpoints/ivnext_vit-b_stage2.pth --out work_dirs/k400_val_pooled.npy --mode pooled
    python tools/extract_features.py CONFIG none --out feats.pt --mode avg --split val   # weights from the config

Installed, the same runs as ``ivnext-extract-features``. ``--help`` shows both modes. Exit code 0 on success; 1
with a one-line message on stderr for a missing file, a bad value or an unusable checkpoint (and in the windows mode
when no listed video could be read); 2 for a bad command line.
"""
import argparse
import os
import os.path as osp
import sys
from typing import Dict, Optional, Sequence, Union

import torch

import ivnext  # noqa: F401
from ivnext.api import extract_videos, load_encoder
from ivnext.api.dataset_extraction import FEATURE_MODES, FEATURE_SUFFIXES, extract_dataset, save_features
from ivnext.api.extraction import ExtractionSummary
from ivnext.cli.errors import FAILURE, SUCCESS, run_as_command
from ivnext.utils.checkpoint import named_opt_in
from mmengine.config import Config, DictAction

USAGE = ('\n  %(prog)s SOURCE --videos VIDEOS --out-dir OUT_DIR [window options]\n'
         '  %(prog)s CONFIG CHECKPOINT --out OUT [dataset options]')
OVERVIEW = ('Extract frozen InternVideo-Next features. Two modes, chosen by --videos:\n'
            '  windows over videos  SOURCE --videos VIDEOS --out-dir OUT_DIR: sliding windows over every video of a\n'
            '                       folder or list, one feature file per video (resumable, torchrun-sharded);\n'
            "  a config's dataset   CONFIG CHECKPOINT --out OUT: one feature array per clip of a config's\n"
            '                       train / val / test split, with the labels.')
EXAMPLES = ('examples:\n'
            '  %(prog)s internvideo-next-base --videos /data/videos --out-dir feats --stride 1 --stride-unit '
            'seconds --fps 8\n'
            '  torchrun --nproc-per-node 4 tools/extract_features.py internvideo-next-base --videos list.txt '
            '--out-dir feats\n'
            '  %(prog)s configs/probe/attnprobe_ivnext-vit-b-p14_16x224_20e_k400.py ckpt.pth --out feats.npy '
            '--mode pooled\n'
            '  %(prog)s CONFIG none --out feats.pt --mode avg --split val   # weights from the config')


class _FullHelp(argparse.Action):
    """``-h`` / ``--help`` of either mode: the help of both modes, on stdout."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(format_full_help(parser.prog))
        parser.exit()


def _parser(description: str, prog: Optional[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, usage=USAGE, description=description, add_help=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-h', '--help', action=_FullHelp, help='show the help of both modes and exit')
    return parser


def build_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser of the dataset mode (``CONFIG CHECKPOINT --out OUT``)."""
    parser = _parser("a config's dataset: CONFIG CHECKPOINT --out OUT [dataset options]", prog)
    parser.add_argument('config', help='config whose model.backbone is InternVideoNextViT or TransformersBackbone')
    parser.add_argument('checkpoint', help="encoder / recognizer / training checkpoint, or 'none' for the "
                        "config's model.backbone.pretrained")
    parser.add_argument('--out', required=True, help='output .npy (+ _labels.npy), .npz or .pt')
    parser.add_argument('--mode', choices=FEATURE_MODES, default='pooled', help='which backbone output to save')
    parser.add_argument('--split', choices=('train', 'val', 'test'), default='test',
                        help="dataloader (and pipeline) of the config to read (default 'test')")
    parser.add_argument('--batch-size', type=int, default=None, help='override the dataloader batch size')
    parser.add_argument('--num-workers', type=int, default=None, help='override the dataloader workers')
    parser.add_argument('--average-views', action='store_true', help='average the views (crops / clips) per video')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='allow a checkpoint that pickles Python objects (files of your own origin only)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries, key=value')
    return parser


def build_window_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser of the windows mode (``SOURCE --videos VIDEOS --out-dir OUT_DIR``)."""
    parser = _parser('windows over videos: SOURCE --videos VIDEOS --out-dir OUT_DIR [window options]\n'
                     'A rerun into the same --out-dir skips the videos already done when the settings that shape the\n'
                     'features (weights, preprocessing, output, window, stride, precision, dtype) are unchanged; a\n'
                     'changed setting stops the run: use another --out-dir, or --no-resume to recompute.', prog)
    parser.add_argument('source', help='preset name, encoder folder (ivnext or transformers), checkpoint file, or '
                        'Hugging Face id')
    parser.add_argument('--videos', required=True, help='folder of videos (recursive) or a list file (path per line)')
    parser.add_argument('--out-dir', required=True, help='output folder (features/, index.json, bad_videos.txt)')
    parser.add_argument('--root', default=None, help='folder the video ids are relative to (default: --videos)')
    parser.add_argument('--output', choices=('pooled', 'avg', 'tokens'), default='pooled')
    parser.add_argument('--window', type=float, default=None, help='window length (default: the model frames)')
    parser.add_argument('--window-unit', choices=('frames', 'seconds'), default='frames')
    parser.add_argument('--stride', type=float, default=1.0, help='distance between window starts (in seconds: '
                        'exact, window k starts at k * stride)')
    parser.add_argument('--stride-unit', choices=('frames', 'seconds'), default='seconds')
    parser.add_argument('--fps', type=float, default=None, help='sampling rate inside windows (frames/s)')
    parser.add_argument('--frame-interval', type=int, default=None, help='source frames between sampled frames '
                        'at the average frame rate, when --fps is not given (by time: even on variable-rate videos)')
    parser.add_argument('--num-frames', type=int, default=None, help='frames per window the model sees')
    parser.add_argument('--batch-size', type=int, default=8, help='windows per forward pass')
    parser.add_argument('--backend', default='auto', choices=('auto', 'decord', 'pyav', 'torchcodec'))
    parser.add_argument('--include-tail', action='store_true', help='add a window ending at each video end')
    parser.add_argument('--precision', default='auto', choices=('auto', 'bf16', 'fp16', 'fp32'))
    parser.add_argument('--dtype', default='float32', choices=('float32', 'float16'), help='saved feature dtype')
    parser.add_argument('--no-resume', action='store_true', help='re-extract every video (also after a '
                        'settings change)')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='allow checkpoints that pickle Python objects (your own training runs only)')
    parser.add_argument('--cache-dir', default=None, help='Hugging Face cache for Hub ids and presets')
    parser.add_argument('--num-heads', type=int, default=None, help='heads, for encoder widths not in the paper')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--no-progress', action='store_true')
    return parser


def format_full_help(prog: Optional[str] = None) -> str:
    """The help of both modes: usage, overview, each mode's options and examples."""
    parts = [build_window_parser(prog).format_help(), build_parser(prog).format_help()]
    usage = parts[0].split('\n\n', 1)[0]
    bodies = [part.split('\n\n', 1)[1].rstrip() for part in parts]
    prog = prog or build_parser().prog
    return '\n\n'.join([usage, OVERVIEW, *bodies, EXAMPLES % dict(prog=prog)]) + '\n'


def parse_args(argv=None) -> argparse.Namespace:
    """Parse the dataset mode's command line."""
    return build_parser().parse_args(argv)


def parse_window_args(argv=None) -> argparse.Namespace:
    """Parse the windows mode's command line."""
    return build_window_parser().parse_args(argv)


def is_window_mode(argv: Sequence[str]) -> bool:
    """Whether a command line asks for windows over videos (it has ``--videos``)."""
    return any(a == '--videos' or a.startswith('--videos=') for a in argv)


def run_windows(argv=None) -> ExtractionSummary:
    """The ``--videos`` mode: windowed features per video, sharded over torch.distributed ranks.

    Returns:
        ExtractionSummary: this process's share (done, skipped and bad videos).
    """
    args = parse_window_args(argv)
    distributed = int(os.environ.get('WORLD_SIZE', '1')) > 1
    if distributed and not torch.distributed.is_initialized():
        backend = 'nccl' if args.device.startswith('cuda') else 'gloo'
        torch.distributed.init_process_group(backend)
        if args.device.startswith('cuda'):
            args.device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    try:
        preprocessing = {k: v for k, v in dict(fps=args.fps, frame_interval=args.frame_interval,
                                               num_frames=args.num_frames).items() if v is not None}
        encoder = load_encoder(args.source, device=args.device, trust_checkpoint=args.trust_checkpoint,
                               cache_dir=args.cache_dir, num_heads=args.num_heads, **preprocessing)
        summary = extract_videos(encoder, args.videos, args.out_dir, root=args.root, output=args.output,
                                 stride=args.stride, stride_unit=args.stride_unit, window=args.window,
                                 window_unit=args.window_unit, batch_size=args.batch_size, backend=args.backend,
                                 include_tail=args.include_tail, precision=args.precision, dtype=args.dtype,
                                 resume=not args.no_resume, progress=not args.no_progress, source=args.source)
    finally:
        if distributed:
            torch.distributed.destroy_process_group()
    print(f'{len(summary.done)} videos extracted ({summary.windows} windows, {summary.clips_per_second:.2f} '
          f'clips/s), {len(summary.skipped)} already done, {len(summary.bad)} unreadable -> {args.out_dir}')
    for path, error in summary.bad:
        print(f'  bad: {path}: {error}')
    return summary


def run_dataset(argv=None) -> Dict:
    """The dataset mode: features of a config's split, saved to ``--out``.

    Returns:
        dict: :func:`ivnext.api.extract_dataset`'s result plus ``files``, the written paths.
    """
    args = parse_args(argv)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config {args.config} does not exist')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    checkpoint = None if args.checkpoint.lower() == 'none' else args.checkpoint
    if checkpoint is not None and not osp.exists(checkpoint):
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist (pass 'none' for the config's "
                                'model.backbone.pretrained)')
    if osp.splitext(args.out)[1] not in FEATURE_SUFFIXES:
        raise ValueError(f'--out must end with one of {FEATURE_SUFFIXES}, got {args.out!r}')
    result = extract_dataset(cfg, checkpoint, args.mode, args.split, args.batch_size, args.num_workers,
                             args.average_views, args.device, args.trust_checkpoint)
    paths = save_features(result, args.out, args.mode, args.config)
    print(f"features {tuple(result['features'].shape)}, labels {tuple(result['labels'].shape)} -> {', '.join(paths)}")
    return dict(result, files=paths)


def run(argv=None) -> Union[ExtractionSummary, Dict]:
    """Either mode, chosen by ``--videos``; returns :func:`run_windows`'s or :func:`run_dataset`'s result.

    Errors are raised (for Python callers); :func:`main` turns them into exit codes.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    with named_opt_in('`--trust-checkpoint`'):  # refusals name the flag, not the Python keyword
        return run_windows(argv) if is_window_mode(argv) else run_dataset(argv)


def main(argv=None) -> int:
    """``tools/extract_features.py`` / ``ivnext-extract-features``.

    Returns:
        int: 0 on success; 1 with a one-line message on stderr for a missing file, a bad value or an unusable
        checkpoint, and in the windows mode when videos were listed but none could be read. Argument errors
        exit with 2 (argparse).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    prog = osp.basename(sys.argv[0]) if sys.argv and sys.argv[0] else 'ivnext-extract-features'

    def work() -> int:
        outcome = run(argv)
        if isinstance(outcome, ExtractionSummary) and outcome.bad and not (outcome.done or outcome.skipped):
            print(f'{prog}: error: none of the {len(outcome.bad)} videos could be read (see bad_videos.txt)',
                  file=sys.stderr)
            return FAILURE
        return SUCCESS

    return run_as_command(work, prog)


if __name__ == '__main__':
    sys.exit(main())
