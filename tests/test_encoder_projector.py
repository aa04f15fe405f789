"""The clip projector is built only when an output may use it; released weights (with projector keys) still load."""
import pytest
import torch
from mmaction.registry import MODELS

from ivnext.models.backbones import InternVideoNextViT
from ivnext.utils.checkpoint import load_encoder_checkpoint

TINY = dict(arch=dict(embed_dims=64, num_layers=2, num_heads=4, mlp_ratio=2.0), img_size=28, patch_size=14,
            num_frames=2, use_flash_attn=False)


def test_projector_only_for_outputs_that_pool():
    for out_type, built in (('featmap', False), ('avg', False), ('pooled', True), ('tokens', True)):
        model = InternVideoNextViT(**TINY, out_type=out_type)
        assert (model.clip_projector is not None) == built, out_type
        assert any(n.startswith('clip_projector') for n, _ in model.named_parameters()) == built
    assert InternVideoNextViT(**TINY, out_type='featmap', with_clip_projector=True).clip_projector is not None
    assert InternVideoNextViT(**TINY, out_type='tokens', with_clip_projector=False).clip_projector is None
    with pytest.raises(ValueError, match='with_clip_projector=True'):
        InternVideoNextViT(**TINY, out_type='pooled', with_clip_projector=False)


def test_out_channels_is_the_head_in_channels():
    assert InternVideoNextViT(**TINY, out_type='featmap').out_channels == 64
    assert InternVideoNextViT(**TINY, out_type='avg').out_channels == 64
    # The projector's width, 768 as released, whatever the encoder width.
    assert InternVideoNextViT(**TINY, out_type='pooled').out_channels == 768
    assert InternVideoNextViT(**TINY, out_type='pooled', clip_embed_dims=32, clip_num_heads=4).out_channels == 32


def test_released_weights_with_projector_load_into_a_featmap_encoder(tmp_path):
    torch.manual_seed(0)
    full = InternVideoNextViT(**TINY, out_type='tokens').eval()
    released = {k: v.clone() for k, v in full.state_dict().items()}
    assert any(k.startswith('clip_projector.') for k in released)
    featmap = InternVideoNextViT(**TINY, out_type='featmap').eval()
    featmap.load_state_dict(released, strict=True)  # projector keys dropped, nothing missing
    x = torch.randn(2, 3, 2, 28, 28)
    with torch.no_grad():
        tokens = full(x)
        expected = tokens[:, 4:].transpose(1, 2).reshape(2, 64, 2, 2, 2)
        torch.testing.assert_close(featmap(x), expected, rtol=0, atol=0)
    # Through the checkpoint reader (as `pretrained=` does): no missing and no unexpected keys reported.
    torch.save(released, tmp_path / 'released.pth')
    missing, unexpected = load_encoder_checkpoint(InternVideoNextViT(**TINY, out_type='avg'),
                                                  str(tmp_path / 'released.pth'), strict=True)
    assert missing == [] and unexpected == []
    # An encoder that has a projector still requires its weights.
    with pytest.raises(RuntimeError, match='clip_projector'):
        InternVideoNextViT(**TINY, out_type='pooled').load_state_dict(
            {k: v for k, v in released.items() if not k.startswith('clip_projector.')}, strict=True)


def test_every_parameter_of_a_featmap_recognizer_gets_a_gradient():
    """What DDP without find_unused_parameters checks after each backward (it stopped at iteration 2 before)."""
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='Recognizer3D',
        backbone=dict(type='InternVideoNextViT', **TINY, out_type='featmap'),
        cls_head=dict(type='I3DHead', num_classes=3, in_channels=64, average_clips='prob'),
        data_preprocessor=dict(type='ActionDataPreprocessor', format_shape='NCTHW')))
    feats = model.extract_feat(torch.randn(2, 1, 3, 2, 28, 28))[0]  # (batch, clips, C, T, H, W)
    model.cls_head(feats).sum().backward()
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert unused == []
