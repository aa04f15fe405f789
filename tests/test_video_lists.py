"""List readers name file:line and the fix; labels are range-checked when the dataset is built."""
import pytest
from mmaction.registry import DATASETS


def build(kind, ann, **kwargs):
    return DATASETS.build(dict(type=kind, ann_file=str(ann), pipeline=[], **kwargs))


@pytest.mark.parametrize('text, line, message', [
    ('a.mp4 1\nb.mp4 one\n', 2, "label 'one' is not an integer"),
    ('a.mp4 1\n\nb.mp4\n', 3, "'b.mp4' has a path but no label"),
    ('a.mp4 3\n', 1, r'label 3 is outside \[0, 3\)'),
    ('a.mp4 -1\n', 1, 'label -1 is outside'),
    ('a.mp4 1 2\n', 1, r'expected "path label" .* got 3 fields'),
])
def test_recognition_list_errors_name_the_line(tmp_path, text, line, message):
    ann = tmp_path / 'list.txt'
    ann.write_text(text)
    with pytest.raises(ValueError, match=f'{ann}:{line}: {message}'):
        build('CheckedVideoDataset', ann, num_classes=3)


def test_recognition_list_reads_like_mmaction(tmp_path):
    ann = tmp_path / 'list.txt'
    ann.write_text('a.mp4 0\nsub/b.mp4 2\n')
    dataset = build('CheckedVideoDataset', ann, num_classes=3, data_prefix=dict(video='/v'))
    reference = build('VideoDataset', ann, data_prefix=dict(video='/v'))
    assert [dataset.get_data_info(i) for i in range(2)] == [reference.get_data_info(i) for i in range(2)]


def test_pretraining_list_accepts_path_only_lines_and_names_bad_ones(tmp_path):
    ann = tmp_path / 'kmash.txt'
    ann.write_text('a.mp4\nb.mp4 4\nc.mp4 4 1.0 3.0 10.0\n')
    dataset = build('KMashVideoDataset', ann)
    assert [dataset.get_data_info(i)['label'] for i in range(3)] == [-1, 4, 4]
    assert dataset.get_data_info(2)['time_window'] == (1.0, 3.0, 10.0)
    ann.write_text('a.mp4\nb.mp4 x\n')
    with pytest.raises(ValueError, match=f"{ann}:2: label 'x' is not an integer"):
        build('KMashVideoDataset', ann)
    ann.write_text('a.mp4 1 one 3 10\n')
    with pytest.raises(ValueError, match=f'{ann}:1: start, end and total must be numbers'):
        build('KMashVideoDataset', ann)
