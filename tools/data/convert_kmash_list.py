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
import os
import os.path as osp
import re
import sys
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

Entry = Tuple[str, str, float, float, float, int]


def parse_line(line: str, number: int = 0) -> Optional[Entry]:
    """Parse one release line into ``(source, path, total_time, start_time, end_time, target)``; None if blank."""
    fields = line.split()
    if not fields:
        return None
    if len(fields) != 6:
        raise ValueError(f'line {number}: expected 6 fields "source path total_time start_time end_time target" '
                         f'separated by single spaces (paths may not contain spaces), got {len(fields)}: {line!r}')
    source, path = fields[0], fields[1]
    try:
        total, start, end = (float(v) for v in fields[2:5])
        target = int(fields[5])
    except ValueError as err:
        raise ValueError(f'line {number}: total_time/start_time/end_time must be numbers and target an integer: '
                         f'{line!r}') from err
    return source, path, total, start, end, target


def format_entry(entry: Entry, label_mode: str = 'target') -> str:
    """One mmaction2 list line for an entry (the window is kept only when all three times are set)."""
    _, path, total, start, end, target = entry
    label = target if label_mode == 'target' else 0
    if total != -1 and start != -1 and end != -1:
        if total <= 0 or end <= start or start < 0:
            raise ValueError(f'{path}: invalid window start={start} end={end} total={total}')
        return f'{path} {label} {start:g} {end:g} {total:g}'
    return f'{path} {label}'


def safe_name(source: str) -> str:
    """Source name usable in a file name."""
    return re.sub(r'[^A-Za-z0-9_.-]+', '_', source)


def convert(lines: Sequence[str], label_mode: str = 'target') -> Dict[str, List[str]]:
    """Group converted lines per source (in order of first appearance).

    Returns:
        dict: source -> list of output lines.
    """
    if label_mode not in ('target', 'zero'):
        raise ValueError(f"label_mode must be 'target' or 'zero', got {label_mode!r}")
    groups: Dict[str, List[str]] = OrderedDict()
    for number, line in enumerate(lines, 1):
        entry = parse_line(line, number)
        if entry is None:
            continue
        groups.setdefault(entry[0], []).append(format_entry(entry, label_mode))
    return groups


def write_lists(groups: Dict[str, List[str]], out_dir: str, name: str = 'kmash',
                no_flip_sources: Sequence[str] = ('ssv2', )) -> Dict[str, str]:
    """Write per-source, flip and no-flip lists; returns {list name: path}."""
    os.makedirs(out_dir, exist_ok=True)
    no_flip = {s.lower() for s in no_flip_sources}
    written = {}
    flip_lines, noflip_lines = [], []
    for source, lines in groups.items():
        path = osp.join(out_dir, f'{name}_{safe_name(source)}.txt')
        with open(path, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        written[source] = path
        (noflip_lines if source.lower() in no_flip else flip_lines).extend(lines)
    for suffix, lines in (('flip', flip_lines), ('noflip', noflip_lines)):
        path = osp.join(out_dir, f'{name}_{suffix}.txt')
        with open(path, 'w') as f:
            f.write(''.join(line + '\n' for line in lines))
        written[suffix] = path
    return written


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
