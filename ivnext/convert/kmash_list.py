"""The authors' K-Mash pretraining list as mmaction2 video lists, one per source.

The release reads lines ``source path total_time start_time end_time target`` (space separated): ``source`` names
the origin dataset (``ssv2`` clips are not flipped), ``path`` is joined to a data prefix, and when ``total_time``,
``start_time`` and ``end_time`` are all set (not -1) only the window ``[start_time, end_time]`` seconds of a
``total_time``-second video is sampled. Each output line is ``path label`` (mmaction2's ``VideoDataset`` format)
or, for windowed entries, ``path label start_time end_time total_time`` (read by ``KMashVideoDataset`` +
``TemporalWindow``). The library side of ``tools/data/convert_kmash_list.py``.
"""
import os
import os.path as osp
import re
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
