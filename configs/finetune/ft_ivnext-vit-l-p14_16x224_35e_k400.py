# Full fine-tuning of InternVideo-Next ViT-L/14, 16 frames x 224 px, 35 epochs, k400, with layer-wise lr
# decay 0.85 (ViT-L), drop-path 0.2, label smoothing 0.1, RandAugment, Mixup / CutMix.
# Classifier on the encoder's attention-pooled clip embedding (clip projector, 768-d).
_base_ = [
    '../_base_/datasets/k400.py', '../_base_/schedules/finetune_adamw-llrd-cosine_35e.py',
    '../_base_/default_runtime.py'
]

model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='InternVideoNextViT',
        arch='large',
        img_size=224,
        patch_size=14,
        num_frames=16,
        tubelet_size=1,
        drop_path_rate=0.2,
        out_type='pooled',
        with_clip_projector=True,
        with_cp=False,
        pretrained='checkpoints/internvideo_next_large_p14_res224_f16'),
    cls_head=dict(
        type='LinearProbeHead',
        num_classes=400,
        in_channels=768,
        norm='ln',
        dropout_ratio=0.5,
        label_smooth_eps=0.1,
        average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW',
        blending=dict(
            type='RandomBatchAugment',
            augments=[
                dict(type='MixupBlending', alpha=0.8, num_classes=400),
                dict(type='CutmixBlending', alpha=1.0, num_classes=400)
            ])))

optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.85))
