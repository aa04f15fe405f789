"""Activation checkpointing (``with_cp``): the same outputs and gradients with and without it in every module that
has the flag, blocks really recomputed in the backward pass, and the diffusion head's deprecated flag name still
working."""
from typing import Callable, Dict, Tuple

import ivnext  # noqa: F401  (compat fixes before transformers)
import pytest
import torch
from torch import nn

from ivnext.models.backbones import InternVideoNextViT
from ivnext.models.heads import ConditionalDiffusionHead
from ivnext.models.layers import run_blocks
from ivnext.models.maskers import TokenMask
from ivnext.models.necks import ModernBertPredictor, TransformerPredictor

GRID = (2, 3, 4)
TINY_BERT = dict(hidden_size=32, intermediate_size=48, num_attention_heads=2, num_hidden_layers=2, local_attention=8)


def _randomize(model: nn.Module) -> nn.Module:
    """Non-zero values everywhere (zero-initialised gates and LayerScale would hide the blocks' gradients)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model


def _encoder(**kw):
    model = InternVideoNextViT(arch=dict(embed_dims=32, num_layers=2, num_heads=2, mlp_ratio=2.0), img_size=28,
                               num_frames=2, clip_embed_dims=16, clip_num_heads=2, out_type='tokens', **kw)
    x = torch.randn(1, 3, 2, 28, 28, generator=torch.Generator().manual_seed(1))
    return model, model.blocks, lambda: model.forward_tokens(x)[0]


def _predictor_inputs():
    g = torch.Generator().manual_seed(1)
    mask = torch.ones(2, 24, dtype=torch.bool)
    for i in range(2):
        mask[i, torch.randperm(24, generator=g)[:6]] = False
    return torch.randn(2, 2 + 6, 32, generator=g), TokenMask.from_mask(mask)


def _transformer_predictor(**kw):
    model = TransformerPredictor(in_dims=32, embed_dims=32, depth=2, num_heads=2, num_cls_tokens=2, grid_size=GRID,
                                 use_flash_attn=False, **kw)
    tokens, mask = _predictor_inputs()
    return model, model.blocks, lambda: model(tokens, mask, GRID)


def _modernbert_predictor(**kw):
    model = ModernBertPredictor(in_dims=32, num_layers=2, num_cls_tokens=2, grid_size=GRID, model_config=TINY_BERT,
                                **kw)
    tokens, mask = _predictor_inputs()
    return model, model.layers, lambda: model(tokens, mask, GRID)


def _diffusion_head(**kw):
    model = ConditionalDiffusionHead(in_dims=16, target_dims=12, width=32, depth=2, **kw)
    g = torch.Generator().manual_seed(1)
    z, target = torch.randn(2, 3, 16, generator=g), torch.randn(2, 3, 12, generator=g)
    timesteps, noise = torch.randint(0, 1000, (6, ), generator=g), torch.randn(6, 12, generator=g)
    return model, model.net.blocks, lambda: model.loss(z, target, timesteps=timesteps, noise=noise)['loss_diffusion']


BUILDERS: Dict[str, Callable[..., Tuple[nn.Module, nn.ModuleList, Callable[[], torch.Tensor]]]] = dict(
    encoder=_encoder, transformer_predictor=_transformer_predictor, modernbert_predictor=_modernbert_predictor,
    diffusion_head=_diffusion_head)


def _count_calls(blocks: nn.ModuleList) -> list:
    """A list that grows by one at every call of a block's ``forward`` (recomputations included; forward hooks
    do not fire when ``torch.utils.checkpoint`` recomputes)."""
    calls = []
    for block in blocks:
        def counted(*args, _forward=block.forward, **kwargs):
            calls.append(1)
            return _forward(*args, **kwargs)
        block.forward = counted
    return calls


def _run(build, **kw):
    torch.manual_seed(0)
    model, blocks, forward = build(**kw)
    _randomize(model).train()
    calls = _count_calls(blocks)
    out = forward()
    out.pow(2).sum().backward()
    grads = {name: p.grad for name, p in model.named_parameters() if p.requires_grad}
    return out.detach(), grads, len(calls), len(blocks)


@pytest.mark.parametrize('name', list(BUILDERS))
def test_with_cp_same_outputs_and_gradients(name):
    out, grads, plain_calls, depth = _run(BUILDERS[name])
    out_cp, grads_cp, cp_calls, _ = _run(BUILDERS[name], with_cp=True)
    assert plain_calls == depth and cp_calls == 2 * depth  # each block recomputed once in the backward pass
    torch.testing.assert_close(out_cp, out)
    assert grads.keys() == grads_cp.keys()
    assert sum(g.abs().sum() for g in grads.values() if g is not None) > 0
    for key, grad in grads.items():
        if grad is None:
            assert grads_cp[key] is None, key
        else:
            torch.testing.assert_close(grads_cp[key], grad, atol=1e-5, rtol=1e-4, msg=key)


def test_with_cp_off_in_eval_mode():
    model, blocks, forward = _transformer_predictor(with_cp=True)
    calls = _count_calls(blocks)
    model.eval()
    forward().sum().backward()
    assert len(calls) == len(blocks)  # nothing recomputed


def test_run_blocks_passes_extra_inputs_and_reports_each_output():
    blocks = [lambda x, s: x * s, lambda x, s: x + s]
    x = torch.ones(2, requires_grad=True)
    seen = []
    out = run_blocks(blocks, x, torch.tensor(3.), with_cp=True, on_output=lambda i, h: seen.append((i, h.tolist())))
    assert out.tolist() == [6., 6.] and seen == [(0, [3., 3.]), (1, [6., 6.])]
