# Tiny InternVideo-Next Stage-1 run on CPU: the whole Stage-1 step (DINOv2-style teacher -> semantic-aware
# masks -> encoder -> ModernBERT-layer predictor -> diffusion decoder + alignment losses) at toy sizes on mp4s,
# with the K-Mash data layout (a flipped list and a not-flipped list, concatenated).
#
#   python tools/train.py configs/demo/tiny_stage1_cpu.py --work-dir work_dirs/tiny_stage1 \
#     --cfg-options train_dataloader.dataset.datasets.0.ann_file=/data/train.txt \
#                   train_dataloader.dataset.datasets.0.data_prefix.video=/data/videos \
#                   train_dataloader.dataset.datasets.1.ann_file=/data/ssv2_like.txt \
#                   train_dataloader.dataset.datasets.1.data_prefix.video=/data/videos
#   python tools/train.py configs/demo/tiny_stage1_cpu.py --work-dir work_dirs/tiny_stage1 --resume \
#     --cfg-options train_cfg.max_iters=8
#   python tools/visualize_reconstruction.py configs/demo/tiny_stage1_cpu.py work_dirs/tiny_stage1/iter_4.pth \
#     /data/videos/clip.mp4 --out grid.png
_base_ = ['../_base_/models/ivnext_stage1_tiny.py', '../_base_/default_runtime.py']

# KMashVideoDataset / TemporalWindow live in ivnext.datasets.
custom_imports = dict(imports=['ivnext', 'ivnext.datasets'], allow_failed_imports=False)

dataset_type = 'KMashVideoDataset'
data_root = 'data/tiny_clips/videos'
ann_file_flip = 'data/tiny_clips/train.txt'
ann_file_noflip = 'data/tiny_clips/val.txt'
clip_len = 4
input_size = 56

train_pipeline_flip = [
    dict(type='DecordInit', io_backend='disk'),
    dict(type='TemporalWindow'),
    dict(type='UniformSample', clip_len=clip_len, num_clips=1),
    dict(type='DecordDecode'),
    dict(type='MultiScaleCrop', input_size=input_size, scales=(1, 0.875, 0.75, 0.66), random_crop=False,
         max_wh_scale_gap=1),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
train_pipeline_noflip = [t for t in train_pipeline_flip if t['type'] != 'Flip']
val_pipeline = [
    dict(type='DecordInit', io_backend='disk'),
    dict(type='TemporalWindow'),
    dict(type='UniformSample', clip_len=clip_len, num_clips=1, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, input_size)),
    dict(type='CenterCrop', crop_size=input_size),
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
        wraps='ConcatDataset',
        datasets=[
            dict(type=dataset_type, ann_file=ann_file_flip, data_prefix=dict(video=data_root),
                 pipeline=train_pipeline_flip),
            dict(type=dataset_type, ann_file=ann_file_noflip, data_prefix=dict(video=data_root),
                 pipeline=train_pipeline_noflip),
        ]))

train_cfg = dict(type='IterBasedTrainLoop', max_iters=4)
val_cfg = None
test_cfg = None

optim_wrapper = dict(
    type='OptimWrapper',
    constructor='TrainableOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.05),
    clip_grad=dict(max_norm=5.0))
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=100000)]

default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(type='SafeCheckpointHook', by_epoch=False, interval=2, max_keep_ckpts=3, save_best=None))
log_processor = dict(by_epoch=False, window_size=1)
# Reconstruction grids every 2 iterations (with --tensorboard: `tensorboard --logdir work_dirs/tiny_stage1`).
custom_hooks = [dict(type='ReconstructionVisHook', interval=2, num_clips=2, num_inference_steps=4)]
randomness = dict(seed=0)
