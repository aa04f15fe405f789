"""K-Mash list conversion, the windowed video list dataset and the TemporalWindow transform."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ivnext  # noqa: F401
import ivnext.convert.kmash_list as ck
import ivnext.datasets  # noqa: F401
from mmaction.registry import DATASETS, TRANSFORMS

REPO = Path(__file__).resolve().parents[1]


def release_list(names):
    """The authors' format: source path total_time start_time end_time target."""
    return [
        f'k400 {names[0]} -1 -1 -1 3',
        f'ssv2 {names[1]} -1 -1 -1 17',
        '',
        f'anet {names[2]} 2.0 0.5 1.5 0',
        f'k400 {names[3]} -1 -1 -1 5',
    ]


def test_convert_groups_per_source_and_keeps_windows(tmp_path):
    groups = ck.convert(release_list(['a.mp4', 'b.mp4', 'c.mp4', 'd.mp4']))
    assert list(groups) == ['k400', 'ssv2', 'anet']
    assert groups['k400'] == ['a.mp4 3', 'd.mp4 5']
    assert groups['ssv2'] == ['b.mp4 17']
    assert groups['anet'] == ['c.mp4 0 0.5 1.5 2']
    zero = ck.convert(release_list(['a.mp4', 'b.mp4', 'c.mp4', 'd.mp4']), label_mode='zero')
    assert zero['k400'] == ['a.mp4 0', 'd.mp4 0'] and zero['anet'] == ['c.mp4 0 0.5 1.5 2']
    written = ck.write_lists(groups, str(tmp_path), 'kmash')
    assert Path(written['flip']).read_text().splitlines() == ['a.mp4 3', 'd.mp4 5', 'c.mp4 0 0.5 1.5 2']
    assert Path(written['noflip']).read_text().splitlines() == ['b.mp4 17']
    assert Path(written['anet']).name == 'kmash_anet.txt'


@pytest.mark.parametrize('line, match', [('k400 a.mp4 -1 -1 3', '6 fields'), ('k400 a b.mp4 -1 -1 -1 3', '6 fields'),
                                         ('k400 a.mp4 x -1 -1 3', 'numbers'),
                                         ('anet a.mp4 2.0 1.5 0.5 0', 'invalid window')])
def test_bad_lines_are_reported(line, match):
    with pytest.raises(ValueError, match=match):
        ck.convert([line])


def test_temporal_window_follows_the_release_semantics():
    window = TRANSFORMS.build(dict(type='TemporalWindow'))
    out = window(dict(total_frames=300, start_index=0, time_window=(2.0, 6.0, 10.0)))
    assert (out['start_index'], out['total_frames']) == (60, 120)  # 30 fps
    whole = window(dict(total_frames=300, start_index=0, time_window=(-1.0, -1.0, -1.0)))
    assert (whole['start_index'], whole['total_frames']) == (0, 300)
    late = window(dict(total_frames=100, start_index=0, time_window=(9.9, 12.0, 10.0)))
    assert late['start_index'] + late['total_frames'] <= 100 and late['total_frames'] >= 1
    with pytest.raises(ValueError, match='end'):
        window(dict(total_frames=100, start_index=0, time_window=(3.0, 2.0, 10.0)))


def test_cli_lists_feed_the_dataset_and_windows_restrict_sampling(tmp_path, video_clips):
    names = [f.name for f in video_clips.files[:4]]
    src = tmp_path / 'kmash_train.txt'
    src.write_text('\n'.join(release_list(names)) + '\n')
    out_dir = tmp_path / 'lists'
    subprocess.run([sys.executable, str(REPO / 'tools' / 'data' / 'convert_kmash_list.py'), str(src), '--out-dir',
                    str(out_dir)], check=True, capture_output=True, text=True)
    # 20 frames at 10 fps = 2 s: the anet window [0.5, 1.5] s is frames [5, 15).
    pipeline = [dict(type='DecordInit'), dict(type='TemporalWindow'), dict(type='UniformSample', clip_len=4)]
    dataset = DATASETS.build(dict(type='KMashVideoDataset', ann_file=str(out_dir / 'kmash_flip.txt'),
                                  data_prefix=dict(video=str(video_clips.video_dir)), pipeline=pipeline))
    assert len(dataset) == 3
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    assert [Path(d['filename']).name for d in infos] == [names[0], names[3], names[2]]
    assert infos[2]['time_window'] == (0.5, 1.5, 2.0) and 'time_window' not in infos[0]
    for _ in range(10):
        inds = dataset[2]['frame_inds']
        assert inds.min() >= 5 and inds.max() < 15
    full = np.concatenate([dataset[0]['frame_inds'] for _ in range(10)])
    assert full.min() < 5 and full.max() >= 15
    noflip = DATASETS.build(dict(type='KMashVideoDataset', ann_file=str(out_dir / 'kmash_noflip.txt'),
                                 data_prefix=dict(video=str(video_clips.video_dir)), pipeline=pipeline))
    assert [noflip.get_data_info(i)['label'] for i in range(len(noflip))] == [17]


def test_dataset_rejects_malformed_lines(tmp_path):
    ann = tmp_path / 'bad.txt'
    ann.write_text('a.mp4 1 0.5\n')
    with pytest.raises(ValueError, match='path label'):
        DATASETS.build(dict(type='KMashVideoDataset', ann_file=str(ann), pipeline=[]))
