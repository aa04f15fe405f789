"""Stage-1 predictors: input assembly, gradients, ModernBERT weight loading and layer semantics."""
import ivnext  # noqa: F401  (compat fixes before transformers)
import pytest
import torch
from mmaction.registry import MODELS
from transformers import ModernBertConfig, ModernBertForMaskedLM, ModernBertModel

from ivnext.models.layers import sincos_3d
from ivnext.models.maskers import TokenMask
from ivnext.models.necks import ModernBertPredictor, TransformerPredictor

GRID = (2, 3, 4)
N = 24
TINY_BERT = dict(hidden_size=32, intermediate_size=48, num_attention_heads=2, num_hidden_layers=4, local_attention=8,
                 vocab_size=64, pad_token_id=0, bos_token_id=1, eos_token_id=2, cls_token_id=1, sep_token_id=2)


def make_inputs(b=2, n_vis=6, num_cls=2, dims=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(b, N, dtype=torch.bool)
    for i in range(b):
        mask[i, torch.randperm(N, generator=g)[:n_vis]] = False
    tokens = torch.randn(b, num_cls + n_vis, dims, generator=g)
    return tokens, mask


def tiny_modernbert(**kwargs):
    return ModernBertPredictor(in_dims=32, num_layers=2, num_cls_tokens=2, grid_size=GRID,
                               model_config={k: v for k, v in TINY_BERT.items() if 'token_id' not in k
                                             and k != 'vocab_size'}, **kwargs)


def tiny_transformer(**kwargs):
    return TransformerPredictor(in_dims=32, embed_dims=48, depth=2, num_heads=2, num_cls_tokens=2, grid_size=GRID,
                                **kwargs)


@pytest.mark.parametrize('build', [tiny_modernbert, tiny_transformer])
def test_assembly_places_tokens_and_mask_token(build):
    torch.manual_seed(0)
    pred = build()
    tokens, mask = make_inputs()
    seen = {}
    pred.projector.register_forward_pre_hook(lambda m, args: seen.setdefault('x', args[0].detach()))
    out = pred(tokens, TokenMask.from_mask(mask), GRID)
    assert out.shape == (2, 2 + N, pred.embed_dims)

    x = seen['x']
    assert torch.equal(x[:, :2], tokens[:, :2])  # CLS first, no position embedding
    grid_part = x[:, 2:] - sincos_3d(32, GRID)
    for i in range(2):
        # masked slots hold exactly the mask token, visible slots the encoder tokens in raster order
        torch.testing.assert_close(grid_part[i, mask[i]], pred.mask_token[0].expand(int(mask[i].sum()), -1))
        torch.testing.assert_close(grid_part[i, ~mask[i]], tokens[i, 2:])


@pytest.mark.parametrize('build', [tiny_modernbert, tiny_transformer])
def test_gradients_reach_projector_mask_token_and_layers(build):
    torch.manual_seed(0)
    pred = build()
    tokens, mask = make_inputs()
    tokens.requires_grad_(True)
    pred(tokens, TokenMask.from_mask(mask), GRID).pow(2).mean().backward()
    layers = pred.layers if isinstance(pred, ModernBertPredictor) else pred.blocks
    for name, param in [('mask_token', pred.mask_token), ('projector', pred.projector.fc1.weight)] + [
            (f'layer{i}', next(layer.parameters())) for i, layer in enumerate(layers)]:
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert tokens.grad.abs().sum() > 0


def test_activation_checkpointing_matches():
    torch.manual_seed(0)
    ref = tiny_modernbert()
    ckpt = tiny_modernbert(with_cp=True)
    ckpt.load_state_dict(ref.state_dict())
    tokens, mask = make_inputs()
    out_ref, out_ckpt = ref(tokens, TokenMask.from_mask(mask), GRID), ckpt(tokens, TokenMask.from_mask(mask), GRID)
    torch.testing.assert_close(out_ref, out_ckpt)
    out_ref.sum().backward()
    out_ckpt.sum().backward()
    torch.testing.assert_close(ref.mask_token.grad, ckpt.mask_token.grad)


def test_position_embedding_follows_grid():
    pred = tiny_transformer()
    tokens, mask = make_inputs()
    seen = []
    pred.projector.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach()))
    pred(tokens, TokenMask.from_mask(mask), GRID)
    # a different grid with the same token count changes the positions the predictor sees
    pred(tokens, TokenMask.from_mask(mask), (4, 3, 2))
    assert not torch.allclose(seen[0], seen[1])


def test_bad_inputs_raise():
    pred = tiny_transformer()
    tokens, mask = make_inputs()
    with pytest.raises(ValueError, match='visible tokens'):
        pred(tokens[:, :-1], TokenMask.from_mask(mask), GRID)
    with pytest.raises(ValueError, match='grid'):
        pred(tokens, TokenMask.from_mask(mask), (2, 3, 3))
    with pytest.raises(ValueError, match='in_dims'):
        pred(tokens[..., :16], TokenMask.from_mask(mask), GRID)


def save_tiny_modernbert(path):
    torch.manual_seed(1)
    config = ModernBertConfig(**TINY_BERT)
    ModernBertForMaskedLM(config).save_pretrained(path)  # the layout of answerdotai/ModernBERT-large
    return ModernBertModel.from_pretrained(path, attn_implementation='sdpa')


def half_window(layer):
    """Tokens on each side a ModernBERT layer attends to, None for a global layer (transformers 4.x and 5)."""
    if hasattr(layer.attn, 'local_attention'):  # 4.x: (-1, -1) for global layers
        return None if tuple(layer.attn.local_attention) == (-1, -1) else layer.attn.local_attention[0]
    return None if layer.attn.sliding_window is None else layer.attn.sliding_window - 1  # 5: flash-attn's bound


def test_pretrained_keeps_last_layers(tmp_path):
    text = save_tiny_modernbert(tmp_path)
    pred = ModernBertPredictor(in_dims=32, num_layers=2, num_cls_tokens=2, grid_size=GRID, pretrained=str(tmp_path))
    assert pred.embed_dims == 32 and len(pred.layers) == 2
    for kept, source in zip(pred.layers, text.layers[2:]):
        src = source.state_dict()
        dst = kept.state_dict()
        assert dst.keys() == src.keys()
        for key in src:
            assert torch.equal(dst[key], src[key]), key
        assert half_window(kept) == half_window(source)  # layer ids (global/local) kept
    # layer 2 of 4 is local (2 % 3 != 0), layer 3 global (3 % 3 == 0)
    assert half_window(pred.layers[0]) == 4 and half_window(pred.layers[1]) is None
    assert not torch.equal(pred.layers[0].attn.Wqkv.weight, text.layers[1].attn.Wqkv.weight)


def test_layers_run_as_inside_modernbert(tmp_path):
    """All 4 layers + final norm reproduce ModernBertModel itself (rotary positions and local windows)."""
    text = save_tiny_modernbert(tmp_path).eval()
    text.embeddings.norm = torch.nn.Identity()  # feed the layers the raw sequence
    pred = ModernBertPredictor(in_dims=32, num_layers=4, num_cls_tokens=2, grid_size=GRID, pretrained=str(tmp_path),
                               final_norm=True).eval()
    x = torch.randn(2, 20, 32)  # longer than the local window of 8
    expected = text(inputs_embeds=x, attention_mask=torch.ones(2, 20, dtype=torch.long)).last_hidden_state
    torch.testing.assert_close(pred.forward_layers(x), expected, rtol=1e-4, atol=1e-5)


def test_pretrained_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='not a local folder'):
        ModernBertPredictor(in_dims=32, pretrained=str(tmp_path / 'missing'))
    with pytest.raises(FileNotFoundError, match='could not load'):
        ModernBertPredictor(in_dims=32, pretrained=str(tmp_path))
    save_tiny_modernbert(tmp_path / 'bert')
    with pytest.raises(ValueError, match='num_layers'):
        ModernBertPredictor(in_dims=32, num_layers=5, pretrained=str(tmp_path / 'bert'))


def test_registry_build():
    pred = MODELS.build(dict(type='TransformerPredictor', in_dims=32, embed_dims=32, depth=1, num_heads=2,
                             num_cls_tokens=2, grid_size=GRID))
    assert isinstance(pred, TransformerPredictor) and pred.embed_dims == 32
    bert = MODELS.build(dict(type='ModernBertPredictor', in_dims=32, num_layers=1, num_cls_tokens=2, grid_size=GRID,
                             model_config=dict(hidden_size=32, intermediate_size=48, num_attention_heads=2,
                                               num_hidden_layers=3)))
    assert bert.embed_dims == 32 and half_window(bert.layers[0]) is not None  # layer 2 of 3 is local


def test_banded_local_attention_equals_dense_masked_attention():
    """The default banded local attention gives ModernBERT's dense windowed result, forward and backward."""
    torch.manual_seed(0)
    banded = tiny_modernbert(with_cp=True).train()
    torch.manual_seed(0)
    dense = tiny_modernbert(with_cp=True, local_attention_impl='dense').train()
    assert banded.local_attention_impl == 'banded' and half_window(banded.layers[0]) == 4
    dense.load_state_dict(banded.state_dict())
    x = torch.randn(2, 30, 32, requires_grad=True)  # 30 tokens, window +-4: several blocks
    out_b, out_d = banded.forward_layers(x), dense.forward_layers(x)
    torch.testing.assert_close(out_b, out_d, rtol=1e-5, atol=1e-5)
    out_b.square().mean().backward()
    grads_b = [p.grad.clone() for p in banded.parameters() if p.grad is not None]
    out_d.square().mean().backward()
    grads_d = [p.grad for p in dense.parameters() if p.grad is not None]
    assert len(grads_b) == len(grads_d) > 0
    for gb, gd in zip(grads_b, grads_d):
        torch.testing.assert_close(gb, gd, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match='local_attention_impl'):
        tiny_modernbert(local_attention_impl='flex')
