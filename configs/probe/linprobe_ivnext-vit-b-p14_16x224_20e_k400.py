# Linear probe on the frozen InternVideo-Next ViT-B/14 encoder's attention-pooled clip embedding
# (clip projector output, 768-d), 16 frames x 224 px, 20 epochs, k400. BatchNorm without affine before
# the classifier (MAE linear-probe recipe); no CutMix. lr 0.0003 (paper Table 15 for the attentive probe).
_base_ = [
    '../_base_/datasets/k400.py', '../_base_/schedules/probe_adamw-cosine_20e.py',
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

# Sparse uniform sampling (the paper's K400 probe protocol, as V-JEPA 2's): 16 frames spread over the whole video
# (one per equal segment; random within the segment for training, its centre for testing) instead of the dataset
# config's dense 16 x 4 window.
train_pipeline = [
    dict(type='DecordInit', io_backend='disk'),
    dict(type='UniformSample', clip_len=16, num_clips=1),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='RandomResizedCrop', area_range=(0.3, 1.0), aspect_ratio_range=(0.75, 4 / 3)),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='TorchVisionWrapper', op='RandAugment', num_ops=2, magnitude=9),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
val_pipeline = [
    dict(type='DecordInit', io_backend='disk'),
    dict(type='UniformSample', clip_len=16, num_clips=1, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
test_pipeline = [
    dict(type='DecordInit', io_backend='disk'),
    dict(type='UniformSample', clip_len=16, num_clips=1, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='ThreeCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
