"""Banded (sliding-window) attention equals dense SDPA with the window mask, on any length and layout."""
import pytest
import torch
import torch.nn.functional as F

from ivnext.models.layers.banded_attention import band_mask, banded_attention


def _dense(q, k, v, half_window):
    pos = torch.arange(q.shape[2])
    return F.scaled_dot_product_attention(q, k, v, attn_mask=(pos[:, None] - pos[None]).abs() <= half_window)


@pytest.mark.parametrize('length, half_window', [(37, 8), (64, 64), (5, 64), (130, 7), (96, 32)])
def test_equals_dense_windowed_attention_with_gradients(length, half_window):
    g = torch.Generator().manual_seed(length)
    # (B, L, 3, H, D) packed, unbound as transformers does: non-contiguous (B, H, L, D) views
    qkv = torch.randn(2, length, 3, 3, 16, generator=g, requires_grad=True)
    q, k, v = qkv.transpose(3, 1).unbind(dim=2)
    out = banded_attention(q, k, v, half_window)
    ref = _dense(q, k, v, half_window)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    grad, = torch.autograd.grad(out.square().sum(), qkv)
    ref_grad, = torch.autograd.grad(ref.square().sum(), qkv)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-5)


def test_band_mask_covers_exactly_the_window():
    length, half = 10, 3
    mask = band_mask(length, half)  # (nb, b, 3b)
    nb, b = mask.shape[:2]
    dense = torch.zeros(nb * b, length, dtype=torch.bool)
    for n in range(nb):
        for r in range(b):
            for c in range(3 * b):
                key = (n - 1) * b + c
                if mask[n, r, c]:
                    dense[n * b + r, key] = True
    pos = torch.arange(length)
    assert torch.equal(dense[:length], (pos[:, None] - pos[None]).abs() <= half)
    with pytest.raises(ValueError, match='half_window'):
        banded_attention(*torch.randn(3, 1, 1, 4, 2), half_window=0)
