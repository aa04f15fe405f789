"""Convert the authors' K-Mash pretraining list into mmaction2 video lists, one per source.

The release reads lines ``source path total_time start_time end_time target`` (space separated): ``source`` names
the origin dataset (``ssv2`` clips are not flipped), ``path`` is joined to a data prefix, and when ``total_time``,
``start_time`` and ``end_time`` are all set (not -1) only the window ``[start_time, end_time]`` seconds of a
``total_time``-second video is sampled.

Output (in ``--out-dir``):
    ``<name>_<source>.txt``  one list per source
    ``<name>_flip.txt``      every source whose clips may be flipped
    ``<name>_noflip.txt``    the sources listed in ``--no-flip-sources`` (default: ssv2)
Each line is ``path label`` (mmaction2's ``VideoDataset`` format) or, for windowed entries,
``path label start_time end_time total_time`` (read by ``KMashVideoDataset`` + ``TemporalWindow``).
``configs/_base_/datasets/kmash_pretrain.py`` reads the flip / no-flip lists.

Example:
    python tools/data/convert_kmash_list.py data/kmash/kmash_train.txt --out-dir data/kmash/lists
"""
import argparse
import sys

from ivnext.convert.kmash_list import convert, write_lists


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Convert a K-Mash list to mmaction2 video lists')
    parser.add_argument('src', help='release list: "source path total_time start_time end_time target" lines')
    parser.add_argument('--out-dir', required=True, help='folder for the output lists')
    parser.add_argument('--name', default='kmash', help='prefix of the output file names')
    parser.add_argument('--label', choices=['target', 'zero'], default='target',
                        help='write the target column as label, or 0 for every clip (pretraining ignores labels)')
    parser.add_argument('--no-flip-sources', nargs='*', default=['ssv2'],
                        help='sources whose clips must not be flipped (left/right classes); default: ssv2')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    with open(args.src) as f:
        groups = convert(f.read().splitlines(), args.label)
    if not groups:
        sys.exit(f'{args.src} holds no entries')
    written = write_lists(groups, args.out_dir, args.name, args.no_flip_sources)
    for source, lines in groups.items():
        print(f'{source}: {len(lines)} clips -> {written[source]}')
    print(f'flip list: {written["flip"]}\nno-flip list: {written["noflip"]}')


if __name__ == '__main__':
    main()
