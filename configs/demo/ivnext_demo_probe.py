# Attentive probe (the paper's evaluation: one cross-attention pooling block + a linear classifier) on a FROZEN
# demo-size encoder, for one label kind of the demo clip set ('appearance': 8 sources; 'motion': 6 camera motions).
# No augmentation: train and val clips go through the val pipeline, so tools/demo/run_demo.py extracts each
# encoder's tokens once and trains this head on the cached tokens with this optimizer and schedule (the same
# optimisation a Runner would do with a frozen backbone, without decoding and encoding every clip every epoch).
# The file itself is an ordinary FrozenBackboneRecognizer3D config (data, model, schedule, AccMetric).
_base_ = ['../_base_/default_runtime.py']

custom_imports = dict(imports=['ivnext', 'ivnext.datasets'], allow_failed_imports=False)

data_root = 'demo_artifacts/data'
num_frames = 4  # sampled uniformly from the 8-frame demo clips (the teacher's cost is per frame)
img_size = 112
patch_size = 14
encoder_dims = 192

label_kind = 'appearance'
num_classes = 8  # 8 appearance classes; 6 for motion

model = dict(
    type='FrozenBackboneRecognizer3D',
    backbone=dict(
        type='InternVideoNextViT',
        arch=dict(embed_dims=encoder_dims, num_layers=6, num_heads=3, mlp_ratio=4.0),
        img_size=img_size,
        patch_size=patch_size,
        num_frames=num_frames,
        tubelet_size=1,
        out_type='tokens',
        use_flash_attn=False,
        with_clip_projector=False),
    cls_head=dict(
        type='AttentiveProbeHead',
        num_classes=num_classes,
        in_channels=encoder_dims,
        num_heads=3,
        label_smooth_eps=0.1,
        average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))

val_pipeline = [
    dict(type='DecordInit', io_backend='disk'),
    dict(type='UniformSample', clip_len=num_frames, num_clips=1, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, img_size)),
    dict(type='CenterCrop', crop_size=img_size),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
test_pipeline = val_pipeline

train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='VideoDataset', ann_file=f'{data_root}/train_{label_kind}.txt',
                 data_prefix=dict(video=data_root), pipeline=val_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='VideoDataset', ann_file=f'{data_root}/val_{label_kind}.txt',
                 data_prefix=dict(video=data_root), pipeline=val_pipeline,
                 test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator

# tools/demo/run_demo.py trains on cached tokens and lets each training step attend to a random subset of this
# many tokens per clip (evaluation attends to all 4 + 4*8*8 = 260); it averages probe_seeds probe runs per cell.
probe_train_tokens = 128
probe_seeds = 2

max_epochs = 20
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='TrainableOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=None)
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min=1e-5)]
default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook', by_epoch=True, interval=max_epochs, max_keep_ckpts=1,
                                     save_best=None))
log_processor = dict(by_epoch=True, window_size=10)
