# Linear probe on the frozen InternVideo-Next ViT-B/14 encoder's attention-pooled clip embedding
# (clip projector output, 768-d), 16 frames x 224 px, 20 epochs, k400. BatchNorm without affine before
# the classifier (MAE linear-probe recipe); no CutMix. lr 0.0003 (paper Table 15 for the attentive probe).
_base_ = [
    '../_base_/datasets/k400_sparse_uniform.py', '../_base_/schedules/probe_adamw-cosine_20e.py',
    '../_base_/default_runtime.py'
]

model = dict(
    type='FrozenBackboneRecognizer3D',
    backbone=dict(
        type='InternVideoNextViT',
        arch='base',
        img_size=224,
        patch_size=14,
        num_frames=16,
        tubelet_size=1,
        out_type='pooled',
        with_clip_projector=True,
        pretrained='checkpoints/internvideo_next_base_p14_res224_f16'),
    cls_head=dict(
        type='LinearProbeHead',
        num_classes=400,
        in_channels=768,
        norm='bn',
        label_smooth_eps=0.1,
        average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))

optim_wrapper = dict(optimizer=dict(lr=0.0003))
