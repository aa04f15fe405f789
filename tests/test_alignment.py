"""Alignment heads and the 2 - 2cos loss."""
import ivnext  # noqa: F401
import pytest
import torch
import torch.nn.functional as F
from mmaction.registry import MODELS

from ivnext.models.heads import AlignmentHead, PooledAlignmentHead


def test_cosine_similarity_loss_values():
    loss = MODELS.build(dict(type='CosineSimilarityLoss', loss_weight=0.5))
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert float(loss(a, a * 3)) == pytest.approx(0.0, abs=1e-6)
    assert float(loss(a, -a)) == pytest.approx(0.5 * 4.0)
    assert float(loss(a, a.flip(1))) == pytest.approx(0.5 * 2.0)
    w = torch.tensor([1.0, 0.0])
    assert float(loss(a, torch.stack([-a[0], a[1]]), weight=w)) == pytest.approx(0.5 * 4.0)


def test_alignment_head_matches_manual_mean_over_layers_and_tokens():
    torch.manual_seed(0)
    head = MODELS.build(dict(type='AlignmentHead', in_dims=8, target_dims=6, num_layers=3, loss_weight=2.0))
    student = [torch.randn(2, 5, 8, requires_grad=True) for _ in range(3)]
    teacher = [F.normalize(torch.randn(2, 5, 6), dim=-1) for _ in range(3)]
    preds = head(student)
    for p in preds:
        torch.testing.assert_close(p.norm(dim=-1), torch.ones(2, 5))
    manual = torch.stack([(2 - 2 * (p * t).sum(-1)) for p, t in zip(preds, teacher)]).mean()
    out = head.loss(student, teacher)['loss_align']
    torch.testing.assert_close(out, 2.0 * manual)
    out.backward()
    for decoder, s in zip(head.decoders, student):
        assert decoder.fc1.weight.grad.abs().sum() > 0 and s.grad.abs().sum() > 0
    aligned = [p.detach() for p in head(student)]
    assert float(head.loss(student, aligned)['loss_align']) == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ValueError, match='num_layers'):
        head(student[:2])


def test_pooled_alignment_with_and_without_projection():
    torch.manual_seed(0)
    head = PooledAlignmentHead(in_dims=8, target_dims=4, loss_weight=1.0)
    s, t = torch.randn(3, 8), F.normalize(torch.randn(3, 4), dim=-1)
    out = head.loss(s, t)['loss_align_pooled']
    torch.testing.assert_close(out, (2 - 2 * (head(s) * t).sum(-1)).mean())
    out.backward()
    assert head.decoder.fc2.weight.grad.abs().sum() > 0
    plain = MODELS.build(dict(type='PooledAlignmentHead', in_dims=4, target_dims=None))
    assert float(plain.loss(t * 5, t)['loss_align_pooled']) == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ValueError, match='same shape'):
        plain.loss(torch.randn(3, 5), t)
    assert isinstance(plain, PooledAlignmentHead) and isinstance(AlignmentHead(8, 6, 1), AlignmentHead)
