"""Behaviour of the InternVideo-Next encoder: attention paths, masking, positions, gradients, loading."""
import math

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange

from ivnext.models.backbones import InternVideoNextViT
from ivnext.models.layers import interpolate_pos_embed, sincos_3d
from ivnext.models.maskers import TokenMask
from ivnext.models.utils import gather_tokens, patchify, unpatchify
from ivnext.utils.checkpoint import CheckpointMismatchError, load_encoder_checkpoint

TINY = dict(embed_dims=64, num_layers=3, num_heads=4, mlp_ratio=2.0)


def tiny_encoder(**kwargs) -> InternVideoNextViT:
    cfg = dict(arch=TINY, img_size=56, num_frames=4, clip_embed_dims=32, clip_num_heads=4, out_type='tokens')
    cfg.update(kwargs)
    torch.manual_seed(0)
    model = InternVideoNextViT(**cfg)
    # LayerScale starts at 1e-5, which would hide attention/MLP differences; make residual branches count.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith('gamma'):
                p.fill_(0.5)
    return model.eval()


def clip(b=2, t=4, s=56, seed=1):
    return torch.randn(b, 3, t, s, s, generator=torch.Generator().manual_seed(seed))


def test_sdpa_matches_reference_attention():
    model = tiny_encoder()
    tokens, _ = model.embed(clip())
    x = model.prepend_cls(tokens)
    for block in model.blocks:
        fused = block(x)
        ref = block(x, reference=True)
        torch.testing.assert_close(fused, ref, atol=1e-5, rtol=1e-5)
        x = ref


def test_patch_embed_equals_conv3d_on_release_layout():
    """The matmul patch embedding equals the release's RMSNorm-over-raw-patch then Conv3d."""
    model = tiny_encoder()
    pe = model.patch_embed
    with torch.no_grad():
        pe.norm_before.weight.uniform_(0.5, 1.5)
    x = clip()
    b, c, t, h, w = x.shape
    p = pe.patch_size
    patches = rearrange(x, 'b c t (hh p) (ww q) -> b (t hh ww) (p q c)', p=p, q=p)
    normed = pe.norm_before(patches)
    rebuilt = rearrange(normed, 'b (t hh ww) (p q c) -> b c t (hh p) (ww q)', t=t, hh=h // p, p=p, q=p)
    expected = pe.norm(pe.proj(rebuilt).flatten(2).transpose(1, 2))
    torch.testing.assert_close(pe(x), expected, atol=1e-5, rtol=1e-5)


def test_patchify_round_trip():
    x = clip(t=4)
    patches = patchify(x, 14, 2)
    assert patches.shape == (2, 2 * 4 * 4, 2 * 14 * 14 * 3)
    torch.testing.assert_close(unpatchify(patches, (2, 4, 4), 14, 2), x)


def test_masked_forward_equals_blocks_on_visible_tokens():
    model = tiny_encoder()
    x = clip()
    n = math.prod(model.grid_of(x))
    g = torch.Generator().manual_seed(3)
    mask = torch.stack([torch.randperm(n, generator=g) < int(0.75 * n) for _ in range(2)])
    out, hidden = model.forward_tokens(x, mask, return_layers=(0, -1))
    tokens, _ = model.embed(x)
    visible = torch.stack([tokens[i][~mask[i]] for i in range(2)])  # raster order kept
    seq = torch.cat([model.cls_token.expand(2, -1, -1), visible], 1)
    expected_hidden = []
    for block in model.blocks:
        seq = block(seq, reference=True)
        expected_hidden.append(seq)
    assert out.shape == (2, model.num_cls_tokens + n - int(0.75 * n), 64)
    torch.testing.assert_close(out, seq, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(hidden[0], expected_hidden[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(hidden[1], out)


def test_mask_must_be_balanced_and_shaped():
    model = tiny_encoder()
    x = clip()
    bad = torch.zeros(2, 64, dtype=torch.bool)
    bad[0, :10] = True
    with pytest.raises(ValueError, match='same number'):
        model.forward_tokens(x, bad)
    with pytest.raises(ValueError, match='mask must have shape'):
        model.forward_tokens(x, torch.zeros(2, 10, dtype=torch.bool))
    with pytest.raises(ValueError, match='NCTHW'):
        model(torch.randn(2, 3, 56, 56))


def test_mask_to_index_keeps_raster_order():
    mask = torch.tensor([[True, False, False, True, False], [False, True, False, True, False]])
    assert TokenMask.from_mask(mask).visible_index.tolist() == [[1, 2, 4], [0, 2, 4]]
    assert TokenMask.from_mask(mask).masked_index.tolist() == [[0, 3], [1, 3]]
    t = torch.arange(10.).view(1, 5, 2)
    assert gather_tokens(t, torch.tensor([[4, 0]])).tolist() == [[[8., 9.], [0., 1.]]]


def test_pos_embed_interpolation_identity_and_resize():
    model = tiny_encoder()
    table = model.pos_embed[:, model.num_cls_tokens:]
    assert interpolate_pos_embed(table, model.grid_size, model.grid_size) is table
    resized = model.patch_pos_embed((8, 4, 4))
    assert resized.shape == (1, 8 * 16, 64)
    # Sin-cos layout: the temporal quarter is constant over space, the spatial part constant over time.
    grid = sincos_3d(64, (3, 2, 2)).view(3, 4, 64)
    assert torch.allclose(grid[:, :1, :16], grid[:, :, :16])
    assert torch.allclose(grid[:1, :, 16:], grid[:, :, 16:])
    # Longer clips and other resolutions run through interpolation.
    assert model(clip(t=8, s=84)).shape == (2, 4 + 8 * 6 * 6, 64)


def test_output_types_and_indices():
    x = clip()
    fm = tiny_encoder(out_type='featmap')(x)
    assert fm.shape == (2, 64, 4, 4, 4)
    avg = tiny_encoder(out_type='avg')(x)
    torch.testing.assert_close(avg, fm.flatten(2).mean(-1))
    pooled = tiny_encoder(out_type='pooled')(x)
    assert pooled.shape == (2, 32)
    multi = tiny_encoder(out_type='tokens', out_indices=(0, 2))(x)
    assert isinstance(multi, tuple) and len(multi) == 2
    torch.testing.assert_close(multi[1], tiny_encoder()(x))
    with pytest.raises(ValueError, match='full clip'):
        tiny_encoder(out_type='featmap')(x, torch.zeros(2, 64, dtype=torch.bool))
    with pytest.raises(KeyError, match='unknown arch'):
        InternVideoNextViT(arch='huge')


def test_gradients_reach_trainable_and_skip_frozen():
    model = tiny_encoder(frozen_stages=1, drop_path_rate=0.1).train()
    x = clip()
    tokens, _ = model.forward_tokens(x)
    (tokens.pow(2).mean() + model.pool(tokens).pow(2).mean()).backward()
    frozen_prefixes = ('patch_embed.', 'cls_token', 'pos_embed', 'blocks.0.')
    for name, p in model.named_parameters():
        if name.startswith(frozen_prefixes):
            assert not p.requires_grad and p.grad is None, name
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert not model.blocks[0].training and model.blocks[1].training


def test_position_table_is_learnable_and_starts_from_sincos():
    model = tiny_encoder().train()
    params = dict(model.named_parameters())
    assert 'pos_embed' in params and params['pos_embed'].requires_grad
    torch.testing.assert_close(model.pos_embed[0, 4:], sincos_3d(model.embed_dims, model.grid_size))
    assert model.pos_embed[0, :4].abs().sum() == 0
    tokens, _ = model.forward_tokens(clip())
    tokens.pow(2).mean().backward()
    assert model.pos_embed.grad is not None and model.pos_embed.grad[0, 4:].abs().sum() > 0
    assert model.pos_embed.grad[0, :4].abs().sum() > 0  # CLS rows are trained too


def test_activation_checkpointing_same_output_and_grads():
    x = clip()
    plain = tiny_encoder().train()
    cp = tiny_encoder(with_cp=True).train()
    out_plain = plain.forward_tokens(x)[0]
    out_cp = cp.forward_tokens(x)[0]
    torch.testing.assert_close(out_plain, out_cp)
    out_plain.sum().backward()
    out_cp.sum().backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), cp.named_parameters()):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_checkpoint_round_trip_with_prefixes_and_key_reports(tmp_path, caplog):
    src = tiny_encoder()
    x = clip()
    expected = src(x)
    wrapped = {'module': {f'module.backbone.{k}': v for k, v in src.state_dict().items()}}
    wrapped['module']['module.backbone.extra_head.weight'] = torch.zeros(3)
    path = tmp_path / 'wrapped.pth'
    torch.save(wrapped, path)
    dst = tiny_encoder()
    with torch.no_grad():
        for p in dst.parameters():
            p.zero_()
    missing, unexpected = load_encoder_checkpoint(dst, str(path))
    assert missing == [] and unexpected == ['module.backbone.extra_head.weight']
    torch.testing.assert_close(dst(x), expected)
    with pytest.raises(CheckpointMismatchError, match='extra_head'):
        load_encoder_checkpoint(tiny_encoder(), str(path), strict=True)
    partial = {k: v for k, v in src.state_dict().items() if not k.startswith('clip_projector.')}
    torch.save(partial, tmp_path / 'partial.pth')
    missing, _ = load_encoder_checkpoint(tiny_encoder(), str(tmp_path / 'partial.pth'))
    assert 'clip_projector.cross_attn.q.weight' in missing
    with pytest.raises(FileNotFoundError, match='does not exist'):
        load_encoder_checkpoint(tiny_encoder(), str(tmp_path / 'nope.pth'))


def test_checkpoint_from_other_frame_count_interpolates(tmp_path):
    src = tiny_encoder(num_frames=4)
    torch.save(src.state_dict(), tmp_path / 'f4.pth')
    long = tiny_encoder(num_frames=8, pretrained=str(tmp_path / 'f4.pth'))
    long.init_weights()
    torch.testing.assert_close(long.blocks[0].attn.qkv.weight, src.blocks[0].attn.qkv.weight)
    expected = interpolate_pos_embed(src.pos_embed[:, 4:], (4, 4, 4), (8, 4, 4))
    torch.testing.assert_close(long.pos_embed[:, 4:], expected)


def test_safetensors_loading(tmp_path):
    from safetensors.torch import save_file
    src = tiny_encoder()
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(tmp_path / 'model.safetensors'))
    dst = tiny_encoder(out_type='pooled')
    load_encoder_checkpoint(dst, str(tmp_path), strict=True)
    x = clip()
    torch.testing.assert_close(dst(x), src.pool(src(x)))
    assert F.cosine_similarity(dst(x), src.pool(src(x))).min() > 0.9999


def test_release_converter_round_trip(tmp_path):
    """Released-layout weights -> converter -> mmaction2-style checkpoint -> encoder gives the same features."""
    from ivnext.convert.release import convert_release
    torch.manual_seed(0)
    src = InternVideoNextViT(arch='base', num_frames=2, img_size=56).eval()
    released = {k: v for k, v in src.state_dict().items()}
    released['pos_embed'] = released['pos_embed'].clone()
    torch.save({'module': released}, tmp_path / 'release.bin')
    report = convert_release(str(tmp_path / 'release.bin'), str(tmp_path / 'out.pth'), arch='base', num_frames=2,
                             img_size=56, strict=True)
    assert report == dict(missing=[], unexpected=[])
    ckpt = torch.load(tmp_path / 'out.pth', weights_only=True)
    assert all(k.startswith('backbone.') for k in ckpt['state_dict'])
    dst = InternVideoNextViT(arch='base', num_frames=2, img_size=56).eval()
    load_encoder_checkpoint(dst, str(tmp_path / 'out.pth'), strict=True)
    x = torch.randn(1, 3, 2, 56, 56)
    with torch.no_grad():
        torch.testing.assert_close(dst(x), src(x))
