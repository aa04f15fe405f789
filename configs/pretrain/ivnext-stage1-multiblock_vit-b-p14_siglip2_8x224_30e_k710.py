# Ablation: V-JEPA multi-block masks (8 blocks at spatial scale 0.15, full temporal extent) instead of
# semantic-aware masks, ViT-B/14, 8x224, 30 e K710.
# Paper: semantic-aware masking is the chosen design; no number for this row is quoted here, compare
# with the full Stage-1 ablation baseline (K400 75.8 / SSv2 36.9).
_base_ = ['./ivnext-stage1_vit-b-p14_siglip2_8x224_30e_k710.py']

model = dict(
    masker=dict(
        _delete_=True,
        type='MultiBlockMasker3D',
        num_blocks=8,
        spatial_scale=(0.15, 0.15),
        aspect_ratio=(0.75, 1.5),
        temporal_scale=(1.0, 1.0)))
