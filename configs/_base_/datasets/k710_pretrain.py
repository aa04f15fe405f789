# Kinetics-710 pretraining data for the paper's ablations (Tables 2-4: ViT-B, 8 frames, 30 epochs on K710,
# linear probe): the union of K400/600/700 train videos without the K400 val videos (710 classes).
# Lists: mmaction2 `path label` lines (labels are unused), e.g. from tools/data/convert_kmash_list.py run on the
# Kinetics part of the K-Mash list. Every clip may be flipped. Sampling/augmentation as kmash_pretrain.py.
dataset_type = 'KMashVideoDataset'
data_root = 'data/k710/videos'
ann_file_train = 'data/k710/k710_train_list_videos.txt'
clip_len = 8
input_size = 224

file_client_args = dict(io_backend='disk')
train_pipeline = [
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

train_dataloader = dict(
    batch_size=16,
    num_workers=14,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='SkipBadClips', wraps=dataset_type, ann_file=ann_file_train, data_prefix=dict(video=data_root),
                 pipeline=train_pipeline))
