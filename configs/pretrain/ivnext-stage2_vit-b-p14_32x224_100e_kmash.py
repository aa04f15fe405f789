# InternVideo-Next Stage 2, ViT-B/14, 32 frames x 224 px, 100 epochs on K-Mash, from a Stage-1 checkpoint.
# Paper (Table 1, ViT-B Stage 2, attentive probe 16x224): K400 85.9 / SSv2 70.1 / COIN 91.4.
# Recipe: paper Table 13 / Sec. 4.1; release exp/base/pretrain/stage2.sh (14 clips x 128 GPUs = 1792).
#   bash tools/dist_train.sh configs/pretrain/ivnext-stage2_vit-b-p14_32x224_100e_kmash.py 8 \
#     --cfg-options model.stage1_checkpoint=work_dirs/ivnext-stage1_vit-b-p14_siglip2_16x224_50e_kmash/epoch_50.pth
_base_ = [
    '../_base_/models/ivnext_stage2_vit-b.py', '../_base_/datasets/kmash_pretrain.py',
    '../_base_/schedules/pretrain_stage2_adamw-cosine_100e.py', '../_base_/default_runtime.py'
]

# KMashVideoDataset / TemporalWindow live in ivnext.datasets.
custom_imports = dict(imports=['ivnext', 'ivnext.datasets'], allow_failed_imports=False)

# Stage 2 samples 32 frames (release --num_frames 32); otherwise the K-Mash pipeline of kmash_pretrain.py.
clip_len = 32
input_size = 224
dataset_type = 'KMashVideoDataset'
data_root = 'data/kmash/videos'
ann_file_flip = 'data/kmash/lists/kmash_flip.txt'
ann_file_noflip = 'data/kmash/lists/kmash_noflip.txt'
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
    batch_size=14,
    dataset=dict(
        type='SkipBadClips',
        wraps='ConcatDataset',
        datasets=[
            dict(type=dataset_type, ann_file=ann_file_flip, data_prefix=dict(video=data_root),
                 pipeline=train_pipeline_flip),
            dict(type=dataset_type, ann_file=ann_file_noflip, data_prefix=dict(video=data_root),
                 pipeline=train_pipeline_noflip),
        ]))

# Position tables (paper: silent; release default): get_model builds the Stage-2 model at 16 frames, so the
# encoder's pos_embed and the predictor's diff_pos_embed stay 16-frame tables, loaded from Stage 1 as they are and
# interpolated linearly in time to the 32-frame clips in every forward. The predictor's table follows the
# encoder's. pos_embed_frames=None: 32-frame tables, Stage 1's interpolated once at load and trained at 32 frames.
model = dict(backbone=dict(pos_embed_frames=16))

# The student's clip projector is carried (not trained) in Stage 2.
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)

default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(type='SafeCheckpointHook', interval=1, max_keep_ckpts=3, save_best=None))
log_processor = dict(by_epoch=True, window_size=50)
