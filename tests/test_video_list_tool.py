"""tools/data/build_video_list.py: a folder of videos to an annotation list, bad files reported."""
import csv
import importlib
from pathlib import Path

import pytest
from helpers_video import render_clip, write_mp4

from ivnext.datasets.list_builder import build_list


@pytest.fixture(scope='module')
def tool():
    """The module behind the script (``tools/...`` only calls its ``main``)."""
    return importlib.import_module('ivnext.cli.video_list')


@pytest.fixture(scope='module')
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('own_videos')
    for label, name in ((0, 'cooking'), (1, 'dancing')):
        for i in range(2):
            write_mp4(root / name / f'{name}_{i}.mp4', render_clip(label, 12 + 4 * i, 64, seed=i), fps=10)
    write_mp4(root / 'dancing' / 'tiny.mp4', render_clip(1, 3, 64), fps=10)
    (root / 'cooking' / 'corrupt.mp4').write_bytes(b'\x00\x01' * 300)
    (root / 'cooking' / 'notes.txt').write_text('not a video')
    return root


def test_labelled_list_from_class_folders(tool, folder, tmp_path):
    out = tmp_path / 'lists' / 'train.txt'
    result = tool.run([str(folder), '--out', str(out), '--labels-from-folders', '--workers', '2',
                        '--min-frames', '8'])
    assert out.read_text().splitlines() == ['cooking/cooking_0.mp4 0', 'cooking/cooking_1.mp4 0',
                                            'dancing/dancing_0.mp4 1', 'dancing/dancing_1.mp4 1']
    assert (tmp_path / 'lists' / 'train.classes.txt').read_text().splitlines() == ['cooking', 'dancing']
    bad = dict(line.split('\t') for line in (tmp_path / 'lists' / 'train.bad.txt').read_text().splitlines())
    assert set(bad) == {'cooking/corrupt.mp4', 'dancing/tiny.mp4'}
    assert 'corrupt.mp4' in bad['cooking/corrupt.mp4'] and '--min-frames 8' in bad['dancing/tiny.mp4']
    rows = {r['path']: r for r in csv.DictReader(open(tmp_path / 'lists' / 'train.files.csv'))}
    assert rows['cooking/cooking_1.mp4']['frames'] == '16' and float(rows['cooking/cooking_1.mp4']['fps']) == 10
    assert rows['cooking/cooking_0.mp4']['codec'] == 'h264' and rows['cooking/cooking_0.mp4']['width'] == '64'
    assert len(result['good']) == 4 and result['classes'] == ['cooking', 'dancing']


def test_path_only_list_for_pretraining(folder, tmp_path):
    result = build_list(str(folder), str(tmp_path / 'pretrain.txt'), workers=1)
    lines = (tmp_path / 'pretrain.txt').read_text().splitlines()
    assert 'dancing/tiny.mp4' in lines and 'cooking/corrupt.mp4' not in lines
    assert all(len(line.split()) == 1 for line in lines) and len(lines) == 5
    assert [p for p, _ in result['bad']] == ['cooking/corrupt.mp4']
    with pytest.raises(ValueError, match='class sub-folder'):
        (folder / 'loose.mp4').write_bytes((folder / 'dancing' / 'tiny.mp4').read_bytes())
        try:
            build_list(str(folder), str(tmp_path / 'x.txt'), labels_from_folders=True, workers=1)
        finally:
            (folder / 'loose.mp4').unlink()
    with pytest.raises(FileNotFoundError, match='does not exist'):
        build_list(str(tmp_path / 'nowhere'), str(tmp_path / 'y.txt'))
