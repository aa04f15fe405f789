# The paper's attentive probe on a frozen InternVideo-Next ViT-B/14 encoder (16 frames x 224 px): the encoder's
# tokens -> one cross-attention pooling block (12 heads) -> LayerNorm -> linear classifier, label smoothing 0.1,
# CutMix in the data preprocessor (paper Table 15). The encoder is frozen and runs without its clip projector.
# A probe config inherits this and a dataset config, and sets the classes of the head and of CutMix from the
# dataset's `num_classes`:
#   model = dict(cls_head=dict(num_classes={{_base_.num_classes}}),
#                data_preprocessor=dict(blending=dict(num_classes={{_base_.num_classes}})))
_base_ = ['./ivnext_vit-b.py']

model = dict(
    type='FrozenBackboneRecognizer3D',
    # The probe pools the tokens itself; the encoder's clip projector is not needed.
    backbone=dict(out_type='tokens', with_clip_projector=False),
    cls_head=dict(
        type='AttentiveProbeHead',
        in_channels=768,
        num_heads=12,
        label_smooth_eps=0.1,
        average_clips='prob'),
    data_preprocessor=dict(blending=dict(type='CutmixBlending', alpha=1.0)))
