# Linear probe on the frozen InternVideo-Next ViT-B/14 encoder's attention-pooled clip embedding (clip projector
# output, 768-d), 16 frames x 224 px: BatchNorm without affine before the classifier (MAE linear-probe recipe),
# label smoothing 0.1, no CutMix. A probe config inherits this and a dataset config and sets
#   model = dict(cls_head=dict(num_classes={{_base_.num_classes}}))
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
        in_channels=768,
        norm='bn',
        label_smooth_eps=0.1,
        average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))
