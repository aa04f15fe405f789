# A sweep of attentive probes (the paper's evaluation: one cross-attention pooling block + a linear classifier) on
# a FROZEN demo-size encoder, for one label kind of the demo clip set ('appearance': 8 object shapes; 'motion': 6
# motions). No augmentation: every split goes through the val pipeline, so the leaderboard
# (ivnext/evaluation/leaderboard.py, run by tools/demo/run_demo.py) extracts each encoder's tokens once and trains
# the heads on the cached tokens with this optimizer and schedule (the same optimisation a Runner would do with a
# frozen backbone, without decoding and encoding every clip every epoch). The setting is chosen on val and reported
# on the held-out test split. The file itself is an ordinary FrozenBackboneRecognizer3D config.
_base_ = ['../_base_/default_runtime.py']

custom_imports = dict(imports=['ivnext', 'ivnext.datasets'], allow_failed_imports=False)

data_root = 'demo_artifacts/data'
num_frames = 4  # sampled uniformly from the 8-frame demo clips (the teacher's cost is per frame)
img_size = 112
patch_size = 14
encoder_dims = 128
encoder_depth = 4
layer_scale_init_value = 0.1  # the demo encoder's (random-init row: the same encoder at its initialisation)

label_kind = 'appearance'
num_classes = 8  # 8 appearance classes; 6 for motion

model = dict(
    type='FrozenBackboneRecognizer3D',
    backbone=dict(
        type='InternVideoNextViT',
        arch=dict(embed_dims=encoder_dims, num_layers=encoder_depth, num_heads=2, mlp_ratio=4.0),
        layer_scale_init_value=layer_scale_init_value,
        img_size=img_size,
        patch_size=patch_size,
        num_frames=num_frames,
        tubelet_size=1,
        out_type='tokens',
        use_flash_attn=False,
        with_clip_projector=False),
    # 4 heads on one pass over the cached tokens: 2 learning rates x 2 random inits (weight decay 0.05). The setting
    # with the best mean val top-1 over its 2 heads is selected; its heads' mean +- std is reported (the std is the
    # probe's init noise). The demo's earlier single probe (lr 2e-3, 60 epochs, 3 seeds in a loop) took 2.25x the steps.
    cls_head=dict(
        type='ProbeSweepHead',
        num_classes=num_classes,
        in_channels=encoder_dims,
        settings=[dict(lr=lr, weight_decay=0.05) for lr in (2e-3, 5e-3) for _ in range(2)],
        average_clips='prob',
        head=dict(
            type='AttentiveProbeHead',
            num_heads=None,  # width / 64
            num_cls_tokens=4,  # patch tokens only, as the paper's probe
            # Each token frame is pooled on its own and the pooled features are concatenated in time order (the
            # paper's probe pools the whole clip into one vector). Departure, measured on the demo clips: a one-vector
            # pool is a weighted average over space and time, so it cannot tell which frame held what; on these
            # briefly trained encoders it read motion at chance (16-20%) where a linear probe on per-frame mean
            # tokens read 24-39%, and the frame-wise pool reads 32-50% (README, demo notes).
            time_slots=num_frames,
            # No label smoothing (paper: 0.1): with 240 clips and a uniform-attention start, smoothing and a short
            # schedule kept the probe from fitting its own training clips (see the README's demo notes).
            label_smooth_eps=0.0)),
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
    dataset=dict(type='SkipBadClips', wraps='CheckedVideoDataset', num_classes=num_classes,
                 ann_file=f'{data_root}/train_{label_kind}.txt', data_prefix=dict(video=data_root),
                 pipeline=val_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='SkipBadClips', wraps='CheckedVideoDataset', num_classes=num_classes,
                 ann_file=f'{data_root}/val_{label_kind}.txt', data_prefix=dict(video=data_root),
                 pipeline=val_pipeline, test_mode=True))
test_dataloader = dict(val_dataloader, dataset=dict(val_dataloader['dataset'],
                                                    ann_file=f'{data_root}/test_{label_kind}.txt'))
# Clips SkipBadClips could not read are left out of the scores and counted (`bad_clips`).
val_evaluator = dict(type='SkipBadClipsMetric', metric=dict(type='AccMetric'))
test_evaluator = val_evaluator

# The cached-token probe attends to all 4*8*8 = 256 patch tokens of a clip in every step (None; an int would pick a
# random subset per step).
probe_train_tokens = None

# The probe's optimisation budget is what let it fit: the pooling starts as a uniform average (tiny query) and must
# learn where to look; lr 1e-3 x 20 epochs with smoothing reached ~22% train top-1 on random-init tokens of 400
# clips. Measured on the demo's Stage-1 tokens (motion, 3 probe seeds): lr 5e-3 x 40 epochs, wd 0.01: 63.2 +- 11.6%
# val (train 93%); lr 2e-3 x 60 epochs, wd 0.05: 66.7 +- 3.7% (train 100%). The sweep trains 20 epochs at
# lr 2e-3 and 5e-3, 4 heads: as many head steps as 1.3 of those runs.
max_epochs = 20
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# One parameter group per head with its lr / weight decay (ProbeSweepOptimWrapperConstructor; the cached-token
# path builds the same groups).
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='ProbeSweepOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=2e-3, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=None)
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min=1e-5)]
default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook', by_epoch=True, interval=max_epochs, max_keep_ckpts=1,
                                     save_best=None))
custom_hooks = [dict(type='ProbeSweepHook')]  # through tools/train.py: every head's val top-1, the selection
log_processor = dict(by_epoch=True, window_size=10)
