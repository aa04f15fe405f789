"""Position tables kept at fewer frames than the clip (``pos_embed_frames``), interpolated in every forward.

The release's Stage 2 keeps 16-frame ``pos_embed`` / ``diff_pos_embed`` tables and interpolates them linearly in
time (``align_corners=False``) to the 32-frame clips in each forward. These tests check ivnext's option against a
hand-computed linear interpolation, that gradients reach the stored rows, and that Stage-1 tables load as they are.
"""
import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

import ivnext  # noqa: F401
from ivnext.models.maskers.token_mask import TokenMask
from ivnext.models.backbones.internvideo_next_vit import InternVideoNextViT
from ivnext.models.necks.transformer_predictor import TransformerPredictor
from ivnext.utils.checkpoint import load_weights
from mmaction.registry import MODELS

REPO = Path(__file__).resolve().parents[1]
STAGE1_CFG = REPO / 'configs' / 'demo' / 'tiny_stage1_cpu.py'
STAGE2_CFG = REPO / 'configs' / 'demo' / 'tiny_stage2_cpu.py'
TINY = dict(embed_dims=64, num_layers=2, num_heads=4, mlp_ratio=2.0)


def linear_in_time(table: torch.Tensor, src_frames: int, dst_frames: int) -> torch.Tensor:
    """Reference: (1, T_src*S, C) patch rows -> (1, T_dst*S, C), linear in time, align_corners=False, by hand."""
    rows = table[0].reshape(src_frames, -1, table.shape[-1])
    pos = ((torch.arange(dst_frames, dtype=torch.float64) + 0.5) * src_frames / dst_frames - 0.5).clamp(min=0)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=src_frames - 1)
    frac = (pos - lo).to(table.dtype)[:, None, None]
    return ((1 - frac) * rows[lo] + frac * rows[hi]).reshape(1, -1, table.shape[-1])


def encoder(num_frames: int = 4, pos_embed_frames=None, seed: int = 0) -> InternVideoNextViT:
    torch.manual_seed(seed)
    model = InternVideoNextViT(arch=TINY, img_size=28, num_frames=num_frames, pos_embed_frames=pos_embed_frames,
                               out_type='tokens', use_flash_attn=False)
    with torch.no_grad():  # a table that is not sin-cos, so no row is a smooth function of its neighbours
        model.pos_embed.normal_()
    return model


def test_reference_weights_for_two_to_four_frames():
    table = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]])  # (1, 2 frames x 1 position, 3 channels)
    out = linear_in_time(table, 2, 4)[0, :, 0]
    assert torch.allclose(out, torch.tensor([0.0, 0.25, 0.75, 1.0], dtype=out.dtype))


def test_encoder_table_stays_at_its_frames_and_is_interpolated_per_forward():
    model = encoder(num_frames=4, pos_embed_frames=2)
    assert model.grid_size == (4, 2, 2) and model.pos_grid == (2, 2, 2)
    assert model.pos_embed.shape == (1, 4 + 2 * 4, 64)
    expected = linear_in_time(model.pos_embed[:, 4:].detach(), 2, 4)
    assert torch.allclose(model.patch_pos_embed((4, 2, 2)).detach(), expected, rtol=0, atol=1e-6)


def test_encoder_output_equals_a_model_holding_the_interpolated_table_and_gradients_reach_stored_rows():
    clip = torch.randn(2, 3, 4, 28, 28, generator=torch.Generator().manual_seed(1))
    ours = encoder(num_frames=4, pos_embed_frames=2)
    full = encoder(num_frames=4, pos_embed_frames=None)
    state = ours.state_dict()
    patch = linear_in_time(state['pos_embed'][:, 4:], 2, 4)
    state['pos_embed'] = torch.cat([state['pos_embed'][:, :4], patch], dim=1)
    full.load_state_dict(state)
    weights = torch.randn(2, 4 + 16, 64, generator=torch.Generator().manual_seed(2))
    out_ours = ours(clip)
    out_full = full(clip)
    assert torch.allclose(out_ours, out_full, rtol=1e-5, atol=1e-6)
    (out_ours * weights).sum().backward()
    (out_full * weights).sum().backward()
    # Chain rule through the interpolation: the stored rows' gradient is the expanded rows' gradient mapped back.
    table = torch.zeros(1, 8, 64, requires_grad=True)
    linear_in_time(table, 2, 4).backward(full.pos_embed.grad[:, 4:])
    grad = ours.pos_embed.grad
    assert grad.shape == (1, 4 + 8, 64)
    assert torch.allclose(grad[:, 4:], table.grad, rtol=1e-5, atol=1e-6)
    assert torch.allclose(grad[:, :4], full.pos_embed.grad[:, :4], rtol=1e-5, atol=1e-6)
    assert (grad[0, 4:].abs().sum(-1) > 0).all(), 'every stored patch row gets a gradient'


def test_a_table_at_its_frames_loads_as_it_is_and_the_default_resamples_it_at_load():
    source = encoder(num_frames=2, seed=3)
    kept = encoder(num_frames=4, pos_embed_frames=2)
    load_weights(kept, source.state_dict(), 'strict')
    assert torch.equal(kept.pos_embed, source.pos_embed)
    resized = encoder(num_frames=4)
    load_weights(resized, source.state_dict(), 'strict')
    assert resized.pos_embed.shape == (1, 4 + 16, 64)
    expected = linear_in_time(source.pos_embed[:, 4:].detach(), 2, 4)
    assert torch.allclose(resized.pos_embed[:, 4:].detach(), expected, rtol=0, atol=1e-6)


def test_pos_embed_frames_must_suit_the_tubelet():
    with pytest.raises(ValueError, match='pos_embed_frames=3 must be a positive multiple of tubelet_size 2'):
        InternVideoNextViT(arch=TINY, img_size=28, num_frames=4, tubelet_size=2, pos_embed_frames=3)
    with pytest.raises(ValueError, match='pos_embed_frames'):
        TransformerPredictor(in_dims=64, embed_dims=32, depth=1, num_heads=4, grid_size=(4, 2, 2),
                             pos_embed_frames=0)


def test_predictor_interpolates_its_table_in_time_and_passes_gradients_to_stored_rows():
    torch.manual_seed(0)
    pred = TransformerPredictor(in_dims=64, embed_dims=32, depth=1, num_heads=4, grid_size=(4, 2, 2),
                                pos_embed_frames=2, use_flash_attn=False)
    assert pred.pos_embed.shape == (1, 4 + 8, 64)
    with torch.no_grad():
        pred.pos_embed.normal_()
    mask = TokenMask.from_mask(torch.arange(16).unsqueeze(0).remainder(3).eq(0).expand(2, -1))
    tokens = torch.randn(2, 4 + mask.num_visible, 64)
    captured = {}
    handle = pred.projector.register_forward_pre_hook(lambda m, args: captured.update(x=args[0]))
    pred(tokens, mask, (4, 2, 2)).sum().backward()
    handle.remove()
    table = pred.pos_embed.detach()
    expected = pred.scatter(tokens[:, 4:], mask) + linear_in_time(table[:, 4:], 2, 4)
    assert torch.allclose(captured['x'][:, 4:].detach(), expected, rtol=0, atol=1e-6)
    assert (pred.pos_embed.grad[0, 4:].abs().sum(-1) > 0).all()


def test_stage2_keeps_stage1_tables_as_they_are_and_the_predictor_follows_the_encoder(tmp_path):
    stage1_cfg = copy.deepcopy(Config.fromfile(str(STAGE1_CFG)).model)
    stage1_cfg.backbone.num_frames = 2
    torch.manual_seed(1)
    stage1 = MODELS.build(stage1_cfg)
    stage1.init_weights()
    state = stage1.state_dict()
    path = tmp_path / 'stage1.pth'
    torch.save(dict(state_dict=state), path)
    cfg = copy.deepcopy(Config.fromfile(str(STAGE2_CFG)).model)
    cfg.backbone.pos_embed_frames = 2
    cfg.stage1_checkpoint = str(path)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    assert model.neck.pos_grid == (2, 4, 4) and model.neck.grid_size == (4, 4, 4)
    for part, key in (('backbone', 'backbone.pos_embed'), ('teacher', 'backbone.pos_embed'),
                      ('neck', 'neck.pos_embed')):
        assert torch.equal(getattr(model, part).pos_embed, state[key]), part
    clip = torch.randn(2, 3, 4, 56, 56, generator=torch.Generator().manual_seed(0))
    model.train()
    model.loss(clip)['loss_latent'].backward()
    for part in ('backbone', 'neck'):  # masked positions give the encoder no gradient; each stored frame gets one
        grad = getattr(model, part).pos_embed.grad
        assert grad is not None and (grad[0, 4:].reshape(2, 16, 64).abs().sum((1, 2)) > 0).all(), part
    default = copy.deepcopy(Config.fromfile(str(STAGE2_CFG)).model)
    default.stage1_checkpoint = str(path)
    model = MODELS.build(default)
    model.init_weights()
    assert model.backbone.pos_embed.shape[1] == model.neck.pos_embed.shape[1] == 4 + 4 * 16
