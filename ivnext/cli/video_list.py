"""Turn a folder of videos into an annotation list, checking every file on the way.

Every video under ``ROOT`` is opened and its first and last frames decoded (in parallel processes); the
readable ones go to the list, the others to a report of bad files. Lines are relative to ``ROOT``, so use
``data_prefix=dict(video=ROOT)`` in the dataset config.

* unlabelled (pretraining): one ``relative/path.mp4`` per line;
* ``--labels-from-folders`` (probing / fine-tuning): ``class_name/clip.mp4 LABEL`` with LABEL the index of the
  first sub-folder name in sorted order; the names are written to ``<list>.classes.txt``, one per line in
  label order.

Also written: ``<list>.files.csv`` (path, frames, fps, duration, width, height, codec, backend, error) and
``<list>.bad.txt`` (path <TAB> error). Exit code 0 when the list holds a usable video, 1 (one line on stderr)
when the folder is missing or no video in it is usable, 2 for a bad command line. Examples::

    python tools/data/build_video_list.py /data/my_videos --out data/my_videos.txt
    python tools/data/build_video_list.py /data/my_labelled --out data/train.txt --labels-from-folders \\
        --workers 8 --min-frames 16
"""
import argparse
import os.path as osp
import sys
from typing import Dict

from ivnext.cli.errors import FAILURE, SUCCESS, run_as_command
from ivnext.datasets.list_builder import build_list


def parse_args(argv=None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('root', help='folder of videos (searched recursively)')
    parser.add_argument('--out', required=True, help='annotation list to write (e.g. data/train.txt)')
    parser.add_argument('--labels-from-folders', action='store_true',
                        help='label each video by its first sub-folder (class) name')
    parser.add_argument('--workers', type=int, default=None, help='parallel checking processes (default: cores)')
    parser.add_argument('--backend', default='auto', choices=('auto', 'decord', 'pyav', 'torchcodec'))
    parser.add_argument('--min-frames', type=int, default=1, help='report videos with fewer frames as bad')
    parser.add_argument('--extensions', nargs='+', default=None, help='video file endings (default: common ones)')
    return parser.parse_args(argv)


def run(argv=None) -> Dict:
    """Parse the command line, build the list and print a summary.

    Returns:
        dict: :func:`ivnext.datasets.list_builder.build_list`'s result.
    """
    args = parse_args(sys.argv[1:] if argv is None else argv)
    result = build_list(args.root, args.out, args.labels_from_folders, args.workers, args.backend, args.min_frames,
                        args.extensions)
    print(f"{len(result['good'])} usable videos -> {args.out}; {len(result['bad'])} bad -> {result['files'][2]}"
          + (f"; {len(result['classes'])} classes" if result['classes'] else ''))
    for path, error in result['bad'][:20]:
        print(f'  bad: {path}: {error}')
    return result


def main(argv=None) -> int:
    """``tools/data/build_video_list.py`` / ``ivnext-video-list``.

    Returns:
        int: 0 when the list holds at least one usable video; 1 with a one-line message on stderr when the folder
        is missing or holds no usable video; 2 for a bad command line (argparse).
    """
    prog = osp.basename(sys.argv[0]) if sys.argv and sys.argv[0] else 'ivnext-video-list'

    def work() -> int:
        result = run(argv)
        if not result['good']:
            print(f"{prog}: error: none of the {len(result['bad'])} videos is usable (see {result['files'][2]})",
                  file=sys.stderr)
            return FAILURE
        return SUCCESS

    return run_as_command(work, prog)


if __name__ == '__main__':
    sys.exit(main())
