# MSR-VTT text-video retrieval in mmaction2's VideoTextDataset format: a JSON object {"video7010.mp4": [caption, ...]}
# per split (mmaction2's tools/data/video_retrieval/prepare_msrvtt.py writes train_9k.json and test_JSFUSION.json).
# Train: the 9k split, every caption of a video is one (video, caption) pair. Test: the 1k-A (JSFusion) split, one
# caption per video, text-to-video and video-to-text R@1/5/10, MdR, MnR (VideoTextRetrievalMetric).
# 16 frames spread over the whole video (UniformSample), 224 px centre crop for test; train adds a random resized
# crop (InternVideo2's video-text recipe: scale 0.5-1) and a flip.
dataset_type = 'VideoTextDataset'
clip_len = 16
input_size = 224
data_root = 'data/msrvtt/videos'
ann_file_train = 'data/msrvtt/train_9k.json'
ann_file_val = 'data/msrvtt/test_JSFUSION.json'
ann_file_test = ann_file_val

file_client_args = dict(io_backend='disk')
# Each dataset is wrapped in SkipBadClips: an unreadable video is replaced and named, never fatal.
# The caption travels in the data sample's metainfo ('text'); 'filename' marks captions of one video as positives.
pack = dict(type='PackActionInputs', meta_keys=('filename', 'text'))
train_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(type='UniformSample', clip_len=clip_len, num_clips=1),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='RandomResizedCrop', area_range=(0.5, 1.0)),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCTHW'),
    pack,
]
val_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(type='UniformSample', clip_len=clip_len, num_clips=1, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, input_size)),
    dict(type='CenterCrop', crop_size=input_size),
    dict(type='FormatShape', input_format='NCTHW'),
    pack,
]
test_pipeline = val_pipeline

train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    # The contrastive loss gathers every rank's batch: equal batches on every rank.
    dataset=dict(type='SkipBadClips', wraps=dataset_type, ann_file=ann_file_train,
                 data_prefix=dict(video=data_root), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='SkipBadClips', wraps=dataset_type, ann_file=ann_file_val,
                 data_prefix=dict(video=data_root), pipeline=val_pipeline, test_mode=True))
test_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='SkipBadClips', wraps=dataset_type, ann_file=ann_file_test,
                 data_prefix=dict(video=data_root), pipeline=test_pipeline, test_mode=True))

# Clips SkipBadClips could not read are left out of the scores (with their captions) and counted (`bad_clips`).
val_evaluator = dict(type='SkipBadClipsMetric', metric=dict(type='VideoTextRetrievalMetric'))
test_evaluator = val_evaluator
