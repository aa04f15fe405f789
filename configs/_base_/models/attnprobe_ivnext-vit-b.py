# The paper's attentive probe on a frozen InternVideo-Next ViT-B/14 encoder (16 frames x 224 px): the encoder's
# tokens -> one cross-attention pooling block (12 heads) -> LayerNorm -> linear classifier, label smoothing 0.1,
# CutMix in the data preprocessor (paper Table 15). The encoder is frozen and runs without its clip projector.
# A probe config inherits this and a dataset config, and sets the classes of the head and of CutMix from the
# dataset's `num_classes`:
#   model = dict(cls_head=dict(num_classes={{_base_.num_classes}}),
#                data_preprocessor=dict(blending=dict(num_classes={{_base_.num_classes}})))
# Set the encoder weights with --cfg-options model.backbone.pretrained=PATH (a released Hugging Face folder /
# .safetensors file, or the output of tools/convert/export_backbone.py).
model = dict(
    type='FrozenBackboneRecognizer3D',
    backbone=dict(
        type='InternVideoNextViT',
        arch='base',
        img_size=224,
        patch_size=14,
        num_frames=16,
        tubelet_size=1,
        out_type='tokens',
        # The probe pools the tokens itself; the encoder's clip projector is not needed.
        with_clip_projector=False,
        pretrained='checkpoints/internvideo_next_base_p14_res224_f16'),
    cls_head=dict(
        type='AttentiveProbeHead',
        in_channels=768,
        num_heads=12,
        label_smooth_eps=0.1,
        average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW',
        blending=dict(type='CutmixBlending', alpha=1.0)))
