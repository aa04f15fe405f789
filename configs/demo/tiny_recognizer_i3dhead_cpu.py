# Tiny end-to-end recognizer run on CPU: InternVideo-Next ViT backbone + mmaction2 I3DHead on mp4 clips.
#
# Data layout (mmaction2 VideoDataset): an annotation list of `relative/path.mp4 label` lines and a video folder.
# Point it at your clips with, e.g.
#   python tools/train.py configs/demo/tiny_recognizer_i3dhead_cpu.py --cfg-options \
#     train_dataloader.dataset.ann_file=/data/train.txt train_dataloader.dataset.data_prefix.video=/data/videos \
#     val_dataloader.dataset.ann_file=/data/val.txt val_dataloader.dataset.data_prefix.video=/data/videos
# (test_dataloader is the val loader; override test_dataloader.dataset.* the same way for tools/test.py.)
_base_ = ['../_base_/models/ivnext_vit_tiny.py', '../_base_/default_runtime.py']

dataset_type = 'CheckedVideoDataset'  # mmaction2's VideoDataset with labels range-checked, errors at file:line
data_root = 'data/tiny_clips/videos'
ann_file_train = 'data/tiny_clips/train.txt'
ann_file_val = 'data/tiny_clips/val.txt'

file_client_args = dict(io_backend='disk')
train_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(type='SampleFrames', clip_len=4, frame_interval=2, num_clips=1),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 64)),
    dict(type='RandomCrop', size=56),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
val_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(type='SampleFrames', clip_len=4, frame_interval=2, num_clips=1, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 64)),
    dict(type='CenterCrop', crop_size=56),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
test_pipeline = val_pipeline

train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='SkipBadClips',  # an unreadable clip is logged with its path and replaced, not fatal
        wraps=dataset_type,
        num_classes=4,  # labels are range-checked at build; keep equal to model.cls_head.num_classes
        ann_file=ann_file_train,
        data_prefix=dict(video=data_root),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='SkipBadClips',
        wraps=dataset_type,
        num_classes=4,
        ann_file=ann_file_val,
        data_prefix=dict(video=data_root),
        pipeline=val_pipeline,
        test_mode=True))
test_dataloader = val_dataloader

# Clips SkipBadClips could not read are left out of the scores and counted (`bad_clips`).
val_evaluator = dict(type='SkipBadClipsMetric', metric=dict(type='AccMetric'))
test_evaluator = val_evaluator

train_cfg = dict(type='IterBasedTrainLoop', max_iters=8, val_interval=8)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    constructor='TrainableOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.98), weight_decay=0.05),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=8)]

default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(by_epoch=False, interval=4, max_keep_ckpts=2, save_best=None))
log_processor = dict(by_epoch=False, window_size=1)

# Linear scaling of the learning rate with --auto-scale-lr: lr above is for 2 processes x batch 2.
auto_scale_lr = dict(enable=False, base_batch_size=4)
