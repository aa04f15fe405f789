"""Reading text lists (video lists, path lists): UTF-8 with or without a byte-order mark, errors at file:line."""
import os.path as osp
from typing import List, Tuple

BOM = '\ufeff'


def read_list_lines(path: str) -> List[Tuple[int, str]]:
    """The lines of a UTF-8 text list as ``(line number, text)``, without a leading byte-order mark.

    Lines are split at ``\\n`` only (``\\r\\n`` endings lose their ``\\r``), so a path may hold any other
    character.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not a regular file, or a line is not UTF-8 (names ``file:line`` and the byte).
    """
    if '://' in str(path):  # a remote list (MMEngine file backends)
        from mmengine.fileio import get
        data = get(path)
    elif not osp.exists(path):
        raise FileNotFoundError(f'list file {path} does not exist')
    elif not osp.isfile(path):
        raise ValueError(f'list file {path} is not a regular file (a folder, FIFO or device); pass a text file')
    else:
        with open(path, 'rb') as f:
            data = f.read()
    lines = []
    for number, raw in enumerate(data.split(b'\n'), 1):
        try:
            text = raw.decode('utf-8')
        except UnicodeDecodeError as err:
            raise ValueError(f'{path}:{number}: byte {raw[err.start:err.start + 1]!r} at column {err.start + 1} is '
                             'not UTF-8; save the list as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)') from None
        if number == 1 and text.startswith(BOM):
            text = text[len(BOM):]
        lines.append((number, text.rstrip('\r')))
    if lines and lines[-1][1] == '':
        lines.pop()
    return lines


def split_fields(line: str, delimiter: str = ' ') -> List[str]:
    """Fields of a list line: split at tabs when the line has any and the delimiter is a space, else at
    ``delimiter`` (runs of spaces count as one)."""
    line = line.strip()
    if not line:
        return []
    if delimiter == ' ' and '\t' in line:
        return [field.strip() for field in line.split('\t') if field.strip()]
    if delimiter == ' ':
        return line.split()
    return line.split(delimiter)
