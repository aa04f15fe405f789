"""The demo's miniature: the generated object/motion clips (with a held-out test split), the cached teacher and
the probe protocol options."""

import numpy as np
import pytest
import torch

import ivnext  # noqa: F401
from ivnext.demo.object_motion_clips import MOTIONS, SHAPES, ObjectMotionConfig, draw_clip, motion_path
from ivnext.models.teachers import CachedTeacher
from mmaction.registry import MODELS


DINO = dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64, patch_size=8,
            image_size=16)


def test_motion_paths_move_the_object_as_labelled():
    rng = np.random.default_rng(0)
    for motion in MOTIONS:
        path, _ = motion_path(motion, 8, rng, 112)
        dx, dy, dr, da = path[-1] - path[0]
        expected = dict(move_left=dx < -20, move_right=dx > 20, move_up=dy < -20, move_down=dy > 20,
                        grow=dr > 10, shrink=dr < -10, rotate_cw=da > 1, rotate_ccw=da < -1)[motion]
        assert expected, (motion, path[0], path[-1])


def test_object_shapes_differ_and_clips_are_deterministic():
    from ivnext.demo import object_motion_clips as om
    pool = om._texture_pool(56)
    a, _ = draw_clip('star', 'grow', 4, 56, np.random.default_rng(3), pool)
    b, _ = draw_clip('star', 'grow', 4, 56, np.random.default_rng(3), pool)
    assert a.shape == (4, 56, 56, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    areas = {s: np.abs(np.concatenate(om.shape_polygons(s))).max() for s in SHAPES}
    assert all(0.5 < v <= 1.3 for v in areas.values())
    with pytest.raises(ValueError, match='unknown shape'):
        ObjectMotionConfig(shapes=('blob',))


def test_unlabelled_pretraining_clips_join_the_pretraining_list_only(tmp_path):
    from ivnext.demo.object_motion_clips import build_object_motion_clips
    config = ObjectMotionConfig(shapes=('star', 'heart'), motions=('move_left', 'grow'), num_clips_per_class=1,
                                num_val_clips_per_class=1, num_pretrain_clips=3, frames=2, size=32)
    manifest = build_object_motion_clips(str(tmp_path), config)
    assert manifest['counts'] == dict(train=4, val=4, pretrain=3)
    pretrain = (tmp_path / 'pretrain.txt').read_text().split()
    train = [line.split()[0] for line in (tmp_path / 'train_appearance.txt').read_text().splitlines()]
    assert pretrain[:4] == train and len(pretrain) == 7
    assert all(p.startswith('videos/pretrain/') and (tmp_path / p).is_file() for p in pretrain[4:])
    labelled = (tmp_path / 'train_motion.txt').read_text() + (tmp_path / 'val_motion.txt').read_text()
    assert 'videos/pretrain/' not in labelled
    with pytest.raises(ValueError, match='num_pretrain_clips'):
        ObjectMotionConfig(num_pretrain_clips=-1)


def test_test_split_is_held_out_and_leaves_the_other_clips_unchanged(tmp_path):
    from ivnext.demo.object_motion_clips import build_object_motion_clips
    kwargs = dict(shapes=('star', 'heart'), motions=('move_left', 'grow'), num_clips_per_class=1,
                  num_val_clips_per_class=1, num_pretrain_clips=2, frames=2, size=32)
    without = build_object_motion_clips(str(tmp_path / 'a'), ObjectMotionConfig(**kwargs))
    with_test = build_object_motion_clips(str(tmp_path / 'b'), ObjectMotionConfig(num_test_clips_per_class=2,
                                                                                    **kwargs))
    assert 'test' not in without['counts'] and with_test['counts']['test'] == 8
    test = (tmp_path / 'b' / 'test_motion.txt').read_text().split('\n')
    others = {p for split in ('train', 'val') for p in (tmp_path / 'b' / f'{split}_motion.txt').read_text().split()}
    assert len([t for t in test if t]) == 8 and not {t.split()[0] for t in test if t} & others
    for rel in without['files']:  # train, val and unlabelled clips are the same files with or without a test split
        if rel.endswith('.mp4'):
            assert (tmp_path / 'a' / rel).read_bytes() == (tmp_path / 'b' / rel).read_bytes(), rel
    with pytest.raises(ValueError, match='num_test_clips_per_class'):
        ObjectMotionConfig(num_test_clips_per_class=-1)


def test_cached_teacher_returns_the_wrapped_outputs_and_reuses_them():
    torch.manual_seed(0)
    cached = CachedTeacher(dict(type='DINOv2Teacher', model_config=DINO, image_size=16, return_layers=[1, 2]),
                           dtype='float32')
    x = torch.randn(3, 3, 2, 16, 16)
    direct = cached.teacher(x)
    first = cached(x)
    assert cached.misses == 3 and cached.hits == 0
    again = cached(torch.cat([x[2:], x[:1], torch.randn(1, 3, 2, 16, 16)]))
    assert cached.misses == 4 and cached.hits == 2
    for a, b in zip(first['hidden_states'], direct['hidden_states']):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(first['importance'], direct['importance'])
    torch.testing.assert_close(again['pooled'][:2], direct['pooled'][[2, 0]])
    assert cached.return_layers == [1, 2] and first['grid'] == direct['grid']


def test_cached_teacher_serves_float16_storage_under_bf16_autocast():
    # bf16 autocast is the paper's training precision; the cache stores float16, which CPU autocast's stack rejects.
    torch.manual_seed(0)
    cached = CachedTeacher(dict(type='DINOv2Teacher', model_config=DINO, image_size=16, return_layers=[1, 2]))
    x = torch.randn(2, 3, 2, 16, 16)
    plain = cached(x)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        served = cached(x)
    assert cached.hits == 2
    for a, b in zip(served['hidden_states'], plain['hidden_states']):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a, b)


def test_probe_protocol_options():
    head = MODELS.build(dict(type='AttentiveProbeHead', num_classes=5, in_channels=128, num_heads=None,
                             num_cls_tokens=4, depth=4, fc_norm=False, out_proj=False))
    assert head.pooler.cross_attn.num_heads == 2 and len(head.blocks) == 3
    assert isinstance(head.fc_norm, torch.nn.Identity) and isinstance(head.pooler.cross_attn.proj, torch.nn.Identity)
    x = torch.randn(2, 4 + 12, 128)
    out = head(x)
    assert out.shape == (2, 5)
    y = x.clone()
    y[:, :4] = 100.0  # CLS tokens are not read
    torch.testing.assert_close(head(y), out)
