# The skeleton of every labelled video dataset base (coin.py, diving48.py, k400.py, ssv2.py): mmaction2 annotation
# lists of `relative/path.mp4 label` lines read by CheckedVideoDataset (list errors name file:line; labels checked
# against num_classes), each wrapped in SkipBadClips. A dataset base fills in its classes and paths, re-points the
# three dataloaders at them, and changes the sampler or the flip of the pipelines where its videos need it.
# Sampling: `clip_len` frames, one per equal segment of the video.
# Train: random resized crop to 224, flip, RandAugment (2 ops, magnitude 9, the same ops on every frame of a clip,
# via mmaction2's TorchVisionWrapper); CutMix is a batch op and lives in the model's data_preprocessor.
# Test: 1 clip x 3 crops (ThreeCrop, 224) as in the paper's evaluation.
dataset_type = 'CheckedVideoDataset'
num_classes = None  # filled by the dataset base
# Clip shape of every pipeline below: the frames and side the encoder is built for
# (model.backbone.num_frames / img_size).
clip_len = 16
input_size = 224
# Filled by the dataset base.
data_root = None
data_root_val = None
ann_file_train = None
ann_file_val = None
ann_file_test = None

file_client_args = dict(io_backend='disk')
train_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(type='UniformSample', clip_len=clip_len, num_clips=1),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='RandomResizedCrop', area_range=(0.3, 1.0), aspect_ratio_range=(0.75, 4 / 3)),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='TorchVisionWrapper', op='RandAugment', num_ops=2, magnitude=9),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
val_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(type='UniformSample', clip_len=clip_len, num_clips=1, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, input_size)),
    dict(type='CenterCrop', crop_size=input_size),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
test_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(type='UniformSample', clip_len=clip_len, num_clips=1, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, input_size)),
    dict(type='ThreeCrop', crop_size=input_size),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]

train_dataloader = dict(
    batch_size=16,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='SkipBadClips',
        wraps=dataset_type,
        num_classes=num_classes,
        ann_file=ann_file_train,
        data_prefix=dict(video=data_root),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='SkipBadClips',
        wraps=dataset_type,
        num_classes=num_classes,
        ann_file=ann_file_val,
        data_prefix=dict(video=data_root_val),
        pipeline=val_pipeline,
        test_mode=True))
# The val loader with the test list, the three-crop pipeline and 4 clips per batch (3 views each).
test_dataloader = dict(val_dataloader, batch_size=4,
                       dataset=dict(val_dataloader['dataset'], ann_file=ann_file_test, pipeline=test_pipeline))

# Clips SkipBadClips could not read are left out of the scores and counted (`bad_clips`).
val_evaluator = dict(type='SkipBadClipsMetric', metric=dict(type='AccMetric'))
test_evaluator = val_evaluator
