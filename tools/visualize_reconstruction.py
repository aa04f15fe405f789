"""Show what a Stage-1 model reconstructs: original / masked / reconstructed frames of one clip as a PNG grid.

The clip is read with the config's ``val_pipeline`` (or ``test_pipeline``; without either, with decord and a plain
resize to the encoder's size and frame count), normalised by the model's data preprocessor, masked by the
model's masker (semantic-aware masks need the teacher) and decoded by its pixel head (diffusion sampling with
``--steps`` steps, or the linear head).

Example:
    python tools/visualize_reconstruction.py configs/demo/tiny_stage1_cpu.py work_dirs/tiny_stage1/iter_4.pth \
        data/clip.mp4 --out grid.png --steps 50 --seed 0
"""
import argparse

import ivnext  # noqa: F401  (compat fixes and registration, before mmengine and mmaction2)
from mmengine.config import Config, DictAction

from ivnext.visualization.reconstruction import visualize


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Visualise Stage-1 masked reconstruction of a video clip')
    parser.add_argument('config', help='Stage-1 config file')
    parser.add_argument('checkpoint', help='Stage-1 checkpoint (a work_dir .pth)')
    parser.add_argument('video', help='video file')
    parser.add_argument('--out', required=True, help='output PNG path')
    parser.add_argument('--steps', type=int, default=None, help='diffusion sampling steps (default: the head\'s)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the mask and of the sampler noise')
    parser.add_argument('--device', default='cpu', help='torch device')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='unpickle the checkpoint in full (only for a file you trust: it can run code in it)')
    parser.add_argument('--partial-load', action='store_true',
                        help='load the checkpoint keys that fit the model and warn about the rest')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries, key=value')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    grid = visualize(cfg, args.checkpoint, args.video, args.out, args.steps, args.seed, args.device,
                     args.trust_checkpoint, args.partial_load)
    print(f'wrote {args.out} ({grid.shape[1]}x{grid.shape[0]})')


if __name__ == '__main__':
    main()
