# Ablation: pixel reconstruction alone (no image teacher, no alignment losses), linear pixel decoder, random
# masks (no teacher -> no semantic-aware masking; TubeMasker is the other option), ViT-B/14, 8x224, 30 e K710.
# Paper (ablation table, linear probe): pixel reconstruction alone = K400 47.2 / SSv2 28.1.
_base_ = ['./ivnext-stage1_vit-b-p14_siglip2_8x224_30e_k710.py']

model = dict(
    # No teacher: the clip projector would get no gradient.
    backbone=dict(with_clip_projector=False),
    teacher=None,
    align_head=None,
    pooled_align_head=None,
    masker=dict(_delete_=True, type='RandomMasker', mask_ratio=0.8),
    head=dict(_delete_=True, type='LinearPixelHead', in_dims=1024, target_dims=588, loss_weight=1.0))
