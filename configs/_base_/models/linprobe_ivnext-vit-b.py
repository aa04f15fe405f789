# Linear probe on the frozen InternVideo-Next ViT-B/14 encoder's attention-pooled clip embedding (clip projector
# output, 768-d), 16 frames x 224 px: BatchNorm without affine before the classifier (MAE linear-probe recipe),
# label smoothing 0.1, no CutMix. A probe config inherits this and a dataset config and sets
#   model = dict(cls_head=dict(num_classes={{_base_.num_classes}}))
_base_ = ['./ivnext_vit-b.py']

model = dict(
    type='FrozenBackboneRecognizer3D',
    backbone=dict(out_type='pooled', with_clip_projector=True),
    cls_head=dict(
        type='LinearProbeHead',
        in_channels=768,
        norm='bn',
        label_smooth_eps=0.1,
        average_clips='prob'))
