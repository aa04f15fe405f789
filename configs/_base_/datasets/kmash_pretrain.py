# K-Mash pretraining data (paper Sec. 4.1: ~1.1M public clips from K400/600/700, SSv2, ActivityNet, HACS, MiT),
# Stage-1 sampling: 16 frames at 224 px.
#
# Lists: convert the authors' list (`source path total_time start_time end_time target` lines) with
#   python tools/data/convert_kmash_list.py kmash_train.txt --out-dir data/kmash/lists
# which writes data/kmash/lists/kmash_flip.txt (every source but SSv2) and kmash_noflip.txt (SSv2), lines
# `path label [start end total]`, read by KMashVideoDataset (trimmed windows applied by TemporalWindow).
# The two lists are concatenated: SSv2 clips are not flipped (left/right classes), the others are (paper, release
# `--flip` with the SSv2 transform lacking the flip).
#
# Sampling as the release (num_segments = num_frames: TSN-style sparse sampling, one random frame per equal
# segment of the clip or window) -> mmaction2 UniformSample. Augmentation as the release: multi-scale crop with
# scales (1, .875, .75, .66) of the short side (fixed corner/centre crops, aspect gap <= 1) resized to 224, and a
# horizontal flip. Normalisation happens in the model's data_preprocessor.
dataset_type = 'KMashVideoDataset'
data_root = 'data/kmash/videos'
ann_file_flip = 'data/kmash/lists/kmash_flip.txt'
ann_file_noflip = 'data/kmash/lists/kmash_noflip.txt'
clip_len = 16
input_size = 224

file_client_args = dict(io_backend='disk')
train_pipeline_flip = [
    dict(type='DecordInit', **file_client_args),
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
# Deterministic view of a clip (used by tools/visualize_reconstruction.py).
val_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(type='TemporalWindow'),
    dict(type='UniformSample', clip_len=clip_len, num_clips=1, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, input_size)),
    dict(type='CenterCrop', crop_size=input_size),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
test_pipeline = val_pipeline

# 16 clips per GPU x 128 GPUs = 2048 (paper / release batch); the lr scales with the real total batch
# (auto_scale_lr in the schedule).
train_dataloader = dict(
    batch_size=16,
    num_workers=14,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='SkipBadClips',
        wraps='ConcatDataset',
        datasets=[
            dict(type=dataset_type, ann_file=ann_file_flip, data_prefix=dict(video=data_root),
                 pipeline=train_pipeline_flip),
            dict(type=dataset_type, ann_file=ann_file_noflip, data_prefix=dict(video=data_root),
                 pipeline=train_pipeline_noflip),
        ]))
