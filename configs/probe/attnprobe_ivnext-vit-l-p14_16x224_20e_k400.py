# Attentive probe on a frozen InternVideo-Next ViT-L/14 encoder, 16 frames x 224 px, 20 epochs, k400.
# Paper (Stage-2 ViT-L, attentive probe, 16x224, 1 clip x 3 crops): 88.4 top-1.
# lr 0.0003 (paper Table 15); label smoothing 0.1, RandAugment, CutMix (paper Table 15).
# Set the encoder weights with --cfg-options model.backbone.pretrained=PATH (a released Hugging Face folder /
# .safetensors file, or the output of tools/convert/export_backbone.py).
_base_ = [
    '../_base_/datasets/k400_sparse_uniform.py', '../_base_/schedules/probe_adamw-cosine_20e.py',
    '../_base_/default_runtime.py'
]

model = dict(
    type='FrozenBackboneRecognizer3D',
    backbone=dict(
        type='InternVideoNextViT',
        arch='large',
        img_size=224,
        patch_size=14,
        num_frames=16,
        tubelet_size=1,
        out_type='tokens',
        # The probe pools the tokens itself; the encoder's clip projector is not needed.
        with_clip_projector=False,
        pretrained='checkpoints/internvideo_next_large_p14_res224_f16'),
    cls_head=dict(
        type='AttentiveProbeHead',
        num_classes=400,
        in_channels=1024,
        num_heads=16,
        label_smooth_eps=0.1,
        average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW',
        blending=dict(type='CutmixBlending', num_classes=400, alpha=1.0)))

optim_wrapper = dict(optimizer=dict(lr=0.0003))
