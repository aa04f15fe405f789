# Demo baseline: pixel reconstruction alone with a linear decoder (the paper's weakest Stage-1 ablation: no
# image teacher, no alignment, random masks at ratio 0.8, LinearPixelHead instead of the diffusion decoder).
# Same encoder, predictor, data, batch and schedule as ivnext_demo_stage1.py, so the two differ only in the
# objective.
_base_ = ['./ivnext_demo_stage1.py']

model = dict(
    # No teacher: nothing trains the clip projector.
    backbone=dict(with_clip_projector=False),
    teacher=None,
    align_head=None,
    pooled_align_head=None,
    masker=dict(_delete_=True, type='RandomMasker', mask_ratio=0.8),
    head=dict(_delete_=True, type='LinearPixelHead', in_dims={{_base_.predictor_dims}}))
