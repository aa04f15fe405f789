"""``load_weights``, the one loader of encoder and model weights: its four policies, prefixes, position tables
resized by the module that owns them, and the trust check of the file it reads."""
import argparse

import pytest
import torch

from ivnext.models.backbones import InternVideoNextViT
from ivnext.models.layers import interpolate_pos_embed, resize_pos_table
from ivnext.utils.checkpoint import WEIGHT_POLICIES, CheckpointMismatchError, UntrustedCheckpointError, load_weights

TINY = dict(arch=dict(embed_dims=32, num_layers=2, num_heads=2, mlp_ratio=2.0), img_size=28, patch_size=14,
            num_frames=4, tubelet_size=1, clip_embed_dims=16, clip_num_heads=2, out_type='tokens')


def encoder(**kwargs) -> InternVideoNextViT:
    torch.manual_seed(kwargs.pop('seed', 0))
    return InternVideoNextViT(**dict(TINY, **kwargs))


def same_weights(a: torch.nn.Module, b: torch.nn.Module, skip: tuple = ()) -> bool:
    sb = b.state_dict()
    return all(torch.equal(v, sb[k]) for k, v in a.state_dict().items() if not k.startswith(skip))


def test_strict_loads_an_exact_checkpoint_under_wrapper_prefixes(tmp_path):
    src = encoder(seed=1)
    torch.save({'state_dict': {f'module.backbone.{k}': v for k, v in src.state_dict().items()}}, tmp_path / 'a.pth')
    dst = encoder()
    report = load_weights(dst, str(tmp_path / 'a.pth'), 'strict')
    assert report == dict(missing=[], unexpected=[], mismatched=[]) and same_weights(src, dst)


def test_each_policy_refuses_what_it_says_and_loads_the_rest():
    src = encoder(seed=1).state_dict()
    state = {k: v for k, v in src.items() if k != 'cls_token'}
    state['cls_head.fc.weight'] = torch.zeros(3, 3)
    # strict: missing and unexpected stop, named with the partial opt-in.
    with pytest.raises(CheckpointMismatchError, match=r'1 missing: cls_token; 1 unexpected: cls_head\.fc\.weight.*'
                                                      r'load what fits with --partial-load'):
        load_weights(encoder(), state, 'strict', partial_opt_in='--partial-load')
    # complete: the extra key is ignored, the missing one stops.
    with pytest.raises(CheckpointMismatchError, match='1 missing: cls_token'):
        load_weights(encoder(), state, 'complete')
    report = load_weights(encoder(), dict(state, cls_token=src['cls_token']), 'complete')
    assert report['unexpected'] == ['cls_head.fc.weight'] and report['missing'] == []
    # lenient and partial: loaded, reported.
    for policy in ('lenient', 'partial'):
        dst = encoder()
        report = load_weights(dst, state, policy)
        assert report['missing'] == ['cls_token'] and report['unexpected'] == ['cls_head.fc.weight']
        assert torch.equal(dst.blocks[1].mlp.fc1.weight, src['blocks.1.mlp.fc1.weight'])
    # A wrong size: lenient stops before loading anything, partial skips the tensor and loads the rest.
    wrong = dict(src, **{'blocks.0.attn.qkv.weight': torch.zeros(5, 32)})
    dst = encoder()
    before = dst.blocks[1].mlp.fc1.weight.clone()
    with pytest.raises(CheckpointMismatchError, match=r'blocks\.0\.attn\.qkv\.weight: checkpoint \(5, 32\)'):
        load_weights(dst, wrong, 'lenient')
    assert torch.equal(dst.blocks[1].mlp.fc1.weight, before)
    report = load_weights(dst, wrong, 'partial')
    assert report['mismatched'][0].startswith('blocks.0.attn.qkv.weight') and report['missing'] == []
    assert torch.equal(dst.blocks[1].mlp.fc1.weight, src['blocks.1.mlp.fc1.weight'])
    with pytest.raises(ValueError, match='policy must be one of'):
        load_weights(encoder(), src, 'loose')
    assert set(WEIGHT_POLICIES) == {'strict', 'complete', 'lenient', 'partial'}


def test_position_tables_follow_the_module_that_owns_them():
    src = encoder(seed=1)
    long = encoder(num_frames=8)
    load_weights(long, src.state_dict(), 'strict')
    n = long.num_cls_tokens
    torch.testing.assert_close(long.pos_embed[:, n:], interpolate_pos_embed(src.pos_embed[:, n:], (4, 2, 2), (8, 2, 2)))
    torch.testing.assert_close(long.pos_embed[:, :n], src.pos_embed[:, :n])
    # Nested: the table of a submodule under its name.
    parts = torch.nn.ModuleDict({'backbone': encoder(num_frames=8)})
    load_weights(parts, {f'backbone.{k}': v for k, v in src.state_dict().items()}, 'strict', prefixes=())
    torch.testing.assert_close(parts['backbone'].pos_embed, long.pos_embed)
    assert resize_pos_table(src.pos_embed, n, (4, 2, 2)) is src.pos_embed
    with pytest.raises(ValueError, match='cannot infer the source grid'):
        resize_pos_table(torch.zeros(1, n + 7, 32), n, (8, 2, 2))


def test_a_file_that_pickles_objects_is_refused_unless_trusted(tmp_path):
    state = dict(encoder(seed=1).state_dict(), note=argparse.Namespace(epoch=3))  # an object, not a tensor
    path = tmp_path / 'pickled.pth'
    torch.save(state, path)
    with pytest.raises(UntrustedCheckpointError, match='--trust-checkpoint'):
        load_weights(encoder(), str(path), 'complete', opt_in='--trust-checkpoint')
    report = load_weights(encoder(), str(path), 'complete', trusted=True)
    assert report['unexpected'] == ['note']
