"""Regional compilation: compiled blocks trace without graph breaks and match eager outputs and gradients."""
import copy

import pytest
import torch
from mmaction.registry import HOOKS

from ivnext.engine import compile_blocks
from ivnext.models.backbones import InternVideoNextViT
from ivnext.models.heads import ConditionalDiffusionHead
from ivnext.models.maskers import TokenMask


def _encoder():
    torch.manual_seed(0)
    return InternVideoNextViT(arch=dict(embed_dims=32, num_layers=3, num_heads=2, mlp_ratio=2.0), img_size=28,
                              num_frames=2, out_type='tokens', clip_embed_dims=16, clip_num_heads=2)


@pytest.mark.parametrize('with_cp', [False, True])
def test_compiled_encoder_blocks_match_eager(with_cp):
    torch._dynamo.reset()
    eager = _encoder()
    eager.with_cp = with_cp
    compiled = copy.deepcopy(eager)
    # fullgraph: a graph break (Python-side control flow on tensor values) inside a block is an error.
    assert compile_blocks(compiled, backend='aot_eager', fullgraph=True) == 3
    x = torch.randn(2, 3, 2, 28, 28)
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[:, ::2] = True
    mask = TokenMask.from_mask(mask, num_masked=4)
    out_e, _ = eager.forward_tokens(x, mask)
    out_c, _ = compiled.forward_tokens(x, mask)
    torch.testing.assert_close(out_c, out_e)
    out_e.square().mean().backward()
    out_c.square().mean().backward()
    for (name, p_e), p_c in zip(eager.named_parameters(), compiled.parameters()):
        torch.testing.assert_close(p_c.grad, p_e.grad, msg=name)


def test_compiled_diffusion_head_matches_eager():
    torch._dynamo.reset()
    torch.manual_seed(0)
    eager = ConditionalDiffusionHead(in_dims=16, target_dims=12, width=32, depth=2)
    compiled = copy.deepcopy(eager)
    assert compile_blocks(compiled, backend='aot_eager', fullgraph=True) == 2
    z, x0, t = torch.randn(6, 16), torch.randn(6, 12), torch.arange(6) * 150
    noise = torch.randn(6, 12)
    torch.testing.assert_close(compiled.loss(z, x0, timesteps=t, noise=noise)['loss_diffusion'],
                               eager.loss(z, x0, timesteps=t, noise=noise)['loss_diffusion'])


def test_compile_blocks_hook_errors_without_blocks():
    hook = HOOKS.build(dict(type='CompileBlocksHook', backend='aot_eager'))

    class Runner:
        model = torch.nn.Linear(2, 2)

    with pytest.raises(ValueError, match='block_classes'):
        hook.before_train(Runner())


def test_compiled_modernbert_predictor_matches_eager():
    """ModernBERT layers (with banded local attention and its recompute) compile and match eager."""
    from ivnext.models.necks import ModernBertPredictor
    torch._dynamo.reset()
    torch.manual_seed(0)
    eager = ModernBertPredictor(in_dims=16, num_layers=2, num_cls_tokens=1, grid_size=(2, 3, 4),
                                model_config=dict(hidden_size=32, intermediate_size=48, num_attention_heads=2,
                                                  num_hidden_layers=3, local_attention=8)).train()
    compiled = copy.deepcopy(eager)
    assert compile_blocks(compiled, backend='aot_eager') == 2
    x = torch.randn(2, 25, 32)
    out_e, out_c = eager.forward_layers(x), compiled.forward_layers(x)
    torch.testing.assert_close(out_c, out_e)
    out_e.square().mean().backward()
    out_c.square().mean().backward()
    for (name, p_e), p_c in zip(eager.named_parameters(), compiled.parameters()):
        if p_e.grad is not None:
            torch.testing.assert_close(p_c.grad, p_e.grad, msg=name)
