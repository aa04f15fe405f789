"""Video annotation lists (``path label`` lines, mmaction2's format) read with errors that point at file:line."""
import os.path as osp
from typing import List, Optional, Sequence, Tuple

from mmaction.datasets import VideoDataset
from mmaction.registry import DATASETS

from ivnext.utils.lists import read_list_lines, split_fields


def parse_label(text: str, where: str, num_classes: Optional[int]) -> int:
    """An integer class index from a list field; ``where`` (``file:line``) names the line in errors."""
    try:
        label = int(text)
    except ValueError:
        raise ValueError(f'{where}: label {text!r} is not an integer; each line must be "path label" with an integer '
                         'class index (paths with spaces need another `delimiter`)') from None
    if label < 0 or (num_classes is not None and label >= num_classes):
        bound = f'[0, {num_classes})' if num_classes is not None else '>= 0'
        raise ValueError(f'{where}: label {label} is outside {bound}; fix the list, or set `num_classes` of the '
                         'model head and dataset to the number of classes of this list')
    return label


def read_video_list(ann_file: str, delimiter: str = ' ', video_prefix: Optional[str] = None,
                    num_classes: Optional[int] = None, label_required: bool = True,
                    field_counts: Sequence[int] = (2,),
                    line_format: str = '"path label"') -> List[Tuple[str, str, int, List[str]]]:
    """Split the lines of a video list, checking field counts and labels.

    Blank lines are skipped, a UTF-8 byte-order mark is dropped, and with the default space delimiter a line
    holding tabs is split at its tabs (``path<TAB>label``, paths with spaces included).

    Args:
        ann_file: The list file.
        delimiter: Field separator.
        video_prefix: Folder prepended to each path.
        num_classes: Labels must be in ``[0, num_classes)`` (None: only ``>= 0``).
        label_required: A line with the path alone is an error (recognition) rather than label ``-1``
            (label-free pretraining lists).
        field_counts: Accepted numbers of fields besides path-only lines (e.g. ``(2, 5)`` for K-Mash windows).
        line_format: The accepted line shapes, for error messages.

    Returns:
        list: per line ``(where, path, label, rest)``: ``where`` is ``file:line``, ``path`` joined to
        ``video_prefix``, ``label`` an int (``-1`` for a path-only line), ``rest`` the further fields.

    Raises:
        ValueError: Naming ``file:line``, the line and the fix.
    """
    rows = []
    for number, line in read_list_lines(ann_file):
        fields = split_fields(line, delimiter)
        if not fields:
            continue
        where = f'{ann_file}:{number}'
        if len(fields) == 1:
            if label_required:
                raise ValueError(f'{where}: {line.strip()!r} has a path but no label; recognition lists need '
                                 '"path label" on every line')
            label = -1
        elif len(fields) in field_counts:
            label = parse_label(fields[1], where, num_classes)
        else:
            raise ValueError(f'{where}: expected {line_format} separated by {delimiter!r}, got {len(fields)} fields: '
                             f'{line.strip()!r}')
        path = osp.join(video_prefix, fields[0]) if video_prefix is not None else fields[0]
        rows.append((where, path, label, fields[2:]))
    return rows


@DATASETS.register_module()
class CheckedVideoDataset(VideoDataset):
    """mmaction2's ``VideoDataset`` whose list errors name ``file:line`` and whose labels are range-checked.

    Every line needs ``path label`` with ``0 <= label < num_classes`` (checked when the dataset is built, not in the
    loss); a one-field line is an error instead of label ``-1``. Multi-class lists are read by ``VideoDataset``.

    Args:
        num_classes: Number of classes (the model head's); labels are checked against it when given.
        **kwargs: See mmaction2's ``VideoDataset``.
    """

    def load_data_list(self) -> List[dict]:
        if self.multi_class:
            return super().load_data_list()
        rows = read_video_list(self.ann_file, self.delimiter, self.data_prefix['video'], self.num_classes)
        return [dict(filename=path, label=label) for _, path, label, _ in rows]
