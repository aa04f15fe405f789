# Full fine-tuning of an InternVideo-Next ViT-B/14 encoder (16 frames x 224 px): drop-path 0.1, a classifier on
# the encoder's attention-pooled clip embedding (clip projector, 768-d) with LayerNorm and dropout 0.5, label
# smoothing 0.1. A fine-tuning config inherits this, a dataset config and the layer-wise-lr-decay schedule, and sets
# the classes of the head and of Mixup / CutMix from the dataset's `num_classes`.
model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='InternVideoNextViT',
        arch='base',
        img_size=224,
        patch_size=14,
        num_frames=16,
        tubelet_size=1,
        drop_path_rate=0.1,
        out_type='pooled',
        with_clip_projector=True,
        with_cp=False,
        pretrained='checkpoints/internvideo_next_base_p14_res224_f16'),
    cls_head=dict(
        type='LinearProbeHead',
        in_channels=768,
        norm='ln',
        dropout_ratio=0.5,
        label_smooth_eps=0.1,
        average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))
